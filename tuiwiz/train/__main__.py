"""The training process's entry point: `python -m tuiwiz.train --run-dir DIR [...]`.

It has one of four roles:
  (default)        the process `tuiwiz run` and the wizard start (tuiwiz.train.jobs): checks the
                   preset, creates or continues the run directory, then trains it, or supervises
                   its rank processes (tuiwiz.train.main);
  --rank-process   one of torchrun's processes of a run with several (tuiwiz.train.rank);
  --prepare        a batch script's first step: checks and opens the run, trains nothing;
  --finalize CODE  a batch script's last step: records the outcome of torchrun's exit CODE.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tuiwiz.train")
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    parser.add_argument(
        "--rank-process", action="store_true", help="one of torchrun's training processes"
    )
    parser.add_argument("--config", type=Path, help="with --rank-process: the preset to train")
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="check, then create the run directory from --preset or continue it; do not train",
    )
    parser.add_argument("--preset", type=Path, help="with --prepare: the resolved preset file")
    parser.add_argument(
        "--finalize", type=int, metavar="CODE", help="record the outcome of torchrun's exit CODE"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from tuiwiz.train.process import training_process

    args = parse(argv)
    training_process()
    if args.rank_process:
        from tuiwiz.train.rank import run_rank

        return run_rank(args.run_dir, args.config)
    if args.finalize is not None:
        from tuiwiz.train.rundir import RunDir
        from tuiwiz.train.supervisor import finalize

        return finalize(RunDir(args.run_dir), args.finalize)
    from tuiwiz.train.main import run_process

    return run_process(args.run_dir, resume=args.resume, prepare=args.prepare, preset=args.preset)


if __name__ == "__main__":
    sys.exit(main())
