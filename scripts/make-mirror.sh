#!/usr/bin/env bash
# Lays out model files like the Hugging Face Hub, so a static host (or a USB
# stick) can serve them next to the page: OUT/{owner}/{name}/resolve/main/{file}.
# Open the page with ?hub=./models (relative to the page) when OUT is dist/models.
#
#   scripts/make-mirror.sh OUT REPO FILE...        copy files (a .gguf, or a checkpoint's files) into OUT/REPO
#   scripts/make-mirror.sh OUT REPO --from-gguf F  write a float32 checkpoint folder made from the GGUF F
# MAKE_MIRROR_LINK=1 hard-links instead of copying where it can (tests).
#
# Examples:
#   scripts/make-mirror.sh dist/models local/SmolLM2-135M-Instruct-GGUF ~/.cache/three-answers/models/SmolLM2-135M-Instruct.Q4_1.gguf
#     -> ?hub=./models&instruct=local/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf
#   scripts/make-mirror.sh dist/models HuggingFaceTB/SmolLM2-135M ~/Downloads/SmolLM2-135M/*
#     -> ?hub=./models&foundation=HuggingFaceTB/SmolLM2-135M
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
[[ $# -ge 3 ]] || { sed -n '2,15p' "$0" >&2; exit 2; }
OUT="$1"; REPO="$2"; shift 2
[[ "$REPO" == */* && "$REPO" != */*/* ]] || { echo "make-mirror: REPO must be owner/name, got '$REPO'" >&2; exit 2; }
DEST="$OUT/$REPO/resolve/main"
mkdir -p "$DEST"
if [[ "$1" == "--from-gguf" ]]; then
  (cd "$ROOT" && cargo build --release --quiet --bin three-answers)
  "${CARGO_TARGET_DIR:-$ROOT/target}/release/three-answers" --instruct "$2" --export-checkpoint "$DEST"
else
  for f in "$@"; do
    [[ -f "$f" ]] || { echo "make-mirror: no such file: $f" >&2; exit 1; }
    if [[ -n "${MAKE_MIRROR_LINK:-}" ]]; then
      ln -f "$f" "$DEST/$(basename "$f")" 2>/dev/null || cp -f "$f" "$DEST/$(basename "$f")"
    else
      cp -f "$f" "$DEST/$(basename "$f")"
    fi
  done
fi
echo "make-mirror: $(ls "$DEST" | wc -l) file(s) in $DEST"
