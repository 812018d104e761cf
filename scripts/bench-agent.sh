#!/bin/bash
# The guest agent's footprint: RSS and CPU over a run of DURATION seconds
# (default 600) at one screenshot a minute, on a 1920x1080 Xvfb screen.
# The agent runs as in a guest whose host is away (no virtio port): it
# captures, encodes and spools, which is all the work a guest sees.
#
# REF=<git revision> also builds the agent of that revision and runs it in
# the same minutes, on a screen of its own showing the same picture, as
# the reference: both are sampled alike and reported side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
DURATION=${DURATION:-600}
REF=${REF:-}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

agents=(current)
CGO_ENABLED=0 go build -o "$WORK/current/workspace-agent" ./cmd/workspace-agent
if [ -n "$REF" ]; then
	mkdir -p "$WORK/src"
	git archive "$REF" | tar -x -C "$WORK/src"
	(cd "$WORK/src" && CGO_ENABLED=0 go build -o "$WORK/ref/workspace-agent" ./cmd/workspace-agent)
	agents+=(ref)
fi

declare -A PID DISP
for a in "${agents[@]}"; do
	# Xvfb picks a free display and says which on its standard output.
	Xvfb -displayfd 1 -screen 0 1920x1080x24 +xinerama -nolisten tcp -noreset >"$WORK/$a.display" 2>/dev/null &
	PIDS+=($!)
	for _ in $(seq 100); do [ -s "$WORK/$a.display" ] && break; sleep 0.1; done
	n=$(cat "$WORK/$a.display")
	DISPLAY=":$n" xsetroot -bitmap images/test/picture.xbm -fg '#ff8800' -bg '#003366'
	DISP[$a]=":$n"
	mkdir -p "$WORK/$a/state"
	cat >"$WORK/$a/state/state.json" <<JSON
{"policy":{"slot_seconds":60,"screenshots_per_slot":1,"idle_seconds":300,"blur":false,"jpeg_quality":75,"spool_limit":536870912},
 "track":{"on":true,"session":"bench"}}
JSON
done
for a in "${agents[@]}"; do
	DISPLAY="${DISP[$a]}" "$WORK/$a/workspace-agent" run --state-dir "$WORK/$a/state" --port /nonexistent --log-level warn 2>/dev/null &
	PID[$a]=$!
	PIDS+=($!)
done

CLK=$(getconf CLK_TCK)
declare -A MAX SUM
for a in "${agents[@]}"; do MAX[$a]=0 SUM[$a]=0; done
k=0
for _ in $(seq 1 $((DURATION / 5))); do
	sleep 5
	for a in "${agents[@]}"; do
		rss=$(awk '/VmRSS/{print $2}' "/proc/${PID[$a]}/status")
		MAX[$a]=$((rss > MAX[$a] ? rss : MAX[$a]))
		SUM[$a]=$((SUM[$a] + rss))
	done
	k=$((k + 1))
done
echo "# agent footprint: ${DURATION}s at one shot a minute, 1920x1080 Xvfb, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
for a in "${agents[@]}"; do
	read -r ut st < <(awk '{print $14, $15}' "/proc/${PID[$a]}/stat")
	cpu=$(((ut + st) * 1000 / CLK))
	shots=$(ls "$WORK/$a/state/spool" | wc -l)
	name="this agent"
	[ "$a" = ref ] && name="reference agent ($REF)"
	echo "$name:"
	echo "  items spooled:   $shots"
	echo "  RSS:             max $((MAX[$a] / 1024)) MiB, mean $((SUM[$a] / k / 1024)) MiB (mean $((SUM[$a] / k)) KiB)"
	echo "  CPU time:        ${cpu} ms in ${DURATION} s = $(awk -v c=$cpu -v d=$DURATION 'BEGIN{printf "%.3f", c/(d*10)}') % of one core"
done
