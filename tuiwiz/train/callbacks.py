"""The trainer callback that turns training progress into events and status updates."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from transformers import TrainerCallback

from tuiwiz.train.events import EventWriter
from tuiwiz.train.rundir import COMPLETE_MARKER, RunDir
from tuiwiz.train.state import RunState


def rss_bytes() -> int:
    """Resident memory of this process now (from /proc), or its peak where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_fields() -> dict[str, int]:
    import torch

    fields = {"rss_bytes": rss_bytes()}
    if torch.cuda.is_available():
        fields["gpu_memory_allocated"] = torch.cuda.memory_allocated()
        fields["gpu_memory_reserved"] = torch.cuda.memory_reserved()
        fields["gpu_max_memory_allocated"] = torch.cuda.max_memory_allocated()
    return fields


class EventsCallback(TrainerCallback):
    """Writes step / eval / checkpoint events; turns a stop request into save-and-stop.

    With several processes (`distributed`), every rank has one, but only the main one (global
    rank 0) writes events, status and checkpoint markers. A stop request may reach the ranks at
    different steps (or only one of them): the flag is all-reduced at each step's end, so every
    rank stops, and saves, at the same step; a rank left training alone would wait forever for
    the others in its next gradient all-reduce.
    """

    def __init__(
        self,
        run: RunDir,
        writer: EventWriter | None,
        started: dict[str, Any],
        save_total_limit: int | None = None,
        main: bool = True,
        distributed: bool = False,
    ) -> None:
        self.run = run
        self.save_total_limit = save_total_limit
        self.writer = writer
        self.started = started  # fields for the `started` event, known before training
        self.main = main
        self.distributed = distributed
        self.stop_requested = False
        self.diverged_at: int | None = None  # the step after which the weights were not finite
        self.last_loss: float | None = None
        self.evaluating_base = False  # set by BaseEvalCallback while it measures the base model
        self._last_time = time.monotonic()
        self._last_tokens = 0

    def request_stop(self) -> None:
        """Called from a signal handler: only set a flag, the trainer acts at the step's end."""
        self.stop_requested = True

    def on_train_begin(self, args, state, control, **kwargs):
        self._last_time = time.monotonic()
        self._last_tokens = state.num_input_tokens_seen or 0
        if not self.main:
            return
        self.writer.write(
            "started",
            step=state.global_step,
            max_steps=state.max_steps,
            num_train_epochs=args.num_train_epochs,
            **self.started,
        )
        self.run.write_status(
            state=RunState.RUNNING,
            phase="training",
            step=state.global_step,
            max_steps=state.max_steps,
            world_size=self.started.get("world_size", 1),
            effective_batch_size=self.started.get("effective_batch_size"),
        )

    def on_step_end(self, args, state, control, model=None, **kwargs):
        stop = self.stop_requested or (self.main and self.run.stop_file.exists())
        diverged = model is not None and not weights_finite(model)
        if self.distributed:
            stop, diverged = _any_rank([stop, diverged], args.device)
        if diverged:
            self._diverge(state.global_step, control)
        elif stop:
            self.stop_requested = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.diverged_at is not None:
            self._diverge(self.diverged_at, control)  # nothing more to log, evaluate or save
        return control

    def _diverge(self, step: int, control) -> None:
        """The weights are no longer numbers: stop before anything logs, evaluates or saves them,
        so the checkpoints on disk are all finite."""
        if self.diverged_at is None:
            self.diverged_at = step
        control.should_training_stop = True
        control.should_save = False
        control.should_log = False
        control.should_evaluate = False

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if not all(_finite(logs.get(k)) for k in ("loss", "grad_norm", "eval_loss")):
            # A non-finite loss or gradient norm that the weights have not shown (yet): the run
            # cannot be trusted from here on either. Every rank logs the same (gathered) numbers,
            # so every rank stops here together.
            self._diverge(state.global_step, control)
            return
        if not self.main:
            return
        if "loss" in logs:
            now = time.monotonic()
            tokens = state.num_input_tokens_seen or 0
            elapsed = max(now - self._last_time, 1e-9)
            self.last_loss = float(logs["loss"])
            self.writer.write(
                "step",
                step=state.global_step,
                max_steps=state.max_steps,
                epoch=round(state.epoch or 0.0, 4),
                loss=self.last_loss,
                learning_rate=logs.get("learning_rate"),
                grad_norm=_float(logs.get("grad_norm")),
                tokens_per_second=round((tokens - self._last_tokens) / elapsed, 1),
                tokens_seen=tokens,
                **memory_fields(),
            )
            self._last_time, self._last_tokens = now, tokens
            self.run.write_status(
                step=state.global_step,
                max_steps=state.max_steps,
                epoch=state.epoch,
                loss=self.last_loss,
            )
        if "eval_loss" in logs:
            eval_loss = float(logs["eval_loss"])
            base = {"base": True} if self.evaluating_base else {}
            self.writer.write(
                "eval",
                step=state.global_step,
                epoch=round(state.epoch or 0.0, 4),
                eval_loss=eval_loss,
                **base,
            )
            self.run.write_status(**{"base_eval_loss" if base else "eval_loss": eval_loss})

    def on_save(self, args, state, control, **kwargs):
        if self.distributed:
            # Every rank writes part of a checkpoint (its RNG state, FSDP shards): it is complete
            # only once all of them are done.
            import torch.distributed as dist

            dist.barrier()
        if not self.main:
            return
        path = self.run.checkpoints / f"checkpoint-{state.global_step}"
        if path.is_dir():
            # The trainer has written everything by now; the marker makes the checkpoint
            # eligible for resume, so a checkpoint cut short by a crash is never picked.
            (path / COMPLETE_MARKER).write_text(f"{state.global_step}\n")
            self.writer.write("checkpoint", step=state.global_step, path=str(path))
            self.run.write_status(checkpoint=str(path), step=state.global_step)
            self.run.rotate_checkpoints(self.save_total_limit, state.best_model_checkpoint)


