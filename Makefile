# workspace: per-client VM workspaces with private, verifiable time tracking.
# `make demo` and `make test` install what they need on a fresh Debian machine (run as root).

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
export GOTOOLCHAIN ?= auto
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build deps libvirt test-image desktop-image demo demo-clean test unit lint bench fmt clean deb release

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/workspace ./cmd/workspace
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/workspace-agent ./cmd/workspace-agent

deps:
	bash scripts/deps.sh

libvirt: deps
	bash scripts/libvirt-up.sh

test-image: deps
	bash images/test/build.sh

# The minimal desktop image (mmdebstrap, about 4 minutes) for its e2e test.
desktop-image: deps
	bash images/desktop/make.sh

demo: libvirt build test-image
	bash scripts/demo.sh

demo-clean:
	bash scripts/demo.sh clean

lint:
	@test -z "$$(gofmt -l . | grep -v '^images/test/build/')" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Everything: unit, fuzz seeds, integration against the real libvirtd with the
# test guest, and end to end through the built CLI.
test: libvirt test-image desktop-image lint
	bash scripts/deps.sh test
	$(GO) test -count=1 -p 1 -timeout 60m ./...

# The Debian package: dist/workspace_VERSION_amd64.deb (nfpm, a Go tool
# dependency in tools/go.mod).
deb:
	VERSION=$(VERSION) bash packaging/deb/build.sh

# Every binary for every platform (the CLI for linux, darwin and windows; the
# agent for linux and windows), the package, and SHA256SUMS: dist/release/.
release:
	VERSION=$(VERSION) bash packaging/release.sh

unit:
	$(GO) test -count=1 -short ./...

bench: libvirt
	bash scripts/bench.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin dist images/test/build images/desktop/build
