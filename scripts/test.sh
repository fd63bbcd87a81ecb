#!/usr/bin/env bash
# Every test of three-answers, installing what is missing first:
#   1. native engine tests on the real SmolLM2 weights (cargo test --release);
#   2. the engine compiles for wasm32 with simd128;
#   3. the page, built by Trunk under a sub-path, in headless Chromium, Firefox and
#      WebKit (scripts/test-e2e.sh): cross-origin isolated (the threaded engine), then
#      delivery.test.mjs again unisolated (the single-thread engine).
#   scripts/test.sh [--native-only]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
CACHE="${THREE_ANSWERS_CACHE:-$HOME/.cache/three-answers}"

scripts/setup.sh
[[ -x scripts/setup-web.sh ]] && scripts/setup-web.sh
THREE_ANSWERS_TEST_GGUF="$(scripts/fetch-test-model.sh | tail -n 1)"
export THREE_ANSWERS_TEST_GGUF

START=$SECONDS
stamp() { echo "   ($(( (SECONDS - START) / 60 )) min $(( (SECONDS - START) % 60 )) s since the start)"; }
# Each step is bounded (the e2e files each have their own bound too).
# shellcheck source=scripts/bounded.sh
source "$ROOT/scripts/bounded.sh"
echo "== 1/3 native engine tests (real weights) =="; stamp
# The fuzz targets' seed: from the commit, so a run of a given commit is
# reproducible and each new commit explores new inputs (override to replay).
if [[ -z "${THREE_ANSWERS_FUZZ_SEED:-}" ]] && git rev-parse HEAD >/dev/null 2>&1; then
  THREE_ANSWERS_FUZZ_SEED="$((16#$(git rev-parse HEAD | cut -c1-15)))"
  export THREE_ANSWERS_FUZZ_SEED
fi
bounded $((30 * 60)) cargo test --release

echo "== 2/3 engine for wasm32 + simd128 =="; stamp
(
  # shellcheck disable=SC1091
  source "$CACHE/toolchain.env"
  bounded $((20 * 60)) "${WASM_CARGO:-cargo}" build --release --lib --target wasm32-unknown-unknown --quiet
)
echo "wasm32 build ok"

[[ "${1:-}" == "--native-only" ]] && exit 0
echo "== 2b/3 the page's components in headless Chromium (wasm-bindgen-test) =="; stamp
bounded $((20 * 60)) scripts/test-web-components.sh
echo "== 3/3 the page in headless Chromium =="; stamp
scripts/test-e2e.sh
echo "== 3b/3 delivery again, not cross-origin isolated (the single-thread engine) =="; stamp
E2E_ISOLATION=off E2E_FILES="delivery.test.mjs" scripts/test-e2e.sh --no-build
echo "== all tests passed =="; stamp
