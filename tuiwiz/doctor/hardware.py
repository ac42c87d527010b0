"""Hardware checks: each GPU from NVML, and the free disk where runs and caches are written."""

from __future__ import annotations

import os
from pathlib import Path

from tuiwiz import compat
from tuiwiz.doctor import FAIL, OK, WARN, Check, Facts
from tuiwiz.gpu import GpuReading

GiB = 1 << 30
# A checkpoint of a LoRA run on an 8B model: r=16 on every linear layer is ~42M trainable
# parameters, kept in float32 with AdamW's two moments: 42M x 12 bytes ~ 0.5 GB, and the
# checkpoint folder also holds the scheduler, RNG state and tokenizer. A run keeps a few.
TYPICAL_CHECKPOINT = 1 * GiB
RUNS_ROOM = 10 * TYPICAL_CHECKPOINT  # a run with several checkpoints, and an export
# What the Hugging Face cache must take for one model: an 8B model's weights in bfloat16.
TYPICAL_MODEL = 16 * GiB


def capable(gpu: GpuReading, wanted: tuple[int, int]) -> bool:
    return gpu.compute_capability is not None and compat.release(gpu.compute_capability) >= wanted


def _no_gpu_fix(error: str | None) -> str:
    if error and "nvidia-ml-py" in error:
        return "pip install nvidia-ml-py (a tuiwiz dependency) in tuiwiz's environment"
    if error and "CUDA_VISIBLE_DEVICES" in error:
        return "unset CUDA_VISIBLE_DEVICES, or list the GPUs to use in it"
    return (
        "nothing to do on a laptop; on a GPU server, install the NVIDIA driver "
        "(nvidia-smi lists the GPUs once it works)"
    )


def gpus(facts: Facts) -> list[Check]:
    status = facts.gpus
    recorded = "" if status.source == "nvml" else " (recorded readings)"
    if not status.gpus:
        return [
            Check(
                "gpu",
                WARN,
                f"{status.error or 'no NVIDIA GPU'}{recorded}; training runs on the CPU "
                "(fine for the demo, slow for real models)",
                _no_gpu_fix(status.error),
            )
        ]
    checks = []
    for g in status.gpus:
        head = (
            f"{g.name}, {g.total_bytes / GiB:.0f} GiB ({g.free_bytes / GiB:.1f} GiB free){recorded}"
        )
        cc = g.compute_capability
        name = f"gpu {g.index}"
        if cc is None:
            checks.append(Check(name, OK, f"{head}; compute capability unknown"))
        elif capable(g, (8, 0)):
            checks.append(Check(name, OK, f"{head}; compute {cc}: bf16 and flash-attention 2"))
        elif capable(g, (7, 0)):
            checks.append(
                Check(
                    name,
                    WARN,
                    f"{head}; compute {cc}: no bf16 and no flash-attention 2",
                    "train in float16: --set training.bf16=false --set training.fp16=true "
                    "--set quantization.bnb_4bit_compute_dtype=float16 "
                    "--set model.attn_implementation=sdpa",
                )
            )
        else:
            checks.append(
                Check(
                    name,
                    WARN,
                    f"{head}; compute {cc}: older than the GPUs tuiwiz is tested on (7.0+)",
                    "use a GPU of compute capability 7.0 or newer (Volta, Turing, Ampere, ...)",
                )
            )
    return checks


def _existing(path: Path) -> Path:
    """`path`, or its nearest existing parent (where it would be created)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mount(path: Path) -> Path:
    """The mount point of the filesystem `path` is on."""
    try:
        device = os.stat(path).st_dev
        while path != path.parent and os.stat(path.parent).st_dev == device:
            path = path.parent
    except OSError:
        pass
    return path


def disk(facts: Facts) -> list[Check]:
    """Free space where runs (./runs), the Hugging Face cache and tuiwiz's cache go, once per
    filesystem."""
    from tuiwiz.doctor.environment import hub_cache
    from tuiwiz.paths import cache_dir

    places = [
        ("runs", facts.cwd / "runs", RUNS_ROOM),
        ("Hugging Face cache", hub_cache(facts.environ), TYPICAL_MODEL),
        ("tuiwiz cache", _tuiwiz_cache(facts, cache_dir), TYPICAL_CHECKPOINT),
    ]
    groups: dict[Path, list[tuple[str, Path, int]]] = {}
    for label, path, room in places:
        groups.setdefault(_mount(_existing(path)), []).append((label, path, room))
    checks = []
    for mount, members in groups.items():
        try:
            free = int(facts.disk_usage(_existing(members[0][1])).free)
        except OSError as e:
            checks.append(Check("disk", WARN, f"{mount}: cannot read its free space ({e})"))
            continue
        labels = ", ".join(label for label, _, _ in members)
        detail = f"{mount}: {free / GiB:.1f} GiB free ({labels})"
        move = _move_hint([label for label, _, _ in members])
        if free < TYPICAL_CHECKPOINT:
            checks.append(
                Check(
                    "disk",
                    FAIL,
                    f"{detail}: less than one checkpoint ({TYPICAL_CHECKPOINT / GiB:.0f} GiB)",
                    f"free space on {mount}, or {move}",
                )
            )
            continue
        short = [label for label, _, room in members if free < room]
        if short:
            needs = max(room for label, _, room in members if label in short)
            checks.append(
                Check(
                    "disk",
                    WARN,
                    f"{detail}: tight for {', '.join(short)} (~{needs / GiB:.0f} GiB for an "
                    "8B model's download or a run's checkpoints)",
                    f"free space on {mount}, or {move}",
                )
            )
            continue
        checks.append(Check("disk", OK, detail))
    return checks


def _tuiwiz_cache(facts: Facts, cache_dir) -> Path:
    given = facts.environ.get("TUIWIZ_CACHE_DIR")
    return Path(given).expanduser() if given else cache_dir()


def _move_hint(labels: list[str]) -> str:
    hints = []
    if "runs" in labels:
        hints.append("write runs elsewhere (tuiwiz run PRESET --output-dir DIR)")
    if "Hugging Face cache" in labels:
        hints.append("move the Hugging Face cache (HF_HOME=DIR)")
    if "tuiwiz cache" in labels:
        hints.append("move tuiwiz's cache (TUIWIZ_CACHE_DIR=DIR)")
    return ", ".join(hints)
