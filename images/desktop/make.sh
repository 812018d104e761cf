#!/bin/bash
# `make desktop-image`: builds the minimal desktop image into
# images/desktop/build/ (minimal.qcow2, .vmlinuz, .initrd.img, .cmdline) with
# `workspace image build desktop`, as a user would, for the tests and CI.
# Skipped when a stamp of the recipe, the build code and the agent's sources
# matches (FORCE=1 rebuilds). The desktop user is "user", password
# "workspace" (a test image: it logs in by itself anyway). Run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
OUT=$REPO/images/desktop/build
export PATH=/usr/local/go/bin:$PATH
STAMP=$(cat images/desktop/build.sh images/desktop/essential.sh images/desktop/customize.sh \
	$(find images/desktop/files -type f | sort) $(ls images/*.go | grep -v _test.go) cmd/workspace/image_build.go go.sum \
	$(find cmd/workspace-agent guestagent channel tracking internal \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' | sort) | sha256sum | cut -d' ' -f1)
if [ "${FORCE:-0}" != 1 ] && [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$STAMP" ] &&
	[ -f "$OUT/minimal.qcow2" ] && [ -f "$OUT/minimal.vmlinuz" ] && [ -f "$OUT/minimal.initrd.img" ] && [ -f "$OUT/minimal.cmdline" ]; then
	echo "desktop-image: up to date in $OUT"
	exit 0
fi

source scripts/apt.sh
apt_need desktop-image mmdebstrap qemu-utils e2fsprogs

mkdir -p "$OUT"
rm -f "$OUT"/minimal.* "$OUT/.stamp"
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
VERSION=$(git describe --always --dirty 2>/dev/null || echo dev)
go build -o "$BIN/workspace" ./cmd/workspace
CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$VERSION" -o "$BIN/workspace-agent" ./cmd/workspace-agent
"$BIN/workspace" image build desktop --variant minimal --no-import --out "$OUT/minimal.qcow2" \
	--password workspace --agent "$BIN/workspace-agent"
echo "$STAMP" > "$OUT/.stamp"
ls -la "$OUT"
