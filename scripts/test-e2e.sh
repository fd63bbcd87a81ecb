#!/usr/bin/env bash
# End-to-end test of the page (issue 3), assuming scripts/setup.sh has run:
#  1. trunk release build with the sub-path /three-answers/ (as on GitHub Pages),
#  2. the native CLI's f32 greedy answers for the test GGUF (the reference),
#  3. scripts/devserver.py on a free 127.0.0.1 port: dist/ under /three-answers/
#     and the GGUF in the Hub layout under /hub/,
#     plus a copy of dist/ with a mirror folder (scripts/make-mirror.sh) on a second port,
#  4. node --test tests/e2e in headless /usr/bin/chromium; screenshots in
#     target/screenshots/. The server is stopped on exit.
#   scripts/test-e2e.sh [--no-build]
# E2E_ISOLATION=off: the servers send no COOP/COEP and the pages ask the
# service worker for none (?isolation=off): the single-thread engine's pass
# (scripts/test.sh runs delivery.test.mjs so). Default: the servers send them,
# so pages are cross-origin isolated from the first load and run the threaded
# engine (threads.test.mjs covers a host without headers, as GitHub Pages).
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
for precision in f32 stored auto; do
  json="$OUT/cli-$precision.json"
  if [[ ! -s "$json" || "$MODEL" -nt "$json" || "$CLI" -nt "$json" ]]; then
    "$CLI" --instruct "$MODEL" --base "$MODEL" --precision "$precision" --json >"$json.tmp"
    mv "$json.tmp" "$json"
  fi
done

# A float32 checkpoint folder made from the GGUF (the local-checkpoint test picks its files).
CKPT="$OUT/checkpoint"
if [[ ! -s "$CKPT/model.safetensors" || "$MODEL" -nt "$CKPT/model.safetensors" ]]; then
  echo "test-e2e: writing a float32 checkpoint into $CKPT" >&2
  rm -rf "$CKPT" "$CKPT.tmp"
  "$CLI" --instruct "$MODEL" --export-checkpoint "$CKPT.tmp" >&2
  mv "$CKPT.tmp" "$CKPT"
fi

# A bf16 checkpoint (the official checkpoints' form) and the CLI's answers on it
# at the default precision (the page's bf16 test compares with them).
CKPT_BF16="$OUT/checkpoint-bf16"
if [[ ! -s "$CKPT_BF16/model.safetensors" || "$MODEL" -nt "$CKPT_BF16/model.safetensors" ]]; then
  echo "test-e2e: writing a bf16 checkpoint into $CKPT_BF16" >&2
  rm -rf "$CKPT_BF16" "$CKPT_BF16.tmp"
  "$CLI" --instruct "$MODEL" --export-checkpoint "$CKPT_BF16.tmp" --export-dtype bf16 >&2
  mv "$CKPT_BF16.tmp" "$CKPT_BF16"
fi
if [[ ! -s "$OUT/cli-bf16.json" || "$CKPT_BF16/model.safetensors" -nt "$OUT/cli-bf16.json" || "$CLI" -nt "$OUT/cli-bf16.json" ]]; then
  "$CLI" --instruct "$CKPT_BF16" --base "$CKPT_BF16" --json >"$OUT/cli-bf16.json.tmp"
  mv "$OUT/cli-bf16.json.tmp" "$OUT/cli-bf16.json"
fi

