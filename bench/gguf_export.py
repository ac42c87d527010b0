"""Time to write a GGUF file (tuiwiz.after.gguf_export.write) for real model shapes.

Random weights in the shapes of SmolLM2-135M and Qwen2.5-0.5B (tests/fixtures/reference-configs),
float32 in memory, written as f16 and as q8_0 (q8_0 is quantized in numpy by the gguf package).
The tokenizer is a small byte-level BPE trained here (its vocabulary padded to the model's): the
tensors dominate the time. Shows the seconds, the file size and the rate per second of weights.

    .venv/bin/python bench/gguf_export.py [--models smollm2-135m qwen2.5-0.5b]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "tests" / "fixtures" / "reference-configs"


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    backend.train_from_iterator([(ROOT / "README.md").read_text()], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>")


def model(name: str):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(CONFIGS / name)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()


def main() -> None:
    from tuiwiz.after import gguf_export

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "qwen2.5-0.5b"])
    args = parser.parse_args()
    tok = tokenizer()
    rows = []
    for name in args.models:
        m = model(name)
        parameters = sum(p.numel() for p in m.parameters())
        state = m.state_dict()
        cfg = json.loads((CONFIGS / name / "config.json").read_text())
        for fmt in ("f16", "q8_0"):
            plan = gguf_export.plan_model(cfg, m, tok, fmt, name)
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "model.gguf"
                started = time.perf_counter()
                gguf_export.write(plan, state, path)
                seconds = time.perf_counter() - started
                size = path.stat().st_size
            assert size <= plan.size(), "the planned size must bound the file"
            rows.append((name, parameters, fmt, seconds, size, plan.size()))
        del m, state
    print("GGUF export: random weights in real shapes, float32 in memory, CPU")
    print(f"{'model':16} {'params':>8} {'type':5} {'seconds':>8} {'file':>9} {'planned':>9} "
          f"{'M params/s':>10}")  # fmt: skip
    for name, parameters, fmt, seconds, size, planned in rows:
        print(
            f"{name:16} {parameters / 1e6:7.0f}M {fmt:5} {seconds:8.1f} "
            f"{size / 1e6:8.0f}M {planned / 1e6:8.0f}M {parameters / 1e6 / seconds:10.1f}"
        )


if __name__ == "__main__":
    main()
