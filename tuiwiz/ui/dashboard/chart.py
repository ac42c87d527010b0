"""The loss chart: training loss as a braille line, evaluation loss as markers, the base model's
validation loss as a dashed line, drawn to whatever size the widget has; one run (the dashboard)
or several on a common step axis (the compare screen)."""

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


@dataclass
class Series:
    """One run's losses on a chart: training loss as a line, evaluation loss as markers, the
    base model's validation loss as a dashed line, each in its style."""

    train: Points
    evals: Points
    base: float | None
    train_style: Style | str = "cyan"
    eval_style: Style | str = "yellow"
    base_style: Style | str = "magenta"


def render_chart(
    train: Points,
    evals: Points,
    base: float | None,
    width: int,
    height: int,
    styles: ChartStyles | None = None,
    log_scale: bool = False,
) -> Text:
    """The chart of one run as `height` lines of `width` cells."""
    styles = styles or ChartStyles()
    series = Series(train, evals, base, styles.train, styles.eval, styles.base)
    return render_series([series], width, height, styles.axis, log_scale)


def render_series(
    series: Sequence[Series],
    width: int,
    height: int,
    axis: Style | str = "dim",
    log_scale: bool = False,
) -> Text:
    """Several runs on one chart, on a common step axis (each point at its own step, whatever
    each run's logging interval), as `height` lines of `width` cells. Where lines share a cell,
    it takes the colour of the run with most dots in it."""
    values = [
        v
        for s in series
        for v in (
            [v for _, v in s.train] + [v for _, v in s.evals] + [s.base] * (s.base is not None)
        )
    ]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        blank = [""] * max(0, height // 2) + ["no loss logged yet"]
        return Text("\n".join(line.center(width) for line in blank), style=axis)
    log_scale = log_scale and min(values) > 0
    fwd = math.log10 if log_scale else (lambda v: v)
    back = (lambda v: 10**v) if log_scale else (lambda v: v)
    lo, hi = _range([fwd(v) for v in values])
    steps = [st for s in series for st, _ in s.train] + [st for s in series for st, _ in s.evals]
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

    sx = 0.0 if x_hi == x_lo else (dots_w - 1) / (x_hi - x_lo)
    sy = (dots_h - 1) / (hi - lo)
    grids = [_line_cells(s.train, rows, cols, x_lo, hi, sx, sy, log_scale) for s in series]
    marks: dict[tuple[int, int], int] = {}  # cell -> the run whose evaluation is marked there
    base_rows: dict[int, int] = {}  # row -> the run whose base loss is drawn there
    for i, s in enumerate(series):
        for st, v in s.evals:
            if math.isfinite(v):
                marks[(dot_y(v) // 4, dot_x(st) // 2)] = i
        if s.base is not None and math.isfinite(s.base):
            base_rows[dot_y(s.base) // 4] = i

    text = Text(no_wrap=True, overflow="crop")
    for r in range(rows):
        text.append(labels.get(r, "").rjust(label_w) + ("┤" if r in labels else "│"), axis)
        for c in range(cols):
            bits = [grid[r][c] for grid in grids]
            if (r, c) in marks:
                text.append(EVAL_MARK, series[marks[(r, c)]].eval_style)
            elif any(bits):
                union = 0
                for b in bits:
                    union |= b
                owner = max(range(len(bits)), key=lambda i: (bits[i].bit_count(), i))
                text.append(chr(BRAILLE + union), series[owner].train_style)
            elif r in base_rows:
                text.append(BASE_MARK, series[base_rows[r]].base_style)
            else:
                text.append(" ")
        text.append("\n")
    text.append(" " * label_w + "└" + "─" * cols + "\n", axis)
    left, right = f"step {x_lo}", f"{x_hi}" if x_hi != x_lo else ""
    gap = cols + 1 - len(left) - len(right)
    x_labels = left + " " * gap + right if gap >= 1 else left
    text.append(" " * label_w + x_labels, axis)
    return text


def _line_cells(
    train: Points,
    rows: int,
    cols: int,
    x_lo: float,
    hi: float,
    sx: float,
    sy: float,
    log_scale: bool,
) -> list[list[int]]:
    """The braille dots of one training-loss line, cell by cell."""
    cells = [[0] * cols for _ in range(rows)]
    dots_w, dots_h = cols * 2, rows * 4

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
    return cells


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


class RunsChart(Widget):
    """Several runs' losses on one chart, each in its own colour (compare screen)."""

    COMPONENT_CLASSES = {"runs-chart--axis"}
    DEFAULT_CSS = """
    RunsChart {
        height: 1fr;
        min-height: 5;
    }
    RunsChart > .runs-chart--axis { color: $text-muted; }
    """

    log_scale: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series: list[Series] = []

    def set_series(self, series: list[Series]) -> None:
        self.series = series
        self.refresh()

    def render(self) -> Text:
        size = self.content_size
        axis = self.get_component_rich_style("runs-chart--axis")
        return render_series(self.series, size.width, size.height, axis, self.log_scale)
