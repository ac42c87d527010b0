"""`tuiwiz stop RUN`: ask a running training to save a checkpoint and stop."""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("stop", help="stop a run gracefully (it saves a checkpoint first)")
    p.add_argument("run", help="run directory, run id, or unique prefix of an id")
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.train.registry import request_stop, resolve

    run_dir = resolve(args.run)
    pid = request_stop(run_dir)
    if pid is None:
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
