"""Wall time of `tuiwiz inspect` and `tuiwiz estimate` as whole processes, for a 70B model.

A Llama-3-70B-shaped config.json (hidden 8192, 80 layers, 64 heads, 8 key/value heads,
intermediate 28672, vocabulary 128256) is written into a temporary directory, with a preset
that trains it. Each command runs as a fresh `python -m tuiwiz` process with an empty cache
directory, several times; the table shows the median and the fastest run. Two reference rows
show what the same machine needs for `python -c pass` and `import torch, transformers`, and a
third the exact (meta-device) path, for an architecture the fast path does not cover, cold and
then from the summary cache.

    .venv/bin/python bench/estimate_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LLAMA3_70B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "bos_token_id": 128000,
    "eos_token_id": 128001,
}
PRESET = """\
schema_version = 1
name = "llama3-70b-bench"
[model]
name_or_path = "{model}"
[data]
path = "train.jsonl"
max_seq_length = 2048
[training]
per_device_train_batch_size = 1
gradient_accumulation_steps = 16
bf16 = true
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def row(name: str, times: list[float]) -> str:
    return f"{name:48s} {statistics.median(times):7.2f} s {min(times):7.2f} s  ({len(times)} runs)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tmp / "llama3-70b"
        model.mkdir()
        (model / "config.json").write_text(json.dumps(LLAMA3_70B))
        preset = tmp / "preset.toml"
        preset.write_text(PRESET.format(model=model))
        # a config key the fast path does not know sends it down the exact, meta-device path
        exact = tmp / "llama3-70b-exact"
        exact.mkdir()
        (exact / "config.json").write_text(json.dumps({**LLAMA3_70B, "custom_note": "x"}))

        def env(cache: str) -> dict[str, str]:
            return {
                **os.environ,
                "TUIWIZ_CACHE_DIR": str(tmp / cache),
                "HF_HUB_OFFLINE": "1",
                "TUIWIZ_FAKE_NVML": os.environ.get("TUIWIZ_FAKE_NVML", ""),
            }

        runs = {
            "python -c pass": [py, "-c", "pass"],
            "python -c 'import torch, transformers'": [py, "-c", "import torch, transformers"],
            "tuiwiz inspect 70B --json": [py, "-m", "tuiwiz", "inspect", str(model), "--json"],
            "tuiwiz estimate 70B preset --json": [
                py,
                "-m",
                "tuiwiz",
                "estimate",
                str(preset),
                "--json",
            ],
        }
        print(f"{'command':48s} {'median':>9s} {'fastest':>9s}")
        for name, command in runs.items():
            times = [timed(command, env(f"cache-{name}-{i}")) for i in range(args.repeats)]
            print(row(name, times), flush=True)
        inspect_exact = [py, "-m", "tuiwiz", "inspect", str(exact), "--json"]
        cold = [timed(inspect_exact, env(f"exact-cold-{i}")) for i in range(min(3, args.repeats))]
        print(row("tuiwiz inspect 70B, exact path, cold cache", cold), flush=True)
        warm = [timed(inspect_exact, env("exact-cold-0")) for _ in range(args.repeats)]
        print(row("tuiwiz inspect 70B, exact path, cached", warm))
    return 0


if __name__ == "__main__":
    sys.exit(main())
