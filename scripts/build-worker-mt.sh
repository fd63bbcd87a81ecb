#!/usr/bin/env bash
# The threaded engine: the `worker` bin built with WebAssembly threads
# (atomics, shared memory), for pages that are cross-origin isolated
# (src/app/threads.rs decides; src/worker/pool.rs runs the pool).
# A Trunk post_build hook (Trunk.toml) writing worker_mt.js and
# worker_mt_bg.wasm into $TRUNK_STAGING_DIR; or by hand:
#   scripts/build-worker-mt.sh OUT_DIR
# Why a second build: threads need std rebuilt with +atomics (build-std, so
# rust-src): rustup's toolchain when it has rust-src (the Pages workflow adds
# it), else Debian's rustc-web route (scripts/setup.sh installs it: rustup
# cannot fetch rust-src on our build machines). Target dir: target/wasm-mt
# (kept warm: ~8 min cold, ~1.5 min after a change).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
OUT="${TRUNK_STAGING_DIR:-${1:?usage: $0 OUT_DIR}}"; mkdir -p "$OUT"
PROFILE="${TRUNK_PROFILE:-release}"
RUSTUP_SRC="$(rustc --print sysroot 2>/dev/null || true)/lib/rustlib/src/rust/library"
if command -v rustup >/dev/null 2>&1 && [[ -d "$RUSTUP_SRC" ]] && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  CARGO_BIN="$(command -v cargo)"
elif [[ -x /usr/bin/cargo && -d /usr/lib/rustlib/src ]]; then
  CARGO_BIN=/usr/bin/cargo; export PATH=/usr/bin:$PATH
else
  echo "build-worker-mt: no Rust toolchain with rust-src for wasm32 (run scripts/setup.sh: it installs Debian's rustc-web and rust-web-src)" >&2; exit 1
fi
cd "$ROOT"
# The same wasm features as the single-thread build (.cargo/config.toml's simd128),
# plus threads; the memory is imported and shared (its helpers get the same one),
# and TLS is exported so wasm-bindgen can give each thread its own.
export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$ROOT/target/wasm-mt"
export RUSTFLAGS='-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128 -C link-arg=--shared-memory -C link-arg=--max-memory=4294967296 -C link-arg=--import-memory -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base'
unset CARGO_UNSTABLE_BUILD_STD
CARGO_PROFILE=wasm-worker; [[ "$PROFILE" == release ]] || CARGO_PROFILE=dev
"$CARGO_BIN" build ${TRUNK_QUIET:+--quiet} --profile "$CARGO_PROFILE" --bin worker --target wasm32-unknown-unknown -Z build-std=std,panic_abort
DIR="$CARGO_TARGET_DIR/wasm32-unknown-unknown/$([[ $CARGO_PROFILE == dev ]] && echo debug || echo wasm-worker)"
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
PATH="$PATH:$HOME/.cargo/bin" wasm-bindgen --target no-modules --no-typescript --out-dir "$TMP" --out-name worker_mt "$DIR/worker.wasm"
if [[ "$PROFILE" == release ]]; then
  PATH="$("$ROOT/scripts/setup-wasm-opt.sh"):$PATH"
  # index.html's wasm-opt params for the single-thread worker, plus threads.
  wasm-opt -Oz --enable-threads --enable-simd --enable-bulk-memory --enable-bulk-memory-opt --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-multivalue --enable-reference-types --enable-mutable-globals --enable-call-indirect-overlong "$TMP/worker_mt_bg.wasm" -o "$OUT/worker_mt_bg.wasm"
else
  cp "$TMP/worker_mt_bg.wasm" "$OUT/"
fi
cp "$TMP/worker_mt.js" "$OUT/"
echo "build-worker-mt: worker_mt_bg.wasm $(stat -c %s "$OUT/worker_mt_bg.wasm") bytes"
