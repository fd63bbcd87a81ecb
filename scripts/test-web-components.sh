#!/usr/bin/env bash
# The page's components (tests/web/) in headless Chromium: wasm-bindgen-test,
# run by wasm-bindgen-test-runner (wasm-bindgen-cli, same version as the
# wasm-bindgen in Cargo.lock) through Debian's chromedriver. Browser flags are in
# webdriver.json. Also tests/web_kernel.rs: the engine's wasm SIMD f16 kernel.
# Extra arguments go to the test binaries (e.g. a test name filter).
#   scripts/test-web-components.sh [filter]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
CACHE="${THREE_ANSWERS_CACHE:-$HOME/.cache/three-answers}"
# shellcheck disable=SC1091
source "$CACHE/toolchain.env"

for tool in wasm-bindgen-test-runner "${CHROMEDRIVER:-/usr/bin/chromedriver}"; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/setup.sh (and scripts/setup-web.sh)" >&2; exit 1; }
done
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print }' Cargo.lock)"
have="$(wasm-bindgen-test-runner --version | awk '{ print $2 }')"
if [[ "$want" != "$have" ]]; then
  echo "wasm-bindgen-test-runner is $have but Cargo.lock has wasm-bindgen $want: cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$ROOT/webdriver.json"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"
# --release re-uses the dependencies `trunk build --release` and test.sh's wasm32 build compiled.
"${WASM_CARGO:-cargo}" test --release --target wasm32-unknown-unknown --test web --test web_kernel -- "$@"
