"""`tuiwiz estimate PRESET`: the peak GPU memory of the run a preset describes, term by term,
compared with the free memory of each visible GPU, with changes that make it fit."""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from tuiwiz.commands import add_override_argument
from tuiwiz.errors import TuiwizError

GiB = 1 << 30


def size(n: int) -> str:
    """Bytes in the unit that reads best: GiB from 1 GiB, else MiB (KiB for tiny terms)."""
    for unit, scale in (("GiB", GiB), ("MiB", 1 << 20)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n / 1024:.1f} KiB"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("estimate", help="estimate the peak GPU memory of a preset's training run")
    p.add_argument("preset", help="a preset file, or the name of a shipped or saved one")
    add_override_argument(p)
    p.add_argument(
        "--gpu",
        type=int,
        default=None,
        metavar="INDEX",
        help="compare with this GPU (default: the first visible one, which training uses)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return p


def report(preset: str, overrides: list[str], gpu_index: int | None = None) -> dict[str, Any]:
    """The estimate report as data (what --json prints)."""
    from tuiwiz import presets
    from tuiwiz.estimate import estimate, suggest
    from tuiwiz.estimate.advice import fits, is_tight
    from tuiwiz.gpu import read_gpus

    config, path = presets.load(preset, overrides)
    est = estimate(config)
    status = read_gpus()
    gpus = [
        {
            "index": g.index,
            "name": g.name,
            "total_bytes": g.total_bytes,
            "free_bytes": g.free_bytes,
            "fits": fits(est.total, g.free_bytes),
        }
        for g in status.gpus
    ]
    target = None
    if status.gpus:
        if gpu_index is None:
            target = status.gpus[0]
        else:
            target = next((g for g in status.gpus if g.index == gpu_index), None)
            if target is None:
                indices = ", ".join(str(g.index) for g in status.gpus)
                raise TuiwizError(f"--gpu {gpu_index}: no such visible GPU (visible: {indices})")
    free = target.free_bytes if target else None
    data = est.to_json()
    data.update(
        {
            "preset": str(path),
            "model": config["model"]["name_or_path"],
            "gpus": gpus,
            "gpu_error": status.error,
            "gpu": target.index if target else None,
            "fits": fits(est.total, free),
            "tight": is_tight(est.total, free),
            "headroom_bytes": None if free is None else free - est.total,
            "suggestions": [s.to_json() for s in suggest(config, free, base=est)],
        }
    )
    return data


def run(args: argparse.Namespace) -> int:
    data = report(args.preset, args.overrides, args.gpu)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m, a = data["memory"], data["assumptions"]
    console.print(
        f"[bold]{data['model']}[/bold]: {data['params']['total']:,} parameters, "
        f"{data['params']['trainable']:,} trainable; batch {a['batch_size']} x "
        f"{a['sequence_length']} tokens, {a['quantization']}, {a['optim']}, "
        f"checkpointing {'on' if a['gradient_checkpointing'] else 'off'}, "
        f"{a['attn_implementation']}",
        highlight=False,
    )
    table = Table("term", "size", "what it is", box=None, header_style="bold")
    table.columns[1].justify = "right"
    table.columns[1].no_wrap = True
    for name, nbytes in m["components"].items():
        if nbytes:
            table.add_row(name, size(nbytes), m["explanations"][name]["explain"])
    table.add_row(
        "[bold]total[/bold]",
        f"[bold]{size(m['total_bytes'])}[/bold]",
        f"peak during {m['peak_phase']}; torch allocated {size(m['allocated_peak_bytes'])}, "
        f"reserved {size(m['reserved_peak_bytes'])}",
    )
    console.print(table)
    for note in data["notes"]:
        console.print(f"note: {note}", style="dim", highlight=False)
    _print_fit(console, data)
    return 0


def _print_fit(console, data: dict[str, Any]) -> None:
    if data["fits"] is None:
        console.print(
            f"GPU: {data['gpu_error'] or 'none'}; nothing to compare with", highlight=False
        )
        return
    g = next(g for g in data["gpus"] if g["index"] == data["gpu"])
    room = data["headroom_bytes"]
    verdict = (
        f"[red]does not fit[/red]: {size(-room)} short"
        if not data["fits"]
        else f"[yellow]fits with little room[/yellow]: {size(room)} to spare"
        if data["tight"]
        else f"[green]fits[/green]: {size(room)} to spare"
    )
    console.print(
        f"GPU {g['index']} {g['name']}: {size(g['free_bytes'])} free of "
        f"{size(g['total_bytes'])}; {verdict}"
    )
    for i, s in enumerate(data["suggestions"], 1):
        mark = "fits" if s["fits"] else "still too big"
        flags = " ".join(f"--set {shlex.quote(o)}" for o in s["overrides"])
        console.print(
            f"  {i}. {s['title']}: {size(s['total_bytes'])} ({mark})\n     {flags}",
            highlight=False,
        )
