"""VRAM estimate against measured peaks on a GPU.

For random-weight models of the reference architectures (same shapes, so the same memory as the
real weights), each grid point trains 3 steps through tuiwiz's own training path (builders +
trl's SFTTrainer, 4-bit nf4 with double quantization) on synthetic full-length batches (one
sequence per batch one token shorter, so batches are padded: the estimate's worst case), and
prints the estimate next to torch.cuda.max_memory_allocated, max_memory_reserved and the peak
that NVML reports for the process, with the relative errors.

    .venv/bin/python bench/gpu_memory.py            # the grid, ~3-6 minutes on one H100
    .venv/bin/python bench/gpu_memory.py --dry-run  # grid and estimates only: no CUDA, no torch
    .venv/bin/python bench/gpu_memory.py --models smollm2-135m --json out.json
    .venv/bin/python bench/gpu_memory.py --measured out.json  # earlier readings, today's estimates

Columns: est = estimated total (NVML view), nvml = the process's peak device memory in NVML
(sampled every 10 ms, minus the device's usage before CUDA started), alloc/resv = torch's peaks,
est_alloc = the estimate's prediction of max_memory_allocated, context = nvml - resv, left =
memory an earlier point left reserved (subtracted from this point's readings).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REFERENCE = Path(
    os.environ.get("TUIWIZ_REFERENCE_CONFIGS", ROOT / "tests" / "fixtures" / "reference-configs")
)
MODELS = ["smollm2-135m", "qwen2.5-0.5b", "tinyllama-1.1b-chat-v1.0"]
GiB = 1 << 30
BASE = {
    "batch": 4,
    "seq": 1024,
    "checkpointing": True,
    "targets": "all-linear",
    "attn": "sdpa",
    "bf16": True,
}
# One factor at a time around BASE: each row isolates one term of the estimate.
VARIATIONS = [
    {},
    {"batch": 1},
    {"batch": 8},
    {"seq": 512},
    {"seq": 2048},
    {"checkpointing": False},
    {"checkpointing": False, "batch": 1, "seq": 512},
    {"targets": "attention"},
    {"attn": "eager", "seq": 512},
    {"bf16": False},
]


@dataclass
class Point:
    model: str
    batch: int
    seq: int
    checkpointing: bool
    targets: str
    attn: str
    bf16: bool
    estimate: int = 0
    estimate_allocated: int = 0
    allocated: int | None = None
    reserved: int | None = None
    nvml: int | None = None
    leftover: int | None = None
    note: str = ""

    def config(self) -> dict[str, Any]:
        from tuiwiz import config as cfg

        targets = (
            "all-linear"
            if self.targets == "all-linear"
            else ["q_proj", "k_proj", "v_proj", "o_proj"]
        )
        return cfg.validate(
            {
                "model": {
                    "name_or_path": str(REFERENCE / self.model),
                    "attn_implementation": self.attn,
                },
                "lora": {"r": 16, "target_modules": targets},
                "data": {"path": "synthetic.jsonl", "max_seq_length": self.seq},
                "training": {
                    "per_device_train_batch_size": self.batch,
                    "gradient_accumulation_steps": 1,
                    "max_steps": 3,
                    "gradient_checkpointing": self.checkpointing,
                    "bf16": self.bf16,
                    "optim": "paged_adamw_8bit",
                    "logging_steps": 1,
                    "save_steps": 1000,
                    "report_to": "none",
                },
            },
            "bench",
        )


def grid(models: list[str]) -> list[Point]:
    return [Point(model=m, **{**BASE, **v}) for m in models for v in VARIATIONS]


def add_estimates(points: list[Point]) -> None:
    from tuiwiz.estimate import estimate

    for p in points:
        est = estimate(p.config())
        p.estimate, p.estimate_allocated = est.total, est.allocated_peak


# --- measuring on the GPU ----------------------------------------------------------------------


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


def random_model(name: str, folder: Path) -> Path:
    """Random weights of a reference architecture, saved once in bf16."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    target = folder / name
    if not (target / "config.json").is_file():
        config = AutoConfig.from_pretrained(REFERENCE / name)
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.save_pretrained(target)
        del model
        torch.cuda.empty_cache()
    return target


def synthetic_dataset(vocab: int, seq: int, rows: int):
    import datasets
    import torch

    g = torch.Generator().manual_seed(0)
    ids = [torch.randint(3, vocab, (seq - (i % 2),), generator=g).tolist() for i in range(rows)]
    return datasets.Dataset.from_dict({"input_ids": ids, "labels": ids})


