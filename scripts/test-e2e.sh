#!/usr/bin/env bash
# End-to-end test of the page (issue 3), assuming scripts/setup.sh has run:
#  1. trunk release build with the sub-path /three-answers/ (as on GitHub Pages),
#  2. the native CLI's f32 greedy answers for the test GGUF (the reference),
#  3. scripts/devserver.py on a free 127.0.0.1 port: dist/ under /three-answers/
#     and the GGUF in the Hub layout under /hub/,
#  4. node --test tests/e2e in headless /usr/bin/chromium; screenshots in
#     target/screenshots/. The server is stopped on exit.
#   scripts/test-e2e.sh [--no-build]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
BUILD=1
for a in "$@"; do case "$a" in --no-build) BUILD=0 ;; *) echo "usage: $0 [--no-build]" >&2; exit 2 ;; esac; done
BASE=/three-answers/
MODEL="$("$ROOT/scripts/fetch-test-model.sh" | tail -n1)"
[[ -f "$MODEL" ]] || { echo "test-e2e: test model not found ($MODEL)" >&2; exit 1; }
SPEC="test/SmolLM2-135M-Instruct-GGUF/$(basename "$MODEL")"
CLI="${CARGO_TARGET_DIR:-$ROOT/target}/release/three-answers"
OUT="$ROOT/target/e2e"; mkdir -p "$OUT" "$ROOT/target/screenshots"

if [[ $BUILD == 1 ]]; then
  echo "test-e2e: trunk build --release --public-url $BASE" >&2
  TRUNK_QUIET=1 "$ROOT/scripts/build-web.sh" "$BASE"
fi
[[ -f "$ROOT/dist/index.html" ]] || { echo "test-e2e: no dist/index.html (build first)" >&2; exit 1; }

echo "test-e2e: native CLI reference (--precision f32 --json)" >&2
CLI_JSON="$OUT/cli-f32.json"
cargo build --release --quiet --bin three-answers
for precision in f32 stored; do
  json="$OUT/cli-$precision.json"
  if [[ ! -s "$json" || "$MODEL" -nt "$json" || "$CLI" -nt "$json" ]]; then
    "$CLI" --instruct "$MODEL" --base "$MODEL" --precision "$precision" --json >"$json.tmp"
    mv "$json.tmp" "$json"
  fi
done

python3 "$ROOT/scripts/devserver.py" --port 0 --dist "$ROOT/dist" --base "$BASE" --file "$SPEC=$MODEL" >"$OUT/devserver.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q '^devserver: http' "$OUT/devserver.log" && break; sleep 0.1; done
ORIGIN="$(sed -n 's|^devserver: \(http://[^ ]*\)/$|\1|p' "$OUT/devserver.log" | head -n1)"
[[ -n "$ORIGIN" ]] || { cat "$OUT/devserver.log" >&2; exit 1; }

export E2E_PAGE_URL="$ORIGIN$BASE" E2E_HUB="$ORIGIN/hub" E2E_MODEL_SPEC="$SPEC" E2E_CLI_JSON="$CLI_JSON"
export E2E_CLI_STORED_JSON="$OUT/cli-stored.json"
export E2E_SCREENSHOTS="$ROOT/target/screenshots"
echo "test-e2e: $E2E_PAGE_URL (hub $E2E_HUB)" >&2
cd "$ROOT/tests/e2e"
node --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs
