#!/bin/bash
# Runs the benchmarks that compare against a reference in the same run and
# writes the raw results to docs/bench-results.txt (summarised by hand in
# docs/benchmarks.md). Needs libvirtd (sudo make libvirt) and root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
OUT=docs/bench-results.txt
bash scripts/deps.sh bench >/dev/null
{
	echo "# go test -bench BenchmarkCreateWorkspace -benchtime 5x -count 3 ./vm/"
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(uname -r), libvirt $(virsh -c qemu:///system version --daemon 2>/dev/null | sed -n 's/.*Running against daemon: //p')"
	go test -run NONE -bench BenchmarkCreateWorkspace -benchtime 5x -count 3 -timeout 30m ./vm/
	echo
	echo "# go test -bench 'BenchmarkIngest|BenchmarkVerify|BenchmarkDayView' -benchtime 3s -count 3 ./diary/   (state in \$TMPDIR: $(df -T "${TMPDIR:-/tmp}" | awk 'NR==2{print $2}'))"
	go test -run NONE -bench 'BenchmarkIngest|BenchmarkVerify|BenchmarkDayView' -benchtime 3s -count 3 -timeout 30m ./diary/
	echo
	echo "# go test -bench BenchmarkShotVsScrot -benchtime 1x -count 3 ./cmd/workspace-agent/   (20 interleaved rounds each; scrot $(dpkg-query -W -f='${Version}' scrot 2>/dev/null), hyperfine $(dpkg-query -W -f='${Version}' hyperfine 2>/dev/null), $(date -u +%Y-%m-%dT%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
	go test -run NONE -bench BenchmarkShotVsScrot -benchtime 1x -count 3 ./cmd/workspace-agent/
	echo
	echo "# go test -bench BenchmarkIngestWitness -benchtime 5s -count 6 ./daemon/   ($(date -u +%Y-%m-%dT%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg), state in \$TMPDIR: $(df -T "${TMPDIR:-/tmp}" | awk 'NR==2{print $2}'))"
	go test -run NONE -bench BenchmarkIngestWitness -benchtime 5s -count 6 ./daemon/
	echo
	echo "# go test -bench BenchmarkDayPage -benchtime 2s -count 3 ./web/   ($(date -u +%Y-%m-%dT%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
	go test -run NONE -bench BenchmarkDayPage -benchtime 2s -count 3 ./web/
	echo
	bash scripts/bench-agent.sh
	echo
	bash scripts/bench-desktop.sh
	echo
	bash scripts/bench-suspend.sh
} | tee "$OUT"
