"""`tuiwiz launch-script RUN|PRESET --slurm [--out FILE]`: a Slurm batch script for a run.

The script trains the run on [launch] nnodes nodes x nproc_per_node GPUs with `srun torchrun`
(tuiwiz.train.torchrun.slurm_script). Given a run (directory, id or id prefix), it continues that
run from its latest complete checkpoint; given a preset, it starts a new run in --output-dir
(which must be on a filesystem every node shares). Writing the script creates nothing else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuiwiz.commands import add_override_argument
from tuiwiz.errors import TuiwizError
from tuiwiz.train.state import RunState


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "launch-script",
        help="write a batch script that trains a run on a cluster (Slurm: srun torchrun)",
    )
    p.add_argument("target", metavar="RUN|PRESET", help="a run to continue, or a preset to start")
    p.add_argument("--slurm", action="store_true", help="a Slurm sbatch script (the only kind)")
    add_override_argument(p)
    p.add_argument(
        "--output-dir",
        type=Path,
        help="with a preset: the new run's directory, on a shared filesystem "
        "(default: ./runs/NAME-TIME)",
    )
    p.add_argument(
        "--out", type=Path, metavar="FILE", help="write the script here (default: standard output)"
    )
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz import presets
    from tuiwiz.launch import launch_of
    from tuiwiz.train import jobs
    from tuiwiz.train.torchrun import slurm_script

    if not args.slurm:
        raise TuiwizError("say which scheduler: --slurm (the only one so far)")
    existing = _find_run(args.target)
    if existing is not None:
        if args.overrides or args.output_dir:
            raise TuiwizError(
                f"{existing.path} is a run: it continues as it was, with no --set or --output-dir"
            )
        if existing.status().get("state") == RunState.FINISHED:
            raise TuiwizError(f"{existing.path}: the run has finished; there is nothing to train")
        text = existing.preset.read_text(encoding="utf-8")
        config = existing.config()
        run_dir = existing.path
    else:
        config, _ = presets.load(args.target, args.overrides)
        run_dir = (args.output_dir or jobs.default_run_dir(config["name"])).resolve()
        if run_dir.exists() and any(run_dir.iterdir()):
            raise TuiwizError(
                f"{run_dir}: already exists and is not empty; choose another --output-dir"
            )
        text = presets.to_toml(config)
    launch = launch_of(config, gpus=1)  # "auto": every GPU of each node, which Slurm knows
    if launch.node_rank != 0:
        raise TuiwizError("[launch] node_rank is set by Slurm for each node: leave it at 0")
    script = slurm_script(config, run_dir, text)
    if args.out is None:
        sys.stdout.write(script)
        return 0
    args.out.write_text(script, encoding="utf-8")
    args.out.chmod(0o700)
    per_node = "every" if launch.auto else launch.nproc_per_node
    print(
        f"tuiwiz: wrote {args.out}: {launch.nnodes} node(s) x {per_node} GPU(s), "
        f"run directory {run_dir}; submit it with `sbatch {args.out}`",
        file=sys.stderr,
    )
    return 0


def _find_run(ref: str):
    """The run `ref` names, or None when it names a preset: a directory is a run; otherwise a
    preset file or name wins over a run id (prefix)."""
    from tuiwiz import presets
    from tuiwiz.errors import ConfigError
    from tuiwiz.train.registry import resolve

    if Path(ref).expanduser().is_dir():
        return resolve(ref)
    try:
        if presets.find(ref).is_file():
            return None
    except ConfigError:
        pass
    if ref.endswith(".toml"):
        return None  # a missing preset file: presets.load says so
    return resolve(ref)
