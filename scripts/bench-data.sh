#!/usr/bin/env bash
# `make bench-data`: datasets of any size (issue 27, point 3), on 224x224 JPEGs in class folders, side by
# side on this machine: decoding per core (the decoded cache built on one thread against PIL + torchvision's
# loader on the same files), the time to a run's first batch with a cold and a warm decoded cache, and
# training at 224 px streamed from the cache against held in memory, with the compute ceiling.
#
#   scripts/bench-data.sh       (make bench-data runs it after setup-test and build, with scripts/env.sh sourced)
#
# The images (BENCH_DATA_TRAIN + BENCH_DATA_TEST, default 18,000 + 2,000) are written once to
# target/bench-data/data/jpegs and kept while the sizes stay the same; the decoded caches beside them are
# rebuilt by each run. BENCH_DATA_SUBSET files (2,000) go into the one-core decoding comparison;
# BENCH_DATA_ROUNDS (2) rounds of it and of the training comparison; each training window times
# BENCH_DATA_BATCHES (12) batches of BENCH_DATA_BATCH (32) images after one warm-up batch. libgomp keeps its
# own waiting policy, as in the product (BENCH_DATA_OMP_WAIT_POLICY=PASSIVE, say, sets OMP_WAIT_POLICY): see
# backend/examples/bench/data_scale.rs. About 10-12 minutes on 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=env.sh
source scripts/env.sh

DIR="$ROOT/target/bench-data"
BENCH="$ROOT/target/release/examples/bench"
say() { printf '\033[1;34m[bench-data]\033[0m %s\n' "$*" >&2; }

say "building the bench example"
cargo build --release --quiet --example bench -p transfer-studio
mkdir -p "$DIR"
"$BENCH" jpegs "$DIR" --train "${BENCH_DATA_TRAIN:-18000}" --test "${BENCH_DATA_TEST:-2000}"

POLICY=${BENCH_DATA_OMP_WAIT_POLICY:-default}
if [[ "$POLICY" == default ]]; then
    unset OMP_WAIT_POLICY
else
    export OMP_WAIT_POLICY="$POLICY"
fi
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
"$BENCH" data-scale "$DIR" --python "$ROOT/.venv/bin/python" --script scripts/bench_data_pytorch.py \
    --subset "${BENCH_DATA_SUBSET:-2000}" --rounds "${BENCH_DATA_ROUNDS:-2}" \
    --batches "${BENCH_DATA_BATCHES:-12}" --batch "${BENCH_DATA_BATCH:-32}"
