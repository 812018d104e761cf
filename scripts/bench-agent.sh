#!/bin/bash
# The guest agent's footprint: RSS and CPU over a run of DURATION seconds
# (default 600) at one screenshot a minute, on a 1920x1080 Xvfb screen.
# The agent runs as in a guest whose host is away (no virtio port): it
# captures, encodes and spools, which is all the work a guest sees.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
DURATION=${DURATION:-600}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
CGO_ENABLED=0 go build -o "$WORK/workspace-agent" ./cmd/workspace-agent
for n in $(seq 170 199); do [ -e /tmp/.X11-unix/X$n ] || break; done
Xvfb ":$n" -screen 0 1920x1080x24 +xinerama -nolisten tcp -noreset >/dev/null 2>&1 &
sleep 1
DISPLAY=":$n" xsetroot -bitmap images/test/picture.xbm -fg '#ff8800' -bg '#003366'
mkdir -p "$WORK/state"
cat > "$WORK/state/state.json" <<JSON
{"policy":{"slot_seconds":60,"screenshots_per_slot":1,"idle_seconds":300,"blur":false,"jpeg_quality":75,"spool_limit":536870912},
 "track":{"on":true,"session":"bench"}}
JSON
DISPLAY=":$n" "$WORK/workspace-agent" run --state-dir "$WORK/state" --port /nonexistent --log-level warn 2>/dev/null &
PID=$!
CLK=$(getconf CLK_TCK)
max=0 sum=0 k=0
for _ in $(seq 1 $((DURATION / 5))); do
	sleep 5
	rss=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
	max=$((rss > max ? rss : max)); sum=$((sum + rss)); k=$((k + 1))
done
read -r ut st < <(awk '{print $14, $15}' /proc/$PID/stat)
cpu=$(( (ut + st) * 1000 / CLK ))
shots=$(ls "$WORK/state/spool" | wc -l)
echo "# agent footprint: ${DURATION}s at one shot a minute, 1920x1080 Xvfb, $(nproc) cores"
echo "shots spooled:   $shots"
echo "RSS:             max $((max / 1024)) MiB, mean $((sum / k / 1024)) MiB"
echo "CPU time:        ${cpu} ms in ${DURATION} s = $(awk -v c=$cpu -v d=$DURATION 'BEGIN{printf "%.3f", c/(d*10)}') % of one core"
