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

Long context and the memory options (`--long`): Llama-3.1-8B at batch 1 with checkpointing,
one point per SETTINGS:SEQ, e.g. `--long default:4096 fast:32768 offload:16384`. Settings:
default (tuiwiz's defaults), fast (`speed = "fast"` as it resolves on this machine; recorded in
the point), offload (`activation_offloading`), bf16 (`upcast_unquantized = false`), and any
of them joined with "+". Liger (in fast) patches transformers' Llama code for the rest of the
process, so fast points run after the others. `--big` adds one Qwen2.5-14B point (4k tokens).

    .venv/bin/python bench/gpu_memory.py --long default:1024 default:32768 fast:32768 --steps 2
    .venv/bin/python bench/gpu_memory.py --smoke        # a tiny model on the CPU: checks only
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_common  # noqa: E402
from gpu_common import REFERENCE, ROOT, NvmlPeak  # noqa: E402

sys.path.insert(0, str(ROOT))
MODELS = ["smollm2-135m", "qwen2.5-0.5b", "tinyllama-1.1b-chat-v1.0"]
LONG_MODEL = "llama-3.1-8b"
BIG_MODEL = "qwen2.5-14b"
SETTINGS = ("default", "fast", "offload", "bf16")
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
    settings: str = "default"  # see --long: default, fast, offload, bf16, joined with "+"
    # what fast resolved to where the point was estimated (so --measured re-prints it as it ran)
    options: dict[str, Any] = field(default_factory=dict)
    steps: int = 3
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
        model = {"name_or_path": str(reference(self.model)), "attn_implementation": self.attn}
        training: dict[str, Any] = {
            "per_device_train_batch_size": self.batch,
            "gradient_accumulation_steps": 1,
            "max_steps": self.steps,
            "gradient_checkpointing": self.checkpointing,
            "bf16": self.bf16,
            "optim": "paged_adamw_8bit",
            "logging_steps": 1,
            "save_steps": 1000,
            "report_to": "none",
        }
        quantization: dict[str, Any] = {}
        for part in self.settings.split("+"):
            if part == "fast":
                training["speed"] = "fast"
            elif part == "offload":
                training["activation_offloading"] = True
            elif part == "bf16":
                quantization["upcast_unquantized"] = False
            elif part != "default":
                raise ValueError(f"unknown settings {part!r}: use {', '.join(SETTINGS)}")
        for key, value in self.options.items():
            (model if key == "attn_implementation" else training)[key] = value
        return cfg.validate(
            {
                "model": model,
                "quantization": quantization,
                "lora": {"r": 16, "target_modules": targets},
                "data": {"path": "synthetic.jsonl", "max_seq_length": self.seq},
                "training": training,
            },
            "bench",
        )


def reference(name: str) -> Path:
    """A reference architecture's folder (the smoke model's config is written on the fly)."""
    if name != "smoke":
        return REFERENCE / name
    folder = Path(tempfile.gettempdir()) / "tuiwiz-bench-smoke-config"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(gpu_common.SMOKE_CONFIG))
    return folder


def long_points(specs: list[str], model: str = LONG_MODEL, steps: int = 3) -> list[Point]:
    """Batch 1, checkpointing on, one point per SETTINGS:SEQ; fast ones last (Liger patches
    transformers' modelling code for the rest of the process)."""
    points = []
    for spec in specs:
        settings, _, seq = spec.partition(":")
        point = Point(model, 1, int(seq), True, "all-linear", "sdpa", True, settings, steps=steps)
        point.config()  # an unknown setting fails here, before any GPU time
        points.append(point)
    return sorted(points, key=lambda p: "fast" in p.settings)


def grid(models: list[str]) -> list[Point]:
    return [Point(model=m, **{**BASE, **v}) for m in models for v in VARIATIONS]


def add_estimates(points: list[Point]) -> None:
    from tuiwiz import speed
    from tuiwiz.estimate import estimate

    for p in points:
        config = p.config()
        if speed.speed_of(config) == "fast" and not p.options:
            # record what fast resolves to here: the point measures that, and a re-print
            # elsewhere (--measured) must estimate the same
            resolved = speed.resolve(config, speed.this_machine())
            p.options = {k: resolved["training"][k] for k in speed.FAST_KEYS}
            p.options["attn_implementation"] = resolved["model"]["attn_implementation"]
            config = p.config()
        est = estimate(config)
        p.estimate, p.estimate_allocated = est.total, est.allocated_peak


# --- measuring on the GPU ----------------------------------------------------------------------


def random_model(name: str, folder: Path) -> Path:
    """Random weights of a reference architecture, saved once in bf16 (bench/gpu_common.py)."""
    return gpu_common.random_model(name, folder, with_tokenizer=False)


