"""`tuiwiz attach RUN`: the live dashboard of a run (running or not), in the terminal.

Leaving it (q or d) never stops training; s stops it gracefully after asking.
"""

from __future__ import annotations

import argparse
import sys

from tuiwiz.errors import TuiwizError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "attach", help="the live dashboard of a run: loss, GPU memory, progress, log"
    )
    p.add_argument("run", help="run directory, run id, or unique prefix of an id")
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.train.registry import resolve

    run_dir = resolve(args.run)
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        raise TuiwizError(
            f"attach shows a full-screen dashboard and needs a terminal; "
            f"without one, follow the run with `tuiwiz logs -f {args.run}`"
        )
    from tuiwiz.ui.dashboard import AttachApp

    app = AttachApp(run_dir.path)
    app.run()
    return app.return_code or 0
