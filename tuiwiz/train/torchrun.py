"""The commands that start a run's processes: torchrun on this node, the command for each other
node of a multi-node run, and a Slurm batch script. Each starts `python -m tuiwiz.train` as
torchrun's rank processes (tuiwiz.train.rank). Standard library only."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from tuiwiz.errors import ConfigError
from tuiwiz.launch import Launch, launch_of

ENTRY = ["-m", "tuiwiz.train"]  # the training process's entry point (tuiwiz/train/__main__.py)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def torchrun_command(
    launch: Launch,
    run_dir: Path | str,
    config_file: Path | str | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The torchrun command that starts this node's rank processes for a run directory.

    One node uses torchrun's --standalone rendezvous (a free local port, so two runs on one
    machine never collide); several use the static rendezvous at master_addr:master_port.
    """
    command = [
        python,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={launch.nproc_per_node}",
        f"--nnodes={launch.nnodes}",
        "--max-restarts=0",  # a failed rank ends the run; tuiwiz records why, resume goes on
    ]
    if launch.nnodes == 1:
        command.append("--standalone")
    else:
        command += [
            f"--node-rank={launch.node_rank}",
            f"--master-addr={launch.master_addr}",
            f"--master-port={launch.master_port}",
        ]
    command += [*ENTRY, "--run-dir", str(run_dir), "--rank-process"]
    if config_file is not None:
        command += ["--config", str(config_file)]
    return command


def node_commands(launch: Launch, run_dir: Path | str) -> list[tuple[int, str]]:
    """(node, command) to type on each other node of a multi-node run, as node 0 prints them.

    They point at the run's own preset.toml (the resolved preset, every --set included) and the
    same run directory, so every node trains exactly the same configuration.
    """
    preset = shlex.quote(str(Path(run_dir) / "preset.toml"))
    out = shlex.quote(str(run_dir))
    return [
        (k, f"tuiwiz run {preset} --set launch.node_rank={k} --output-dir {out}")
        for k in range(1, launch.nnodes)
    ]


def node_instructions(launch: Launch, run_dir: Path | str) -> list[str]:
    """The lines node 0 prints for a multi-node run (empty for a single node)."""
    if launch.nnodes < 2:
        return []
    lines = [
        f"this is node 0 of {launch.nnodes}: training starts once every node has joined at "
        f"{launch.master_addr}:{launch.master_port}. Start the others with:"
    ]
    lines += [f"  node {k}: {command}" for k, command in node_commands(launch, run_dir)]
    lines.append(
        f"  (the same model, data and run directory {run_dir} at the same paths on every node: "
        "a shared filesystem, or copy preset.toml there first; resume needs it shared)"
    )
    if launch.master_addr in LOOPBACK:
        lines.append(
            f"  note: master_addr is {launch.master_addr}, so every node must run on this machine; "
            "set launch.master_addr to this machine's address for real multi-machine runs"
        )
    return lines


def slurm_script(
    config: dict[str, Any],
    run_dir: Path | str,
    preset_text: str,
    python: str = sys.executable,
    shutdown_timeout: int = 300,
) -> str:
    """An sbatch script that trains `run_dir` on Slurm: `srun` starts one torchrun per node.

    Its three steps: `--prepare` (once, on the first node) checks the model and data and creates
    the run directory from the embedded preset, or continues an existing one from its latest
    complete checkpoint; `srun torchrun` starts the ranks, meeting at the first node (from
    `scontrol show hostnames`); `--finalize` records why the run failed if no rank could.
    Resubmitting the script (or `--requeue`) continues the run where it stopped.
    """
    launch = launch_of(config, gpus=1)  # "auto" stays "every GPU of each node" (see gpus below)
    nodes = launch.nnodes
    per_node = "auto" if launch.auto else launch.nproc_per_node
    gpus = "gpu" if launch.auto else str(per_node)
    name = shlex.quote(str(config.get("name", "tuiwiz")))
    run = shlex.quote(str(run_dir))
    py = shlex.quote(python)
    gpu_line = (
        "#SBATCH --exclusive                   # all of each node's GPUs (nproc_per_node = auto)"
        if launch.auto
        else f"#SBATCH --gpus-per-node={per_node}"
    )
    delimiter = "TUIWIZ_PRESET_EOF"
    if delimiter in preset_text:
        raise ConfigError("the preset contains the script's heredoc delimiter; rename it")
    return f"""#!/bin/bash
# Written by `tuiwiz launch-script`: trains one tuiwiz run on {nodes} node(s) x {per_node} GPU(s).
# Submit with `sbatch FILE`. Follow with `tuiwiz runs` / `tuiwiz logs RUN` (they read the run
# directory, which must be on a filesystem shared by every node). `tuiwiz stop RUN` stops it
# gracefully from any machine; so does Slurm's TERM signal before the time limit (--signal).
# Slurm's own output goes to slurm-JOBID.out where sbatch runs; training's to the run directory.
#SBATCH --job-name={name}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1             # one torchrun per node; it starts the GPU processes
{gpu_line}
#SBATCH --signal=TERM@{shutdown_timeout + 60}

set -euo pipefail
RUN_DIR={run}
PYTHON={py}
HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
PORT={launch.master_port}

# 1. Once: check the model and data; create the run directory, or continue it.
"$PYTHON" -m tuiwiz.train --run-dir "$RUN_DIR" --prepare --preset /dev/stdin <<'{delimiter}'
{preset_text.rstrip()}
{delimiter}

# 2. Every node: torchrun starts the training processes; they meet at the first node.
code=0
srun --nodes={nodes} --ntasks-per-node=1 --kill-on-bad-exit=1 \\
    "$PYTHON" -m torch.distributed.run \\
    --nnodes={nodes} \\
    --nproc-per-node={gpus} \\
    --rdzv-backend=c10d \\
    --rdzv-endpoint="$HEAD_NODE:$PORT" \\
    --rdzv-id="$SLURM_JOB_ID" \\
    --max-restarts=0 \\
    --shutdown-timeout={shutdown_timeout} \\
    -m tuiwiz.train --run-dir "$RUN_DIR" --rank-process || code=$?

# 3. Once: record the outcome (why it failed, when no rank could say).
"$PYTHON" -m tuiwiz.train --run-dir "$RUN_DIR" --finalize "$code"
"""
