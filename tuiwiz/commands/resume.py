"""`tuiwiz resume RUN`: continue a stopped, failed or crashed run from its latest checkpoint."""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("resume", help="continue a run from its latest complete checkpoint")
    p.add_argument("run", help="run directory, run id, or unique prefix of an id")
    p.add_argument("--detach", action="store_true", help="start it in the background and return")
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.commands.run import resume
    from tuiwiz.train.registry import resolve

    return resume(resolve(args.run), detach=args.detach)
