#!/usr/bin/env bash
# Build and serve the app on this machine, with the test model in the Hub layout:
#   scripts/serve.sh [--port 8080] [--no-build]
# Then open the URL it prints (it answers out of the box, offline).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PORT=8080; BUILD=1
while [[ $# -gt 0 ]]; do
  case "$1" in --port) PORT="$2"; shift 2 ;; --no-build) BUILD=0; shift ;; *) echo "usage: $0 [--port N] [--no-build]" >&2; exit 2 ;; esac
done
[[ -x "$ROOT/scripts/setup.sh" ]] && "$ROOT/scripts/setup.sh"
"$ROOT/scripts/setup-web.sh"
BASE=/three-answers/
[[ $BUILD == 1 ]] && TRUNK_QUIET=1 "$ROOT/scripts/build-web.sh" "$BASE"
MODEL="$("$ROOT/scripts/fetch-test-model.sh" | tail -n1)"
SPEC="test/SmolLM2-135M-Instruct-GGUF/$(basename "$MODEL")"
ORIGIN="http://127.0.0.1:$PORT"
echo
# precision=f32: the test file is Q4_1; at its own precision it answers the
# tutorial's question "L'Étoile, la ..." (as llama.cpp does on it), while its
# weights widened to f32 answer "The capital of France is Paris." as the
# tutorial's float checkpoints do. Drop the parameter to see the quantized model.
echo "Open: $ORIGIN$BASE?hub=$ORIGIN/hub&instruct=$SPEC&foundation=$SPEC&precision=f32"
echo "(the same Q4_1 instruct file stands in for the foundation model, widened to f32; Ctrl+C stops the server)"
echo
exec python3 "$ROOT/scripts/devserver.py" --port "$PORT" --dist "$ROOT/dist" --base "$BASE" --file "$SPEC=$MODEL"
