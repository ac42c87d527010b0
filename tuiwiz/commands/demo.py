"""`tuiwiz demo`: fine-tune the bundled tiny model on its bundled task, then show what it learned.

It runs the shipped demo preset through the same path as `tuiwiz run`, then answers the held-out
prompts (never seen in training) with the base model and with the fine-tuned adapter.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="fine-tune the bundled tiny model (CPU is enough) and compare")
    p.add_argument("--output-dir", type=Path, help="the run directory (default: ./runs/demo-TIME)")
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz import presets
    from tuiwiz.commands.run import start
    from tuiwiz.train.jobs import default_run_dir

    run_dir = (args.output_dir or default_run_dir("demo")).resolve()
    code = start(run_dir, presets.load("demo")[0])
    if code != 0:
        return code
    show_comparison(run_dir)
    return 0


def show_comparison(run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from tuiwiz.after.loading import quiet_libraries
    from tuiwiz.demo.compare import compare_on_heldout

    quiet_libraries()
    rows = compare_on_heldout(run_dir)
    console = Console()
    instruction = rows[0]["instruction"] if rows else ""
    console.print(
        f"\n[bold]Held-out words (never seen in training), prompt {instruction!r}: "
        "base model vs fine-tuned[/bold]"
    )
    table = Table("input", "expected", "base model", "fine-tuned", header_style="bold")
    for row in rows:
        mark = lambda ok: "[green]✓[/green]" if ok else "[red]✗[/red]"  # noqa: E731
        table.add_row(
            row["input"],
            row["expected"],
            f"{mark(row['base_ok'])} {row['base']}",
            f"{mark(row['tuned_ok'])} {row['tuned']}",
        )
    console.print(table)
    base = sum(r["base_ok"] for r in rows)
    tuned = sum(r["tuned_ok"] for r in rows)
    console.print(f"correct: base model {base}/{len(rows)}, fine-tuned {tuned}/{len(rows)}")
