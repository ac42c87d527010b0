"""Advice recorded when training runs out of GPU memory: the estimator's concrete changes."""

from __future__ import annotations

from typing import Any


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


def suggestions(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The estimator's suggestions for a run that ran out of memory (empty if none apply)."""
    try:
        from tuiwiz.estimate import suggest

        budget = memory_budget()
        if budget is None:
            return []
        return [s.to_json() for s in suggest(config, budget)]
    except Exception as e:  # the failure is reported either way; advice is best effort
        return [
            {
                "title": f"no suggestions: the estimator failed ({type(e).__name__}: {e})",
                "overrides": [],
                "total_bytes": 0,
                "saves_bytes": 0,
                "fits": None,
            }
        ]
