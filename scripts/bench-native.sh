#!/usr/bin/env bash
# Native benchmark, one thread, same file, same run: three-answers (as stored
# and re-quantized to Q8_0) against llama.cpp (llama-cpp-python). Prints one
# JSON line per engine, then a summary line with the ratios.
#   scripts/bench-native.sh [decode_tokens=128]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
N="${1:-128}"
MODEL="$(scripts/fetch-test-model.sh | tail -n 1)"
python3 -c 'import llama_cpp' 2>/dev/null || CMAKE_BUILD_PARALLEL_LEVEL=2 python3 -m pip install -q llama-cpp-python==0.3.36
cargo build --release --quiet --bin three-answers
export RAYON_NUM_THREADS=1
ours_q41=$(target/release/three-answers --instruct "$MODEL" --bench "$N")
ours_q80=$(target/release/three-answers --instruct "$MODEL" --precision q8_0 --bench "$N")
ref=$(python3 scripts/bench-native.py --model "$MODEL" --decode "$N" --threads 1 | tail -n 1)
echo "$ours_q41"; echo "$ours_q80"; echo "$ref"
python3 - "$ours_q41" "$ours_q80" "$ref" <<'PY'
import json, sys
a, b, r = (json.loads(x) for x in sys.argv[1:])
print(f"native 1 thread: decode tok/s ours(stored)={a['decode_tok_s']:.1f} ours(q8_0)={b['decode_tok_s']:.1f} llama.cpp={r['decode_tok_s']:.1f} "
      f"ratio={a['decode_tok_s']/r['decode_tok_s']:.2f}/{b['decode_tok_s']/r['decode_tok_s']:.2f}; "
      f"prefill ours={a['prefill_tok_s']:.0f}/{b['prefill_tok_s']:.0f} llama.cpp={r['prefill_tok_s']:.0f}")
PY
