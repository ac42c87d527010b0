"""The loss chart: training loss as a braille line, evaluation loss as markers, the base model's
validation loss as a dashed line, drawn to whatever size the widget has."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BRAILLE = 0x2800
# The dot bit of each (row, column) in a braille cell of 2 x 4 dots.
DOT = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
EVAL_MARK = "●"
BASE_MARK = "┄"

Points = Sequence[tuple[int, float]]


@dataclass
class ChartStyles:
    train: Style | str = "cyan"
    eval: Style | str = "yellow"
    base: Style | str = "magenta"
    axis: Style | str = "dim"


def _range(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi == lo:
        pad = abs(hi) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    return lo, hi


def render_chart(
    train: Points,
    evals: Points,
    base: float | None,
    width: int,
    height: int,
    styles: ChartStyles | None = None,
    log_scale: bool = False,
) -> Text:
    """The chart as `height` lines of `width` cells."""
    styles = styles or ChartStyles()
    values = [v for _, v in train] + [v for _, v in evals] + ([base] if base is not None else [])
    values = [v for v in values if math.isfinite(v)]
    if not values:
        blank = [""] * max(0, height // 2) + ["no loss logged yet"]
        return Text("\n".join(line.center(width) for line in blank), style=styles.axis)
    log_scale = log_scale and min(values) > 0
    fwd = math.log10 if log_scale else (lambda v: v)
    back = (lambda v: 10**v) if log_scale else (lambda v: v)
    lo, hi = _range([fwd(v) for v in values])
    steps = [s for s, _ in train] + [s for s, _ in evals]
    x_lo, x_hi = (min(steps), max(steps)) if steps else (0, 0)

    rows = max(1, height - 2)
    label_rows = {0: back(hi), rows - 1: back(lo)}
    if rows >= 7:
        label_rows[rows // 2] = back(hi - (rows // 2 * 4 + 1.5) / (rows * 4 - 1) * (hi - lo))
    labels = {r: f"{v:.4g}" for r, v in label_rows.items()}
    label_w = max(len(s) for s in labels.values())
    cols = max(1, width - label_w - 1)
    dots_w, dots_h = cols * 2, rows * 4

    def dot_x(step: float) -> int:
        return 0 if x_hi == x_lo else round((step - x_lo) / (x_hi - x_lo) * (dots_w - 1))

    def dot_y(value: float) -> int:
        return round((hi - fwd(value)) / (hi - lo) * (dots_h - 1))

    cells = [[0] * cols for _ in range(rows)]

    def plot(x: int, y: int) -> None:
        if 0 <= x < dots_w and 0 <= y < dots_h:
            cells[y // 4][x // 2] |= DOT[y % 4][x % 2]

    def line(x0: int, y0: int, x1: int, y1: int) -> None:
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(n + 1):
            plot(round(x0 + (x1 - x0) * i / n), round(y0 + (y1 - y0) * i / n))

    # One pass gathers, per dot column, the first, last, lowest and highest point; drawing
    # then costs the chart's width, not the number of points (a long run logs many).
    columns: dict[int, list[int]] = {}  # x -> [first y, last y, min y, max y]
    sx = 0.0 if x_hi == x_lo else (dots_w - 1) / (x_hi - x_lo)
    sy = (dots_h - 1) / (hi - lo)
    values = (math.log10(v) if v > 0 else -math.inf for _, v in train) if log_scale else None
    for step, value in train:
        fv = next(values) if values is not None else value
        if math.isfinite(fv):
            x, y = int((step - x_lo) * sx + 0.5), int((hi - fv) * sy + 0.5)
            column = columns.get(x)
            if column is None:
                columns[x] = [y, y, y, y]
            else:
                column[1] = y
                if y < column[2]:
                    column[2] = y
                elif y > column[3]:
                    column[3] = y
    previous = None
    for x in sorted(columns):
        first, last, low, high = columns[x]
        if previous is not None:  # a straight line of dots from the previous column
            line(*previous, x, first)
        line(x, low, x, high)
        previous = (x, last)
    marks = {(dot_y(v) // 4, dot_x(s) // 2) for s, v in evals if math.isfinite(v)}
    base_row = dot_y(base) // 4 if base is not None and math.isfinite(base) else None

    text = Text(no_wrap=True, overflow="crop")
    for r in range(rows):
        text.append(labels.get(r, "").rjust(label_w) + ("┤" if r in labels else "│"), styles.axis)
        for c in range(cols):
            if (r, c) in marks:
                text.append(EVAL_MARK, styles.eval)
            elif cells[r][c]:
                text.append(chr(BRAILLE + cells[r][c]), styles.train)
            elif r == base_row:
                text.append(BASE_MARK, styles.base)
            else:
                text.append(" ")
        text.append("\n")
    text.append(" " * label_w + "└" + "─" * cols + "\n", styles.axis)
    left, right = f"step {x_lo}", f"{x_hi}" if x_hi != x_lo else ""
    gap = cols + 1 - len(left) - len(right)
    x_labels = left + " " * gap + right if gap >= 1 else left
    text.append(" " * label_w + x_labels, styles.axis)
    return text


class LossChart(Widget):
    """Training and evaluation loss against the step; redraws to fit its size."""

    COMPONENT_CLASSES = {
        "loss-chart--train",
        "loss-chart--eval",
        "loss-chart--base",
        "loss-chart--axis",
    }
    DEFAULT_CSS = """
    LossChart {
        height: 1fr;
        min-height: 5;
    }
    LossChart > .loss-chart--train { color: $text-primary; }
    LossChart > .loss-chart--eval { color: $text-warning; }
    LossChart > .loss-chart--base { color: $text-secondary; }
    LossChart > .loss-chart--axis { color: $text-muted; }
    """

    log_scale: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.train: Points = []
        self.evals: Points = []
        self.base: float | None = None

    def set_data(self, train: Points, evals: Points, base: float | None) -> None:
        self.train, self.evals, self.base = train, evals, base
        self.refresh()

    @property
    def point_count(self) -> int:
        return len(self.train) + len(self.evals) + (self.base is not None)

    def render(self) -> Text:
        size = self.content_size
        styles = ChartStyles(
            *(
                self.get_component_rich_style(f"loss-chart--{name}")
                for name in ("train", "eval", "base", "axis")
            )
        )
        return render_chart(
            self.train, self.evals, self.base, size.width, size.height, styles, self.log_scale
        )
