#!/usr/bin/env bash
# Native benchmark, one thread, same file, same run: three-answers at `auto`
# (Q8_0 for this Q4_1 file), as stored (Q4_1 blocks) and re-quantized to Q8_0
# explicitly, against llama.cpp (llama-cpp-python). Prints one JSON line per
# run, then a summary line with the ratios.
#   scripts/bench-native.sh [decode_tokens=128]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
N="${1:-128}"
MODEL="$(scripts/fetch-test-model.sh | tail -n 1)"
python3 -c 'import llama_cpp' 2>/dev/null || CMAKE_BUILD_PARALLEL_LEVEL=2 python3 -m pip install -q llama-cpp-python==0.3.36
cargo build --release --quiet --bin three-answers
CLI="${CARGO_TARGET_DIR:-target}/release/three-answers"
export RAYON_NUM_THREADS=1
ours_auto=$("$CLI" --instruct "$MODEL" --precision auto --bench "$N")
ours_stored=$("$CLI" --instruct "$MODEL" --precision stored --bench "$N")
ref=$(python3 scripts/bench-native.py --model "$MODEL" --decode "$N" --threads 1 | tail -n 1)
echo "$ours_auto"; echo "$ours_stored"; echo "$ref"
python3 - "$ours_auto" "$ours_stored" "$ref" <<'PY'
import json, sys
a, s, r = (json.loads(x) for x in sys.argv[1:])
print(f"native 1 thread: decode tok/s ours(auto)={a['decode_tok_s']:.1f} ours(stored)={s['decode_tok_s']:.1f} llama.cpp={r['decode_tok_s']:.1f} "
      f"ratio={a['decode_tok_s']/r['decode_tok_s']:.2f}/{s['decode_tok_s']/r['decode_tok_s']:.2f}; "
      f"prefill ours={a['prefill_tok_s']:.0f}/{s['prefill_tok_s']:.0f} llama.cpp={r['prefill_tok_s']:.0f}")
PY
