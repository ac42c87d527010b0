"""`tuiwiz runs`: every run with its state, progress, last loss, start time and directory."""

from __future__ import annotations

import argparse
import json
import time


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("runs", help="list runs (from any directory)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


COLORS = {
    "running": "cyan",
    "finished": "green",
    "failed": "red",
    "crashed": "red",
    "stopped": "yellow",
}
HEADERS = ("id", "state", "progress", "loss", "started")
GAP = 2
MIN_DIRECTORY = 24  # narrower than this, the directory goes on a line of its own


def _cells(r: dict) -> tuple[str, ...]:
    progress = f"{r['step'] or 0}/{r['max_steps'] or '?'}"
    loss = f"{r['loss']:.4f}" if isinstance(r["loss"], float) else "-"
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started_at"]))
    return (r["id"], r["state"], progress, loss, started)


def _fold(text: str, width: int) -> list[str]:
    width = max(1, width)
    return [text[i : i + width] for i in range(0, len(text), width)] or [""]


def table_lines(rows: list[dict], width: int):
    """The table as Rich Text lines, fitted to `width` without ever cutting or wrapping a run id
    (users copy it into other commands): the directory folds in its column; when that column
    would be too narrow it goes on a line of its own under its run; when even the other columns
    do not fit beside the id, each run is a block: the id alone, then its details."""
    from rich.text import Text

    cells = [_cells(r) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]
    fixed = sum(widths) + GAP * len(widths)
    pad = " " * GAP

    def line(values: tuple[str, ...], state: str | None, directory: str) -> Text:
        text = Text()
        for i, (value, w) in enumerate(zip(values, widths)):
            style = COLORS.get(state, "white") if state and i == 1 else ""
            text.append(value.ljust(w) + pad, style)
        text.append(directory)
        text.rstrip()
        return text

    if fixed + MIN_DIRECTORY <= width:  # one table, the directory folded in its column
        out = [line(HEADERS, None, "directory")]
        out[0].stylize("bold")
        for r, c in zip(rows, cells):
            parts = _fold(r["path"], width - fixed)
            out.append(line(c, r["state"], parts[0]))
            out += [Text(" " * fixed + part) for part in parts[1:]]
        return out
    if fixed - GAP <= width:  # the table, each directory on the line below its run
        out = [line(HEADERS, None, "")]
        out[0].stylize("bold")
        for r, c in zip(rows, cells):
            out.append(line(c, r["state"], ""))
            out += [Text("  " + part, "dim") for part in _fold(r["path"], width - 2)]
        return out
    out = []
    for r, (run_id, state, progress, loss, started) in zip(rows, cells):
        out.append(Text(run_id, "bold"))
        details = Text("  ")
        details.append(state, COLORS.get(state, "white"))
        details.append(f"  {progress}  loss {loss}  started {started}")
        out.append(details)
        out += [Text("  " + part, "dim") for part in _fold(r["path"], width - 2)]
    return out


def run(args: argparse.Namespace) -> int:
    from tuiwiz.train.registry import effective_state, list_runs
    from tuiwiz.train.state import RunState

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

    console = Console()
    if rows:
        for line in table_lines(rows, console.width):
            console.print(line, soft_wrap=True)
    else:
        console.print("no runs yet: start one with `tuiwiz run PRESET`")
    # Why runs failed, below the table where a long reason has room.
    for r in rows:
        if r["reason"] and r["state"] in (RunState.FAILED, RunState.CRASHED):
            console.print(
                f"{r['id']}: {r['reason']}", highlight=False, markup=False, soft_wrap=True
            )
            for hint in r["suggestions"]:
                fix = " ".join(f"--set {o}" for o in hint["overrides"])
                console.print(
                    f"  try: {hint['title']}  ({fix})",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,
                )
    return 0
