"""`tuiwiz doctor`: check this machine for tuiwiz, one line per check, with the fix of each
problem (tuiwiz/doctor/)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import textwrap


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "doctor",
        help="check Python, packages, torch's CUDA build, GPUs, disk and the Hub, with fixes",
    )
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")
    return p


def about() -> dict[str, str]:
    from tuiwiz import __version__

    return {
        "tuiwiz": __version__,
        "python": ".".join(map(str, sys.version_info[:3])),
        "platform": f"{platform.system()} {platform.machine()}",
    }


def header() -> str:
    found = about()
    return f"tuiwiz {found['tuiwiz']} · Python {found['python']} · {found['platform']}"


def run(args: argparse.Namespace) -> int:
    from tuiwiz import doctor

    checks = doctor.run_checks(doctor.Facts.gather())
    failed = sum(c.status == doctor.FAIL for c in checks)
    warned = sum(c.status == doctor.WARN for c in checks)
    if args.json:
        print(
            json.dumps(
                {
                    **about(),
                    "checks": [c.to_json() for c in checks],
                    "problems": failed,
                    "warnings": warned,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return doctor.exit_code(checks)
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    console.print(header(), style="dim")
    for check in checks:
        console.print(render(check, console.width), no_wrap=True, crop=False)
    if failed:
        verdict = Text(f"{failed} problem{'s' * (failed > 1)} (✗) to fix", style="bold red")
    else:
        verdict = Text("ready: nothing stops training here", style="green")
    if warned:
        verdict.append(f"; {warned} note{'s' * (warned > 1)} (!)", style="yellow")
    console.print(verdict)
    return doctor.exit_code(checks)


STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}
NAME_WIDTH = 15  # "huggingface-hub"


def render(check, width: int):
    """One check: its symbol, name and detail, wrapped under the detail; the fix below."""
    from rich.text import Text

    indent = " " * (NAME_WIDTH + 3)
    wrap = textwrap.TextWrapper(
        width=max(width, 60), subsequent_indent=indent, break_on_hyphens=False
    )
    text = Text(check.symbol, style=STYLES[check.status])
    text.append(f" {check.name:<{NAME_WIDTH}} ", style="bold")
    text.append(wrap.fill(indent + check.detail)[len(indent) :])
    if check.fix:
        text.append("\n" + wrap.fill(f"{indent}fix: {check.fix}"), style="cyan")
    return text
