# Sourced by the benchmarks that boot the minimal desktop image
# (bench-desktop.sh, bench-suspend.sh).
#
# bench_daemon TAG IMAGE: a daemon of its own (state folder, socket and pool
# in a fresh temporary folder) with the minimal desktop image imported as
# IMAGE; sets DIR, W (the CLI), WORKSPACE_SOCKET, POOL, ID and DPID, and an
# EXIT trap that calls the script's bench_cleanup (if any), then removes the
# image, stops the daemon and drops its pool and folder.
bench_daemon() {
	local tag=$1 image=$2 f
	URI=qemu:///system
	IMG=images/desktop/build
	for f in minimal.qcow2 minimal.vmlinuz minimal.initrd.img minimal.cmdline; do
		[ -f "$IMG/$f" ] || { echo "bench-$tag: $IMG/$f missing: run make desktop-image" >&2; exit 1; }
	done
	DIR=$(mktemp -d /tmp/wsbench-$tag.XXXXXX)
	chmod 755 "$DIR"
	ID=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
	POOL=wstest-bench-$tag-$ID
	export WORKSPACE_SOCKET=$DIR/ws.sock
	go build -o "$DIR/workspace" ./cmd/workspace
	W=$DIR/workspace
	"$W" daemon --state-dir "$DIR/state" --socket "$WORKSPACE_SOCKET" --pool "$POOL" --ui-addr 127.0.0.1:0 >"$DIR/daemon.log" 2>&1 &
	DPID=$!
	BENCH_IMAGE=$image
	trap bench_daemon_cleanup EXIT
	local i
	for i in $(seq 1 100); do "$W" list >/dev/null 2>&1 && break; sleep 0.2; done
	"$W" image import "$image" "$IMG/minimal.qcow2" --kernel "$IMG/minimal.vmlinuz" --initrd "$IMG/minimal.initrd.img" \
		--cmdline "$(cat "$IMG/minimal.cmdline")" >/dev/null
}

bench_daemon_cleanup() {
	if declare -F bench_cleanup >/dev/null; then bench_cleanup; fi
	"$W" image rm "$BENCH_IMAGE" >/dev/null 2>&1 || true
	kill "$DPID" 2>/dev/null || true
	wait "$DPID" 2>/dev/null || true
	virsh -c "$URI" pool-destroy "$POOL" >/dev/null 2>&1 || true
	virsh -c "$URI" pool-undefine "$POOL" >/dev/null 2>&1 || true
	rm -rf "$DIR"
}
