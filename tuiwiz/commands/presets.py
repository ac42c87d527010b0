"""`tuiwiz presets`: the shipped and saved presets with their descriptions."""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    return sub.add_parser("presets", help="list shipped and saved presets")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from tuiwiz.presets import list_presets

    table = Table("name", "origin", "description", box=None, header_style="bold")
    for info in list_presets():
        table.add_row(info.name, info.origin, info.description)
    Console().print(table)
    return 0
