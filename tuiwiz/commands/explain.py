"""`tuiwiz explain [KEY]`: the plain-language explanation of a configuration key."""

from __future__ import annotations

import argparse

from tuiwiz.errors import TuiwizError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("explain", help="explain a configuration key in plain words")
    p.add_argument(
        "key", nargs="?", help="e.g. learning_rate, lora.r, quantization.bnb_4bit_quant_type"
    )
    return p


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from tuiwiz.explain import EXPLANATIONS, explain

    console = Console()
    if not args.key:
        table = Table("key", "what it is", box=None, header_style="bold")
        for key, entry in EXPLANATIONS.items():
            table.add_row(key, entry.summary)
        console.print(table)
        return 0
    from tuiwiz.explain import keys_for, section_note

    note = section_note(args.key)
    if note is not None:
        console.print(note.title, style="bold", markup=False)
        console.print(note.body, highlight=False, markup=False)  # "[data]" is text here
        table = Table("key", "what it is", box=None, header_style="bold")
        for key in keys_for(note.section):
            table.add_row(key, EXPLANATIONS[key].summary)
        console.print(table)
        return 0
    try:
        entry = explain(args.key)
    except KeyError as e:
        raise TuiwizError(str(e.args[0] if e.args else e)) from None
    console.print(f"[bold]{entry.title}[/bold]  [dim]{entry.key}[/dim]")
    console.print(entry.body, highlight=False, markup=False)
    console.print(f"[bold]Range:[/bold] {escape(entry.range)}", highlight=False)
    console.print(f"[bold]Default:[/bold] {escape(entry.default)}", highlight=False)
    return 0
