# redis-ha-agent — `make help` lists the targets.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

# The package's version (packaging/version.sh; PKG_VERSION= overrides), which the
# binary carries too: `redis-ha-agent version` and `dpkg -l` / `rpm -q` name one build.
PKG_VERSION ?= $(shell packaging/version.sh 2>/dev/null)
VERSION     ?= $(or $(PKG_VERSION),0.0.0-dev)
LDFLAGS := -s -w -X github.com/redis-ha-agent/redis-ha-agent/agent.Version=$(VERSION)
BIN     := bin/redis-ha-agent
GOFILES := $(shell git ls-files '*.go' 2>/dev/null)

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps: ## install what builds and tests need (Debian's redis, HAProxy, Go modules)
	@if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then \
		echo "installing redis-server redis-sentinel redis-tools"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			redis-server redis-sentinel redis-tools >/dev/null; \
	fi
	@command -v rpm >/dev/null && command -v shellcheck >/dev/null && command -v promtool >/dev/null && \
		command -v lintian >/dev/null && command -v rpmlint >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		rpm shellcheck prometheus lintian rpmlint >/dev/null; }
	@command -v debootstrap >/dev/null && command -v systemd-nspawn >/dev/null && command -v nft >/dev/null && \
		command -v ip >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		debootstrap systemd-container nftables iproute2 >/dev/null; }
	@# HAProxy for the e2e test of clients behind it (run in the bench's client namespace only).
	@command -v haproxy >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		haproxy >/dev/null && { systemctl disable --now haproxy 2>/dev/null || true; }; }
	@go mod download

build: ## static binary in bin/
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/redis-ha-agent

# errorlint leaves out test/faultcheck until its one finding
# (integration_test.go:255, err == redis.Nil) is fixed there: it is being changed on main.

lint: ## gofmt, go vet, staticcheck, errorlint, deadcode (the linters are pinned Go tools in go.mod)
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	go tool staticcheck ./...
	go tool go-errorlint ./...
	@out=$$(go tool deadcode ./cmd/...); if [ -n "$$out" ]; then echo "deadcode: unreachable from main:"; echo "$$out"; exit 1; fi

test: ## unit tests only (fast, no real redis)
	go test -race -short ./...

integration: deps build ## every Go test, with real redis-server and sentinel on loopback
	go test -race -count=1 -timeout 15m ./...

check: deps lint integration e2e ## everything CI runs: lint, unit, loopback integration, box bench
	@echo "make check: all green"

demo: deps build ## three agents on loopback: status, kill the master's redis, watch the failover (KEEP=1 keeps them)
	KEEP=$(KEEP) test/demo/demo.sh $(BIN)

DIST        ?= dist
# nfpm.yaml's release: both packages are PKG_VERSION-1.
PKG_RELEASE := 1
MAINTAINER   = $(shell sed -n 's/^maintainer: //p' packaging/nfpm.yaml)

package: build ## .deb and .rpm in dist/ (version from git: packaging/version.sh; PKG_VERSION= overrides)
	@test -n "$(PKG_VERSION)" || { echo "package: no version from git: set PKG_VERSION" >&2; exit 1; }
	@mkdir -p $(DIST)
	@packaging/changelog.sh '$(PKG_VERSION)-$(PKG_RELEASE)' '$(MAINTAINER)' >bin/changelog.yml
	@go run ./cmd/redis-ha-docs bin/docs rootfs/etc/redis-ha/redis-ha.conf "$$(date -u -d @$$(git log -1 --format=%ct) +%Y-%m-%d)"
	@for p in deb rpm; do \
		PKG_VERSION='$(PKG_VERSION)' PKG_ARCH=$$(go env GOARCH) SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) \
			go tool nfpm pkg -f packaging/nfpm.yaml -p $$p -t $(DIST)/ || exit 1; \
	done
.PHONY: package

# The previous build for the upgrade tests: this tree under a lower package version and
# its own version string, so that the upgrade replaces the binary with a different one
# (`redis-ha-agent version` tells them apart). The build under test is rebuilt after it.
E2E_PREV  := $(DIST)/e2e-previous
E2E_FLAGS ?=
# The test binary's clock includes the wait for the box bench's lock (RHA_LOCK_WAIT):
# raise both together when another run holds the bench.
E2E_TIMEOUT ?= 40m

e2e: deps package ## end-to-end tests: the .deb on Debian boxes booting systemd (root; test/box, test/e2e)
	@$(MAKE) --no-print-directory package PKG_VERSION='$(PKG_VERSION)~e2e.prev' VERSION='$(VERSION)-e2e.prev' \
		DIST=$(E2E_PREV) >/dev/null
	@$(MAKE) --no-print-directory build >/dev/null
	RHA_E2E=1 \
	RHA_DEB=$(abspath $(DIST))/redis-ha-agent_$(PKG_VERSION)-$(PKG_RELEASE)_$$(go env GOARCH).deb \
	RHA_DEB_PREV=$(abspath $(E2E_PREV))/redis-ha-agent_$(PKG_VERSION)~e2e.prev-$(PKG_RELEASE)_$$(go env GOARCH).deb \
		go test -p 1 -count=1 -timeout $(E2E_TIMEOUT) $(E2E_FLAGS) ./test/box/ ./test/e2e/; \
	rc=$$?; go run ./test/box/cmd/sweep || rc=1; exit $$rc
.PHONY: e2e

bench: deps package ## the benchmark: fault table against the tutorial setup, footprint, 3/5/7 boxes (root; ~25 min)
	RHA_BENCH=1 RHA_LOCK_WAIT=30m RHA_BIN=$(abspath $(BIN)) \
	RHA_DEB=$(abspath $(DIST))/redis-ha-agent_$(PKG_VERSION)-$(PKG_RELEASE)_$$(go env GOARCH).deb \
		go test -v -count=1 -timeout 40m -run '^TestBench$$' ./test/bench/; \
	rc=$$?; go run ./test/box/cmd/sweep || rc=1; exit $$rc
.PHONY: bench

SOAK_DURATION ?= 20m
SOAK_FAULTS   ?=
SOAK_COUNT    ?= 0

soak: deps package ## random faults for SOAK_DURATION under the default client; fails on any violation (root; ~25 min)
	RHA_SOAK=1 RHA_LOCK_WAIT=30m RHA_SOAK_DURATION=$(SOAK_DURATION) RHA_SOAK_FAULTS='$(SOAK_FAULTS)' RHA_SOAK_COUNT=$(SOAK_COUNT) \
	RHA_DEB=$(abspath $(DIST))/redis-ha-agent_$(PKG_VERSION)-$(PKG_RELEASE)_$$(go env GOARCH).deb \
		go test -v -count=1 -timeout 120m -run '^TestSoak$$' ./test/bench/; \
	rc=$$?; go run ./test/box/cmd/sweep || rc=1; exit $$rc
.PHONY: soak

clean: ## remove build outputs
	rm -rf bin dist

.PHONY: help deps build lint test integration check demo clean
