# Transfer Studio: `make run` sets up everything and starts the product; `make test` sets up everything
# and runs the whole test suite. Both install what they need themselves (scripts/setup.sh), idempotently.
SHELL := /bin/bash
ENV := source scripts/env.sh &&
# The test crate's examples are benchmarks: built at opt-level 3, not at the 0 its tests build at (Cargo.toml).
BENCH_BUILD := --release --config 'profile.release.package.transfer-studio-tests.opt-level=3'
# Arguments for `make run`, e.g. make run ARGS="--port 9000 --data-dir /srv/studio"
ARGS ?=

.PHONY: run test lint setup setup-test ui build bench bench-sweep bench-data bench-page bench-scheduling clean-data fuzz latency gpu-check gpu-dry-run

run: build
	$(ENV) ./target/release/transfer-studio serve --ui-dir dist $(ARGS)

test: setup-test build lint
	$(ENV) cargo test --release --workspace --exclude frontend --no-fail-fast
	$(ENV) cargo test --profile page-tests -p frontend --lib
	$(ENV) cargo test --profile page-tests -p frontend --target wasm32-unknown-unknown --test '*'

# Formatting and lints, as CI checks them: any warning fails. The page's crate is not a default member, so it
# is linted on its own, natively (its unit tests) and for the browser.
lint: setup
	$(ENV) cargo fmt --all --check
	$(ENV) cargo clippy --release --all-targets -- -D warnings
	$(ENV) cargo clippy --release -p frontend --all-targets -- -D warnings
	$(ENV) cargo clippy --release -p frontend --target wasm32-unknown-unknown --all-targets -- -D warnings

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

ui: setup
	$(ENV) trunk build --release --offline

# The server, then the page's brotli and gzip copies, which it serves to browsers that accept them.
build: ui
	$(ENV) cargo build --release -p transfer-studio
	$(ENV) ./target/release/transfer-studio precompress --ui-dir dist

bench: setup-test build
	$(ENV) scripts/bench.sh

bench-sweep: setup-test build
	$(ENV) scripts/bench-sweep.sh

# Datasets of any size: decoding per core against PIL + torchvision, time to the first batch with a cold and
# a warm decoded cache, streamed against resident training at 224 px, on 20,000 JPEGs (about 10-12 minutes).
bench-data: setup-test build
	$(ENV) scripts/bench-data.sh

# The page in headless Chromium, cold and warm, on loopback and at 10 Mbit/s with 40 ms: bytes on the wire,
# decoded bytes and the time to the first rendered run list (PAGE_LOAD_SAMPLES visits per case, 5 by default).
bench-page: setup-test build
	$(ENV) cargo run $(BENCH_BUILD) -p transfer-studio-tests --example page_load

# Scheduling overhead, local against a private two-node Slurm cluster: Start to running and to the first batch.
bench-scheduling: setup-test build
	$(ENV) cargo run $(BENCH_BUILD) -p transfer-studio-tests --example scheduling

# Benchmark: GET /api/health latency (p50/p99) while 8 clients list 500 runs and a run trains.
latency: setup
	$(ENV) cargo run $(BENCH_BUILD) -p transfer-studio-tests --example latency

# Every parser of outside bytes under 100,000 property-based fuzz cases each (make test runs 256).
fuzz: setup
	$(ENV) PROPTEST_CASES=100000 cargo test --release -p transfer-studio --lib fuzz_

# Builds here what the GPU machine needs (a second build against PyTorch 2.11 with tch 0.24, in
# target/gpu/ and .gpu/) and prints the one command to run there. See scripts/gpu-check.sh.
gpu-check: setup
	$(ENV) scripts/gpu-check.sh

# The GPU machine's command, here on the CPU on small sizes, against the same 2.11 build.
gpu-dry-run: gpu-check
	$(ENV) GPU_DRY_RUN=1 GPU_PYTHON=target/gpu/venv/bin/python scripts/gpu-run.sh
