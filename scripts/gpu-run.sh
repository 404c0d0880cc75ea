#!/usr/bin/env bash
# The one command of `make gpu-check`, run ON the GPU machine (or here, on the CPU, as a dry run):
# proves and measures the CUDA path with the binaries `scripts/gpu-check.sh` built into .gpu/.
#
#   scripts/gpu-run.sh              on the GPU machine: everything at full size, figures and logs in $OUT
#   GPU_DRY_RUN=1 scripts/gpu-run.sh   here: the same steps on small sizes and the CPU (make gpu-dry-run)
#
# Steps, each logged to $OUT/gpu-check.log:
#   1. the GPU-gated tests (tests/tests/gpu.rs): CUDA vs CPU logits, u8 data + augmentation on the GPU,
#      bf16 autocast + channels-last + cuDNN benchmark learning, stop and exact resume on CUDA;
#   2. the studio serves: /api/health names the device, a short run trains, an image is classified;
#   3. the benchmark, side by side in this one command: the studio's epochs (50,000 + 10,000 synthetic
#      32x32 images, batch 512) in fp32 and in bf16 + channels-last, 224 px fine-tuning (batch 256),
#      classify latency for one image, peak GPU memory; then the seed recipe's PyTorch loop on the same
#      images and GPU with the machine's own PyTorch (scripts/bench_pytorch.py), and PyTorch's training step
#      alone on one batch already on the GPU (its compute ceiling, no data loading);
#   4. the table, printed last and saved as $OUT/gpu-figures.md (+ $OUT/gpu-figures.json).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DRY=${GPU_DRY_RUN:-0}
OUT=${OUT:-$ROOT/target/gpu/out}
mkdir -p "$OUT"
LOG="$OUT/gpu-check.log"
: >"$LOG"
BUNDLE=${GPU_BUNDLE:-$ROOT/.gpu}
PYTHON=${GPU_PYTHON:-python3}
WORK=$(mktemp -d)
STARTED=$SECONDS

say() { printf '[gpu-check %4ds] %s\n' $((SECONDS - STARTED)) "$*" | tee -a "$LOG" >&2; }
fail() { say "FAILED: $*"; FAILURES+=("$*"); }
FAILURES=()

if [[ $DRY == 1 ]]; then
    TRAIN=${GPU_TRAIN:-600} TEST=${GPU_TEST:-200} TRAIN224=${GPU_TRAIN224:-64} TEST224=${GPU_TEST224:-16}
    EPOCHS=1 SEED_EPOCHS=1 REQUESTS=5
else
    TRAIN=${GPU_TRAIN:-50000} TEST=${GPU_TEST:-10000} TRAIN224=${GPU_TRAIN224:-10000} TEST224=${GPU_TEST224:-1000}
    EPOCHS=3 SEED_EPOCHS=2 REQUESTS=50
fi

# The machine's own libtorch (PyTorch 2.11): the binaries were linked against the same version.
TORCH_DIR=$("$PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))') || { say "no PyTorch for $PYTHON"; exit 1; }
export LD_LIBRARY_PATH="$TORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__, "cuda", torch.cuda.is_available())') at $TORCH_DIR"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG"

# 1. The GPU-gated tests.
say "1. GPU-gated tests (tests/tests/gpu.rs)"
if "$BUNDLE/gpu-tests" --test-threads 1 --nocapture >"$WORK/tests.log" 2>&1; then
    TESTS="$(grep -o '[0-9]* passed; [0-9]* failed' "$WORK/tests.log"), of which $(grep -c 'skipped: no CUDA' "$WORK/tests.log") skipped (no GPU)"
else
    TESTS="FAILED (see gpu-check.log)"
    fail "GPU-gated tests"
fi
cat "$WORK/tests.log" >>"$LOG"
say "   $TESTS"

# 2 and 3 need a dataset: noisy 32x32 PNGs in ten class folders, written once for both sides.
say "writing $TRAIN + $TEST synthetic 32x32 images (and $TRAIN224 + $TEST224 for 224 px)"
"$PYTHON" scripts/gpu_data.py "$WORK/data/synthetic" "$TRAIN" "$TEST" >>"$LOG" 2>&1 &&
    "$PYTHON" scripts/gpu_data.py "$WORK/data/synthetic224" "$TRAIN224" "$TEST224" >>"$LOG" 2>&1 ||
    { fail "writing the dataset"; exit 1; }

# One studio server per measured phase, so its peak GPU memory is that phase's alone.
SERVER_PID=
start_server() {
    local port
    port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$BUNDLE/transfer-studio" serve --port "$port" --data-dir "$WORK/data" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    URL="http://127.0.0.1:$port"
    for _ in $(seq 100); do curl -sf "$URL/api/health" >/dev/null && return 0; sleep 0.2; done
    fail "the studio did not start (server.log)"
    return 1
}
stop_server() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; SERVER_PID=; }
trap 'stop_server; kill $POLLER 2>/dev/null; cp "$WORK/server.log" "$OUT/" 2>/dev/null; rm -rf "$WORK"' EXIT

# Peak GPU memory of one process, polled from nvidia-smi every 0.2 s into a file (MiB).
POLLER=
poll_memory() {
    local pid=$1 file=$2
    echo 0 >"$file"
    command -v nvidia-smi >/dev/null || return 0
    ( while kill -0 "$pid" 2>/dev/null; do
        used=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null |
            awk -F', ' -v pid="$pid" '$1 == pid {print $2}')
        [[ -n $used && $used -gt $(cat "$file") ]] && echo "$used" >"$file"
        sleep 0.2
    done ) &
    POLLER=$!
}

