"""What the GPU benches share: random weights of a reference architecture, the NVML peak of the
device, the library versions, and seeded alpaca-like data with a realistic spread of lengths.

Random weights of a real architecture take exactly the memory and time the real weights would;
the models carry tuiwiz's demo tokenizer (one token per character), so an example of N characters
is about N tokens and the data's lengths are what the bench says they are.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import tempfile
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(
    os.environ.get("TUIWIZ_REFERENCE_CONFIGS", ROOT / "tests" / "fixtures" / "reference-configs")
)
GiB = 1 << 30
# A tiny Llama for --smoke on the CPU: checks the scripts, measures nothing worth reporting.
SMOKE_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
}


class NvmlPeak:
    """Samples the device's used memory in a thread; peak minus the usage before CUDA started."""

    def __init__(self, index: int = 0) -> None:
        import pynvml

        pynvml.nvmlInit()
        self.nv, self.handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
        self.baseline = self.used()
        self.peak = 0
        self._stop = threading.Event()

    def used(self) -> int:
        return int(self.nv.nvmlDeviceGetMemoryInfo(self.handle).used)

    def name(self) -> str:
        name = self.nv.nvmlDeviceGetName(self.handle)
        return name.decode() if isinstance(name, bytes) else str(name)

    def __enter__(self) -> NvmlPeak:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.used() - self.baseline)
            time.sleep(0.01)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def work_dir(need_bytes: int = 0) -> Path:
    """Where random models go: /dev/shm (RAM, fast to write and read) when it has the room,
    else the temporary directory."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > need_bytes + 2 * GiB:
        folder = shm / "tuiwiz-bench"
    else:
        folder = Path(tempfile.gettempdir()) / "tuiwiz-bench"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def model_config(name: str) -> dict[str, Any]:
    if name == "smoke":
        return dict(SMOKE_CONFIG)
    return json.loads((REFERENCE / name / "config.json").read_text())


def weights_bytes(name: str) -> int:
    """About the bf16 checkpoint's size: 2 bytes a parameter (from config.json's shapes)."""
    c = model_config(name)
    if name == "smoke":
        return 0
    h, inner, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads") or c["num_attention_heads"]
    head_dim = c.get("head_dim") or h // heads
    layer = h * heads * head_dim * 2 + h * kv * head_dim * 2 + 3 * h * inner
    embeddings = c["vocab_size"] * h * (1 if c.get("tie_word_embeddings") else 2)
    return 2 * (layers * layer + embeddings)


def random_model(name: str, folder: Path, with_tokenizer: bool = True) -> Path:
    """Random weights of a reference architecture (or the smoke model), saved once in bf16,
    with tuiwiz's demo tokenizer (character-level) when `with_tokenizer`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    target = folder / name
    if not (target / "config.json").is_file():
        staging = folder / f".{name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        (staging / "source-config.json").write_text(json.dumps(model_config(name)))
        config = AutoConfig.from_pretrained(staging / "source-config.json")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        torch.manual_seed(0)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.save_pretrained(staging)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
        (staging / "source-config.json").unlink()
        staging.rename(target)
    if with_tokenizer and not (target / "tokenizer.json").is_file():
        from tuiwiz.demo.build import build_tokenizer

        tokenizer = build_tokenizer()
        tokenizer.model_max_length = 1 << 20  # the data's lengths are the bench's business
        tokenizer.save_pretrained(target)
    return target


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in (
        "torch",
        "transformers",
        "trl",
        "peft",
        "bitsandbytes",
        "accelerate",
        "datasets",
        "liger-kernel",
        "flash-attn",
        "unsloth",
    ):
        with contextlib.suppress(PackageNotFoundError):
            out[package] = version(package)
    try:
        import torch

        out["cuda"] = str(torch.version.cuda)
    except ImportError:
        pass
    return out


# --- data ------------------------------------------------------------------------------------


@cache
def _vocabulary() -> list[str]:
    rng, letters = random.Random(1234), "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(3000)]


def _text(rng: random.Random, chars: int) -> str:
    words, out, n = _vocabulary(), [], 0
    while n < chars:
        w = rng.choice(words)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[: max(1, chars)]


def example_length(rng: random.Random, longest: int = 2000) -> int:
    """An alpaca-like example length in tokens: most between 50 and 400 (log-normal around
    180), one in thirty a long one up to `longest`."""
    if rng.random() < 1 / 30:
        return rng.randint(800, longest)
    return int(min(longest, max(30, rng.lognormvariate(math.log(180), 0.6))))


def alpaca_rows(rows: int, seed: int = 0, longest: int = 2000) -> list[dict[str, str]]:
    """Seeded alpaca rows (instruction, input, output) whose rendered lengths follow
    `example_length`: about a third of each example is the prompt."""
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        total = example_length(rng, longest) - 12  # the chat template's markers
        prompt = max(8, total // 3)
        has_input = rng.random() < 0.4
        instruction = _text(rng, prompt // 2 if has_input else prompt)
        row = {
            "instruction": instruction,
            "input": _text(rng, prompt - len(instruction)) if has_input else "",
            "output": _text(rng, max(8, total - prompt)),
        }
        out.append(row)
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