# The same GGUF under two more repo names: the tests cut one's downloads and
# give the other a wrong sha256 (see /__config in scripts/devserver.py). The
# checkpoint as a Hub repo, without its optional generation_config.json.
NAME="$(basename "$MODEL")"
# The bf16 checkpoint with a chat template that never finishes rendering (one
# instruction walking 4e9 items: fuel does not see it; not a constant, which
# minijinja would fold while compiling), for watchdog.test.mjs.
mkdir -p "$OUT/hanging-template"
python3 - "$CKPT_BF16/tokenizer_config.json" "$OUT/hanging-template/tokenizer_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["chat_template"] = "{% if messages | length + 1 in [0] * 4000000000 %}{% endif %}" + c["chat_template"]
json.dump(c, open(sys.argv[2], "w"))
PY
# Files too big to be what they claim (sparse: no disk used), for links.test.mjs.
truncate -s 100M "$OUT/huge-config.json"
truncate -s 3500M "$OUT/huge.gguf"
export E2E_ISOLATION="${E2E_ISOLATION:-on}"
ISOLATION=(--isolation); [[ "$E2E_ISOLATION" == off ]] && ISOLATION=()
python3 "$ROOT/scripts/devserver.py" --port 0 --dist "$ROOT/dist" --base "$BASE" "${ISOLATION[@]}" --file "$SPEC=$MODEL" \
  --file "test/Huge-Config/config.json=$OUT/huge-config.json" --file "test/Huge-GGUF/huge.gguf=$OUT/huge.gguf" \
  --file "test/Cut-GGUF/$NAME=$MODEL" --file "test/Corrupt-GGUF/$NAME=$MODEL" \
  --file "test/SmolLM2-135M-f32/config.json=$CKPT/config.json" --file "test/SmolLM2-135M-f32/tokenizer.json=$CKPT/tokenizer.json" \
  --file "test/SmolLM2-135M-f32/tokenizer_config.json=$CKPT/tokenizer_config.json" \
  --file "test/SmolLM2-135M-f32/model.safetensors=$CKPT/model.safetensors" \
  --file "test/SmolLM2-135M-bf16/config.json=$CKPT_BF16/config.json" --file "test/SmolLM2-135M-bf16/tokenizer.json=$CKPT_BF16/tokenizer.json" \
  --file "test/SmolLM2-135M-bf16/tokenizer_config.json=$CKPT_BF16/tokenizer_config.json" \
  --file "test/SmolLM2-135M-bf16/model.safetensors=$CKPT_BF16/model.safetensors" \
  --file "test/Hanging-Template/config.json=$CKPT_BF16/config.json" --file "test/Hanging-Template/tokenizer.json=$CKPT_BF16/tokenizer.json" \
  --file "test/Hanging-Template/tokenizer_config.json=$OUT/hanging-template/tokenizer_config.json" \
  --file "test/Hanging-Template/model.safetensors=$CKPT_BF16/model.safetensors" >"$OUT/devserver.log" 2>&1 &
SERVER=$!
# A deployed copy of the page with a mirror folder next to it (?hub=./models).
SITE="$OUT/site"
rm -rf "$SITE"; cp -r "$ROOT/dist" "$SITE"
MAKE_MIRROR_LINK=1 "$ROOT/scripts/make-mirror.sh" "$SITE/models" local/SmolLM2-135M-Instruct-GGUF "$MODEL" >&2
python3 "$ROOT/scripts/devserver.py" --port 0 --dist "$SITE" --base "$BASE" "${ISOLATION[@]}" >"$OUT/devserver-mirror.log" 2>&1 &
MIRROR=$!
# An emulation of huggingface.co on two more loopback origins (Hub on
# localhost, CDN on 127.0.0.2) with the official repos' layout, written from
# the bf16 checkpoint, and the GGUF as an LFS file (hub.test.mjs).
HUB_REPOS="$OUT/hub-repos"
# The 360M siblings (the model picker loads them) hold the test weights too;
# the 1.7B instruct repo has SmolLM2-1.7B's config.json and a sparse
# model.safetensors of its bf16 size (3.4 GB on paper, nothing on disk): the
# picker reads the listing and config.json and must refuse it at bf16.
SIBLINGS=(HuggingFaceTB/SmolLM2-135M HuggingFaceTB/SmolLM2-135M-Instruct HuggingFaceTB/SmolLM2-360M HuggingFaceTB/SmolLM2-360M-Instruct HuggingFaceTB/SmolLM2-1.7B-Instruct)
for repo in "${SIBLINGS[@]}"; do
  python3 "$ROOT/scripts/make-hub-repo.py" "$CKPT_BF16" "$HUB_REPOS/$repo" >&2
