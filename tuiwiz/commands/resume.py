"""`tuiwiz resume RUN`: continue a stopped, failed or crashed run from its latest checkpoint."""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("resume", help="continue a run from its latest complete checkpoint")
    p.add_argument("run", help="run directory, run id, or unique prefix of an id")
    p.add_argument("--detach", action="store_true", help="start it in the background and return")
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.commands import run as run_command
    from tuiwiz.train.registry import resolve

    run_dir = resolve(args.run)
    return run_command.run(
        argparse.Namespace(
            preset=None,
            overrides=[],
            output_dir=None,
            resume=run_dir.path,
            detach=args.detach,
        )
    )
