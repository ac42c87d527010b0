"""Scale out: how many training processes a preset's [launch] section asks for, and the commands
that start them (torchrun on one or several machines, or a Slurm batch script).

One process (the default) trains exactly as without this module. With more, `tuiwiz run` starts
torchrun (`python -m torch.distributed.run`), which starts one rank process per GPU running
`python -m tuiwiz.train.worker --run-dir DIR --rank-process`; see tuiwiz.train.supervisor.
Standard library only: the CLI and the TUI import this without torch.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from tuiwiz.config import section_defaults
from tuiwiz.errors import ConfigError

DEFAULTS: dict[str, Any] = section_defaults("launch")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WORKER = ["-m", "tuiwiz.train.worker"]


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """The [launch] section of a configuration, defaults filled in."""
    return {**DEFAULTS, **(config.get("launch") or {})}


def visible_gpus() -> int:
    """NVIDIA GPUs this process may use (NVML, filtered by CUDA_VISIBLE_DEVICES)."""
    from tuiwiz.gpu import read_gpus

    return len(read_gpus().gpus)


def nproc(config: dict[str, Any], gpus: int | None = None) -> int:
    """Processes on this node: the preset's number, or for "auto" every visible GPU (1 if none).

    `gpus` is the number of visible GPUs when the caller already knows it.
    """
    value = settings(config)["nproc_per_node"]
    if value == "auto":
        return max(visible_gpus() if gpus is None else gpus, 1)
    return int(value)


def world_size(config: dict[str, Any], gpus: int | None = None) -> int:
    """Processes in the whole run: per node x nodes."""
    return nproc(config, gpus) * int(settings(config)["nnodes"])


def is_distributed(config: dict[str, Any], gpus: int | None = None) -> bool:
    return world_size(config, gpus) > 1


def resolve(config: dict[str, Any], gpus: int | None = None) -> dict[str, Any]:
    """A copy of `config` whose [launch] says the number of processes ("auto" resolved), so the
    run's preset.toml records what ran."""
    return {**config, "launch": {**settings(config), "nproc_per_node": nproc(config, gpus)}}


def check(config: dict[str, Any], gpus: int, cuda: bool) -> None:
    """What [launch] asks for against this machine: `gpus` visible NVIDIA GPUs, `cuda` whether
    torch can use them. Raises ConfigError with one line."""
    s = settings(config)
    n = nproc(config, gpus)
    if s["node_rank"] >= s["nnodes"]:
        raise ConfigError(
            f"[launch] node_rank = {s['node_rank']} must be below nnodes = {s['nnodes']}"
        )
    if s["strategy"] == "fsdp":
        if not cuda:
            raise ConfigError(
                '[launch] strategy = "fsdp" needs NVIDIA GPUs (it shards the model across '
                'them) and this machine has none that torch can use; use strategy = "ddp" '
                "or run on a GPU machine"
            )
        if world_size(config, gpus) < 2:
            raise ConfigError(
                '[launch] strategy = "fsdp" shards the model across processes: set '
                "nproc_per_node (or nnodes) so that there are at least 2"
            )
    if cuda and gpus > 0 and n > gpus:
        raise ConfigError(
            f"[launch] nproc_per_node = {n} but only {gpus} GPU(s) are visible here "
            f'(one process per GPU): set it to {gpus} or less, or "auto"'
        )


def torchrun_command(
    config: dict[str, Any],
    run_dir: Path | str,
    config_file: Path | str | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The torchrun command that starts this node's rank processes for a run directory.

    One node uses torchrun's --standalone rendezvous (a free local port, so two runs on one
    machine never collide); several use the static rendezvous at master_addr:master_port.
    """
    s = settings(config)
    command = [
        python,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={nproc(config)}",
        f"--nnodes={s['nnodes']}",
        "--max-restarts=0",  # a failed rank ends the run; tuiwiz records why, resume goes on
    ]
    if s["nnodes"] == 1:
        command.append("--standalone")
    else:
        command += [
            f"--node-rank={s['node_rank']}",
            f"--master-addr={s['master_addr']}",
            f"--master-port={s['master_port']}",
        ]
    command += [*WORKER, "--run-dir", str(run_dir), "--rank-process"]
    if config_file is not None:
        command += ["--config", str(config_file)]
    return command


def node_commands(config: dict[str, Any], run_dir: Path | str) -> list[tuple[int, str]]:
    """(node, command) to type on each other node of a multi-node run, as node 0 prints them.

    They point at the run's own preset.toml (the resolved preset, every --set included) and the
    same run directory, so every node trains exactly the same configuration.
    """
    s = settings(config)
    preset = shlex.quote(str(Path(run_dir) / "preset.toml"))
    out = shlex.quote(str(run_dir))
    return [
        (k, f"tuiwiz run {preset} --set launch.node_rank={k} --output-dir {out}")
        for k in range(1, s["nnodes"])
    ]


def node_instructions(config: dict[str, Any], run_dir: Path | str) -> list[str]:
    """The lines node 0 prints for a multi-node run (empty for a single node)."""
    s = settings(config)
    if s["nnodes"] < 2:
        return []
    lines = [
        f"this is node 0 of {s['nnodes']}: training starts once every node has joined at "
        f"{s['master_addr']}:{s['master_port']}. Start the others with:"
    ]
    lines += [f"  node {k}: {command}" for k, command in node_commands(config, run_dir)]
    lines.append(
        f"  (the same model, data and run directory {run_dir} at the same paths on every node: "
        "a shared filesystem, or copy preset.toml there first; resume needs it shared)"
    )
    if s["master_addr"] in LOOPBACK:
        lines.append(
            f"  note: master_addr is {s['master_addr']}, so every node must run on this machine; "
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
    s = settings(config)
    nodes = s["nnodes"]
    per_node = s["nproc_per_node"]
    gpus = "gpu" if per_node == "auto" else str(per_node)
    name = shlex.quote(str(config.get("name", "tuiwiz")))
    run = shlex.quote(str(run_dir))
    py = shlex.quote(python)
    gpu_line = (
        "#SBATCH --exclusive                   # all of each node's GPUs (nproc_per_node = auto)"
        if per_node == "auto"
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
PORT={s["master_port"]}

# 1. Once: check the model and data; create the run directory, or continue it.
"$PYTHON" -m tuiwiz.train.worker --run-dir "$RUN_DIR" --prepare --preset /dev/stdin <<'{delimiter}'
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
    -m tuiwiz.train.worker --run-dir "$RUN_DIR" --rank-process || code=$?

# 3. Once: record the outcome (why it failed, when no rank could say).
"$PYTHON" -m tuiwiz.train.worker --run-dir "$RUN_DIR" --finalize "$code"
"""
