#!/usr/bin/env bash
# Installs everything Transfer Studio needs to build, run and test, idempotently: a second run
# checks each piece in well under a second and installs nothing.
#
#   scripts/setup.sh          what `make run` needs: libtorch (torch wheel in .venv), the wasm target,
#                             trunk, wasm-bindgen-cli, wasm-split-cli, wasm-opt
#   scripts/setup.sh --test   also what the tests need: torchvision in .venv, Chromium and chromedriver,
#                             axe-core (npm) in .tools
#
# Versions are pinned where the stack demands it; see docs in ../shared/docs/ENVIRONMENT.md of the
# development machines and the README's "Set-up" section.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

TORCH_VERSION=2.13.0
TORCHVISION_VERSION=0.28.0
SAFETENSORS_VERSION=0.8.0
ONNXRUNTIME_VERSION=1.32.0
ONNX_VERSION=1.23.2
TRUNK_VERSION=0.21.14
WASM_SPLIT_VERSION=0.2.4
BINARYEN_VERSION=132.0.0
AXE_VERSION=4.14.1
WITH_TEST_TOOLS=0
[[ "${1:-}" == "--test" ]] && WITH_TEST_TOOLS=1

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# --- Rust target for the page -------------------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

# --- libtorch: the PyTorch wheel in a project venv ------------------------------------------------
VENV="$ROOT/.venv"
if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
fi
venv_has() { # package version
    "$VENV/bin/python" - "$1" "$2" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version(sys.argv[1]).split("+")[0] == sys.argv[2] else 1)
PY
}
if ! venv_has torch "$TORCH_VERSION"; then
    say "installing torch==$TORCH_VERSION into .venv (about a minute, 4.7 GB)"
    "$VENV/bin/pip" install --quiet "torch==$TORCH_VERSION"
fi
if [[ $WITH_TEST_TOOLS == 1 ]] && ! { venv_has torchvision "$TORCHVISION_VERSION" && venv_has safetensors "$SAFETENSORS_VERSION" \
    && venv_has onnxruntime "$ONNXRUNTIME_VERSION" && venv_has onnx "$ONNX_VERSION"; }; then
    say "installing torchvision, safetensors, onnx and onnxruntime into .venv (parity and export tests, benchmark)"
    "$VENV/bin/pip" install --quiet "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" \
        "safetensors==$SAFETENSORS_VERSION" "onnxruntime==$ONNXRUNTIME_VERSION" "onnx==$ONNX_VERSION"
fi

# --- trunk and wasm-bindgen-cli -----------------------------------------------------------------
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
if [[ "$("$CARGO_BIN/trunk" --version 2>/dev/null || true)" != "trunk $TRUNK_VERSION" ]]; then
    say "installing trunk $TRUNK_VERSION (about 5 minutes on 2 cores, once)"
    # Without its default features (TLS for downloading tools and its update check: we build offline with
    # tools installed here) and unoptimised (it only drives cargo, wasm-bindgen and wasm-opt): at opt-level 0
    # it built in 4 min 54 s against 7 min 52 s at 1 (and 1 used 24 % less CPU than the default 3), one
    # after the other here on 2026-12-07, and built a byte-identical page.
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 cargo install trunk --version "$TRUNK_VERSION" --locked --no-default-features
fi
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
# The same package gives wasm-bindgen-test-runner, which runs the page's component tests in Chromium.
if [[ "$("$CARGO_BIN/wasm-bindgen" --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]] ||
    [[ "$("$CARGO_BIN/wasm-bindgen-test-runner" --version 2>/dev/null || true)" != "wasm-bindgen-test-runner $WASM_BINDGEN_VERSION" ]]; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION with its test runner (about 3 minutes, once)"
    # Not --locked: its lockfile pins a webpki-roots version the registry no longer has.
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
# wasm-split-cli cuts the page's wasm at its split points (scripts/split-page.sh, Trunk's post-build hook):
# the split tool cargo-leptos uses, as a library, here as its command.
if ! cargo install --list | grep -qx "wasm_split_cli_support v$WASM_SPLIT_VERSION:" || [[ ! -x "$CARGO_BIN/wasm-split-cli" ]]; then
    say "installing wasm-split-cli $WASM_SPLIT_VERSION (about a minute, once)"
    cargo install wasm_split_cli_support --version "$WASM_SPLIT_VERSION" --locked --features build-binary
fi
if ! grep -q "wasm_bindgen = \"$WASM_BINDGEN_VERSION\"" Trunk.toml; then
    echo "Trunk.toml's wasm_bindgen must equal Cargo.lock's wasm-bindgen ($WASM_BINDGEN_VERSION)" >&2
    exit 1
fi

# --- wasm-opt from npm's binaryen (Debian's 108 builds a wasm that crashes in the browser) -------
TOOLS="$ROOT/.tools"
if [[ "$("$TOOLS/node_modules/.bin/wasm-opt" --version 2>/dev/null || true)" != *"version ${BINARYEN_VERSION%%.*}"* ]]; then
    say "installing wasm-opt (npm binaryen@$BINARYEN_VERSION) into .tools"
    mkdir -p "$TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS" "binaryen@$BINARYEN_VERSION"
fi

# --- axe-core, the accessibility audit the browser tests inject into every page they look at ---------
if [[ $WITH_TEST_TOOLS == 1 ]] && [[ "$(node -p "require('$TOOLS/node_modules/axe-core/package.json').version" 2>/dev/null || true)" != "$AXE_VERSION" ]]; then
    say "installing axe-core@$AXE_VERSION into .tools (browser tests' accessibility audit)"
    mkdir -p "$TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS" "binaryen@$BINARYEN_VERSION" "axe-core@$AXE_VERSION"
fi

# --- Chromium and chromedriver for the browser tests ---------------------------------------------
if [[ $WITH_TEST_TOOLS == 1 ]] && { [[ ! -x /usr/bin/chromium ]] || [[ ! -x /usr/bin/chromedriver ]]; }; then
    say "installing Chromium and chromedriver (about a minute)"
    SUDO=""; [[ $(id -u) != 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# --- Slurm and munge for the Slurm executor's tests (each test starts a private two-node cluster) ------
# Debian's packages install without starting anything here (no systemd); the tests start the daemons.
if [[ $WITH_TEST_TOOLS == 1 ]] && ! { [[ -x /usr/sbin/slurmctld ]] && [[ -x /usr/sbin/slurmd ]] && [[ -x /usr/bin/sbatch ]] && [[ -x /usr/sbin/munged ]]; }; then
    say "installing Slurm and munge (about 20 seconds)"
    SUDO=""; [[ $(id -u) != 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

say "tools ready"
