#!/bin/bash
# Benchmark: suspend and resume, switch, and lean idle guests, on the
# minimal desktop image, each against its reference in the same run:
#   1. `workspace start` of a suspended workspace to the agent connected, vs
#      a cold `workspace start` to the agent connected (ROUNDS rounds each);
#   2. `workspace switch` between two workspaces (the other one suspended)
#      to the agent connected, against the same cold starts;
#   3. host RSS of three idle workspaces (1 GiB each) IDLE seconds after
#      their agents connected, with free page reporting (as the daemon
#      defines them) and, at the same time, three without it (the same
#      domains with freePageReporting taken out of their definitions);
#   4. under TCG, cold start to the agent connected and host RSS IDLE
#      seconds later of three workspaces with the translation cache the
#      daemon gives (--tcg-cache, 256 MiB) and, at the same time, three with
#      QEMU's default (the <tcg> element taken out of their definitions).
# Prints the results (scripts/bench.sh puts them into
# docs/bench-results.txt). Needs root, libvirtd and the built image (make
# desktop-image). PARTS=12 runs parts 1 and 2 only.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
ROUNDS=${ROUNDS:-3}
IDLE=${IDLE:-600}
PARTS=${PARTS:-1234}
source scripts/bench-daemon.sh
NAMES=()
bench_cleanup() { for n in "${NAMES[@]}"; do "$W" destroy "$n" --yes >/dev/null 2>&1 || true; done; }
bench_daemon susp susp-bench
profile() { # cpus
	cat >"$DIR/bench-$1.hcl" <<EOF
image  = "susp-bench"
cpus   = $1
memory = "1GiB"
disk   = "4GiB"
display {
  type = "vnc"
}
EOF
	echo "$DIR/bench-$1.hcl"
}
create() { # name cpus
	"$W" create "$1" --profile "$(profile "$2")" >/dev/null
	NAMES+=("$1")
}
# pairs A B PREFIX_A PREFIX_B: three workspaces of each arm (1 vCPU),
# made in turn, their names in the arrays named A and B.
pairs() {
	local -n arm_a=$1 arm_b=$2
	local i
	arm_a=() arm_b=()
	for i in 1 2 3; do
		create "$3$i-$ID" 1
		arm_a+=("$3$i-$ID")
		create "$4$i-$ID" 1
		arm_b+=("$4$i-$ID")
	done
}

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
# field NAME KEY: the first value of KEY in `workspace status NAME --json`.
field() { "$W" status "$1" --json | grep -o "\"$2\": \"\{0,1\}[^\",]*" | head -1 | sed 's/^[^:]*: "\{0,1\}//'; }
agent_connected() { "$W" status "$1" --json | grep -A1 '"agent"' | grep -q '"connected": true'; }
wait_agent() { until agent_connected "$1"; do sleep 0.2; done; }
mean() { awk '{ s += $1; n++ } END { printf "%.1f", s / n }'; }
sum() { awk '{ s += $1 } END { print s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# redefine NAME SED GONE: NAME's domain defined again as sed SED makes it;
# GONE must no longer be in the definition.
redefine() {
	local dom
	dom=$(field "$1" domain)
	virsh -c "$URI" dumpxml --inactive "$dom" | sed "$2" >"$DIR/$1.xml"
	grep -q "$3" "$DIR/$1.xml" && { echo "bench-suspend: could not take $3 out of $dom" >&2; exit 1; }
	virsh -c "$URI" define "$DIR/$1.xml" >/dev/null
}
# rss_table PATTERN FILE_A FILE_B NAME...: prints each NAME's host RSS in
# MiB and adds it to FILE_A when NAME matches PATTERN, else to FILE_B.
rss_table() {
	local pat=$1 a=$2 b=$3 n rss
	shift 3
	printf '%-28s %s\n' workspace "host RSS (MiB)"
	for n in "$@"; do
		rss=$(( $(field "$n" rss_bytes) / 1048576 ))
		printf '%-28s %s\n' "$n" "$rss"
		# shellcheck disable=SC2053 # PATTERN is a glob
		if [[ $n == $pat ]]; then echo "$rss" >>"$a"; else echo "$rss" >>"$b"; fi
	done
}

echo "# scripts/bench-suspend.sh: minimal desktop image, 1 GiB, TCG; $ROUNDS rounds"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"

S=wstest-susp-s-$ID T=wstest-susp-t-$ID
COLD=()
if [[ $PARTS == *1* || $PARTS == *2* ]]; then
	create "$S" 2
	create "$T" 2
	echo "## 1. cold start vs resume, to the agent connected (2 vCPUs)"
	printf '%-6s %-26s %-22s %-26s %s\n' round "cold start -> agent" "suspend (saved state)" "resume start -> agent" "resume/cold"
	for r in $(seq 1 "$ROUNDS"); do
		t0=$(now)
		"$W" start "$S" >/dev/null
		wait_agent "$S"
		cold=$(since "$t0")
		COLD+=("$cold")
		sleep 20 # the desktop settles
		t0=$(now)
		"$W" suspend "$S" >/dev/null
		susp=$(since "$t0")
		size=$(( $(field "$S" bytes) / 1048576 ))
		t0=$(now)
		"$W" start "$S" >/dev/null
		wait_agent "$S"
		res=$(since "$t0")
		printf '%-6s %-26s %-22s %-26s %s\n' "$r" "$cold s" "$susp s ($size MiB)" "$res s" "$(ratio "$res" "$cold")"
		echo "$res" >>"$DIR/resume"
		"$W" stop "$S" --timeout 120s >/dev/null
	done
	coldmean=$(printf '%s\n' "${COLD[@]}" | mean)
	resmean=$(mean <"$DIR/resume")
	echo "mean   cold $coldmean s, resume $resmean s: resume/cold $(ratio "$resmean" "$coldmean") (target <= 0.20)"
fi
if [[ $PARTS == *2* ]]; then
	echo "## 2. switch between two workspaces (the other suspended), to the agent connected"
	"$W" start "$T" >/dev/null
	wait_agent "$T"
	sleep 20
	"$W" suspend "$T" >/dev/null
	"$W" start "$S" >/dev/null
	wait_agent "$S"
	sleep 20
	printf '%-6s %-30s %-30s\n' round "switch to T -> agent" "switch to S -> agent"
	for r in $(seq 1 "$ROUNDS"); do
		t0=$(now)
		"$W" switch "$T" >/dev/null 2>&1
		wait_agent "$T"
		a=$(since "$t0")
		sleep 5
		t0=$(now)
		"$W" switch "$S" >/dev/null 2>&1
		wait_agent "$S"
		b=$(since "$t0")
		sleep 5
		printf '%-6s %-30s %-30s\n' "$r" "$a s" "$b s"
		printf '%s\n%s\n' "$a" "$b" >>"$DIR/switch"
	done
	swmean=$(mean <"$DIR/switch")
	echo "mean   switch $swmean s vs cold start $coldmean s: $(ratio "$swmean" "$coldmean") (target <= 0.20)"
	"$W" stop "$S" --timeout 120s >/dev/null
fi
if [[ $PARTS == *3* ]]; then
	echo "## 3. host RSS of three idle workspaces (1 GiB, 1 vCPU) ${IDLE} s after their agents connected: free page reporting on vs off, at the same time"
	pairs ON OFF wstest-fpr-on wstest-fpr-off
	for n in "${OFF[@]}"; do redefine "$n" "s/ freePageReporting=['\"]on['\"]//" freePageReporting; done
	for n in "${ON[@]}" "${OFF[@]}"; do "$W" start "$n" >/dev/null; done
	for n in "${ON[@]}" "${OFF[@]}"; do wait_agent "$n"; done
	echo "# all 6 agents connected at $(date -u +%H:%M:%SZ); idle for ${IDLE} s"
	echo "# the guests' free page reporting order (pages of 2^order x 4 KiB): $("$W" exec "${ON[0]}" -- cat /sys/module/page_reporting/parameters/page_reporting_order)"
	sleep "$IDLE"
	rss_table '*-on*' "$DIR/on" "$DIR/off" "${ON[@]}" "${OFF[@]}"
	on=$(sum <"$DIR/on")
	off=$(sum <"$DIR/off")
	echo "total  with free page reporting $on MiB, without $off MiB: $(ratio "$on" "$off") (target <= 0.70)"
fi
if [[ $PARTS == *4* ]]; then
	echo "## 4. TCG translation cache: the daemon's cap vs QEMU's default, three idle workspaces each (1 GiB, 1 vCPU), started at the same time"
	pairs CAP DEF wstest-tb-cap wstest-tb-def
	dom=$(field "${CAP[0]}" domain)
	virsh -c "$URI" dumpxml --inactive "$dom" | grep -q "<tb-cache" || { echo "bench-suspend: $dom has no tb-cache (is libvirt offering KVM?)" >&2; exit 1; }
	for n in "${DEF[@]}"; do redefine "$n" '/<tcg>/,/<\/tcg>/d' tb-cache; done
	t0=$(now)
	for n in "${CAP[@]}" "${DEF[@]}"; do "$W" start "$n" >/dev/null; done
	left=("${CAP[@]}" "${DEF[@]}")
	while [ ${#left[@]} -gt 0 ]; do
		next=()
		for n in "${left[@]}"; do
			if agent_connected "$n"; then
				up=$(since "$t0")
				case $n in *-cap*) echo "$up" >>"$DIR/tbcap-up" ;; *) echo "$up" >>"$DIR/tbdef-up" ;; esac
			else
				next+=("$n")
			fi
		done
		left=("${next[@]}")
		sleep 0.5
	done
	echo "# all 6 agents connected at $(date -u +%H:%M:%SZ); idle for ${IDLE} s"
	sleep "$IDLE"
	rss_table '*-cap*' "$DIR/tbcap" "$DIR/tbdef" "${CAP[@]}" "${DEF[@]}"
	cap=$(sum <"$DIR/tbcap")
	def=$(sum <"$DIR/tbdef")
	echo "start to agent (6 booting at once): capped mean $(mean <"$DIR/tbcap-up") s, QEMU's default mean $(mean <"$DIR/tbdef-up") s"
	echo "total RSS  capped $cap MiB, QEMU's default $def MiB: $(ratio "$cap" "$def")"
fi
