"""`tuiwiz compare RUN RUN [RUN...] [--json]`: runs side by side, one column each: the preset
keys that differ between them, and their losses, speed, time and memory."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "compare",
        help="compare runs side by side: the settings that differ and what each measured",
        description="Compare runs side by side: each run's preset keys that differ from the "
        "others', final and best training and evaluation loss (with their step), the base "
        "model's validation loss, tokens per second (median over logged steps), wall time "
        "(training time, summed over resumes) and peak memory (the GPU's peak allocation when "
        "the run logged one, else the training process's RSS). Reads run directories only.",
    )
    p.add_argument(
        "runs", nargs="+", metavar="RUN", help="a run directory, a run id or a unique prefix"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.compare import compare

    comparison = compare(args.runs)
    if args.json:
        print(json.dumps(comparison.to_json(), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from tuiwiz.compare import fmt_value, metric_rows

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("")
    for r in comparison.runs:
        table.add_column(r.id, overflow="fold")
    for key in comparison.differing:
        table.add_row(Text(key, style="cyan"), *(fmt_value(v) for v in comparison.values(key)))
    if not comparison.differing:
        table.add_row(Text("(the presets are the same)", style="dim"), *[""] * len(comparison.runs))
    table.add_section()
    for row in metric_rows(comparison):
        cells = [
            Text(cell, style="bold green" if i == row.best else "")
            for i, cell in enumerate(row.cells)
        ]
        table.add_row(row.label, *cells)
    console = Console()
    console.print(table)
    sources = {r.peak_memory_source for r in comparison.runs if r.peak_memory_source}
    if "rss_bytes" in sources:
        console.print(
            "peak memory: GPU = the GPU's peak allocation; RSS = the training process's resident "
            "memory (runs without a CUDA GPU)",
            style="dim",
            highlight=False,
        )
    return 0