def synthetic_dataset(vocab: int, seq: int, rows: int):
    import datasets
    import torch

    g = torch.Generator().manual_seed(0)
    ids = [torch.randint(3, vocab, (seq - (i % 2),), generator=g).tolist() for i in range(rows)]
    return datasets.Dataset.from_dict({"input_ids": ids, "labels": ids})


def measure(point: Point, model_dir: Path, nvml: NvmlPeak | None, out: Path) -> None:
    """Train the point's steps from a fresh model; read torch's and NVML's peaks (on CUDA)."""
    import contextlib
    import gc

    import torch
    from trl import SFTTrainer

    from tuiwiz.demo.build import build_tokenizer
    from tuiwiz.train import builders

    config = point.config()
    config["model"]["name_or_path"] = str(model_dir)
    vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
    tokenizer = build_tokenizer()  # only its pad id is used: the data is already token ids
    cuda = torch.cuda.is_available()  # not with --smoke, which checks the path on the CPU
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        # Whatever an earlier point left resident (a reference held inside a library) is not
        # this point's memory: measure from it. `leftover` shows how much that was.
        before_alloc, before_resv = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
        point.leftover = before_resv
        torch.cuda.reset_peak_memory_stats()
    with nvml if nvml is not None else contextlib.nullcontext():
        model = builders.load_model(str(model_dir), config)
        args = builders.training_arguments(config, out, False, notice=lambda m: None)
        trainer = SFTTrainer(
            model=model,
            args=args,
            processing_class=tokenizer,
            train_dataset=synthetic_dataset(vocab, point.seq, point.steps * point.batch),
        )
        trainer.train()
        if cuda:
            torch.cuda.synchronize()
    if not cuda:
        point.note = "smoke: trained on the CPU, nothing measured"
        return
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
        "settings",
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
                p.settings + (f" {p.options}" if p.options else ""),
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
    parser.add_argument(
        "--long",
        nargs="+",
        metavar="SETTINGS:SEQ",
        help=f"{LONG_MODEL} points at batch 1 instead of the grid, e.g. default:4096 fast:32768",
    )
    parser.add_argument("--big", action="store_true", help=f"add a {BIG_MODEL} point at 4k")
    parser.add_argument("--steps", type=int, default=3, help="training steps per --long point")
    parser.add_argument("--work", type=Path, help="where the random models go")
    parser.add_argument(
        "--merge", type=Path, help="an earlier --json file: its points come first in the output"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="--long points of a tiny model on the CPU: checks"
    )
    args = parser.parse_args(argv)
    points = grid(args.models)
    if args.long or args.big:
        points = long_points(args.long or [], steps=args.steps)
        if args.big:
            points.insert(0, long_points(["default:4096"], BIG_MODEL, args.steps)[0])
    if args.smoke:
        long_points(args.long or [])  # the real points' settings are checked, not run
        points = long_points(["default:96", "bf16:96", "fast:96"], "smoke", steps=2)
    if args.measured:
        known = {f.name for f in fields(Point)}
        rows = json.loads(args.measured.read_text())
        points = [Point(**{k: v for k, v in p.items() if k in known}) for p in rows]
    add_estimates(points)
    if args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            for p in points:
                measure(p, random_model(p.model, Path(tmp)), None, Path(tmp) / "out")
    elif not args.dry_run and not args.measured:
        import torch

        if not torch.cuda.is_available():
            print("gpu_memory: no CUDA GPU; use --dry-run", file=sys.stderr)
            return 2
        nvml = NvmlPeak(torch.cuda.current_device())
        torch.cuda.init()
        free = torch.cuda.mem_get_info()[0]
        started = time.monotonic()
        need = max(gpu_common.weights_bytes(p.model) for p in points)
        work = args.work or gpu_common.work_dir(need)
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            for p in points:
                if time.monotonic() - started > args.budget * 60:
                    p.note = "skipped: time budget"
                elif p.estimate > 0.95 * free:
                    p.note = "skipped: estimate exceeds free memory"
                else:
                    try:
                        measure(p, random_model(p.model, work), nvml, Path(tmp) / "out")
                    except torch.cuda.OutOfMemoryError:
                        p.note = "CUDA OOM"
                        torch.cuda.empty_cache()
                    except Exception as exc:  # one broken point must not lose the others
                        p.note = f"error: {type(exc).__name__}: {str(exc)[:120]}"
                        torch.cuda.empty_cache()
                print(table([p]).splitlines()[-1], flush=True)
    if args.merge and args.merge.is_file() and not args.measured:
        known = {f.name for f in fields(Point)}
        rows = json.loads(args.merge.read_text())
        earlier = [Point(**{k: v for k, v in p.items() if k in known}) for p in rows]
        add_estimates(earlier)
        points = earlier + points
    print(table(points))
    if args.json:
        args.json.write_text(json.dumps([asdict(p) for p in points], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
