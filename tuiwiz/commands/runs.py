"""`tuiwiz runs`: every run with its state, progress, last loss, start time and directory."""

from __future__ import annotations

import argparse
import json
import time


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("runs", help="list runs (from any directory)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.train.registry import effective_state, list_runs

    rows = []
    for entry, status in list_runs():
        rows.append(
            {
                "id": entry.id,
                "state": effective_state(status, entry.path),
                "step": status.get("step"),
                "max_steps": status.get("max_steps"),
                "loss": status.get("loss"),
                "started_at": status.get("started_at", entry.created_at),
                "path": str(entry.path),
                "world_size": status.get("world_size", 1),
                "effective_batch_size": status.get("effective_batch_size"),
                "reason": status.get("reason"),
                "suggestions": status.get("suggestions") or [],
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    colors = {
        "running": "cyan",
        "finished": "green",
        "failed": "red",
        "crashed": "red",
        "stopped": "yellow",
    }
    table = Table(
        "id", "state", "progress", "loss", "started", "directory", box=None, header_style="bold"
    )
    for r in rows:
        progress = f"{r['step'] or 0}/{r['max_steps'] or '?'}"
        loss = f"{r['loss']:.4f}" if isinstance(r["loss"], float) else "-"
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started_at"]))
        state = f"[{colors.get(r['state'], 'white')}]{r['state']}[/]"
        table.add_row(r["id"], state, progress, loss, started, r["path"])
    console = Console()
    console.print(table if rows else "no runs yet: start one with `tuiwiz run PRESET`")
    # Why runs failed, below the table where a long reason has room.
    for r in rows:
        if r["reason"] and r["state"] in ("failed", "crashed"):
            console.print(f"{r['id']}: {r['reason']}", highlight=False, soft_wrap=True)
            for hint in r["suggestions"]:
                fix = " ".join(f"--set {o}" for o in hint["overrides"])
                console.print(f"  try: {hint['title']}  ({fix})", highlight=False, soft_wrap=True)
    return 0
