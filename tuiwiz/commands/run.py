"""`tuiwiz run PRESET`: train headless, exactly as the TUI would launch it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuiwiz.commands import add_override_argument
from tuiwiz.errors import TuiwizError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="train from a preset, with no UI")
    p.add_argument("preset", nargs="?", help="a preset file, or the name of a shipped or saved one")
    add_override_argument(p)
    p.add_argument("--output-dir", type=Path, help="the run directory (default: ./runs/NAME-TIME)")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a run (directory, id or id prefix) from its latest checkpoint",
    )
    p.add_argument(
        "--detach",
        action="store_true",
        help="start training in the background and return (follow it with `tuiwiz logs -f RUN`)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.commands.follow import follow_job
    from tuiwiz.train import jobs

    notice = lambda message: print(f"tuiwiz: {message}", file=sys.stderr, flush=True)  # noqa: E731
    if args.resume:
        if args.preset or args.overrides or args.output_dir:
            raise TuiwizError(
                "--resume continues a run as it was: give no preset, --set or --output-dir"
            )
        from tuiwiz.train.registry import resolve

        run_dir = resolve(str(args.resume))
        if run_dir.status().get("state") == "finished":
            raise TuiwizError(f"{run_dir.path}: the run has finished; there is nothing to resume")
        job = jobs.start(run_dir.path, resume=True, progress=notice)
        print(f"tuiwiz: resuming {job.run.path}", flush=True)
    else:
        if not args.preset:
            raise TuiwizError("give a preset to run (see `tuiwiz presets`), or --resume RUN_DIR")
        from tuiwiz import presets

        config, _ = presets.load(args.preset, args.overrides)
        run_dir = (args.output_dir or jobs.default_run_dir(config["name"])).resolve()
        job = jobs.start(run_dir, config=config, progress=notice)
        print(f"tuiwiz: run directory {job.run.path}", flush=True)
    if getattr(args, "detach", False):
        print(
            f"tuiwiz: training in the background (pid {job.pid}); it keeps running when this "
            f"terminal closes. Follow: tuiwiz logs -f {job.run.status().get('id', job.run.path)}"
        )
        return 0
    return follow_job(job)
