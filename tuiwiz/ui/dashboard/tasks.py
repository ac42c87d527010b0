"""The blocking work behind the dashboard, run in its thread workers (plain Python, no UI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuiwiz.train.rundir import RunDir


def estimate_total(run: RunDir) -> tuple[int | None, str]:
    """The run's estimated peak GPU memory from its resolved preset, or None and why not."""
    try:
        from tuiwiz.estimate import estimate

        resolved = run.config()
        return estimate(resolved).total, ""
    except Exception as e:  # the estimate is extra information, never a failure
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return None, f"estimate unavailable: {reason}"


def start_with(run: RunDir, overrides: list[str], progress: Callable[[str], None]) -> Any:
    """Start a new run: this run's preset with `overrides`, in a new directory beside it.

    Blocks until the training process's handshake; raises TuiwizError with its reason. The
    returned job is reaped by a daemon thread (which also records a hard crash, as `tuiwiz run`
    does), so a dashboard that quits early leaves no zombie behind.
    """
    import threading

    from tuiwiz.train import jobs

    resolved = run.config(overrides)
    target = jobs.default_run_dir(resolved["name"], root=run.path.parent)
    progress(f"starting {target.name}...")
    job = jobs.start(target, config=resolved, progress=progress)
    threading.Thread(target=job.wait, name="tuiwiz-reaper", daemon=True).start()
    return job
