"""What the dashboard knows about a run, folded from its events: plain Python, no Textual.

The reader thread hands new events over; `RunView.apply` folds them into the loss series and the
latest numbers, and the widgets draw from it. Times come from the events themselves, so a
finished run shows the same elapsed time whenever it is opened; only a running run's elapsed
time and ETA depend on "now", which the caller passes in (a clock the tests can fix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Session:
    """One stretch of training: from a `started` event to the last event before the next one."""

    start_time: float
    start_step: int
    last_time: float


@dataclass
class RunView:
    train: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss)
    evals: list[tuple[int, float]] = field(default_factory=list)  # (step, evaluation loss)
    base_loss: float | None = None  # the base model's validation loss (eval with base: true)
    last_step: dict[str, Any] | None = None
    started: dict[str, Any] | None = None  # the latest `started` event
    sessions: list[Session] = field(default_factory=list)
    end: dict[str, Any] | None = None  # the finished / stopped / failed event, if any
    last_checkpoint: int | None = None

    def apply(self, events: list[dict[str, Any]]) -> bool:
        """Fold new events in; returns whether anything the chart draws changed."""
        chart_changed = False
        for e in events:
            step = _number(e.get("step", 0))
            if step is None or not math.isfinite(step):
                continue  # a damaged line: readers skip what they cannot use
            e = {**e, "step": int(step)}
            kind = e.get("event")
            when = _number(e.get("time"))
            if kind == "started":
                self.started = e
                self.end = None
                self.sessions.append(Session(when or 0.0, int(e.get("step") or 0), when or 0.0))
            elif self.sessions and when is not None:
                self.sessions[-1].last_time = max(self.sessions[-1].last_time, when)
            if kind == "step" and _number(e.get("loss")) is not None:
                if not isinstance(e.get("max_steps"), int):
                    e.pop("max_steps", None)
                self.train.append((int(e.get("step") or 0), float(e["loss"])))
                self.last_step = e
                chart_changed = True
            elif kind == "eval" and _number(e.get("eval_loss")) is not None:
                if e.get("base"):
                    self.base_loss = float(e["eval_loss"])
                else:
                    self.evals.append((int(e.get("step") or 0), float(e["eval_loss"])))
                chart_changed = True
            elif kind == "checkpoint":
                self.last_checkpoint = int(e.get("step") or 0)
            elif kind in ("finished", "stopped", "failed"):
                self.end = e
        return chart_changed

    # --- the numbers the stats panel shows -----------------------------------------------
    @property
    def step(self) -> int | None:
        if self.end is not None and self.end.get("step") is not None:
            return int(self.end["step"])
        if self.last_step is not None:
            return int(self.last_step.get("step") or 0)
        if self.started is not None:
            return int(self.started.get("step") or 0)
        return None

    @property
    def max_steps(self) -> int | None:
        for e in (self.last_step, self.started):
            if e and isinstance(e.get("max_steps"), int) and e["max_steps"] > 0:
                return e["max_steps"]
        return None

    @property
    def epoch(self) -> float | None:
        return _number(self.last_step.get("epoch")) if self.last_step else None

    @property
    def total_epochs(self) -> float | None:
        """Epochs the whole run covers: from the epoch reached per step, else the setting."""
        step = int(self.last_step.get("step") or 0) if self.last_step else 0
        epoch, total = self.epoch, self.max_steps
        if step and epoch and total:
            return epoch / step * total
        return _number(self.started.get("num_train_epochs")) if self.started else None

    def elapsed(self, now: float, running: bool) -> float | None:
        """Training time summed over sessions (time between a stop and a resume not counted)."""
        if not self.sessions:
            return None
        total = 0.0
        for i, s in enumerate(self.sessions):
            last = now if running and i == len(self.sessions) - 1 else s.last_time
            total += max(0.0, last - s.start_time)
        return total

    def eta(self, now: float) -> float | None:
        """Seconds left at the current session's pace (None until two points are known)."""
        if not self.sessions or self.last_step is None or not self.max_steps:
            return None
        s = self.sessions[-1]
        step = int(self.last_step.get("step") or 0)
        last_time = _number(self.last_step.get("time"))
        if last_time is None or step <= s.start_step or last_time < s.start_time:
            return None
        per_step = (last_time - s.start_time) / (step - s.start_step)
        left = (self.max_steps - step) * per_step - max(0.0, now - last_time)
        return max(0.0, left)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


# --- formatting ------------------------------------------------------------------------------


def loss(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 0.001 <= abs(value) < 1000:
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return f"{value:.2e}"
