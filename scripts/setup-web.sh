#!/usr/bin/env bash
# What the page's build and browser tests need, on top of scripts/setup.sh:
# trunk 0.21, wasm-bindgen-cli at Cargo.lock's version, wasm-opt at Trunk.toml's
# version (scripts/setup-wasm-opt.sh), playwright-core in tests/e2e, the system chromium. Idempotent; quiet when everything is there.
# Normally scripts/setup.sh already provides all of it; this double-checks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export PATH="$HOME/.cargo/bin:$PATH"
say() { echo "setup-web: $*" >&2; }
TOOL_CARGO="$HOME/.cargo/bin/cargo"; [[ -x "$TOOL_CARGO" ]] || TOOL_CARGO=cargo
quietly() { local log; log="$(mktemp)"; if "$@" >"$log" 2>&1; then rm -f "$log"; else tail -n 30 "$log" >&2; say "failed: $*"; return 1; fi; }

case "$(trunk --version 2>/dev/null | awk '{print $2}')" in
  0.21.*) ;;
  *) say "cargo install trunk --version ~0.21 --locked (a few minutes)"; quietly "$TOOL_CARGO" install trunk --version '~0.21' --locked ;;
esac
WB_LOCK="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' "$ROOT/Cargo.lock")"
if [[ -n "$WB_LOCK" && "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_LOCK" ]]; then
  say "cargo install wasm-bindgen-cli --version =$WB_LOCK"
  quietly "$TOOL_CARGO" install wasm-bindgen-cli --version "=$WB_LOCK" --force
fi
if [[ ! -d "$ROOT/tests/e2e/node_modules/playwright-core" ]]; then
  say "npm install (tests/e2e)"
  (cd "$ROOT/tests/e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 quietly npm install --no-audit --no-fund)
fi
"$ROOT/scripts/setup-wasm-opt.sh" >/dev/null
command -v chromium >/dev/null 2>&1 || say "WARNING: no chromium on PATH (apt-get install chromium) - the browser tests need it"