class BaseEvalCallback(TrainerCallback):
    """Measures the base model's validation loss before the first step of a fresh run.

    The result is an `eval` event with step 0 and `"base": true`, so a reader can show how far
    training moved the validation loss. The adapter is switched off explicitly while measuring:
    LoRA's B starts at zero, so an untrained adapter changes nothing (DoRA's too: its magnitude
    starts at the weight's norm; both measured exact on the demo), but other initializations
    (PiSSA, LoftQ, ...) change the weights, and low-precision rounding need not cancel. Every
    random number generator is put back afterwards: a run with this evaluation trains exactly
    like one without it (same losses and adapter, bit for bit, measured on the demo).
    Add it after the EventsCallback, which writes the `started` event first.
    """

    def __init__(self, trainer: Any, events: EventsCallback) -> None:
        self.trainer = trainer
        self.events = events

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step != 0 or self.trainer.eval_dataset is None:
            return control
        model = self.trainer.model
        adapter_off = model.disable_adapter() if hasattr(model, "disable_adapter") else None
        with preserved_rng(), adapter_off or nullcontext():
            self.events.evaluating_base = True
            try:
                self.trainer.evaluate()
            finally:
                self.events.evaluating_base = False
        return control


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Put the state of Python's, NumPy's and torch's (CPU and CUDA) generators back on exit.

    Evaluation draws random numbers (a DataLoader draws a base seed from torch's generator each
    time it is iterated), and the shuffling and dropout of training use the same generators.
    """
    import random

    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def weights_finite(model: Any) -> bool:
    """Whether every trainable tensor is finite (no NaN, no inf). One fused norm over all of
    them: a NaN or inf anywhere makes its tensor's norm NaN or inf."""
    import torch

    params = [p.detach() for p in model.parameters() if p.requires_grad]
    if not params:
        return True
    norms = torch._foreach_norm(params)
    return bool(torch.isfinite(torch.stack([n.float() for n in norms])).all())


def _any_rank(flags: list[bool], device: Any) -> list[bool]:
    """Which of `flags` are true on any rank (an all-reduce: every rank must call it, in step)."""
    import torch
    import torch.distributed as dist

    value = torch.tensor([1 if f else 0 for f in flags], dtype=torch.int32, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return [bool(v) for v in value.tolist()]


def _finite(value: Any) -> bool:
    import math

    return not isinstance(value, int | float) or math.isfinite(value)


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
