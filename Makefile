# Two commands matter: `make demo` and `make test`. Both install what is
# missing first (ffmpeg, chromium, node/npm, the npm packages), so they work on
# a fresh Debian machine that has Go.

SHELL := /bin/bash
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# The build's date, or SOURCE_DATE_EPOCH's for a reproducible build.
DATE := $(shell date -u $${SOURCE_DATE_EPOCH:+-d @$$SOURCE_DATE_EPOCH} +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
DIST ?= dist
JSMPEG := node_modules/@cycjimmy/jsmpeg-player/dist/jsmpeg-player.umd.min.js
ASSET := jsmpeg/assets/jsmpeg-player.umd.min.js
MPEGTS := node_modules/mpegts.js/dist/mpegts.js
MSEASSET := jsmpeg/assets/mpegts.js
FUZZTIME ?= 10000x

.PHONY: all build dist test demo bench lint deps tools js fuzz clean

all: build

## build: bin/vw (with the jsmpeg library embedded when npm is available)
build: js
	go build -ldflags '$(LDFLAGS)' -o bin/vw ./cmd/vw

## dist: tarballs and .deb packages for linux amd64, arm64 and armv7 in $(DIST)/ (needs npm for the player library)
dist: js
	VERSION=$(VERSION) COMMIT=$(COMMIT) DATE=$(DATE) ./scripts/dist.sh $(DIST)

## test: install what is missing, then lint, every test under -race, and a short fuzz of every parser
test: deps lint
	go test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

## demo: install what is missing, build, and run relay + stream + two test feeds; prints the URL to open
## (make demo CLUSTER=3: three clustered relays, the stream pushed to the first, the URL on the last)
demo: deps build
	CLUSTER="$(CLUSTER)" ./scripts/demo.sh

## bench: the figures docs/ARCHITECTURE.md#targets names, measured in one run
bench: deps build
	go test -run '^$$' -bench . -benchmem ./hub/ ./ts/ ./agg/ ./crossbar/ ./rwc/
	go run ./cmd/vwbench all

## lint: gofmt, go vet, and a go.mod that go mod tidy would leave alone
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	@cp go.mod /tmp/vw-go.mod.bak; cp go.sum /tmp/vw-go.sum.bak; go mod tidy; \
	  if ! diff -q go.mod /tmp/vw-go.mod.bak >/dev/null || ! diff -q go.sum /tmp/vw-go.sum.bak >/dev/null; then \
	    cp /tmp/vw-go.mod.bak go.mod; cp /tmp/vw-go.sum.bak go.sum; echo "go mod tidy would change go.mod/go.sum"; exit 1; fi

## fuzz: run every fuzz target briefly (FUZZTIME: 10000x inputs each by default, or a duration) on top of its committed corpus
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

## deps: install the tools the tests and the demo need, if missing
deps: tools js

tools:
	./scripts/install-tools.sh

## js: the player libraries, jsmpeg and mpegts.js, from npm (package-lock.json pins them), copied into the embedded assets
js: $(ASSET) $(MSEASSET)

$(ASSET) $(MSEASSET) &: package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --no-audit --no-fund --loglevel=error && cp $(JSMPEG) $(ASSET) && cp $(MPEGTS) $(MSEASSET); \
	else echo "npm not found: building without the player libraries (the player pages will say so)"; fi

clean:
	rm -rf bin dist node_modules $(ASSET) $(MSEASSET)
