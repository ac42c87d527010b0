"""Follow a running job in the terminal: a rich progress bar on a TTY, plain lines otherwise.

Ctrl-C asks the training process to stop gracefully (it saves a checkpoint first).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from tuiwiz.data.progress import PrepareWatcher
from tuiwiz.errors import TuiwizError
from tuiwiz.train import events as ev
from tuiwiz.train.jobs import Job
from tuiwiz.train.state import EXIT_INTERRUPTED, RunState, state_of
from tuiwiz.units import duration


def step_line(e: dict[str, Any]) -> str:
    parts = [f"step {e['step']}/{e.get('max_steps', '?')}", f"loss {e['loss']:.4f}"]
    if e.get("learning_rate") is not None:
        parts.append(f"lr {e['learning_rate']:.2e}")
    if e.get("tokens_per_second"):
        parts.append(f"{e['tokens_per_second']:.0f} tok/s")
    parts.append(f"epoch {e.get('epoch', 0):.2f}")
    return "  ".join(parts)


def started_line(e: dict[str, Any]) -> str:
    """What a `started` event says: steps, device, examples, effective batch, processes."""
    line = (
        f"{e.get('max_steps')} steps on {e.get('device')}, {e.get('train_examples')} examples, "
        f"effective batch {e.get('effective_batch_size')}"
    )
    world = e.get("world_size") or 1
    if world > 1:
        line += f" over {world} processes ({e.get('strategy')})"
    return line


def follow_job(job: Job) -> int:
    started = time.monotonic()
    interactive = sys.stdout.isatty()
    first_loss = last_loss = None
    try:
        if interactive:
            first_loss, last_loss = _follow_rich(job)
        else:
            first_loss, last_loss = _follow_plain(job)
    except KeyboardInterrupt:
        print(
            "\ntuiwiz: stopping: saving a checkpoint first "
            "(Ctrl-C again leaves the run going in the background)",
            flush=True,
        )
        job.stop()
        try:
            _follow_plain(job, quiet=True)
        except KeyboardInterrupt:
            print(f"tuiwiz: left running in the background (pid {job.pid}): {job.run.path}")
            return EXIT_INTERRUPTED
    # The run's outcome is written before its process has wound down (the libraries' teardown
    # takes seconds): once it is there, there is nothing left to wait for.
    code = None if _state(job).final else job.wait()
    status = job.run.status()
    state = _state(job)
    took = duration(time.monotonic() - started)
    if state == RunState.FINISHED:
        print(f"tuiwiz: finished in {took}; {_losses(first_loss, last_loss, job)}")
        print(f"tuiwiz: adapter: {status.get('adapter')}")
    elif state == RunState.STOPPED and status.get("step") is None:
        print(
            "tuiwiz: stopped before the first step: nothing was trained; "
            f"`tuiwiz resume {job.run.path}` starts it from the beginning"
        )
    elif state == RunState.STOPPED:
        print(
            f"tuiwiz: stopped at step {status.get('step')}; resume with "
            f"`tuiwiz resume {job.run.path}`"
        )
    else:
        reason = status.get("reason") or f"the training process exited with code {code}"
        where = "" if "log:" in reason else f" (log: {job.run.log})"  # a rank's log is named
        print(f"tuiwiz: error: the run failed: {reason}{where}", file=sys.stderr)
        for hint in status.get("suggestions") or []:
            fix = " ".join(f"--set {o}" for o in hint["overrides"])
            print(f"tuiwiz:   try: {hint['title']}  ({fix})", file=sys.stderr)
    return state.exit_code


def _losses(first: float | None, last: float | None, job: Job) -> str:
    """The training loss from the first logged step to the last; when no step logged one
    (logging_steps above the number of steps), the run's mean loss from its `finished` event."""
    if first is not None:
        return f"loss {first:.4f} -> {last:.4f}"
    finished = [e for e in ev.read_events(job.run.events) if e["event"] == "finished"]
    mean = finished[-1].get("train_loss") if finished else None
    try:
        steps = job.run.config()["training"]["logging_steps"]
    except TuiwizError:
        steps = "?"
    text = f"no step logged its loss (logging_steps = {steps} is more than the run's steps)"
    return f"{text}; mean training loss {mean:.4f}" if mean is not None else text


def _state(job: Job) -> RunState:
    return state_of(job.run.status().get("state"))


def _ended(job: Job) -> bool:
    return not job.alive() or _state(job).final


def _events(job: Job, show_preparing: Callable[[str], None] | None = None):
    """The run's events as they come; `show_preparing` gets the data preparation's progress
    line ("preparing data: tokenizing ...") while the run prepares its data."""
    idle = lambda: None  # noqa: E731
    if show_preparing is not None:
        idle = PrepareWatcher(job.run.status, show_preparing).poll
    return ev.follow(job.run.events, stop=lambda: _ended(job), idle=idle)


def _follow_plain(job: Job, quiet: bool = False) -> tuple[float | None, float | None]:
    first = last = None
    show = None if quiet else lambda line: print(line, flush=True)
    for e in _events(job, show):
        kind = e["event"]
        if kind == "step":
            first = e["loss"] if first is None else first
            last = e["loss"]
        if quiet:
            continue
        if kind == "step":
            print(step_line(e), flush=True)
        elif kind == "eval":
            print(f"eval  step {e['step']}  eval_loss {e['eval_loss']:.4f}", flush=True)
        elif kind == "started":
            print(f"training: {started_line(e)}", flush=True)
        elif kind == "checkpoint":
            print(f"checkpoint saved at step {e['step']}", flush=True)
    return first, last


def _follow_rich(job: Job) -> tuple[float | None, float | None]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    first = last = None
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("preparing", total=None, info="")

        def preparing(line: str) -> None:
            progress.update(task, info=line.removeprefix("preparing "))

        for e in _events(job, preparing):
            kind = e["event"]
            if kind == "started":
                progress.update(
                    task,
                    description="training",
                    total=e.get("max_steps"),
                    completed=e.get("step", 0),
                    info="",
                )
                progress.console.print(started_line(e))
            elif kind == "step":
                first = e["loss"] if first is None else first
                last = e["loss"]
                progress.update(
                    task,
                    completed=e["step"],
                    total=e.get("max_steps"),
                    info=f"loss {e['loss']:.4f}  {e.get('tokens_per_second') or 0:.0f} tok/s",
                )
            elif kind == "eval":
                progress.console.print(f"eval at step {e['step']}: eval_loss {e['eval_loss']:.4f}")
            elif kind == "checkpoint":
                progress.console.print(f"checkpoint saved at step {e['step']}")
    return first, last
