#!/usr/bin/env bash
# `make bench-sweep`: a grid sweep of 12 trials run to the end against the same grid with ASHA (its stopping
# and its promotion variant), on the same synthetic images, one trial at a time on this machine: wall time,
# epochs trained and the best trial's test accuracy of each, and the verdict on issue 26's target (ASHA
# within 0.5 points of the grid's best in at most 40 % of its epochs).
#
#   scripts/bench-sweep.sh      (BENCH_SWEEP_TRAIN, BENCH_SWEEP_TEST and BENCH_SWEEP_EPOCHS change the sizes)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=env.sh
source scripts/env.sh

DIR="$ROOT/target/bench-sweep"
say() { printf '\033[1;34m[bench-sweep]\033[0m %s\n' "$*" >&2; }

say "building the bench example"
cargo build --release --quiet --example bench -p transfer-studio
rm -rf "$DIR"
mkdir -p "$DIR"
BENCH="$ROOT/target/release/examples/bench"
"$BENCH" data "$DIR" --train "${BENCH_SWEEP_TRAIN:-1024}" --test "${BENCH_SWEEP_TEST:-256}"
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BENCH" sweep "$DIR" --epochs "${BENCH_SWEEP_EPOCHS:-9}"
