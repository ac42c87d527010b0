"""`tuiwiz doctor`: the checks to run first on a new server, and to paste into a bug report.

Each check is one line: ✓ fine, ! worth knowing (tuiwiz still works), ✗ a problem that stops
training; every ! and ✗ carries the exact fix. The facts the checks judge (NVML readings, torch's
CUDA build, free disk, the Hub, a probe of CUDA on the real GPUs) come in through `Facts`, so that
tests can inject a healthy GPU, an old driver, a full disk or no GPU at all.

`quick=True` leaves out what is slow or can never be ✗ (the Hub, the CUDA probe, which starts
torch in a subprocess): the wizard's Start screen runs it in a worker to show any ✗ in one line.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiwiz.compat import TorchBuild
from tuiwiz.gpu import GpuStatus

OK, WARN, FAIL = "ok", "warn", "fail"
SYMBOLS = {OK: "✓", WARN: "!", FAIL: "✗"}


@dataclass(frozen=True)
class Check:
    name: str  # short: "python", "torch", "gpu 0", "disk", ...
    status: str  # OK, WARN or FAIL
    detail: str  # one line: what was found
    fix: str = ""  # for WARN and FAIL: what to do about it

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.status]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "symbol": self.symbol,
            "detail": self.detail,
            "fix": self.fix or None,
        }


def _no_probe() -> dict[str, Any]:
    return {"probe_error": "not run"}


@dataclass
class Facts:
    """What the checks judge. `gather()` reads the real machine; tests pass their own."""

    gpus: GpuStatus
    torch: TorchBuild | None  # None: torch is not installed
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path = field(default_factory=Path.cwd)
    python: tuple[int, ...] = tuple(sys.version_info[:3])
    disk_usage: Callable[[Path], Any] = shutil.disk_usage  # .free in bytes
    hub: Callable[[], str | None] = lambda: None  # why the Hub is unreachable, None if it is
    cuda_probe: Callable[[], dict[str, Any]] = _no_probe  # torch, bitsandbytes, flash-attn on GPU
    which: Callable[[str], str | None] = shutil.which

    @classmethod
    def gather(cls, **given: Any) -> Facts:
        """The real machine's facts, except those `given`."""
        from tuiwiz.doctor import probe

        if "gpus" not in given:
            from tuiwiz.gpu import read_gpus

            given["gpus"] = read_gpus()
        if "torch" not in given:
            from tuiwiz.compat import torch_build

            given["torch"] = torch_build()
        environ = given.setdefault("environ", dict(os.environ))
        given.setdefault("hub", lambda: probe.hub_unreachable(environ))
        given.setdefault("cuda_probe", probe.cuda_probe)
        return cls(**given)


def run_checks(facts: Facts, quick: bool = False) -> list[Check]:
    from tuiwiz.doctor import environment, hardware, software

    checks = [software.python(facts), *software.packages(), *software.internals(quick)]
    checks += [software.torch_driver(facts), *hardware.gpus(facts)]
    if not quick:
        checks += software.cuda_stack(facts)
    checks += [*hardware.disk(facts), environment.hf_cache(facts)]
    if not quick:
        checks.append(environment.hub(facts))
    checks += [environment.token(facts), environment.multiplexer(facts)]
    return checks


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.status == FAIL for c in checks) else 0


def problems_line(checks: list[Check]) -> str | None:
    """One line about the ✗ checks (for the Start screen), or None when there is none."""
    failed = [c for c in checks if c.status == FAIL]
    if not failed:
        return None
    if len(failed) == 1:
        return f"✗ {failed[0].detail} · `tuiwiz doctor` says how to fix it"
    more = f"and {len(failed) - 1} more"
    return f"✗ {failed[0].detail}, {more} · `tuiwiz doctor` lists them with their fixes"


def start_screen_problems() -> str | None:
    """The quick checks of this machine, summed up in one line when any is ✗."""
    return problems_line(run_checks(Facts.gather(), quick=True))
