"""Why a run that diverged failed, and what to change: a NaN or infinite loss leaves adapter
weights that are not numbers, and an adapter like that must never be written or shipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# tuiwiz's default learning rate for LoRA (config.TRAINING_DEFAULTS), the first thing to go back to.
SAFE_LEARNING_RATE = 2e-4


def reason(step: int | None, config: dict[str, Any], checkpoint: Path | None) -> str:
    training = config["training"]
    rate, clip = training["learning_rate"], training.get("max_grad_norm", 1.0)
    kept = (
        f"the last checkpoint ({checkpoint.name}) was saved before and is finite"
        if checkpoint
        else "no checkpoint was saved before it"
    )
    return (
        f"training diverged at step {step}: the loss or the gradients became NaN or infinite "
        f"and the adapter weights are no longer numbers (learning_rate {rate:g}, max_grad_norm "
        f"{clip:g}); no adapter was written and "
        f"{kept}. Lower the learning rate, keep gradient clipping on (max_grad_norm = 1.0), or "
        "check the data for broken examples (`tuiwiz data PRESET`)"
    )


def advice(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Changes to try, as `--set` overrides (the format of the out-of-memory suggestions)."""
    training = config["training"]
    out = []
    rate = float(training["learning_rate"])
    lower = SAFE_LEARNING_RATE if rate > SAFE_LEARNING_RATE else rate / 10
    out.append(
        _suggestion(
            f"a lower learning rate: {lower:g} instead of {rate:g}",
            [f"training.learning_rate={lower:g}"],
        )
    )
    if float(training.get("max_grad_norm", 1.0)) <= 0:
        out.append(
            _suggestion(
                "clip gradients at norm 1.0 (max_grad_norm = 0 turns clipping off)",
                ["training.max_grad_norm=1.0"],
            )
        )
    if training.get("fp16"):
        out.append(
            _suggestion(
                "compute in bfloat16 instead of float16, whose range overflows more easily",
                ["training.fp16=false", "training.bf16=true"],
            )
        )
    return out


def _suggestion(title: str, overrides: list[str]) -> dict[str, Any]:
    return {
        "title": title,
        "overrides": overrides,
        "total_bytes": None,
        "saves_bytes": None,
        "fits": None,
    }
