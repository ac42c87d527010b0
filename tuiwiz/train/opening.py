"""Creating a run directory, or continuing one: the bookkeeping at the start of a run, once its
checks have passed. A new run is created, registered and locked, or nothing of it is left; a
resumed one drops the events after its latest complete checkpoint and the checkpoints a crash
cut short (or, with no checkpoint yet, starts over from step 0)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuiwiz.errors import TuiwizError
from tuiwiz.train import events, registry
from tuiwiz.train.handshake import Handshake
from tuiwiz.train.preflight import Ready
from tuiwiz.train.rundir import RunDir
from tuiwiz.train.state import RunState


@dataclass
class Opened:
    """A run directory this process trains into (or, `joined`, only keeps its logs in)."""

    run_id: str = ""
    resume_from: Path | None = None  # the checkpoint training continues from
    writer: events.EventWriter | None = None
    joined: bool = False  # a node > 0 of a multi-node run: node 0 keeps the run's files


def open_run(
    run: RunDir, config: dict[str, Any], ready: Ready, resume: bool, handshake: Handshake
) -> Opened:
    """Create (or continue) the run directory and mark it running; TuiwizError if it cannot."""
    from tuiwiz import presets

    if ready.launch.node_rank > 0:
        # Another node of a multi-node run: node 0 creates, registers and writes the run;
        # this one only keeps its processes' logs there (a shared or an identical path).
        run.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return Opened(joined=True)
    opened = Opened()
    if resume:
        opened.run_id = run.label
        run.lock()
        # Checked again now that no other process can train into the run: it may have
        # finished its last step while this process started.
        if run.status().get("state") == RunState.FINISHED:
            raise TuiwizError(f"{run.path}: the run has finished; nothing to resume")
        for path in run.remove_incomplete_checkpoints():
            print(f"removed the incomplete checkpoint {path}", file=sys.stderr)
        latest = run.latest_checkpoint()
        if latest is None:
            # Stopped or failed before its first checkpoint: nothing to continue from, so it
            # trains again from step 0, in its own directory.
            handshake.progress("no checkpoint yet: training starts again from step 0")
            from tuiwiz.fileio import write_atomic

            write_atomic(run.events, "")
            run.write_preset(presets.to_toml(config))
        else:
            events.truncate_after(run.events, latest[0])
            opened.resume_from = latest[1]
        run.stop_file.unlink(missing_ok=True)  # a stop asked of the run before
    else:
        opened.run_id = create(run, config)
    run.write_status(
        id=opened.run_id,
        state=RunState.RUNNING,
        phase="preparing",
        pid=os.getpid(),
        host=socket.gethostname(),
        started_at=run.status().get("started_at", time.time()),
        reason=None,
        suggestions=None,
        failed_rank=None,
        resume_from=str(opened.resume_from) if opened.resume_from else None,
        prepare=None,  # an earlier attempt's data progress
        data_sha256=ready.data_sha256,
    )
    shutil.rmtree(run.failures, ignore_errors=True)  # failures of an earlier attempt
    opened.writer = events.EventWriter(run.events)
    return opened


def create(run: RunDir, config: dict[str, Any]) -> str:
    """A new run directory, with its preset, registered and locked; returns its id. If any of it
    fails, nothing of it is left behind (the same --output-dir works once the cause is fixed)."""
    from tuiwiz import presets

    existed = run.path.exists()
    run.create()
    try:
        run.lock()
        run.write_preset(presets.to_toml(config))
        return registry.register(run, config["name"], time.time())
    except BaseException:
        run.unlock()
        for name in ("preset.toml", ".lock"):
            (run.path / name).unlink(missing_ok=True)
        if not existed:
            shutil.rmtree(run.path, ignore_errors=True)
        raise


def record_unseen_failure(
    run: RunDir, config: dict[str, Any] | None, resume: bool, reason: str
) -> None:
    """The run could not start and its launcher is gone (a dropped SSH connection), so nobody saw
    why: record it as a failed run where `tuiwiz runs` shows it. Best effort: a run directory
    that exists and is another run's, or cannot be written, is left alone."""
    try:
        if resume:
            if run.is_run():
                run.lock()  # never over a run that another process trains
                run.write_status(
                    state=RunState.FAILED, phase="done", reason=f"resume failed: {reason}"
                )
            return
        if config is None or (run.path.exists() and any(run.path.iterdir())):
            return
        run_id = create(run, config)
        run.write_status(
            id=run_id,
            state=RunState.FAILED,
            phase="checks",
            reason=reason,
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=time.time(),
        )
    except (OSError, TuiwizError):
        pass
