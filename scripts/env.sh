# Sourced by the Makefile's recipes: points the build at the project's libtorch and tools.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LIBTORCH="$(ls -d "$ROOT"/.venv/lib/python3*/site-packages/torch | head -n 1)"
export PATH="$ROOT/.tools/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$ROOT/.venv/bin:$PATH"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
