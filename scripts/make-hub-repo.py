#!/usr/bin/env python3
"""Lay a checkpoint folder out like the Hub repo HuggingFaceTB/SmolLM2-135M-Instruct.

    python3 scripts/make-hub-repo.py CHECKPOINT_DIR OUT_DIR

Hard-links (or copies) config.json, tokenizer.json, tokenizer_config.json,
model.safetensors and generation_config.json (when there) into OUT_DIR and
writes the files the official repo has besides: generation_config.json (when
missing), vocab.json, merges.txt, special_tokens_map.json and README.md.
Every file is replaced atomically, so running it again is fine. For
scripts/hub-emulator.py (--repo OWNER/NAME=OUT_DIR).

    python3 scripts/make-hub-repo.py --shape-1.7b OUT_DIR

Gives a repo laid out by the first form SmolLM2-1.7B's shape: its config.json
numbers, and a sparse model.safetensors of its bf16 size (a valid header, the
rest zeros that take no disk). For the model picker's memory check, which
reads only the listing and config.json.
"""
import json
import os
import shutil
import sys

LINKED = ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors", "generation_config.json")
SPECIAL = ("bos_token", "eos_token", "unk_token", "pad_token")


def place(src, dst):
    if os.path.exists(dst) and os.path.samefile(src, dst):
        return  # linked by an earlier run (and rename() onto the same inode would do nothing, leaving tmp)
    tmp = f"{dst}.tmp-{os.getpid()}"
    try:
        os.link(src, tmp)  # a 270 MB model need not be copied when both are on one filesystem
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)  # never writes into dst: it may be a hard link to the checkpoint


def write(dst, text):
    tmp = f"{dst}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, dst)


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# SmolLM2-1.7B's config.json (HuggingFaceTB/SmolLM2-1.7B-Instruct), the numbers that size it.
SHAPE_1_7B = {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24, "num_attention_heads": 32,
              "num_key_value_heads": 32, "vocab_size": 49152, "max_position_embeddings": 8192, "rope_theta": 130000,
              "tie_word_embeddings": True, "torch_dtype": "bfloat16"}


def shape_1_7b(out):
    path = os.path.join(out, "config.json")
    config = load(path)
    config.update(SHAPE_1_7B)
    write(path, json.dumps(config, indent=2))
    c = SHAPE_1_7B
    dim, hidden, layers, vocab = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    weights = layers * (4 * dim * dim + 3 * dim * hidden + 2 * dim) + vocab * dim + dim
    header = json.dumps({"__metadata__": {"format": "pt"}}).encode()
    tmp = os.path.join(out, f"model.safetensors.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:  # a new file: the old name may be a hard link to the checkpoint's
        f.write(len(header).to_bytes(8, "little") + header)
        f.truncate(8 + len(header) + 2 * weights)
    os.replace(tmp, os.path.join(out, "model.safetensors"))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--shape-1.7b":
        return shape_1_7b(sys.argv[2])
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().split("\n\n")[1].strip())
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for name in LINKED:
        if os.path.exists(os.path.join(src, name)):
            place(os.path.join(src, name), os.path.join(out, name))
        elif name != "generation_config.json":
            sys.exit(f"make-hub-repo: {src} has no {name}")
    config, tok = load(os.path.join(src, "config.json")), load(os.path.join(src, "tokenizer.json"))
    tok_config = load(os.path.join(src, "tokenizer_config.json"))

    if not os.path.exists(os.path.join(src, "generation_config.json")):
        write(os.path.join(out, "generation_config.json"), json.dumps({
            "_from_model_config": True, "bos_token_id": config.get("bos_token_id"),
            "eos_token_id": config.get("eos_token_id"), "transformers_version": "4.42.3"}, indent=2) + "\n")

    write(os.path.join(out, "vocab.json"), json.dumps(tok["model"]["vocab"], ensure_ascii=False))
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"].get("merges", [])]
    write(os.path.join(out, "merges.txt"), "\n".join(["#version: 0.2", *merges]) + "\n")

    # As transformers writes it: the tokens tokenizer_config.json names, with the flags tokenizer.json gives them.
    added = {t["content"]: t for t in tok.get("added_tokens", [])}

    def token(value):
        if not isinstance(value, str):
            return value
        flags = added.get(value, {})
        return {"content": value, **{k: flags.get(k, False) for k in ("lstrip", "normalized", "rstrip", "single_word")}}

    special = {k: token(tok_config[k]) for k in SPECIAL if tok_config.get(k)}
    if tok_config.get("additional_special_tokens"):
        special["additional_special_tokens"] = tok_config["additional_special_tokens"]
    if not special:
        special["additional_special_tokens"] = [t["content"] for t in added.values() if t.get("special")]
    write(os.path.join(out, "special_tokens_map.json"), json.dumps(dict(sorted(special.items())), indent=2) + "\n")

    name = os.path.basename(os.path.normpath(out))
    write(os.path.join(out, "README.md"), f"# {name}\n\nA test copy made by scripts/make-hub-repo.py from a local "
          "checkpoint, laid out like HuggingFaceTB/SmolLM2-135M-Instruct.\n")
    print(f"make-hub-repo: {out}: {', '.join(sorted(os.listdir(out)))}")


if __name__ == "__main__":
    main()
