"""`tuiwiz estimate PRESET`: the peak GPU memory of the run a preset describes, term by term and
per GPU (for its [launch]: one process, DDP or FSDP), compared with the free memory of every GPU
the run uses, with changes that make it fit."""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from tuiwiz import units
from tuiwiz.commands import add_override_argument
from tuiwiz.errors import TuiwizError

GiB = 1 << 30


def size(n: int) -> str:
    return units.size(n, digits=2)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("estimate", help="estimate the peak GPU memory of a preset's training run")
    p.add_argument("preset", help="a preset file, or the name of a shipped or saved one")
    add_override_argument(p)
    p.add_argument(
        "--gpu",
        type=int,
        default=None,
        metavar="INDEX",
        help="compare with this GPU only (default: every GPU the run uses: the first "
        "nproc_per_node visible ones)",
    )
    p.add_argument(
        "--data",
        action="store_true",
        help="also read the dataset's token lengths (with the model's tokenizer): estimate with "
        "its longest example and say what a shorter max_seq_length would cut",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return p


def token_lengths(config: dict[str, Any]):
    """The dataset's token lengths, as the Dataset step measures them (tuiwiz.data.preview)."""
    from tuiwiz import bundled
    from tuiwiz.data.preview import preview, tokenizer_for
    from tuiwiz.estimate.lengths import TokenLengths

    if config["data"]["path"] is None:
        raise TuiwizError("--data: the preset has no [data] path; set one or leave out --data")
    data = {**config["data"], "path": bundled.resolve_data(config["data"]["path"])}
    tokenizer = tokenizer_for(bundled.resolve_model(config["model"]["name_or_path"]), config)
    return TokenLengths.from_preview(preview(data, tokenizer, count=0))


def report(
    preset: str, overrides: list[str], gpu_index: int | None = None, with_data: bool = False
) -> dict[str, Any]:
    """The estimate report as data (what --json prints). The estimate is per GPU; it is
    checked against every GPU the run uses, or against --gpu INDEX alone. `with_data`: with
    the dataset's token lengths (--data)."""
    from tuiwiz import presets, speed
    from tuiwiz.estimate import estimate, suggest
    from tuiwiz.estimate.advice import fits, is_tight
    from tuiwiz.estimate.parallel import used_gpus
    from tuiwiz.gpu import read_gpus

    # The estimate reads only the model's config.json: it works before the data is chosen.
    config, path = presets.load(preset, overrides, require_data=False)
    lengths = token_lengths(config) if with_data else None
    status = read_gpus()
    machine = speed.this_machine(cuda=status.available)
    est = estimate(config, gpu_count=len(status.gpus), machine=machine, lengths=lengths)
    used, _, missing = used_gpus(status.gpus, est.launch.nproc_per_node)
    if gpu_index is not None and status.gpus:
        target = next((g for g in status.gpus if g.index == gpu_index), None)
        if target is None:
            indices = ", ".join(str(g.index) for g in status.gpus)
            raise TuiwizError(f"--gpu {gpu_index}: no such visible GPU (visible: {indices})")
        used, missing = [target], 0
    used_index = {g.index for g in used}
    gpus = [
        {
            "index": g.index,
            "name": g.name,
            "total_bytes": g.total_bytes,
            "free_bytes": g.free_bytes,
            "used": g.index in used_index,
            "fits": fits(est.total, g.free_bytes),
            "tight": is_tight(est.total, g.free_bytes),
        }
        for g in status.gpus
    ]
    # The tightest GPU the run uses decides; a process without a GPU does not fit anywhere.
    free = min((g.free_bytes for g in used), default=None)
    verdict = fits(est.total, free)
    if verdict is not None and missing:
        verdict = False
    data = est.to_json()
    data.update(
        {
            "preset": str(path),
            "model": config["model"]["name_or_path"],
            "gpus": gpus,
            "gpu_error": status.error,
            "gpu": used[0].index if used else None,
            "gpus_used": [g.index for g in used],
            "gpus_missing": missing,
            "fits": verdict,
            "tight": is_tight(est.total, free),
            "headroom_bytes": None if free is None else free - est.total,
            "suggestions": [
                s.to_json()
                for s in suggest(
                    config,
                    free,
                    base=est,
                    gpus_free=[g.free_bytes for g in status.gpus] if gpu_index is None else None,
                    machine=machine,
                    lengths=lengths,
                )
            ],
            "token_lengths": None
            if lengths is None
            else {
                "measured": len(lengths.lengths),
                "examples": lengths.examples,
                "longest": lengths.longest,
                "complete": lengths.complete,
            },
        }
    )
    return data


def batch_line(a: dict[str, Any], launch: dict[str, Any]) -> str:
    """Effective batch: per-device batch x accumulation x world size."""
    text = f"effective batch {a['effective_batch_size']} = {a['batch_size']} per device x "
    text += f"{a['gradient_accumulation_steps']} accumulation"
    if launch["world_size"] > 1:
        text += f" x {launch['world_size']} GPUs"
    return text


def run(args: argparse.Namespace) -> int:
    data = report(args.preset, args.overrides, args.gpu, getattr(args, "data", False))
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m, a, launch = data["memory"], data["assumptions"], data["launch"]
    console.print(
        f"[bold]{data['model']}[/bold]: {data['params']['total']:,} parameters, "
        f"{data['params']['trainable']:,} trainable; batch {a['batch_size']} x "
        f"{a['sequence_length']} tokens, {a['quantization']}, {a['optim']}, "
        f"checkpointing {'on' if a['gradient_checkpointing'] else 'off'}, "
        f"{a['attn_implementation']}",
        highlight=False,
    )
    line = batch_line(a, launch)
    if launch["world_size"] > 1:
        nodes = f" ({launch['nproc_per_node']} per node x {launch['nnodes']} nodes)"
        line = (
            f"[bold]Per GPU[/bold], for {launch['strategy']} over {launch['world_size']} GPUs"
            + (nodes if launch["nnodes"] > 1 else "")
            + f"; {line}"
        )
    console.print(line[0].upper() + line[1:], highlight=False)
    table = Table("term", "size", "what it is", box=None, header_style="bold")
    table.columns[1].justify = "right"
    table.columns[1].no_wrap = True
    for name, nbytes in m["components"].items():
        if nbytes:
            table.add_row(name, size(nbytes), m["explanations"][name]["explain"])
    per_gpu = " per GPU" if launch["world_size"] > 1 else ""
    table.add_row(
        f"[bold]total{per_gpu}[/bold]",
        f"[bold]{size(m['total_bytes'])}[/bold]",
        f"peak during {m['peak_phase']}; torch allocated {size(m['allocated_peak_bytes'])}, "
        f"reserved {size(m['reserved_peak_bytes'])}",
    )
    console.print(table)
    for note in data["notes"]:
        console.print(f"note: {note}", style="dim", highlight=False)
    _print_fit(console, data)
    return 0


def _verdict(room: int, fits: bool, tight: bool) -> str:
    if not fits:
        return f"[red]does not fit[/red]: {size(-room)} short"
    if tight:
        return f"[yellow]fits with little room[/yellow]: {size(room)} to spare"
    return f"[green]fits[/green]: {size(room)} to spare"


def _print_fit(console, data: dict[str, Any]) -> None:
    if not data["gpus"]:
        console.print(
            f"GPU: {data['gpu_error'] or 'none'}; nothing to compare with", highlight=False
        )
        return
    total = data["memory"]["total_bytes"]
    used = set(data["gpus_used"])
    for g in data["gpus"]:
        head = f"GPU {g['index']} {g['name']}: {size(g['free_bytes'])} free of "
        head += size(g["total_bytes"])
        if g["index"] in used:
            room = g["free_bytes"] - total
            console.print(f"{head}; {_verdict(room, g['fits'], g['tight'])}")
        else:
            console.print(f"{head}; [dim]not used by this run[/dim]")
    if data["gpus_missing"]:
        n = data["launch"]["nproc_per_node"]
        console.print(
            f"[red]does not fit[/red]: nproc_per_node = {n} needs {n} GPUs, "
            f"{len(data['gpus'])} visible",
            highlight=False,
        )
    for i, s in enumerate(data["suggestions"], 1):
        mark = "fits" if s["fits"] else "still too big"
        flags = " ".join(f"--set {shlex.quote(o)}" for o in s["overrides"])
        console.print(
            f"  {i}. {s['title']}: {size(s['total_bytes'])} ({mark})\n     {flags}",
            highlight=False,
        )
