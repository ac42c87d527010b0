"""`tuiwiz gpus`: what NVML reports for each visible GPU (or why there is none)."""

from __future__ import annotations

import argparse
import json

GiB = 1 << 30


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("gpus", help="show GPU memory, utilization, temperature, power, processes")
    p.add_argument(
        "--json", action="store_true", help="print JSON (the format $TUIWIZ_FAKE_NVML replays)"
    )
    return p


def _fmt(value, unit: str = "") -> str:
    return "-" if value is None else f"{value}{unit}"


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def run(args: argparse.Namespace) -> int:
    from tuiwiz.gpu import read_gpus

    status = read_gpus()
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
        return 0
    if not status.available:
        print(f"tuiwiz: {status.error}")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    table.add_column("#")
    table.add_column("GPU", no_wrap=True)
    table.add_column("used/total GiB", no_wrap=True)
    for name in ("free", "util", "temp", "power"):
        table.add_column(name, no_wrap=True)
    table.add_column("processes")
    for g in status.gpus:
        procs = ", ".join(
            f"{_short(p.name) or p.pid} {p.used_bytes / GiB:.1f}G"
            if p.used_bytes is not None
            else f"{_short(p.name) or p.pid}"
            for p in g.processes
        )
        power = "-" if g.power_w is None else f"{g.power_w:.0f}W"
        table.add_row(
            str(g.index),
            g.name,
            f"{g.used_bytes / GiB:.1f}/{g.total_bytes / GiB:.1f}",
            f"{g.free_bytes / GiB:.1f}G",
            _fmt(g.utilization_gpu, "%"),
            _fmt(g.temperature_c, "C"),
            power,
            procs or "-",
        )
    console = Console()
    console.print(table)
    if status.driver:
        console.print(
            f"driver {status.driver}" + (f"  ({status.source})" if status.source != "nvml" else ""),
            style="dim",
            highlight=False,
        )
    return 0
