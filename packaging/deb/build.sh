#!/bin/bash
# `make deb`: builds the Debian package dist/workspace_VERSION_ARCH.deb with
# nfpm (a Go tool dependency in tools/go.mod: nothing prebuilt is
# downloaded). OUT_DIR changes where it goes, DEB_ARCH the architecture
# (amd64, arm64). Prints the package's path last.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/local/go/bin:$PATH
OUT_DIR=${OUT_DIR:-dist}
DEB_ARCH=${DEB_ARCH:-amd64}
case "$DEB_ARCH" in
amd64 | arm64) GOARCH=$DEB_ARCH ;;
*) echo "deb: DEB_ARCH=$DEB_ARCH: want amd64 or arm64" >&2; exit 1 ;;
esac

# The version: a tag when there is one (v1.2.3 -> 1.2.3), else a snapshot
# version that sorts by commit date; "+dirty" for uncommitted changes.
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
if tag=$(git describe --tags --exact-match 2>/dev/null); then
	DEB_VERSION=${tag#v}
else
	DEB_VERSION=0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$(git rev-parse --short HEAD)
fi
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	DEB_VERSION=$DEB_VERSION+dirty
fi
export DEB_VERSION DEB_ARCH
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
export STAGE
LDFLAGS="-s -w -X main.version=$VERSION"
echo "deb: building workspace $VERSION for linux/$GOARCH" >&2
CGO_ENABLED=0 GOOS=linux GOARCH=$GOARCH go build -trimpath -ldflags "$LDFLAGS" -o "$STAGE/workspace" ./cmd/workspace
CGO_ENABLED=0 GOOS=linux GOARCH=$GOARCH go build -trimpath -ldflags "$LDFLAGS" -o "$STAGE/workspace-agent" ./cmd/workspace-agent

# Man pages and completions come from the cobra commands themselves.
go build -trimpath -ldflags "$LDFLAGS" -o "$STAGE/host-workspace" ./cmd/workspace
"$STAGE/host-workspace" gen-docs --man "$STAGE/man" --completions "$STAGE/completions"
rm "$STAGE/host-workspace"
gzip -9n "$STAGE"/man/*.1

# The recipe's files with plain modes (executable or not), whatever the
# checkout's umask.
mkdir "$STAGE/recipe-files"
for f in images/desktop/files/*; do
	mode=0644
	[ -x "$f" ] && mode=0755
	install -m "$mode" "$f" "$STAGE/recipe-files/"
done

mkdir -p "$OUT_DIR"
out=$OUT_DIR/workspace_${DEB_VERSION}_${DEB_ARCH}.deb
go tool -modfile=tools/go.mod nfpm package --config packaging/deb/nfpm.yaml --packager deb --target "$out" >&2
echo "$out"
