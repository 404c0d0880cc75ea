#!/usr/bin/env bash
# `make gpu-check`: builds here everything the GPU machine needs, then prints the one command to run there.
#
# The GPU machine has PyTorch 2.11.0+cu130 and no Rust; our libtorch (2.13) is 4.7 GB and cannot travel,
# and tch 0.26 does not compile against 2.11. So a second build of the same sources, with tch 0.24 (the
# release for PyTorch 2.11), is linked against the PyPI wheel torch==2.11.0+cu130 in its own folders
# (target/gpu/: venv, src, target), leaving the main build alone. Its binaries go to .gpu/ (ignored by
# git), which the command carries:
#   .gpu/transfer-studio   the studio (stripped)
#   .gpu/gpu-tests         tests/tests/gpu.rs, the GPU-gated tests
# The same script, scripts/gpu-run.sh, runs there at full size and here on the CPU as a dry run
# (`make gpu-dry-run`), against the 2.11 wheel's libraries.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
GPU="$ROOT/target/gpu"
TORCH_VERSION=2.11.0
TORCHVISION_VERSION=0.26.0
say() { printf '\033[1;34m[gpu-check]\033[0m %s\n' "$*" >&2; }

# 1. PyTorch 2.11: headers and libraries to link against, and the CPU dry run's Python side.
if ! "$GPU/venv/bin/python" -c "import torch, torchvision; assert torch.__version__.startswith('$TORCH_VERSION')" 2>/dev/null; then
    say "installing torch==$TORCH_VERSION and torchvision==$TORCHVISION_VERSION into target/gpu/venv (about 3 GB)"
    python3 -m venv "$GPU/venv"
    "$GPU/venv/bin/pip" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" numpy pillow
fi
LIBTORCH=$(ls -d "$GPU"/venv/lib/python3*/site-packages/torch | head -n 1)

# 2. The sources as they are now (tracked and new files), with tch 0.24.
say "copying the working tree to target/gpu/src with tch 0.24"
rm -rf "$GPU/src"
mkdir -p "$GPU/src"
git ls-files -co --exclude-standard | grep -v '^\(dist\|\.gpu\)/' | tar -cf - -T - | tar -xf - -C "$GPU/src"
# Fresh times: cargo compares modification times, and these copies replace the last build's.
find "$GPU/src" -type f -exec touch {} +
sed -i 's/^tch = "0.26"/tch = "0.24"/; s/^torch-sys = "0.26"/torch-sys = "0.24"/' "$GPU/src/Cargo.toml"
grep -q '^tch = "0.24"' "$GPU/src/Cargo.toml" || { say "Cargo.toml no longer names tch 0.26"; exit 1; }
(cd "$GPU/src" && cargo update --quiet -p tch@0.26.0 --precise 0.24.0)

# 3. Build the studio and the GPU tests against 2.11.
say "building against $LIBTORCH"
export LIBTORCH
unset VIRTUAL_ENV LIBTORCH_USE_PYTORCH
cd "$GPU/src"
cargo build --release --quiet -p transfer-studio --bin transfer-studio --target-dir "$GPU/target"
TESTS=$(cargo test --release --quiet -p transfer-studio-tests --test gpu --no-run --target-dir "$GPU/target" \
    --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu" and m.get("executable"):
        print(m["executable"])')
cd "$ROOT"
mkdir -p .gpu
strip -o .gpu/transfer-studio "$GPU/target/release/transfer-studio"
strip -o .gpu/gpu-tests "$TESTS"
say "built: $(du -ch .gpu/* | tail -n 1 | cut -f1) in .gpu/ ($(ls .gpu | tr '\n' ' '))"

cat <<MSG

On the GPU machine (device tool, one call, at most 8 minutes there; figures and logs land in \$OUT):
  command:   scripts/gpu-run.sh
  carry:     [".gpu"]
  timeout_s: 540
Here, the same script on the CPU and small sizes: make gpu-dry-run
MSG
