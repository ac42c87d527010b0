"""Fault injection for tests: faults that our CPU-only machines cannot produce for real.

Set TUIWIZ_FAULT in the training process's environment:
  oom@N        raise torch's CUDA OutOfMemoryError at the end of optimizer step N
  disk_full@N  fail the checkpoint save at step N with ENOSPC, after writing part of it
  stop@N       a stop request (as SIGTERM or `tuiwiz stop` make) at the end of step N: a stop
               at an exact step, which a signal from a test cannot promise
A `:rankK` suffix (oom@3:rank1) injects the fault in rank K of a multi-process run only.
Nothing happens when the variable is unset, which is always the case outside the test suite.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from transformers import TrainerCallback


def parse(value: str | None) -> tuple[str, int, int | None] | None:
    """(kind, step, rank or None for every rank), or None when unset or not understood."""
    if not value or "@" not in value:
        return None
    kind, _, rest = value.partition("@")
    step, _, selector = rest.partition(":")
    rank: int | None = None
    if selector:
        if not (selector.startswith("rank") and selector[4:].isdigit()):
            return None
        rank = int(selector[4:])
    if not step.isdigit() or kind not in ("oom", "disk_full", "stop"):
        return None
    return kind, int(step), rank


class OutOfMemoryAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            import torch

            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (injected by TUIWIZ_FAULT)"
            )


def fail_save_at(trainer: Any, step: int) -> None:
    """Make the trainer's checkpoint save at `step` write a partial checkpoint, then fail."""
    original = trainer._save_checkpoint

    def save(model, trial, *args, **kwargs):
        if trainer.state.global_step != step:
            return original(model, trial, *args, **kwargs)
        folder = os.path.join(trainer.args.output_dir, f"checkpoint-{step}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "adapter_model.safetensors"), "wb") as f:
            f.write(b"\0" * 1024)  # what a full disk leaves behind: a truncated file
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), folder)

    trainer._save_checkpoint = save


class StopAt(TrainerCallback):
    def __init__(self, step: int, events: Any) -> None:
        self.step, self.events = step, events

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step + 1 == self.step:
            self.events.request_stop()  # as the signal handler does, during the step


def install(trainer: Any, events: Any = None) -> None:
    """Install the fault TUIWIZ_FAULT names, if any; `events` is the run's EventsCallback."""
    fault = parse(os.environ.get("TUIWIZ_FAULT"))
    if fault is None:
        return
    kind, step, rank = fault
    if rank is not None and rank != int(os.environ.get("RANK", "0")):
        return
    if kind == "oom":
        trainer.add_callback(OutOfMemoryAt(step))
    elif kind == "stop":
        trainer.add_callback(StopAt(step, events))
    else:
        fail_save_at(trainer, step)
