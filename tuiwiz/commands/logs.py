"""`tuiwiz logs RUN [--follow]`: print a run's log; --follow keeps printing while it trains."""

from __future__ import annotations

import argparse
import sys
import time


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("logs", help="print a run's log")
    p.add_argument("run", help="run directory, run id, or unique prefix of an id")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.train.registry import effective_state, resolve

    run_dir = resolve(args.run)
    offset = 0
    while True:
        try:
            with run_dir.log.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        offset += len(chunk)
        sys.stdout.write(chunk.decode("utf-8", errors="replace"))
        sys.stdout.flush()
        running = effective_state(run_dir.status(), run_dir.path) == "running"
        if not args.follow or (not chunk and not running):
            return 0
        if not chunk:
            time.sleep(0.5)
