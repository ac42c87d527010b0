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
        _print_node_instructions(job, config)
    if job.role == "node":
        return _follow_node(job, config, getattr(args, "detach", False))
    if getattr(args, "detach", False):
        print(
            f"tuiwiz: training in the background (pid {job.pid}); it keeps running when this "
            f"terminal closes. Follow: tuiwiz logs -f {job.run.status().get('id', job.run.path)}"
        )
        return 0
    return follow_job(job)


def _print_node_instructions(job, config) -> None:
    """On node 0 of a multi-node run: the command that starts each other node."""
    from tuiwiz import launch

    if job.role == "run":
        for line in launch.node_instructions(config, job.run.path):
            print(f"tuiwiz: {line}", flush=True)


def _follow_node(job, config, detach: bool) -> int:
    """Another node of a multi-node run: its processes train, node 0 keeps the run's files."""
    from tuiwiz import launch

    s = launch.settings(config)
    n = launch.nproc(config)
    first = s["node_rank"] * n
    ranks = f"rank{'s' if n > 1 else ''} {first}{f'-{first + n - 1}' if n > 1 else ''}"
    ranks += f" of {launch.world_size(config)}"
    print(
        f"tuiwiz: node {s['node_rank']} of {s['nnodes']} ({ranks}) joins the run at "
        f"{s['master_addr']}:{s['master_port']}; node 0 writes its events and status, this node "
        f"its logs ({job.run.path}/train-rank*.log, train-node{s['node_rank']}.log)",
        flush=True,
    )
    if detach:
        print(f"tuiwiz: running in the background (pid {job.pid})")
        return 0
    try:
        code = job.wait()
    except KeyboardInterrupt:
        print("\ntuiwiz: stopping: every node saves a checkpoint first", flush=True)
        job.stop()
        code = job.wait()
    outcome = "ended" if code == 0 else f"failed (exit code {code})"
    print(
        f"tuiwiz: node {s['node_rank']}: training processes {outcome}; the run's state is on "
        "node 0 (`tuiwiz runs` there)"
    )
    return 0 if code == 0 else 1
