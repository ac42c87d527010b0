"""`tuiwiz run PRESET`: train headless, exactly as the TUI would launch it.

`start` and `resume` are the one path every command takes to train (`tuiwiz run`, `resume`,
`demo`): start the training process, follow it in the terminal (or leave it training in the
background), and return the exit code of how the run ended.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tuiwiz.commands import add_override_argument
from tuiwiz.errors import TuiwizError
from tuiwiz.launch import Launch
from tuiwiz.notices import notice
from tuiwiz.train.jobs import Job
from tuiwiz.train.rundir import RunDir


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
    from tuiwiz.train.jobs import default_run_dir
    from tuiwiz.train.registry import resolve

    if args.resume:
        if args.preset or args.overrides or args.output_dir:
            raise TuiwizError(
                "--resume continues a run as it was: give no preset, --set or --output-dir"
            )
        return resume(resolve(str(args.resume)), detach=args.detach)
    if not args.preset:
        raise TuiwizError("give a preset to run (see `tuiwiz presets`), or --resume RUN_DIR")
    from tuiwiz import presets

    config, _ = presets.load(args.preset, args.overrides)
    run_dir = (args.output_dir or default_run_dir(config["name"])).resolve()
    return start(run_dir, config, detach=args.detach)


def start(run_dir: Path, config: dict[str, Any], detach: bool = False) -> int:
    """Train a new run of `config` in `run_dir`; the exit code of how it ended (0 once it is
    started, with `detach`)."""
    from tuiwiz.launch import launch_of
    from tuiwiz.train import jobs
    from tuiwiz.train.torchrun import node_instructions

    job = jobs.start(run_dir, config=config, progress=notice)
    print(f"tuiwiz: run directory {job.run.path}", flush=True)
    launch = launch_of(config)
    if job.role == "run":  # node 0 of a multi-node run: how to start the others
        for line in node_instructions(launch, job.run.path):
            print(f"tuiwiz: {line}", flush=True)
    return _follow(job, launch, detach)


def resume(run: RunDir, detach: bool = False) -> int:
    """Continue a run from its latest complete checkpoint; the exit code of how it ended."""
    from tuiwiz.launch import launch_of
    from tuiwiz.train import jobs
    from tuiwiz.train.state import RunState

    if run.status().get("state") == RunState.FINISHED:
        raise TuiwizError(f"{run.path}: the run has finished; there is nothing to resume")
    job = jobs.start(run.path, resume=True, progress=notice)
    print(f"tuiwiz: resuming {job.run.path}", flush=True)
    return _follow(job, launch_of(run.config()), detach)


def _follow(job: Job, launch: Launch, detach: bool) -> int:
    from tuiwiz.commands.follow import follow_job

    if job.role == "node":
        return _follow_node(job, launch, detach)
    if detach:
        print(
            f"tuiwiz: training in the background (pid {job.pid}); it keeps running when this "
            f"terminal closes. Follow: tuiwiz logs -f {job.run.label}"
        )
        return 0
    return follow_job(job)


def _follow_node(job: Job, launch: Launch, detach: bool) -> int:
    """Another node of a multi-node run: its processes train, node 0 keeps the run's files."""
    n = launch.nproc_per_node
    first = launch.node_rank * n
    ranks = f"rank{'s' if n > 1 else ''} {first}{f'-{first + n - 1}' if n > 1 else ''}"
    ranks += f" of {launch.world_size}"
    print(
        f"tuiwiz: node {launch.node_rank} of {launch.nnodes} ({ranks}) joins the run at "
        f"{launch.master_addr}:{launch.master_port}; node 0 writes its events and status, this "
        f"node its logs ({job.run.path}/train-rank*.log, train-node{launch.node_rank}.log)",
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
        f"tuiwiz: node {launch.node_rank}: training processes {outcome}; the run's state is on "
        "node 0 (`tuiwiz runs` there)"
    )
    return 0 if code == 0 else 1
