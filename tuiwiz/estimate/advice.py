"""Fit and advice: compare an estimate with a GPU's free memory, and propose changes that make a
run fit, each as `section.key=value` overrides with the estimated total after applying them.

The TUI applies a suggestion with one key and the trainer's OOM handler records them, so every
suggestion is machine-applicable: `tuiwiz run PRESET --set ...` takes the overrides as they are.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from tuiwiz import config as cfg
from tuiwiz.estimate.core import Estimate, estimate_setup
from tuiwiz.estimate.setup import from_config
from tuiwiz.inspect.arch import ArchSummary
from tuiwiz.inspect.lora import plan as lora_plan
from tuiwiz.launch import Launch, launch_of

# "Fits with little room": less than this share of the free memory left over. Allocator
# behaviour, other processes and longer-than-usual batches eat into a thin margin.
TIGHT = 0.10
ATTENTION_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class Suggestion:
    title: str  # what to change, in plain words
    overrides: list[str]  # section.key=value, as `--set` takes them
    total_bytes: int  # the new estimated total
    saves_bytes: int
    fits: bool | None  # with the new total; None without a GPU to compare with

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fits(total: int, free: int | None) -> bool | None:
    return None if free is None else total <= free


def is_tight(total: int, free: int | None) -> bool:
    return free is not None and total > (1 - TIGHT) * free


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(json.dumps(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else str(value)


def apply(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A resolved preset with `section.key=value` overrides applied and validated."""
    return cfg.validate(cfg.apply_overrides(config, overrides), "suggestion")


