# slipway: set-up and everyday commands. Every target installs what it needs when missing.
SHELL := /bin/bash
CARGO ?= cargo
SLIPWAY := target/release/slipway
DEMO_PORT ?= 5055

.PHONY: all deps build test lint demo demo-stop bench clean

all: build

deps:
	@bash scripts/ensure-deps.sh

build: deps
	$(CARGO) build --release

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings

## make test: lint, unit and integration tests
test: lint
	$(CARGO) test --workspace

## make demo: build the static fixture into a slug, start it, print its URL
demo: build
	@bash scripts/demo.sh $(DEMO_PORT)

demo-stop:
	@if [ -f .demo/pid ]; then kill "$$(cat .demo/pid)" 2>/dev/null; rm -f .demo/pid; echo "demo stopped"; fi

## make bench: speed and size, measured side by side (not part of make test)
bench: deps
	$(CARGO) bench --bench engine

clean:
	$(CARGO) clean
	rm -rf .bench .demo
