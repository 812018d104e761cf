#!/bin/bash
# `make release`: the CLI for every platform it ships on (the Linux host;
# the client's side on macOS and Windows), the static guest agent for
# Linux and Windows guests, the Debian package, and SHA256SUMS of them all,
# in dist/release/ (OUT_DIR to change it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
OUT_DIR=${OUT_DIR:-dist/release}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
LDFLAGS="-s -w -X main.version=$VERSION"
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR"

build() { # build PKG NAME GOOS/GOARCH
	local goos=${3%/*} goarch=${3#*/} ext=""
	[ "$goos" = windows ] && ext=.exe
	echo "release: $2 for $goos/$goarch" >&2
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags "$LDFLAGS" -o "$OUT_DIR/$2-$goos-$goarch$ext" "$1"
}
for t in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64; do
	build ./cmd/workspace workspace "$t"
done
for t in linux/amd64 linux/arm64 windows/amd64; do
	build ./cmd/workspace-agent workspace-agent "$t"
done
OUT_DIR=$OUT_DIR VERSION=$VERSION bash packaging/deb/build.sh >/dev/null
(cd "$OUT_DIR" && sha256sum -- * >SHA256SUMS)
echo "release: $(ls "$OUT_DIR" | wc -l) files in $OUT_DIR" >&2
cat "$OUT_DIR/SHA256SUMS"