def _with(config: dict[str, Any], changes: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    overrides = [f"{key}={_toml(value)}" for key, value in changes.items()]
    return apply(config, overrides), overrides


class _Estimator:
    """Re-estimates variants of one configuration on the same architecture summary."""

    def __init__(
        self,
        config: dict[str, Any],
        summary: ArchSummary,
        device: str,
        free: int,
        gpus_free: list[int] | None = None,
    ) -> None:
        self.config, self.summary, self.device = config, summary, device
        self.default_free, self.gpus_free = free, gpus_free
        self.gpu_count = len(gpus_free) if gpus_free else None

    def total(self, config: dict[str, Any]) -> int:
        setup = from_config(config, self.device)
        est = estimate_setup(
            setup,
            self.summary,
            lora_plan(self.summary, config["lora"]),
            config["training"],
            launch_of(config, self.gpu_count),
        )
        return est.total

    def free(self, config: dict[str, Any]) -> int:
        """Free memory of the tightest GPU a variant uses (its first nproc_per_node GPUs)."""
        if not self.gpus_free:
            return self.default_free
        n = launch_of(config, self.gpu_count).nproc_per_node
        return min(self.gpus_free[:n])

    def variant(self, changes: dict[str, Any]) -> tuple[int, list[str]]:
        config, overrides = _with(self.config, changes)
        return self.total(config), overrides


def _launch_options(est: _Estimator, launch: Launch) -> list[tuple[str, dict[str, Any]]]:
    """Sharding the model with FSDP when several GPUs are visible: over the GPUs DDP already
    uses, or over every visible GPU (for one process, or for FSDP on fewer GPUs). Gradient
    accumulation shrinks to keep the effective batch when the new world size divides it."""
    gpus = len(est.gpus_free or [])
    if gpus < 2 or launch.nnodes > 1:
        return []
    if launch.mode == "ddp":
        n = launch.nproc_per_node
    elif launch.nproc_per_node < gpus:
        n = gpus
    else:
        return []
    t = est.config["training"]
    batch, accum = int(t["per_device_train_batch_size"]), int(t["gradient_accumulation_steps"])
    effective = batch * accum * launch.world_size
    changes: dict[str, Any] = {"launch.strategy": "fsdp", "launch.nproc_per_node": n}
    if launch.strategy == "fsdp":
        del changes["launch.strategy"]
    if n == launch.nproc_per_node:
        del changes["launch.nproc_per_node"]
    title = f"FSDP over {n} GPUs: each GPU holds 1/{n} of the weights and optimizer state"
    if n != launch.world_size:
        if (accum * launch.world_size) % n == 0:
            changes["training.gradient_accumulation_steps"] = accum * launch.world_size // n
            title += f" (same effective batch of {effective})"
        else:
            title += f" (effective batch {effective} -> {batch * accum * n})"
    return [(title, changes)]


def _batch_options(t: dict[str, Any]) -> list[tuple[int, int]]:
    """Smaller per-device batches that keep the effective batch exactly (b divides it)."""
    batch, accum = int(t["per_device_train_batch_size"]), int(t["gradient_accumulation_steps"])
    effective = batch * accum
    return [(b, effective // b) for b in range(batch - 1, 0, -1) if effective % b == 0]


def _attention_targets(summary: ArchSummary) -> list[str]:
    names = list(summary.linear_modules())
    chosen = [n for n in ATTENTION_NAMES if n in names]
    return chosen or names[: max(1, len(names) // 2)]


def suggest(
    resolved_config: dict[str, Any],
    gpu_free_bytes: int | None,
    summary: ArchSummary | None = None,
    base: Estimate | None = None,
    device: str = "cuda",
    gpus_free: list[int] | None = None,
) -> list[Suggestion]:
    """Concrete changes, largest saving first, when the run does not fit `gpu_free_bytes` (the
    free memory of the tightest GPU it uses; the estimate is per GPU) or fits with little room.
    Empty when it fits comfortably or there is no GPU to compare with.

    `gpus_free`: the free memory of every visible GPU, in order; with two or more, sharding the
    run over them with FSDP is considered too."""
    if base is None:
        from tuiwiz.estimate.core import estimate

        gpu_count = len(gpus_free) if gpus_free else None
        base = estimate(resolved_config, summary, device, gpu_count)
    summary = base.summary
    if gpu_free_bytes is None or not is_tight(base.total, gpu_free_bytes):
        return []
    est = _Estimator(resolved_config, summary, device, gpu_free_bytes, gpus_free)
    c, t = resolved_config, resolved_config["training"]
    world = base.world_size
    out: list[tuple[str, int, list[str]]] = []
    for title, changes in _launch_options(est, base.launch):
        total, overrides = est.variant(changes)
        out.append((title, total, overrides))

    options = _batch_options(t)
    if options:
        fitting = None
        for b, accum in options:  # largest first
            total, overrides = est.variant(
                {
                    "training.per_device_train_batch_size": b,
                    "training.gradient_accumulation_steps": accum,
                }
            )
            fitting = (b, accum, total, overrides)
            if total <= gpu_free_bytes:
                break
        b, accum, total, overrides = fitting
        out.append(
            (
                f"per-device batch {b} with gradient accumulation {accum} (same effective "
                f"batch of {b * accum * world})",
                total,
                overrides,
            )
        )
    if not t.get("gradient_checkpointing"):
        total, overrides = est.variant({"training.gradient_checkpointing": True})
        out.append(
            (
                "turn gradient checkpointing on (recompute activations in backward, "
                "~20-30% slower)",
                total,
                overrides,
            )
        )
    seq = int(c["data"]["max_seq_length"])
    lengths = [n for n in (seq * 3 // 4, seq // 2, seq // 4, seq // 8) if n >= 64]
    for n in lengths:
        n = max(64, n // 64 * 64)
        total, overrides = est.variant({"data.max_seq_length": n})
        if total <= gpu_free_bytes or n == lengths[-1]:
            out.append((f"shorter max_seq_length {n} (longer examples are cut)", total, overrides))
            break
    q = c["quantization"]
    if not q["load_in_4bit"]:
        total, overrides = est.variant(
            {"quantization.load_in_4bit": True, "quantization.load_in_8bit": False}
        )
        out.append(("load the base model in 4-bit nf4 (QLoRA)", total, overrides))
    optim = str(t.get("optim", ""))
    if optim != "paged_adamw_8bit" and "8bit" not in optim and optim not in ("sgd", "adafactor"):
        total, overrides = est.variant({"training.optim": "paged_adamw_8bit"})
        out.append(("8-bit paged AdamW (paged_adamw_8bit)", total, overrides))
    if c["model"]["attn_implementation"] == "eager":
        total, overrides = est.variant({"model.attn_implementation": "sdpa"})
        out.append(
            ("sdpa attention instead of eager (no (S x S) attention matrix kept)", total, overrides)
        )
    targets = c["lora"]["target_modules"]
    attention = _attention_targets(summary)
    if targets == "all-linear" or (isinstance(targets, list) and len(targets) > len(attention)):
        total, overrides = est.variant({"lora.target_modules": attention})
        out.append((f"adapters on {', '.join(attention)} only", total, overrides))
    if c["lora"]["use_dora"]:
        total, overrides = est.variant({"lora.use_dora": False})
        out.append(("plain LoRA instead of DoRA", total, overrides))

    # A change that saves less than this is not worth a line: noise next to the estimate's error.
    worthwhile = max(64 << 20, base.total // 100)
    suggestions = [
        Suggestion(
            title, overrides, total, base.total - total, fits(total, est.free(apply(c, overrides)))
        )
        for title, total, overrides in out
        if base.total - total >= worthwhile
    ]
    if suggestions and not any(s.fits for s in suggestions):
        combined = _combine(est, suggestions, gpu_free_bytes)
        if combined is not None:
            suggestions.append(combined)
    suggestions.sort(key=lambda s: (not s.fits, -s.saves_bytes))
    return suggestions


def _combine(est: _Estimator, singles: list[Suggestion], free: int) -> Suggestion | None:
    """When no single change is enough: apply the changes together, biggest saving first,
    until the run fits."""
    overrides: list[str] = []
    titles: list[str] = []
    total = None
    for s in sorted(singles, key=lambda s: -s.saves_bytes):
        keys = {o.split("=", 1)[0] for o in s.overrides}
        if any(o.split("=", 1)[0] in keys for o in overrides):
            continue
        overrides += s.overrides
        titles.append(s.title.split(" (")[0].split(":")[0])
        config = apply(est.config, overrides)
        total, free = est.total(config), est.free(config)
        if total <= free:
            break
    if total is None or len(titles) < 2:
        return None
    base = est.total(est.config)
    return Suggestion(
        "together: " + "; ".join(titles), overrides, total, base - total, total <= free
    )
