"""Durations and byte counts as people read them, one way everywhere (CLI, dashboard, compare)."""

from __future__ import annotations


def duration(seconds: float | None, missing: str = "-") -> str:
    """ "4m05s", "2h17m"; `missing` for None."""
    if seconds is None:
        return missing
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def size(n: float | None, digits: int = 1, missing: str = "-") -> str:
    """Bytes in the binary unit that reads best: "3.2 GiB", "512.0 MiB", "12 KiB"."""
    if n is None:
        return missing
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f} {unit}"
    return f"{n / 1024:.0f} KiB" if abs(n) >= 1024 else f"{n:.0f} B"
