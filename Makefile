# attestd — see README.md. `make run` starts a development daemon;
# `make test` fetches what the tests need and runs every test.

GO        ?= go
ifeq ($(origin VERSION),undefined)
VERSION   := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin/attestd
# The real codex app-server the end-to-end tests run against (pinned).
CODEX_VERSION := 0.171.0
CODEX_DIR     := .codex
CODEX_BIN     := $(CODEX_DIR)/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex

.PHONY: all run build cross test vet-darwin codex bench bench-go lint clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/attestd

## run: a foreground daemon with the development provider on the default socket.
run: build
	$(BIN) serve --provider dev --log-level debug

## selftest: "attestd selftest" on this machine (every Mac check on a Mac,
## the portable ones elsewhere); SELFTEST_FLAGS=--launchd adds the launchd
## round trip, SELFTEST_FLAGS=--json prints the report as JSON.
.PHONY: selftest
selftest: build
	$(BIN) selftest $(SELFTEST_FLAGS)

## cross: build for darwin/arm64, darwin/amd64 and linux with CGO_ENABLED=0.
cross:
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/attestd-darwin-arm64 ./cmd/attestd
	GOOS=darwin GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/attestd-darwin-amd64 ./cmd/attestd
	GOOS=linux CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/attestd-linux-$(shell $(GO) env GOARCH) ./cmd/attestd

## vet-darwin: what CI checks for both Mac architectures, without cgo.
vet-darwin:
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) vet ./...
	GOOS=darwin GOARCH=amd64 CGO_ENABLED=0 $(GO) vet ./...
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...
	GOOS=darwin GOARCH=amd64 CGO_ENABLED=0 $(GO) build ./...

## codex: the pinned codex app-server from the npm registry, into a git-ignored folder.
codex: $(CODEX_BIN)
$(CODEX_BIN):
	mkdir -p $(CODEX_DIR)
	npm install --silent --no-audit --no-fund --prefix $(CODEX_DIR) @openai/codex@$(CODEX_VERSION)
	test -x $(CODEX_BIN)

## test: everything CI runs: lint, the darwin cross vet, every test with
## the race detector (the real codex included). Every fuzz target runs on
## its committed corpus as a plain test; exploring new inputs is "make
## fuzz", not CI, so that a landing never depends on a random search or on
## a fuzz worker killed on a loaded machine (see test/test.mk).
test: lint vet-darwin codex osx-sign
	$(GO) mod download
	CODEX_BIN=$(abspath $(CODEX_BIN)) OSX_SIGN_DIR=$(abspath $(OSX_SIGN_DIR)) $(GO) test -race -count=1 -timeout 20m ./...

## redis-server, nginx, caddy: the real servers the tests start, installed
## when missing (Debian packages, or Homebrew on a Mac) with the system
## services they start stopped and disabled again (see test/servers.mk).
include test/servers.mk

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: the one table of BENCHMARKS.md, each figure against a baseline
## measured in the same run (about 3 minutes).
bench: bench-table

## bench-go: every Go benchmark in the module.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin dist

-include packaging/packaging.mk
-include test/test.mk
