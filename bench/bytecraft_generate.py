#!/usr/bin/env python3
"""CPU generation speed: `gamegen generate` against Hugging Face transformers, side by side.

Both sample from the same checkpoint, the same prompt, batch 8, up to 256 new tokens, byte
tokens only (as the reference script restricts sampling), temperature 0.3 / top-p 0.9, stopping
at the eos byte token. Throughput is generated tokens (a row's tokens up to and including its
stop) divided by wall time, prompt prefill included, model load excluded for transformers and
included for gamegen (so the ratio is conservative for us). Runs alternate between the two
engines, and the median of `--repeats` runs is reported.

    python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install -r bench/requirements.txt
    cargo build --release
    /tmp/benchvenv/bin/python bench/bytecraft_generate.py --model models/bytecraft-mini
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor

PROMPT = (
    "Please generate an animation with the following specifications:\n- Frame rate: 24.0\n"
    "- Resolution: 320x240\n- Language(s): English\n- Title: Red box\n- Size: 2KB\n"
    "- Description: This is an animation on a white background with a red square that moves "
    "to the right."
)


class OnlyIds(LogitsProcessor):
    """Everything but the allowed ids gets -inf (the reference's byte-token restriction)."""

    def __init__(self, allowed, vocab):
        self.mask = torch.full((vocab,), float("-inf"))
        self.mask[allowed] = 0.0

    def __call__(self, input_ids, scores):
        return scores + self.mask[: scores.shape[-1]]


def hf_run(model, tok, allowed, eos, batch, max_new, seed):
    text = tok.apply_chat_template(
        [{"role": "user", "content": PROMPT}], tokenize=False, add_generation_prompt=True
    ) + "Bytes: "
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]] * batch)
    torch.manual_seed(seed)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            temperature=0.3,
            top_p=0.9,
            top_k=0,
            max_new_tokens=max_new,
            eos_token_id=eos,
            pad_token_id=eos,
            logits_processor=[OnlyIds(allowed, model.config.vocab_size)],
        )
    seconds = time.perf_counter() - start
    new = out[:, ids.shape[1]:].tolist()
    tokens = 0
    for row in new:
        tokens += row.index(eos) + 1 if eos in row else len(row)
    return tokens, seconds


def ours_run(gamegen, model_dir, batch, max_new, seed):
    out = tempfile.mkdtemp(prefix="bench-gen-")
    try:
        start = time.perf_counter()
        subprocess.run(
            [gamegen, "generate", "--model", model_dir, "--prompt", PROMPT, "--samples",
             str(batch), "--batch", str(batch), "--max-new", str(max_new), "--temperature",
             "0.3", "--top-p", "0.9", "--seed", str(seed), "--out", out],
            check=True, stdout=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - start
        tokens = sum(
            json.loads(line)["tokens"] for line in open(os.path.join(out, "results.jsonl"))
        )
        return tokens, seconds
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="models/bytecraft-mini")
    p.add_argument("--gamegen", default="target/release/gamegen")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-new", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    allowed = sorted(i for t, i in tok.get_added_vocab().items() if t.startswith("Ŧ"))
    eos = tok.convert_tokens_to_ids("Ŧō")

    hf, ours = [], []
    for r in range(a.repeats):
        t, s = hf_run(model, tok, allowed, eos, a.batch, a.max_new, seed=r)
        hf.append((t / s, t, s))
        t, s = ours_run(a.gamegen, a.model, a.batch, a.max_new, seed=r)
        ours.append((t / s, t, s))
        print(f"run {r}: transformers {hf[-1][0]:.1f} tok/s ({hf[-1][1]} tokens), "
              f"gamegen {ours[-1][0]:.1f} tok/s ({ours[-1][1]} tokens)")
    h = statistics.median(x[0] for x in hf)
    o = statistics.median(x[0] for x in ours)
    print(json.dumps({
        "model": a.model, "batch": a.batch, "max_new": a.max_new, "threads": a.threads,
        "transformers_tokens_per_s": round(h, 1), "gamegen_tokens_per_s": round(o, 1),
        "ratio": round(o / h, 2), "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
    }))


if __name__ == "__main__":
    main()
