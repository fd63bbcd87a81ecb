#!/usr/bin/env bash
# wasm-opt for the release build: binaryen at Trunk.toml's version
# ([tools] wasm_opt = "version_N"), from the npm package `binaryen` (N.0.0:
# binaryen compiled to wasm, run by node; Debian's binaryen is too old for
# these modules). Installed once into $CACHE/binaryen-N; prints the folder to
# put first on PATH (scripts/build-web.sh does). Idempotent, quiet when present.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
CACHE="${THREE_ANSWERS_CACHE:-$HOME/.cache/three-answers}"
VERSION="$(sed -n 's/^wasm_opt *= *"version_\([0-9][0-9]*\)".*/\1/p' "$ROOT/Trunk.toml" | head -n1)"
[[ -n "$VERSION" ]] || { echo "setup-wasm-opt: no [tools] wasm_opt = \"version_N\" in Trunk.toml" >&2; exit 1; }
DIR="$CACHE/binaryen-$VERSION"
BIN="$DIR/node_modules/.bin"
have() { [[ "$("$BIN/wasm-opt" --version 2>/dev/null | awk '{print $3}')" == "$VERSION" ]]; }
if ! have; then
  command -v npm >/dev/null 2>&1 || { echo "setup-wasm-opt: npm not found (apt-get install nodejs npm)" >&2; exit 1; }
  echo "setup-wasm-opt: npm install binaryen@$VERSION.0.0 (wasm-opt) into $DIR" >&2
  mkdir -p "$DIR"
  log="$(mktemp "${TMPDIR:-/tmp}/setup-wasm-opt.XXXXXX")"
  if ! npm install --prefix "$DIR" --no-audit --no-fund --no-save "binaryen@$VERSION.0.0" >"$log" 2>&1; then
    tail -n 30 "$log" >&2; echo "setup-wasm-opt: npm install failed (log: $log)" >&2; exit 1
  fi
  rm -f "$log"
  have || { echo "setup-wasm-opt: $BIN/wasm-opt is not version $VERSION after install" >&2; exit 1; }
fi
echo "$BIN"