done
python3 "$ROOT/scripts/make-hub-repo.py" --shape-1.7b "$HUB_REPOS/HuggingFaceTB/SmolLM2-1.7B-Instruct" >&2
mkdir -p "$HUB_REPOS/test/SmolLM2-135M-Instruct-GGUF"
ln -f "$MODEL" "$HUB_REPOS/test/SmolLM2-135M-Instruct-GGUF/$NAME" 2>/dev/null || cp "$MODEL" "$HUB_REPOS/test/SmolLM2-135M-Instruct-GGUF/$NAME"
python3 "$ROOT/scripts/hub-emulator.py" $(for r in "${SIBLINGS[@]}"; do printf -- '--repo %s=%s ' "$r" "$HUB_REPOS/$r"; done) \
  --repo "test/SmolLM2-135M-Instruct-GGUF=$HUB_REPOS/test/SmolLM2-135M-Instruct-GGUF" >"$OUT/hub-emulator.log" 2>&1 &
EMULATOR=$!
trap 'kill $SERVER $MIRROR $EMULATOR 2>/dev/null || true' EXIT
origin_of() {
  for _ in $(seq 50); do grep -q '^devserver: http' "$1" && break; sleep 0.1; done
  sed -n 's|^devserver: \(http://[^ ]*\)/$|\1|p' "$1" | head -n1
}
ORIGIN="$(origin_of "$OUT/devserver.log")"
MIRROR_ORIGIN="$(origin_of "$OUT/devserver-mirror.log")"
[[ -n "$ORIGIN" && -n "$MIRROR_ORIGIN" ]] || { cat "$OUT"/devserver*.log >&2; exit 1; }
# It hashes every file first (the sparse 3.4 GB one takes ~10 s).
for _ in $(seq 1200); do grep -q '^hub-emulator: hub=' "$OUT/hub-emulator.log" && break; sleep 0.1; done
REAL_HUB="$(sed -n 's|^hub-emulator: hub=\([^ ]*\) cdn=.*$|\1|p' "$OUT/hub-emulator.log" | head -n1)"
[[ -n "$REAL_HUB" ]] || { cat "$OUT/hub-emulator.log" >&2; exit 1; }
export E2E_REAL_HUB="$REAL_HUB" E2E_GGUF_NAME="$NAME"

export E2E_PAGE_URL="$ORIGIN$BASE" E2E_HUB="$ORIGIN/hub" E2E_MODEL_SPEC="$SPEC" E2E_CLI_JSON="$CLI_JSON"
export E2E_CLI_STORED_JSON="$OUT/cli-stored.json" E2E_CLI_BF16_JSON="$OUT/cli-bf16.json" E2E_CLI_AUTO_JSON="$OUT/cli-auto.json"
export E2E_SCREENSHOTS="$ROOT/target/screenshots"
# Every test runs: one that needs a variable this script did not set fails.
export E2E_STRICT=1
export E2E_ORIGIN="$ORIGIN" E2E_MIRROR_PAGE_URL="$MIRROR_ORIGIN$BASE" E2E_MODEL_PATH="$MODEL" E2E_DIST="$ROOT/dist" E2E_ROOT="$ROOT" E2E_CHECKPOINT="$CKPT"
echo "test-e2e: $E2E_PAGE_URL (hub $E2E_HUB, isolation $E2E_ISOLATION)" >&2
cd "$ROOT/tests/e2e"
# E2E_FILES="delivery.test.mjs" runs one file, E2E_NAME="offline" only the
# tests whose names match (node's --test-name-pattern). Each file is bounded: a test
# that fails with a browser still open would otherwise keep node alive for
# ever (--test-force-exit ends it once its tests are done), and a file that
# hangs is stopped after E2E_FILE_LIMIT seconds (SIGTERM: Playwright closes
# its browsers on it) so the other files still run.
# shellcheck source=scripts/bounded.sh
source "$ROOT/scripts/bounded.sh"
LIMIT="${E2E_FILE_LIMIT:-900}"
NAME=(); [[ -n "${E2E_NAME:-}" ]] && NAME=(--test-name-pattern="$E2E_NAME")
failed=()
for file in ${E2E_FILES:-./*.test.mjs}; do
  t0=$SECONDS
  rc=0
  bounded "$LIMIT" node --test --test-force-exit --test-concurrency=1 --test-reporter=spec "${NAME[@]}" "$file" || rc=$?
  [[ $rc != 0 ]] && failed+=("$file")
  echo "test-e2e: $file $(( SECONDS - t0 )) s${failed[*]:+ (failed so far: ${failed[*]})}" >&2
done
[[ ${#failed[@]} == 0 ]] || { echo "test-e2e: FAILED: ${failed[*]}" >&2; exit 1; }
