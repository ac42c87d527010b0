"""`tuiwiz stop RUN`: ask a running training to save a checkpoint and stop."""

from __future__ import annotations

import argparse
import os
import signal
from typing import TYPE_CHECKING

from tuiwiz.errors import TuiwizError

if TYPE_CHECKING:
    from tuiwiz.train.rundir import RunDir


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("stop", help="stop a run gracefully (it saves a checkpoint first)")
    p.add_argument("run", help="run directory, run id, or unique prefix of an id")
    return p


def request_stop(run_dir: RunDir) -> int:
    """Send SIGTERM to a running run's training process (it saves a checkpoint, then ends in
    state stopped); returns its pid. The dashboard's stop key takes the same path."""
    from tuiwiz.train.registry import effective_state, on_this_host

    status = run_dir.status()
    state = effective_state(status, run_dir.path)
    if state != "running":
        raise TuiwizError(f"{run_dir.path}: the run is not running (state: {state})")
    if not on_this_host(status):
        # Trained on another machine (a cluster node): the run checks for this file at every
        # step's end, through the filesystem the nodes share.
        run_dir.stop_file.write_text("stop\n")
        return status["pid"]
    try:
        os.kill(status["pid"], signal.SIGTERM)
    except ProcessLookupError:
        raise TuiwizError(f"{run_dir.path}: the training process has just ended") from None
    return status["pid"]


def run(args: argparse.Namespace) -> int:
    from tuiwiz.train.registry import on_this_host, resolve

    run_dir = resolve(args.run)
    pid = request_stop(run_dir)
    if not on_this_host(run_dir.status()):
        print(
            f"tuiwiz: the run trains on {run_dir.status().get('host')}: asked it to stop through "
            f"{run_dir.stop_file}; it saves a checkpoint at the end of the current step"
        )
        return 0
    print(
        f"tuiwiz: asked pid {pid} to stop; it saves a checkpoint at the current step, "
        f"then ends in state stopped (`tuiwiz runs` shows it)"
    )
    return 0
