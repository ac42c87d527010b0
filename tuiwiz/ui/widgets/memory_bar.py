"""A GPU's memory as one bar: what other processes use, what the run needs, what stays free."""

from __future__ import annotations

from rich.text import Text

GiB = 1 << 30


def gib(n: float) -> str:
    """A size in the unit that keeps it readable: GiB, MiB or KiB."""
    if n >= GiB / 10:
        return f"{n / GiB:.1f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.0f} MiB"
    return f"{n / 1024:.0f} KiB"


def memory_bar(width: int, total: int, used: int, need: int) -> Text:
    """`used` (by others) grey, the run's `need` green (red where it overflows), free dim."""
    width = max(10, width)
    cell = total / width
    # Anything above zero gets at least one cell, so a small run is still visible on a big card.
    used_cells = min(width, max(round(used / cell), 1 if used > 0 else 0))
    need_cells = max(round(need / cell), 1 if need > 0 else 0)
    fit_cells = min(need_cells, width - used_cells)
    text = Text()
    text.append("█" * used_cells, "grey50")
    text.append("█" * fit_cells, "green" if need_cells <= width - used_cells else "red")
    text.append("░" * (width - used_cells - fit_cells), "grey30")
    if need_cells > fit_cells:
        text.append("▶", "bold red")  # the estimate runs past the card's end
    return text
