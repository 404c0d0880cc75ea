#!/usr/bin/env bash
# `make bench`: Transfer Studio's training engine against the seed recipe's PyTorch loop, on this
# machine and the same images, then classify latency over HTTP and the page's wasm size.
#
#   scripts/bench.sh            (make bench runs it after setup-test and build, with scripts/env.sh sourced)
#
# Steps: build the `bench` example; write a synthetic CIFAR-shaped dataset (PNG class folders) to
# target/bench; run `bench run`, which starts scripts/bench_pytorch.py as a worker, measures both sides
# in interleaved rounds and prints the table; then `bench classify` (its own process) and `bench interference`.
# Sizes and batch can be changed with BENCH_TRAIN, BENCH_TEST, BENCH_BATCH and BENCH_REQUESTS. Both sides use as many threads as the machine has CPUs; a busy machine slows both,
# so the load average is printed with the figures.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=env.sh
source scripts/env.sh

TRAIN=${BENCH_TRAIN:-2560}
TEST=${BENCH_TEST:-512}
BATCH=${BENCH_BATCH:-64}
REQUESTS=${BENCH_REQUESTS:-50}
DIR="$ROOT/target/bench"
BENCH="$ROOT/target/release/examples/bench"

say() { printf '\033[1;34m[bench]\033[0m %s\n' "$*" >&2; }

say "building the bench example"
cargo build --release --quiet --example bench -p transfer-studio

mkdir -p "$DIR"
"$BENCH" data "$DIR" --train "$TRAIN" --test "$TEST"

WASM_ARGS=()
shopt -s nullglob
# The sizes a browser downloads: the .gz and .br copies `make build` writes beside the wasm. The first wasm
# (what the page starts with), then the parts it fetches later (scripts/split-page.sh), together.
WASM_FILES=(dist/frontend-*_bg.wasm)
PART_FILES=()
for file in dist/*.wasm; do [[ $file == "${WASM_FILES[0]:-}" ]] || PART_FILES+=("$file"); done
if (( ${#WASM_FILES[@]} > 0 )) && [[ -f "${WASM_FILES[0]}.br" && -f "${WASM_FILES[0]}.gz" ]]; then
    WASM_GZIP=$(cat "${WASM_FILES[@]/%/.gz}" | wc -c)
    WASM_BROTLI=$(cat "${WASM_FILES[@]/%/.br}" | wc -c)
    WASM_RAW=$(cat "${WASM_FILES[@]}" | wc -c)
    WASM_ARGS=(--wasm-gzip-bytes "$WASM_GZIP" --wasm-brotli-bytes "$WASM_BROTLI" --wasm-raw-bytes "$WASM_RAW")
    if (( ${#PART_FILES[@]} > 0 )); then
        WASM_ARGS+=(--wasm-parts "${#PART_FILES[@]}" --wasm-parts-gzip-bytes "$(cat "${PART_FILES[@]/%/.gz}" | wc -c)"
            --wasm-parts-brotli-bytes "$(cat "${PART_FILES[@]/%/.br}" | wc -c)")
    fi
fi

say "Transfer Studio against the seed recipe's PyTorch loop (interleaved), then the server"
"$BENCH" run "$DIR" --python "$ROOT/.venv/bin/python" --script scripts/bench_pytorch.py \
    --batch "$BATCH" "${WASM_ARGS[@]}"

# Its own process: `bench run` trains on its main thread, and that thread's OpenMP team would stay beside the
# server's (see backend/examples/bench.rs).
say "Classification over HTTP against PyTorch's bare forward (3 alternating rounds per row)"
"$BENCH" classify "$DIR" --python "$ROOT/.venv/bin/python" --script scripts/bench_pytorch.py --requests "$REQUESTS"

say "Time to result: transfer-studio train against the seed recipe, whole processes, alternating"
"$BENCH" result "$DIR" --python "$ROOT/.venv/bin/python" --script scripts/bench_pytorch.py

say "Training through the studio before and after classify requests (OpenMP teams)"
"$BENCH" interference "$DIR"

say "The health check's duplicate search on 60,000 images of 32 px (issue 30)"
"$BENCH" duplicates --count 60000 --side 32
