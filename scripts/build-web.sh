#!/usr/bin/env bash
# Release build of the page + worker with Trunk into dist/, for a sub-path.
#   scripts/build-web.sh [/public-url/]     (default /three-answers/)
# Uses the wasm toolchain scripts/setup.sh chose ($HOME/.cache/three-answers/toolchain.env);
# without it, Debian's rustc-web with build-std. Never cleans target/ (keep it warm).
# Cargo profiles wasm-page / wasm-worker (Cargo.toml), then wasm-opt (index.html).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PUBLIC_URL="${1:-/three-answers/}"
ENV_FILE="${THREE_ANSWERS_CACHE:-$HOME/.cache/three-answers}/toolchain.env"
TRUNK="$(command -v trunk || echo "$HOME/.cargo/bin/trunk")"
export PATH="$HOME/.cargo/bin:$PATH"
if [[ -f "$ENV_FILE" ]]; then
  # shellcheck disable=SC1090
  source "$ENV_FILE"
else
  export PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort
fi
cd "$ROOT"
# wasm-opt at Trunk.toml's version (binaryen from npm; installed on first use), first on PATH.
WASM_OPT_BIN="$("$ROOT/scripts/setup-wasm-opt.sh")"
export PATH="$WASM_OPT_BIN:$PATH"
"$TRUNK" build --release --public-url "$PUBLIC_URL" ${TRUNK_QUIET:+--quiet}

# The page's wasm carries no engine, the worker's no Leptos. What guarantees
# it: the page calls no engine function (it uses only the engine's plain data
# types and constants), so LTO drops the rest. This checks the build: each
# crate leaves its source path in the panic messages of any code kept.
DIST="${TRUNK_DIST:-$ROOT/dist}"
if grep -a -q -E 'candle-core-|tokenizers-0|minijinja-2' "$DIST"/app-*_bg.wasm; then
  echo "build-web: the page's wasm carries engine code (candle, tokenizers or minijinja)" >&2; exit 1
fi
if grep -a -q -E 'leptos_dom-|reactive_graph-' "$DIST"/worker_bg.wasm; then
  echo "build-web: the worker's wasm carries Leptos" >&2; exit 1
fi