def measure(point: Point, model_dir: Path, nvml: NvmlPeak, out: Path) -> None:
    import gc

    import torch
    from trl import SFTTrainer

    from tuiwiz.demo.build import build_tokenizer
    from tuiwiz.train import builders

    config = point.config()
    config["model"]["name_or_path"] = str(model_dir)
    vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
    tokenizer = build_tokenizer()  # only its pad id is used: the data is already token ids
    gc.collect()
    torch.cuda.empty_cache()
    # Whatever an earlier point left resident (a reference held inside a library) is not this
    # point's memory: measure from it. `leftover` shows how much that was.
    before_alloc, before_resv = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    point.leftover = before_resv
    torch.cuda.reset_peak_memory_stats()
    with nvml:
        model = builders.load_model(str(model_dir), config)
        args = builders.training_arguments(config, out, False, notice=lambda m: None)
        trainer = SFTTrainer(
            model=model,
            args=args,
            processing_class=tokenizer,
            train_dataset=synthetic_dataset(vocab, point.seq, 3 * point.batch),
        )
        trainer.train()
        torch.cuda.synchronize()
    point.allocated = torch.cuda.max_memory_allocated() - before_alloc
    point.reserved = torch.cuda.max_memory_reserved() - before_resv
    point.nvml = nvml.peak - before_resv
    trainer.accelerator.free_memory()  # drops accelerate's references to model and optimizer
    del trainer, model
    gc.collect()
    torch.cuda.empty_cache()


# --- output ----------------------------------------------------------------------------------


def _gib(n: int | None) -> str:
    return "" if n is None else f"{n / GiB:.2f}"


def _err(est: int, real: int | None) -> str:
    return "" if not real else f"{100 * (est - real) / real:+.1f}%"


def table(points: list[Point]) -> str:
    head = (
        "model",
        "B",
        "S",
        "ckpt",
        "targets",
        "attn",
        "bf16",
        "est",
        "nvml",
        "err",
        "est_alloc",
        "alloc",
        "err",
        "resv",
        "context",
        "left",
        "note",
    )
    rows = [head]
    for p in points:
        context = p.nvml - p.reserved if p.nvml and p.reserved else None
        rows.append(
            (
                p.model,
                str(p.batch),
                str(p.seq),
                "on" if p.checkpointing else "off",
                p.targets,
                p.attn,
                "on" if p.bf16 else "off",
                _gib(p.estimate),
                _gib(p.nvml),
                _err(p.estimate, p.nvml),
                _gib(p.estimate_allocated),
                _gib(p.allocated),
                _err(p.estimate_allocated, p.allocated),
                _gib(p.reserved),
                _gib(context),
                _gib(p.leftover),
                p.note,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="estimates only: no CUDA")
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--json", type=Path, help="also write the points as JSON here")
    parser.add_argument(
        "--budget", type=float, default=7.5, help="stop starting new points after this many minutes"
    )
    parser.add_argument(
        "--measured",
        type=Path,
        help="a --json file of an earlier GPU run: its measurements against today's estimates",
    )
    args = parser.parse_args(argv)
    points = grid(args.models)
    if args.measured:
        points = [Point(**p) for p in json.loads(args.measured.read_text())]
    add_estimates(points)
    if not args.dry_run and not args.measured:
        import torch

        if not torch.cuda.is_available():
            print("gpu_memory: no CUDA GPU; use --dry-run", file=sys.stderr)
            return 2
        nvml = NvmlPeak(torch.cuda.current_device())
        torch.cuda.init()
        free = torch.cuda.mem_get_info()[0]
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            for p in points:
                if time.monotonic() - started > args.budget * 60:
                    p.note = "skipped: time budget"
                elif p.estimate > 0.95 * free:
                    p.note = "skipped: estimate exceeds free memory"
                else:
                    try:
                        measure(p, random_model(p.model, Path(tmp)), nvml, Path(tmp) / "out")
                    except torch.cuda.OutOfMemoryError:
                        p.note = "CUDA OOM"
                        torch.cuda.empty_cache()
                    except Exception as exc:  # one broken point must not lose the others
                        p.note = f"error: {type(exc).__name__}: {str(exc)[:120]}"
                        torch.cuda.empty_cache()
                print(table([p]).splitlines()[-1], flush=True)
    print(table(points))
    if args.json:
        args.json.write_text(json.dumps([asdict(p) for p in points], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
