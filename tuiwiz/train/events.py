"""The events schema of `events.jsonl`: one flat JSON object a line, appended as training goes.

Every event has `event` (its kind) and `time` (Unix seconds). Kinds and their fields:
  started     step, max_steps, num_train_epochs, device, data_format, train_examples,
              validation_examples, effective_batch_size (per-device batch x accumulation x
              world_size), world_size (training processes, 1 without torchrun), strategy
              ("ddp" or "fsdp"; null for one process), trainable_params, total_params,
              resumed_from (checkpoint path or null)
  step        step, max_steps, epoch, loss, learning_rate, grad_norm, tokens_per_second,
              tokens_seen, rss_bytes, gpu_memory_allocated, gpu_memory_reserved,
              gpu_max_memory_allocated (the gpu_* fields only on CUDA)
  eval        step, epoch, eval_loss; base (true only on the event of step 0 that a fresh run
              with a validation split writes before its first step: the base model's loss)
  checkpoint  step, path
  finished    step, loss (last logged), train_runtime, adapter
  stopped     step, checkpoint
  failed      step, reason, suggestions (on CUDA out of memory: the estimator's changes,
              each {title, overrides: ["section.key=value"], total_bytes, saves_bytes, fits});
              with several processes also rank (the rank that failed first, or null)
Readers must ignore kinds and fields they do not know: later versions may add some.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class EventWriter:
    """Appends events, each flushed to disk at once so a live reader sees it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"event": kind, "time": round(time.time(), 3), **fields}
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()
        return event

    def close(self) -> None:
        self._file.close()


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete event in a file (a torn last line from a crash is ignored)."""
    events, _ = read_new(path, 0)
    return events


# Fields whose type every reader relies on; an event with another type there is damaged.
_INTEGERS = (
    "step",
    "max_steps",
    "train_examples",
    "validation_examples",
    "effective_batch_size",
    "world_size",
    "trainable_params",
    "total_params",
    "tokens_seen",
    "rss_bytes",
)
_STRINGS = ("device", "data_format", "strategy", "reason", "adapter", "path", "checkpoint")
_NUMBERS = (
    "time",
    "epoch",
    "loss",
    "eval_loss",
    "learning_rate",
    "grad_norm",
    "tokens_per_second",
    "train_runtime",
    "train_loss",
)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_event(line: bytes) -> dict[str, Any] | None:
    """One line of events.jsonl as an event, or None when it cannot be one (a crash can leave NUL
    bytes or a torn write behind; a reader skips such a line rather than break on it). A field
    of the wrong kind is left out; an event without what it is about (a step's number and loss,
    an evaluation's loss) is skipped."""
    try:
        event = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError too)
        return None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None
    placed = "step" in event
    for name in [*_INTEGERS, *_NUMBERS, *_STRINGS]:
        value = event.get(name)
        if value is None:
            continue
        if name in _INTEGERS:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif name in _NUMBERS:
            ok = is_number(value)
        else:
            ok = isinstance(value, str)
        if not ok:
            del event[name]
    if placed and "step" not in event:
        return None  # every reader places an event by its step
    required = {"step": ("step", "loss"), "eval": ("step", "eval_loss")}.get(event["event"], ())
    if any(event.get(name) is None for name in required):
        return None
    return event


def read_new(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Events after byte `offset`, and the offset after the last complete line. Damaged lines
    are skipped, and said once."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = []
    damaged = 0
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        event = parse_event(line)
        if event is None:
            damaged += 1
        else:
            events.append(event)
    if damaged:
        from tuiwiz.notices import notice_once

        notice_once(
            f"{path}: skipped {damaged} damaged line(s) that are not events; read the rest",
            key=f"damaged:{path}",
        )
    return events, offset + end


def follow(
    path: Path, poll: float = 0.2, stop=lambda: False, idle=lambda: None
) -> Iterator[dict[str, Any]]:
    """Yield events as they are appended, until `stop()` is true after a quiet poll; `idle()`
    is called on every quiet poll (to watch something else meanwhile)."""
    offset = 0
    while True:
        events, offset = read_new(path, offset)
        yield from events
        if not events:
            idle()
            if stop():
                events, offset = read_new(path, offset)
                yield from events
                return
            time.sleep(poll)


def truncate_after(path: Path, step: int) -> None:
    """Keep only events up to `step` (used on resume: later steps are trained again)."""
    from tuiwiz.fileio import write_atomic

    kept = [
        e for e in read_events(path) if (e.get("step") or 0) <= step and e["event"] != "finished"
    ]
    write_atomic(path, "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in kept))
