"""How many processes train a run and how they share the model: the preset's [launch] section as
one value, `Launch`, built once from the validated configuration and taken by the estimator,
the wizard and the training process. The torchrun, node and Slurm commands that start the
processes are in tuiwiz.train.torchrun.

One process (the default) trains exactly as without this module. Standard library only: the CLI
and the TUI import this without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuiwiz.config import section_defaults
from tuiwiz.errors import ConfigError

DEFAULTS: dict[str, Any] = section_defaults("launch")


@dataclass(frozen=True)
class Launch:
    """The processes of a run: `nproc_per_node` on each of `nnodes` machines, sharing the model
    by `strategy`. `auto` when the preset said nproc_per_node = "auto" (every visible GPU)."""

    strategy: str = "ddp"  # "ddp" or "fsdp"
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500
    auto: bool = False

    @property
    def world_size(self) -> int:
        """Processes in the whole run: per node x nodes."""
        return self.nproc_per_node * self.nnodes

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def mode(self) -> str:
        """How the run trains: "single" (one process), "ddp" or "fsdp"."""
        return self.strategy if self.distributed else "single"

    @property
    def fsdp(self) -> bool:
        return self.mode == "fsdp"

    def describe(self) -> str:
        """One line for people: "one process, one GPU", "fsdp over 8 GPUs (4 per node x 2
        nodes)"."""
        if not self.distributed:
            return "one process, one GPU"
        text = f"{self.strategy} over {self.world_size} GPUs"
        if self.nnodes > 1:
            text += f" ({self.nproc_per_node} per node x {self.nnodes} nodes)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.mode,
            "world_size": self.world_size,
            "nproc_per_node": self.nproc_per_node,
            "nnodes": self.nnodes,
            "node_rank": self.node_rank,
        }

    def section(self) -> dict[str, Any]:
        """The [launch] section that records this launch, "auto" resolved to its count."""
        return {
            "nproc_per_node": self.nproc_per_node,
            "nnodes": self.nnodes,
            "node_rank": self.node_rank,
            "master_addr": self.master_addr,
            "master_port": self.master_port,
            "strategy": self.strategy,
        }


SINGLE = Launch()


def visible_gpus() -> int:
    """NVIDIA GPUs this process may use (NVML, filtered by CUDA_VISIBLE_DEVICES)."""
    from tuiwiz.gpu import read_gpus

    return len(read_gpus().gpus)


def launch_of(config: dict[str, Any], gpus: int | None = None) -> Launch:
    """The launch a configuration asks for. "auto" is every visible GPU (1 when there is none):
    `gpus` when the caller has read them, read here otherwise."""
    s = {**DEFAULTS, **(config.get("launch") or {})}
    auto = s["nproc_per_node"] == "auto"
    nproc = max(visible_gpus() if gpus is None else gpus, 1) if auto else int(s["nproc_per_node"])
    return Launch(
        strategy=s["strategy"],
        nproc_per_node=nproc,
        nnodes=int(s["nnodes"]),
        node_rank=int(s["node_rank"]),
        master_addr=s["master_addr"],
        master_port=int(s["master_port"]),
        auto=auto,
    )


def resolve(config: dict[str, Any], gpus: int | None = None) -> dict[str, Any]:
    """A copy of `config` whose [launch] says the number of processes ("auto" resolved), so the
    run's preset.toml records what ran."""
    return {**config, "launch": launch_of(config, gpus).section()}


def check(launch: Launch, gpus: int, cuda: bool) -> None:
    """A launch against this machine: `gpus` visible NVIDIA GPUs, `cuda` whether torch can use
    them (the section's own rules were checked with the rest of the configuration). Raises
    ConfigError with one line."""
    if launch.strategy == "fsdp":
        if not cuda:
            raise ConfigError(
                '[launch] strategy = "fsdp" needs NVIDIA GPUs (it shards the model across '
                'them) and this machine has none that torch can use; use strategy = "ddp" '
                "or run on a GPU machine"
            )
        if launch.world_size < 2:
            raise ConfigError(
                '[launch] strategy = "fsdp" shards the model across processes: set '
                "nproc_per_node (or nnodes) so that there are at least 2"
            )
    n = launch.nproc_per_node
    if cuda and gpus > 0 and n > gpus:
        raise ConfigError(
            f"[launch] nproc_per_node = {n} but only {gpus} GPU(s) are visible here "
            f'(one process per GPU): set it to {gpus} or less, or "auto"'
        )
