"""Data preparation speed: tokenizing a 50k-row alpaca-style file, first run and cached run.

The tokenizer is a byte-level BPE (8k vocabulary) trained here on the same text, with a ChatML
chat template, so the work per row resembles a real model's tokenizer (the Hub is unreachable).
Rows are synthetic and deterministic: instructions of 5-30 words, answers of 20-150 words.

    .venv/bin/python bench/data_prep.py [--rows 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WORDS = [
    "model",
    "data",
    "train",
    "learn",
    "token",
    "adapter",
    "rank",
    "memory",
    "batch",
    "step",
    "loss",
    "answer",
    "question",
    "explain",
    "write",
    "code",
    "list",
    "sort",
    "number",
    "word",
    "sentence",
    "summary",
    "language",
    "fine",
    "tune",
]


def make_rows(n: int) -> list[dict[str, str]]:
    rng = random.Random(0)
    say = lambda lo, hi: " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))  # noqa: E731
    return [
        {"instruction": say(5, 30), "input": say(0, 10), "output": say(20, 150)} for _ in range(n)
    ]


def make_tokenizer(rows: list[dict[str, str]]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=8000, special_tokens=["<|im_start|>", "<|im_end|>"])
    tok.train_from_iterator((r["instruction"] + " " + r["output"] for r in rows[:5000]), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|im_end|>"
    )
    fast.chat_template = CHATML
    return fast


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TUIWIZ_CACHE_DIR"] = tmp
        from tuiwiz import config
        from tuiwiz.data import prepare

        rows = make_rows(args.rows)
        path = Path(tmp) / "alpaca.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        tokenizer = make_tokenizer(rows)
        data = config.validate(
            {"model": {"name_or_path": "m"}, "data": {"path": str(path), "max_seq_length": 1024}}
        )["data"]
        results = []
        for label in ("first run (tokenize)", "second run (cached)"):
            start = time.perf_counter()
            _, _, report = prepare.prepare(data, tokenizer, log=lambda m: None)
            seconds = time.perf_counter() - start
            results.append((label, seconds, report))
    print(
        f"data preparation: {args.rows} alpaca rows, byte-level BPE 8k, ChatML template, "
        f"median {results[0][2].median_tokens:.0f} tokens/example"
    )
    print(f"{'run':<22}  {'seconds':>8}  {'rows/s':>9}  cached")
    for label, seconds, report in results:
        print(f"{label:<22}  {seconds:>8.2f}  {args.rows / seconds:>9.0f}  {report.cached}")


if __name__ == "__main__":
    main()
