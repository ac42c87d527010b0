"""Why a run failed, in one line, and what to change: the estimator's changes for a CUDA
out-of-memory error, and the settings to try for a run that diverged (a NaN or infinite loss
leaves adapter weights that are not numbers, which must never be written or shipped).

A change to try is a suggestion {title, overrides, total_bytes, saves_bytes, fits}: `overrides`
are `--set` values; the byte counts and `fits` are the estimator's (None where not about
memory). `tuiwiz run` and `tuiwiz runs` print them, the dashboard starts a run from one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuiwiz.errors import describe_error, first_line

# tuiwiz's default learning rate for LoRA (config.TRAINING_DEFAULTS), the first thing to go back to.
SAFE_LEARNING_RATE = 2e-4


def is_out_of_memory(error: BaseException) -> bool:
    return type(error).__name__ == "OutOfMemoryError"


def reason(error: BaseException) -> str:
    """A failure in one line: "CUDA out of memory ...", or "TypeName: first line"."""
    if is_out_of_memory(error):
        text = first_line(error)
        return text if text.startswith("CUDA out of memory") else f"CUDA out of memory: {text}"
    return describe_error(error)


def advice(error: BaseException, config: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The changes to try after `error` (the estimator's, for out of memory; none otherwise)."""
    if config is None or not is_out_of_memory(error):
        return []
    return memory_suggestions(config)


def memory_budget() -> int | None:
    """Bytes this run can use on its GPU: NVML's free memory plus what this process holds."""
    from tuiwiz.gpu import read_gpus

    status = read_gpus()
    if not status.gpus:
        return None
    held = 0
    try:
        import torch

        if torch.cuda.is_available():
            held = torch.cuda.memory_reserved()
    except Exception:  # advice must never turn one failure into two
        held = 0
    return status.gpus[0].free_bytes + held


def memory_suggestions(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The estimator's suggestions for a run that ran out of memory (empty if none apply)."""
    try:
        from tuiwiz.estimate import suggest

        budget = memory_budget()
        if budget is None:
            return []
        return [s.to_json() for s in suggest(config, budget)]
    except Exception as e:  # the failure is reported either way; advice is best effort
        return [
            _suggestion(f"no suggestions: the estimator failed ({describe_error(e)})", [])
            | {"total_bytes": 0, "saves_bytes": 0}
        ]


def diverged_reason(step: int | None, config: dict[str, Any], checkpoint: Path | None) -> str:
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
        f"{clip:g}); no adapter was written and {kept}. Lower the learning rate, keep gradient "
        "clipping on (max_grad_norm = 1.0), or check the data for broken examples "
        "(`tuiwiz data PRESET`)"
    )


def diverged_advice(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Settings to try after a divergence, as `--set` overrides."""
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
