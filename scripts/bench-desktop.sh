#!/bin/bash
# Benchmark: time from `workspace start` to the agent connected on the
# minimal desktop image, next to a bare `virsh start` of the same domain
# definition to the guest's first console line (and to its login prompt),
# in the same run, ROUNDS times each, alternating. Prints the results
# (scripts/bench.sh puts them into docs/bench-results.txt). Needs root,
# libvirtd and the built image (make desktop-image).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
ROUNDS=${ROUNDS:-3}
source scripts/bench-daemon.sh
bench_cleanup() { "$W" destroy "${NAME:-}" --yes >/dev/null 2>&1 || true; }
bench_daemon desk desk-bench
NAME=wstest-desk-bench-$ID
cat >"$DIR/bench.hcl" <<EOF
image  = "desk-bench"
cpus   = 2
memory = "1GiB"
disk   = "4GiB"
display {
  type = "vnc"
}
EOF
"$W" create "$NAME" --profile "$DIR/bench.hcl" >/dev/null
# The libvirt domain (ws-DAEMONID-NAME: each daemon names its own).
DOM=$("$W" status "$NAME" --json | sed -n 's/^  "domain": "\(.*\)",$/\1/p')
[ -n "$DOM" ] || { echo "bench-desktop: no domain for $NAME" >&2; exit 1; }
CONSOLE=$DIR/state/workspaces/$NAME/console.log

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
agent_connected() { "$W" status "$NAME" --json | grep -A1 '"agent"' | grep -q '"connected": true'; }
wait_stopped() {
	for i in $(seq 1 600); do
		[ "$(virsh -c "$URI" domstate "$DOM" 2>/dev/null)" = "shut off" ] && return 0
		sleep 0.2
	done
	virsh -c "$URI" destroy "$DOM" >/dev/null 2>&1 || true
}

echo "# scripts/bench-desktop.sh: minimal desktop image, 2 vCPUs, 1 GiB, TCG; $ROUNDS rounds"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-34s %-34s %s\n' round "workspace start -> agent connected" "virsh start -> first console line" "virsh start -> login prompt"
ws_sum=0 first_sum=0
for r in $(seq 1 "$ROUNDS"); do
	# workspace start, as a user runs it, until the agent is connected.
	: >"$CONSOLE"
	t0=$(now)
	"$W" start "$NAME" >/dev/null
	until agent_connected; do sleep 0.2; done
	ws=$(since "$t0")
	"$W" stop "$NAME" --timeout 120s >/dev/null
	wait_stopped

	# virsh start of the same domain definition, until the console speaks.
	: >"$CONSOLE"
	t0=$(now)
	virsh -c "$URI" start "$DOM" >/dev/null
	until [ -s "$CONSOLE" ]; do sleep 0.05; done
	first=$(since "$t0")
	until grep -q 'login:' "$CONSOLE"; do sleep 0.1; done
	login=$(since "$t0")
	virsh -c "$URI" shutdown "$DOM" >/dev/null
	wait_stopped
	printf '%-6s %-34s %-34s %s\n' "$r" "${ws} s" "${first} s" "${login} s"
	ws_sum=$(awk -v a="$ws_sum" -v b="$ws" 'BEGIN { print a + b }')
	first_sum=$(awk -v a="$first_sum" -v b="$first" 'BEGIN { print a + b }')
done
awk -v w="$ws_sum" -v f="$first_sum" -v n="$ROUNDS" 'BEGIN { printf "mean   %-34s %s\n", sprintf("%.1f s", w / n), sprintf("%.1f s", f / n) }'
