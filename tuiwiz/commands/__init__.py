"""One module per `tuiwiz` sub-command, each with `add_parser(sub)` and `run(args) -> int`."""

from __future__ import annotations

import argparse


def add_override_argument(parser: argparse.ArgumentParser) -> None:
    """`--set SECTION.KEY=VALUE`, repeatable, as every command that reads a preset takes it."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a preset key, e.g. --set training.learning_rate=1e-4 (repeatable)",
    )
