# slipway: set-up and everyday commands. Every target installs what it needs when missing.
SHELL := /bin/bash
CARGO ?= cargo
SLIPWAY := target/release/slipway
DEMO_PORT ?= 8080
DEMO_SSH_PORT ?= 2222

.PHONY: all deps build engine stack-image test matrix lint demo demo-stop bench fuzz clean
MUSL_TARGET := x86_64-unknown-linux-musl
ENGINE := target/$(MUSL_TARGET)/release/slipway
MATRIX_REPORTS := target/matrix

all: build

deps:
	@bash scripts/ensure-deps.sh

build: deps
	$(CARGO) build --release

## the static engine that goes into the stack images
engine: deps
	rustup target add $(MUSL_TARGET) >/dev/null 2>&1 || true
	$(CARGO) build --release --target $(MUSL_TARGET)

## make stack-image: every stack's run and build images (cached: unchanged inputs rebuild nothing)
stack-image: build engine
	$(SLIPWAY) stack build --engine $(ENGINE)

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	bash buildpacks/lib/test-buildpack-lib.sh

## make test: lint, the stack images (cached), then unit, integration and Docker tests
test: lint stack-image
	@rc=0; $(CARGO) test --workspace --no-fail-fast || rc=1; \
	$(MAKE) --no-print-directory matrix || rc=1; exit $$rc

## make matrix: every first-party buildpack against its fixtures on every stack (the project's
## own regression suite); JUnit and Markdown reports per stack in target/matrix/
MATRIX_STACKS ?= trixie bookworm
matrix: stack-image
	@rc=0; for stack in $(MATRIX_STACKS); do \
	  $(SLIPWAY) --buildpacks-toml buildpacks.toml matrix --stack $$stack \
	    --junit $(MATRIX_REPORTS)/junit-$$stack.xml --markdown $(MATRIX_REPORTS)/report-$$stack.md || rc=1; \
	done; exit $$rc

## make demo: the stack images, then a real `git push` over a real sshd deploys a fixture; prints its URL
demo: stack-image
	@bash scripts/demo.sh $(DEMO_PORT) $(DEMO_SSH_PORT)

demo-stop:
	@bash scripts/demo-stop.sh $(DEMO_SSH_PORT)

## make bench: speed and size, measured side by side (not part of make test); BENCH=https runs
## only the HTTPS and reboot part, BENCH=services the backing services part, BENCH=swarm the
## swarm scheduler part
bench: deps
	BENCH=$(BENCH) $(CARGO) bench --bench engine

## make fuzz: every fuzz target in fuzz/ for FUZZ_SECONDS each (cargo-fuzz, nightly; not part of
## make test), from the seeds in fuzz/corpus/; the corpus grows in fuzz/target/corpus/, a crash
## fails it and leaves its input in fuzz/artifacts/
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := procfile release ssh_command domain slug_import slug_entries
# The slug targets make a temp dir for every input: on a tmpfs they run several times faster.
FUZZ_TMPDIR ?= $(firstword $(wildcard /dev/shm) $(TMPDIR) /tmp)
fuzz:
	@rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
	@cargo fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@rc=0; for t in $(FUZZ_TARGETS); do \
	  echo "-----> fuzz $$t ($(FUZZ_SECONDS)s)"; mkdir -p fuzz/target/corpus/$$t; \
	  TMPDIR=$(FUZZ_TMPDIR) cargo +nightly fuzz run $$t fuzz/target/corpus/$$t fuzz/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=30 || { rc=1; echo " !     fuzz $$t failed"; }; \
	done; exit $$rc

clean:
	$(CARGO) clean
	rm -rf .bench .demo fuzz/target
