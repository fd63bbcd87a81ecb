#!/usr/bin/env python3
"""Native llama.cpp baseline (llama-cpp-python) on the Q4_1 test model, single thread.

Prefill of the ChatML prompt for "What is the capital of France?", then exactly
128 greedy decode steps ignoring EOS. 3 repetitions (after one warm-up), median.
Prints one JSON line:
  {"engine":"llama.cpp","prefill_tok_s":..,"decode_tok_s":..,"prompt_tokens":..}

    python3 scripts/bench-native.py [--model PATH] [--reps 3] [--decode 128] [--threads 1]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
          "<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
          "<|im_start|>assistant\n")


def default_model():
    out = subprocess.run([os.path.join(ROOT, "scripts", "fetch-test-model.sh")],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import llama_cpp
    from llama_cpp import Llama
    model = args.model or default_model()
    # use_extra_bufts=False: see make-golden.py (AMX reported but not usable in this VM).
    # logits_all=False: only the last position's logits are needed for greedy decoding.
    llm = Llama(model_path=model, use_extra_bufts=False, n_ctx=2048, n_threads=args.threads,
                n_threads_batch=args.threads, n_batch=512, logits_all=False, verbose=False)
    ids = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    ctx = llm._ctx.ctx
    n_vocab = llm.n_vocab()

    def run():
        llm.reset()  # n_tokens = 0; eval() then drops the KV cache from position 0
        t0 = time.perf_counter()
        llm.eval(ids)
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
        nxt = int(np.argmax(logits))
        t1 = time.perf_counter()
        for _ in range(args.decode):
            llm.eval([nxt])  # EOS ignored: keep decoding
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
            nxt = int(np.argmax(logits))
        t2 = time.perf_counter()
        return len(ids) / (t1 - t0), args.decode / (t2 - t1)

    run()  # warm-up
    res = [run() for _ in range(args.reps)]
    print(f"runs (prefill tok/s, decode tok/s): {[(round(a, 1), round(b, 1)) for a, b in res]}",
          file=sys.stderr)
    print(json.dumps({
        "engine": "llama.cpp",
        "prefill_tok_s": round(statistics.median(r[0] for r in res), 1),
        "decode_tok_s": round(statistics.median(r[1] for r in res), 1),
        "prompt_tokens": len(ids),
        "decode_tokens": args.decode,
        "threads": args.threads,
        "llama_cpp_python_version": llama_cpp.__version__,
    }))


if __name__ == "__main__":
    main()
