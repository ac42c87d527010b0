"""`tuiwiz stop RUN`: ask a running training to save a checkpoint and stop."""

from __future__ import annotations

import argparse
import os
import signal

from tuiwiz.errors import TuiwizError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("stop", help="stop a run gracefully (it saves a checkpoint first)")
    p.add_argument("run", help="run directory, run id, or unique prefix of an id")
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.train.registry import effective_state, resolve

    run_dir = resolve(args.run)
    status = run_dir.status()
    state = effective_state(status)
    if state != "running":
        raise TuiwizError(f"{run_dir.path}: the run is not running (state: {state})")
    os.kill(status["pid"], signal.SIGTERM)
    print(
        f"tuiwiz: asked pid {status['pid']} to stop; it saves a checkpoint at the current step, "
        f"then ends in state stopped (`tuiwiz runs` shows it)"
    )
    return 0
