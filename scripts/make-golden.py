#!/usr/bin/env python3
"""Golden greedy outputs from llama.cpp (llama-cpp-python) on the Q4_1 GGUF.

Writes tests/fixtures/llamacpp-q4_1-golden.json: the quantized-path reference the
Rust engine's Q4_1 path is compared against (float32 paths compare against
tests/fixtures/transformers-f32-reference.json instead).

Also checks, against ../shared/reference/tutorial-cases.json when it is present
(or --reference FILE), that llama.cpp's tokenization and generated ids reproduce
the reference, and (re)writes tests/fixtures/transformers-f32-reference.json
from it.

    pip install llama-cpp-python
    python3 scripts/make-golden.py [--model PATH] [--reference FILE]

Greedy decoding is done by hand: eval the prompt ids, then repeatedly take the
logits of the last position, record the top-5 and the top-2 margin, append the
argmax; stop after EOS (id 2, included in the ids) or max_new_tokens.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
EOS_ID = 2
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
DEFAULT_REFERENCE = os.path.join(os.path.dirname(ROOT), "shared", "reference", "tutorial-cases.json")
OUT_GOLDEN = os.path.join(ROOT, "tests", "fixtures", "llamacpp-q4_1-golden.json")
OUT_F32 = os.path.join(ROOT, "tests", "fixtures", "transformers-f32-reference.json")


def chatml(messages, system=SYSTEM):
    """The GGUF's ChatML template (SmolLM2): default system prompt, generation prompt."""
    s = ""
    if not messages or messages[0]["role"] != "system":
        s += f"<|im_start|>system\n{system}<|im_end|>\n"
    for m in messages:
        s += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
    return s + "<|im_start|>assistant\n"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_model():
    out = subprocess.run([os.path.join(ROOT, "scripts", "fetch-test-model.sh")],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1]


class Engine:
    def __init__(self, model_path):
        from llama_cpp import Llama
        # use_extra_bufts=False: otherwise llama.cpp crashes on multi-token prompts
        # here (the CPU reports AMX but the VM does not allow it).
        self.llm = Llama(model_path=model_path, use_extra_bufts=False, n_ctx=2048,
                         n_threads=2, logits_all=True, verbose=False)

    def tokenize(self, prompt):
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def detok(self, ids):
        # Text as the user sees it: special tokens (<|im_end|>) are not rendered.
        data = self.llm.detokenize([i for i in ids if i != EOS_ID], special=False)
        return data.decode("utf-8", errors="replace")

    def greedy(self, prompt_ids, max_new_tokens, eos_banned=False):
        llm = self.llm
        llm.reset()
        llm.eval(prompt_ids)
        ids, margins, top5 = [], [], None
        for step in range(max_new_tokens):
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            if eos_banned:
                logits[EOS_ID] = -np.inf
            order = np.argsort(-logits, kind="stable")[:5]
            if step == 0:
                top5 = [{"id": int(i), "logit": round(float(logits[i]), 4)} for i in order]
            margins.append(round(float(logits[order[0]] - logits[order[1]]), 4))
            nxt = int(order[0])
            ids.append(nxt)
            if nxt == EOS_ID:
                break
            if step + 1 < max_new_tokens:
                llm.eval([nxt])
        return ids, margins, top5


def own_cases():
    raw = [
        ("raw_haiku_sea", "Write a haiku about the sea."),
        ("raw_three_largest_cities_2024", "The 3 largest cities in 2024 were"),
        ("raw_once_upon_a_time", "Once upon a time"),
        ("raw_unicode_cafe_zurich", "Café au lait costs 3€ in Zürich and"),
        ("raw_digits_newlines", "Steps:\n\n1. Boil 10 minutes\n2."),
    ]
    chat = [
        ("chat_haiku_sea", "Write a haiku about the sea."),
        ("chat_12_times_7", "What is 12 times 7?"),
        ("chat_primary_colors", "Name three primary colors."),
        ("chat_capital_germany", "What is the capital of Germany?"),
    ]
    cases = [{"id": i, "kind": "raw", "prompt": p, "max_new_tokens": 30, "eos_banned": False}
             for i, p in raw]
    cases += [{"id": i, "kind": "chat", "messages": [{"role": "user", "content": q}],
               "max_new_tokens": 30, "eos_banned": False} for i, q in chat]
    # Two-turn chat: turn 2 feeds back llama.cpp's own turn-1 reply.
    cases.append({"id": "chat_two_turn_own#turn1", "kind": "chat",
                  "messages": [{"role": "user", "content": "Name three primary colors."}],
                  "max_new_tokens": 30, "eos_banned": False})
    cases.append({"id": "chat_two_turn_own#turn2", "kind": "chat",
                  "messages_from": "chat_two_turn_own#turn1",
                  "follow_up": "Which of them is the color of the sky?",
                  "max_new_tokens": 40, "eos_banned": False})
    return cases


def reference_cases(ref):
    """The tutorial's cases, with the exact prompts of the reference file."""
    out = []
    for c in ref["transformers_f32"]:
        if "turns" in c:
            for n, t in enumerate(c["turns"], 1):
                out.append({"id": f"{c['id']}#turn{n}", "kind": "chat", "messages": t["messages"],
                            "prompt": t["prompt"], "max_new_tokens": t["max_new_tokens"],
                            "eos_banned": t["eos_banned"], "ref_prompt_ids": t["prompt_ids"]})
        else:
            kind = "raw" if c["kind"] == "raw" else "chat"
            d = {"id": c["id"], "kind": kind, "prompt": c["prompt"],
                 "max_new_tokens": c["max_new_tokens"], "eos_banned": c["eos_banned"],
                 "ref_prompt_ids": c["prompt_ids"]}
            if "messages" in c:
                d["messages"] = c["messages"]
            out.append(d)
    return out


