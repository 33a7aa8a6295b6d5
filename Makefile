# redis-ha-agent — `make help` lists the targets.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
LDFLAGS := -s -w -X github.com/redis-ha-agent/redis-ha-agent/agent.Version=$(VERSION)
BIN     := bin/redis-ha-agent
GOFILES := $(shell git ls-files '*.go' 2>/dev/null)

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps: ## install what builds and tests need (Debian's redis, Go modules)
	@if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then \
		echo "installing redis-server redis-sentinel redis-tools"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			redis-server redis-sentinel redis-tools >/dev/null; \
	fi
	@go mod download

build: ## static binary in bin/
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/redis-ha-agent

lint: ## gofmt, go vet
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...

test: ## unit tests only (fast, no real redis)
	go test -race -short ./...

integration: deps build ## every Go test, with real redis-server and sentinel on loopback
	go test -race -count=1 -timeout 15m ./...

check: deps lint integration ## everything CI runs
	@echo "make check: all green"

demo: deps build ## three agents on loopback: status, kill the master's redis, watch the failover (KEEP=1 keeps them)
	KEEP=$(KEEP) test/demo/demo.sh $(BIN)

clean: ## remove build outputs
	rm -rf bin dist

.PHONY: help deps build lint test integration check demo clean
