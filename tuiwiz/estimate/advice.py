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
from tuiwiz import speed
from tuiwiz.estimate.core import LIGER_MODEL_TYPES, Estimate, estimate_setup
from tuiwiz.estimate.lengths import TokenLengths, longest_example
from tuiwiz.estimate.setup import from_config
from tuiwiz.inspect.arch import ArchSummary
from tuiwiz.inspect.lora import plan as lora_plan
from tuiwiz.launch import Launch, launch_of

# "Fits with little room": less than this share of the free memory left over. Allocator
# behaviour, other processes and longer-than-usual batches eat into a thin margin.
TIGHT = 0.10
ATTENTION_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj")

# Suggestions are ranked by what they cost the result, then by whether they fit and how much
# they save: first what trains the same model (slower, or with other kernels or more RAM), then
# what changes the model trained (precision, fewer adapters), last what changes the data it
# sees (examples cut, a different effective batch).
KEEPS, CHANGES_MODEL, CHANGES_DATA = 0, 1, 2


@dataclass(frozen=True)
class Suggestion:
    title: str  # what to change, in plain words
    overrides: list[str]  # section.key=value, as `--set` takes them
    total_bytes: int  # the new estimated total
    saves_bytes: int
    fits: bool | None  # with the new total; None without a GPU to compare with
    # KEEPS: the same model is trained; CHANGES_MODEL: what is learned changes (precision,
    # adapters); CHANGES_DATA: examples are cut or the effective batch changes
    cost: int = KEEPS

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
    """A resolved preset with `section.key=value` overrides applied and validated. A preset
    estimated before its data is chosen has [data] path None (validate's require_data=False):
    validated again the same way."""
    no_data = (config.get("data") or {}).get("path") is None
    plain = config
    if no_data:
        plain = {**config, "data": {k: v for k, v in config["data"].items() if k != "path"}}
    return cfg.validate(
        cfg.apply_overrides(plain, overrides), "suggestion", require_data=not no_data
    )


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
        machine: speed.Machine | None = None,
        lengths: TokenLengths | None = None,
    ) -> None:
        self.config, self.summary, self.device = config, summary, device
        self.default_free, self.gpus_free = free, gpus_free
        self.gpu_count = len(gpus_free) if gpus_free else None
        self.machine = machine or speed.Machine(
            cuda=device == "cuda", liger=False, flash_attn=False
        )
        self.lengths = lengths

    def total(self, config: dict[str, Any]) -> int:
        config = speed.resolve(config, self.machine)
        setup = from_config(config, self.device, longest=longest_example(self.lengths))
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
    *,
    machine: speed.Machine | None = None,
    lengths: TokenLengths | None = None,
) -> list[Suggestion]:
    """Concrete changes when the run does not fit `gpu_free_bytes` (the free memory of the
    tightest GPU it uses; the estimate is per GPU) or fits with little room: those that train
    the same model first (see KEEPS), then by whether they fit and how much they save. Empty
    when it fits comfortably or there is no GPU to compare with.

    `gpus_free`: the free memory of every visible GPU, in order; with two or more, sharding the
    run over them with FSDP is considered too. `machine`: what this machine can run (Liger,
    flash-attn; this machine when None). `lengths`: the dataset's token lengths, when known."""
    machine = machine or speed.this_machine(cuda=device == "cuda")
    if base is None:
        from tuiwiz.estimate.core import estimate

        gpu_count = len(gpus_free) if gpus_free else None
        base = estimate(
            resolved_config, summary, device, gpu_count, machine=machine, lengths=lengths
        )
    summary = base.summary
    if gpu_free_bytes is None or not is_tight(base.total, gpu_free_bytes):
        return []
    est = _Estimator(resolved_config, summary, device, gpu_free_bytes, gpus_free, machine, lengths)
    c, t = resolved_config, resolved_config["training"]
    world = base.world_size
    out: list[tuple[str, int, list[str], int]] = []
    for title, changes in _launch_options(est, base.launch):
        total, overrides = est.variant(changes)
        same_batch = "effective batch" not in title or "same effective batch" in title
        out.append((title, total, overrides, KEEPS if same_batch else CHANGES_DATA))
    for title, changes in _memory_options(est, summary):
        total, overrides = est.variant(changes)
        out.append((title, total, overrides, KEEPS))

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
                KEEPS,
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
                KEEPS,
            )
        )
    out += _shorter_sequences(est, c["data"], gpu_free_bytes)
    q = c["quantization"]
    if not q["load_in_4bit"]:
        total, overrides = est.variant(
            {"quantization.load_in_4bit": True, "quantization.load_in_8bit": False}
        )
        out.append(("load the base model in 4-bit nf4 (QLoRA)", total, overrides, CHANGES_MODEL))
    optim = str(t.get("optim", ""))
    if optim != "paged_adamw_8bit" and "8bit" not in optim and optim not in ("sgd", "adafactor"):
        total, overrides = est.variant({"training.optim": "paged_adamw_8bit"})
        out.append(("8-bit paged AdamW (paged_adamw_8bit)", total, overrides, KEEPS))
    if c["model"]["attn_implementation"] == "eager":
        total, overrides = est.variant({"model.attn_implementation": "sdpa"})
        out.append(
            (
                "sdpa attention instead of eager (no (S x S) attention matrix kept)",
                total,
                overrides,
                KEEPS,
            )
        )
    targets = c["lora"]["target_modules"]
    attention = _attention_targets(summary)
    if targets == "all-linear" or (isinstance(targets, list) and len(targets) > len(attention)):
        total, overrides = est.variant({"lora.target_modules": attention})
        out.append((f"adapters on {', '.join(attention)} only", total, overrides, CHANGES_MODEL))
    if c["lora"]["use_dora"]:
        total, overrides = est.variant({"lora.use_dora": False})
        out.append(("plain LoRA instead of DoRA", total, overrides, CHANGES_MODEL))

    # A change that saves less than this is not worth a line: noise next to the estimate's error.
    worthwhile = max(64 << 20, base.total // 100)
    suggestions = [
        Suggestion(
            title,
            overrides,
            total,
            base.total - total,
            fits(total, est.free(apply(c, overrides))),
            cost,
        )
        for title, total, overrides, cost in out
        if base.total - total >= worthwhile
    ]
    if suggestions and not any(s.fits and s.cost == KEEPS for s in suggestions):
        combined = _combine(est, suggestions, gpu_free_bytes)
        # worth a line unless one change that costs the result no more fits alone
        if combined is not None and not any(
            s.fits and s.cost <= combined.cost for s in suggestions
        ):
            suggestions.append(combined)
    suggestions.sort(key=rank)
    return suggestions


def rank(s: Suggestion) -> tuple[int, bool, int]:
    """What a suggestion costs the result first, then whether it fits, then its saving."""
    return (s.cost, not s.fits, -s.saves_bytes)


def _memory_options(est: _Estimator, summary: ArchSummary) -> list[tuple[str, dict[str, Any]]]:
    """Changes that train the same model in less GPU memory: activations in CPU RAM, the
    unquantized weights in the compute dtype, Liger's kernels, flash-attn (where this machine
    has them)."""
    c, t, m = est.config, est.config["training"], est.machine
    out: list[tuple[str, dict[str, Any]]] = []
    if not t.get("activation_offloading") and m.cuda:
        out.append(
            (
                "activation offloading: saved activations in CPU RAM (same result, slower steps)",
                {"training.activation_offloading": True},
            )
        )
    q = c["quantization"]
    quantized = q["load_in_4bit"] or q["load_in_8bit"]
    fsdp = launch_of(c, est.gpu_count).fsdp
    if quantized and q["upcast_unquantized"] and not fsdp:
        out.append(
            (
                "keep the unquantized weights (embeddings, LM head, norms) in bf16, not float32",
                {"quantization.upcast_unquantized": False},
            )
        )
    model_type = str(summary.facts.get("model_type") or "")
    if not t.get("use_liger_kernel") and m.liger_works and model_type in LIGER_MODEL_TYPES:
        out.append(
            ("Liger kernels (fewer activations kept, faster)", {"training.use_liger_kernel": True})
        )
    if c["model"]["attn_implementation"] in ("sdpa", "eager") and m.flash_attn_works:
        out.append(
            (
                "flash_attention_2 (no attention mask kept)",
                {"model.attn_implementation": "flash_attention_2"},
            )
        )
    return out


def _shorter_sequences(
    est: _Estimator, data: dict[str, Any], free: int
) -> list[tuple[str, int, list[str], int]]:
    """The longest max_seq_length (in steps of 1/4 down to 1/8) that fits, or the shortest
    tried; with the dataset's lengths known, the share of its examples that would be cut."""
    seq = int(data["max_seq_length"])
    longest = longest_example(est.lengths)
    if longest is not None and not data.get("packing"):
        seq = min(seq, longest)  # a max_seq_length above the longest example saves nothing
    ladder = [
        max(64, n // 64 * 64) for n in (seq * 3 // 4, seq // 2, seq // 4, seq // 8) if n >= 64
    ]
    for i, n in enumerate(ladder):
        total, overrides = est.variant({"data.max_seq_length": n})
        if total <= free or i == len(ladder) - 1:
            cut = est.lengths.cut_phrase(n) if est.lengths else "longer examples are cut"
            return [(f"shorter max_seq_length {n} ({cut})", total, overrides, CHANGES_DATA)]
    return []


def _combine(est: _Estimator, singles: list[Suggestion], free: int) -> Suggestion | None:
    """When no change that keeps the result is enough alone: apply changes together, in rank
    order (those that keep the result first, the biggest saving first among them), until the
    run fits."""
    overrides: list[str] = []
    titles: list[str] = []
    total = None
    cost = KEEPS
    for s in sorted(singles, key=lambda s: (s.cost, -s.saves_bytes)):
        keys = {o.split("=", 1)[0] for o in s.overrides}
        if any(o.split("=", 1)[0] in keys for o in overrides):
            continue
        overrides += s.overrides
        titles.append(s.title.split(" (")[0].split(":")[0])
        cost = max(cost, s.cost)
        config = apply(est.config, overrides)
        total, free = est.total(config), est.free(config)
        if total <= free:
            break
    if total is None or len(titles) < 2:
        return None
    base = est.total(est.config)
    return Suggestion(
        "together: " + "; ".join(titles), overrides, total, base - total, total <= free, cost
    )
