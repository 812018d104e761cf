#!/bin/bash
# Installs the build and test dependencies on Debian: a Go toolchain (the
# module's go line then fetches the exact version through the module proxy)
# and the Debian packages the tests use. Idempotent; needs root for apt.
set -euo pipefail

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then
	need+=(golang-go)
fi
for p in git make ca-certificates e2fsprogs mmdebstrap qemu-utils; do
	have "$p" || need+=("$p")
done
# `deps.sh test`: what the tests drive for real besides libvirt and the
# test image: a browser for the web UI test, an X server and xsetroot for
# the host-side picture of the tracking test, remote-viewer for the view
# test, libjpeg's cjpeg and djpeg for the JPEG encoder's tests, ssh-agent
# for litewitness (the witness interop tests build litewitness itself from
# the Go module proxy), the OpenSSH server for the remote (--host ssh://)
# test (it runs its own sshd with its own config and keys; the package's
# service is not needed); for the package test, systemd-analyze (systemd,
# not run as PID 1) to verify the unit, and zsh and fish to load completions.
# `deps.sh bench`: that, and the references the benchmarks run against:
# scrot (the screenshot tool) and hyperfine (to time it and the agent).
case "${1:-}" in
test | bench)
	for p in chromium xvfb x11-xserver-utils vagrant virt-viewer libjpeg-turbo-progs openssh-client openssh-server systemd zsh fish; do
		have "$p" || need+=("$p")
	done
	;;
esac
if [ "${1:-}" = bench ]; then
	for p in scrot hyperfine; do
		have "$p" || need+=("$p")
	done
fi
source "$(dirname "$0")/apt.sh"
apt_need deps "${need[@]}"
export PATH=/usr/local/go/bin:$PATH
go version