# Creates a run from a JSON config, waits for its end, and appends its summary to $WORK/runs.jsonl.
train_run() {
    local label=$1 config=$2 train=$3 test=$4 id status
    id=$(curl -sf -H 'Content-Type: application/json' -d "$config" "$URL/api/runs" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])') ||
        { fail "$label: the run was refused: $(curl -s -H 'Content-Type: application/json' -d "$config" "$URL/api/runs")"; return 1; }
    for _ in $(seq 1800); do
        status=$(curl -sf "$URL/api/runs/$id" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["status"])')
        [[ $status == completed || $status == failed || $status == stopped ]] && break
        sleep 0.25
    done
    curl -sf "$URL/api/runs/$id" | "$PYTHON" scripts/gpu_figures.py run "$label" "$(cat "$WORK/peak")" "$train" "$test" >>"$WORK/runs.jsonl" ||
        fail "$label: run $id ended $status: $(curl -sf "$URL/api/runs/$id" | head -c 400)"
}

run_phase() {
    local label=$1 config=$2 train=$3 test=$4
    say "   $label"
    start_server || return 1
    poll_memory "$SERVER_PID" "$WORK/peak"
    train_run "$label" "$config" "$train" "$test"
    kill "$POLLER" 2>/dev/null; wait "$POLLER" 2>/dev/null
}

# 2. The studio serves on the GPU: health, a short run, a classification.
say "2. the studio serves, trains and classifies"
start_server || exit 1
curl -sf "$URL/api/health" | tee -a "$LOG" >"$WORK/health.json"
echo >>"$LOG"
DEVICE=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["device"])' "$WORK/health.json")
say "   /api/health device: $DEVICE"
[[ $DRY == 1 || $DEVICE == cuda:0 ]] || fail "/api/health says $DEVICE, not cuda:0"
echo 0 >"$WORK/peak"
train_run "short run" '{"dataset": "synthetic224", "epochs": 1, "batch_size": 64}' "$TRAIN224" "$TEST224"
IMAGE=$(find "$WORK/data/synthetic/test" -name '*.png' | head -n 1)
RUN_ID=$(curl -sf "$URL/api/runs" | "$PYTHON" -c 'import json,sys; print(max(r["id"] for r in json.load(sys.stdin)))')
curl -sf -H 'Content-Type: image/png' --data-binary "@$IMAGE" "$URL/api/classify?run=$RUN_ID" | tee -a "$LOG" >"$WORK/classified.json" ||
    fail "classify"
echo >>"$LOG"
# Classify latency for one image: the first request, then $REQUESTS timed ones.
for _ in $(seq $((REQUESTS + 1))); do
    curl -sf -o /dev/null -w '%{time_total}\n' -H 'Content-Type: image/png' --data-binary "@$IMAGE" \
        "$URL/api/classify?run=$RUN_ID"
done >"$WORK/latency.txt"
stop_server

# 3. The benchmark.
say "3. benchmark: the studio on $TRAIN + $TEST images, $EPOCHS epochs a phase"
FAST='"mixed_precision": true, "channels_last": true, "cudnn_benchmark": true'
run_phase "32 px fp32, batch 512" "{\"dataset\": \"synthetic\", \"epochs\": $EPOCHS, \"batch_size\": 512}" "$TRAIN" "$TEST"
run_phase "32 px bf16 + channels-last, batch 512" "{\"dataset\": \"synthetic\", \"epochs\": $EPOCHS, \"batch_size\": 512, $FAST}" "$TRAIN" "$TEST"
run_phase "32 px bf16, batch 512" "{\"dataset\": \"synthetic\", \"epochs\": $EPOCHS, \"batch_size\": 512, \"mixed_precision\": true, \"cudnn_benchmark\": true}" "$TRAIN" "$TEST"
run_phase "224 px fp32, batch 256" "{\"dataset\": \"synthetic224\", \"input_size\": 224, \"epochs\": $EPOCHS, \"batch_size\": 256}" "$TRAIN224" "$TEST224"
run_phase "224 px bf16 + channels-last, batch 256" "{\"dataset\": \"synthetic224\", \"input_size\": 224, \"epochs\": $EPOCHS, \"batch_size\": 256, $FAST}" "$TRAIN224" "$TEST224"
stop_server

say "   the seed recipe's PyTorch loop on the same images and GPU ($SEED_EPOCHS epochs, batch 512)"
mkdir -p "$WORK/seed/data" && ln -s "$WORK/data/synthetic" "$WORK/seed/data/synthetic"
{ for _ in $(seq "$SEED_EPOCHS"); do echo train; done; echo ceiling; echo ceiling; } | "$PYTHON" scripts/bench_pytorch.py "$WORK/seed" --batch 512 \
    >"$WORK/seed.jsonl" 2>>"$LOG" &
SEED_PID=$!
poll_memory "$SEED_PID" "$WORK/seed-peak"
wait "$SEED_PID" || fail "the seed loop (gpu-check.log)"
wait "$POLLER" 2>/dev/null

say "   libtorch warnings in the studio's log: $(grep -c 'Warning:' "$WORK/server.log")"
say "4. figures"
"$PYTHON" scripts/gpu_figures.py table "$WORK/runs.jsonl" "$WORK/seed.jsonl" "$(cat "$WORK/seed-peak")" \
    "$WORK/latency.txt" "$TRAIN" "$TEST" "$TESTS" "$DEVICE" "$OUT" | tee -a "$LOG"
if ((${#FAILURES[@]})); then
    say "failures: ${FAILURES[*]}"
    exit 1
fi
say "done in $((SECONDS - STARTED)) s"