def write_f32_reference(ref):
    keep = ["id", "kind", "prompt", "messages", "prompt_ids", "max_new_tokens", "eos_banned",
            "generated_ids", "text", "first_step_top5"]
    cases = []
    for c in ref["transformers_f32"]:
        if "turns" in c:
            for n, t in enumerate(c["turns"], 1):
                d = {"id": f"{c['id']}#turn{n}", "kind": c["kind"]}
                d.update({k: t[k] for k in keep if k in t and k not in ("id", "kind")})
                cases.append(d)
        else:
            cases.append({k: c[k] for k in keep if k in c})
    for d in cases:
        d["first_step_top5"] = [{"id": e["id"], "logit": e["logit"], "text": e.get("text")}
                                for e in d["first_step_top5"]]
    doc = {
        "what": "Hugging Face transformers float32 greedy reference for the tutorial cases "
                "(SmolLM2-135M-Instruct, the GGUF below dequantized to float32). Copied from "
                "the project's shared reference/tutorial-cases.json by scripts/make-golden.py. "
                "Compare float32 paths against this file, quantized paths against "
                "llamacpp-q4_1-golden.json.",
        "model_sha256": ref["model_sha256"],
        "versions": ref.get("versions"),
        "generation": ref.get("generation"),
        "cases": cases,
        "notes": ref.get("notes", []),
    }
    with open(OUT_F32, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT_F32, ROOT)} ({len(cases)} cases)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--reference", default=DEFAULT_REFERENCE)
    args = ap.parse_args()

    import llama_cpp
    model = args.model or default_model()
    digest = sha256(model)
    if digest != MODEL_SHA256:
        sys.exit(f"model sha256 {digest} != expected {MODEL_SHA256}")

    ref = None
    if args.reference and os.path.exists(args.reference):
        with open(args.reference, encoding="utf-8") as f:
            ref = json.load(f)
        write_f32_reference(ref)
    else:
        print("no reference file: skipping the reference cases and checks", file=sys.stderr)

    eng = Engine(model)
    cases = (reference_cases(ref) if ref else []) + own_cases()
    ref_llama = {c["id"]: c for c in ref["llamacpp_q4_1"]} if ref else {}

    done, problems, out = {}, [], []
    for c in cases:
        if "messages_from" in c:
            prev = done[c["messages_from"]]
            c["messages"] = prev["messages"] + [
                {"role": "assistant", "content": prev["text"]},
                {"role": "user", "content": c.pop("follow_up")}]
            c.pop("messages_from")
        if "prompt" not in c:
            c["prompt"] = chatml(c["messages"]) if c["kind"] == "chat" else c["prompt"]
        elif c["kind"] == "chat" and chatml(c["messages"]) != c["prompt"]:
            problems.append(f"{c['id']}: our ChatML rendering differs from the reference prompt")
        pids = eng.tokenize(c["prompt"])
        ref_pids = c.pop("ref_prompt_ids", None)
        if ref_pids is not None and pids != ref_pids:
            problems.append(f"{c['id']}: llama.cpp prompt ids differ from reference: {pids} vs {ref_pids}")
        gen, margins, top5 = eng.greedy(pids, c["max_new_tokens"], c["eos_banned"])
        rl = ref_llama.get(c["id"])
        if rl is not None and rl["generated_ids"] != gen:
            k = next((i for i, (a, b) in enumerate(zip(gen, rl["generated_ids"])) if a != b),
                     min(len(gen), len(rl["generated_ids"])))
            problems.append(f"{c['id']}: generated ids differ from reference llamacpp_q4_1 at step {k}")
        text = eng.detok(gen)
        d = {"id": c["id"], "kind": c["kind"], "prompt": c["prompt"]}
        if "messages" in c:
            d["messages"] = c["messages"]
        d.update({"prompt_ids": pids, "max_new_tokens": c["max_new_tokens"],
                  "eos_banned": c["eos_banned"], "generated_ids": gen,
                  "stopped_by": "eos" if gen and gen[-1] == EOS_ID else "max_new_tokens",
                  "margins": margins, "min_margin": min(margins) if margins else None,
                  "first_step_top5": top5, "text": text})
        if rl is not None:
            d["matches_reference_llamacpp"] = rl["generated_ids"] == gen
        done[c["id"]] = d
        out.append(d)
        print(f"{c['id']}: {len(pids)} prompt tokens, {len(gen)} generated, "
              f"min margin {d['min_margin']}: {text!r}", file=sys.stderr)

    doc = {
        "what": "llama.cpp greedy outputs on the Q4_1 GGUF (quantized-path golden file). "
                "Generated by scripts/make-golden.py. Greedy = argmax of the last position's "
                "logits; generated_ids include EOS (2) when emitted; eos_banned cases set "
                "logit[2] = -inf at every step. margins[i] = top1 - top2 logit at step i "
                "(small margins are near-ties where other implementations may legitimately "
                "diverge). Prompts are tokenized without BOS, special tokens parsed.",
        "model_sha256": digest,
        "llama_cpp_python_version": llama_cpp.__version__,
        "settings": {"n_ctx": 2048, "n_threads": 2, "use_extra_bufts": False, "eos_token_id": EOS_ID},
        "cases": out,
    }
    with open(OUT_GOLDEN, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT_GOLDEN, ROOT)} ({len(out)} cases)", file=sys.stderr)
    if problems:
        print("PROBLEMS:", *problems, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print("all reference checks passed", file=sys.stderr)


if __name__ == "__main__":
    main()
