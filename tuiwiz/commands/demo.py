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
    from tuiwiz.commands import run as run_command

    run_args = argparse.Namespace(
        preset="demo", overrides=[], output_dir=args.output_dir, resume=None
    )
    run_dir = args.output_dir
    if run_dir is None:
        from tuiwiz.train.jobs import default_run_dir

        run_dir = run_args.output_dir = default_run_dir("demo")
    code = run_command.run(run_args)
    if code != 0:
        return code
    show_comparison(Path(run_dir))
    return 0


def show_comparison(run_dir: Path) -> None:
    import warnings

    from rich.console import Console
    from rich.table import Table

    from tuiwiz import demo
    from tuiwiz.train.rundir import RunDir

    run = RunDir(run_dir)
    config = run.config()
    console = Console()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # library deprecation notices
        rows = demo.compare_on_heldout(
            demo.ensure_demo_model(), run.adapter, config["quantization"]
        )
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
