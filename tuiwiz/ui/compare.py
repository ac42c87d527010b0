"""The compare screen: several runs' loss curves on one chart, each in its own colour, a legend
with each run's differing settings, and the table of `tuiwiz compare` (tuiwiz.compare)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tuiwiz.compare import Comparison, fmt_value, metric_rows, short_differences
from tuiwiz.ui.dashboard.chart import BASE_MARK, EVAL_MARK, RunsChart, Series
from tuiwiz.ui.workers import in_thread

# One colour per run, distinct on dark and light themes; the compare screen takes at most this many.
PALETTE = ("cyan", "yellow", "magenta", "green", "red", "blue", "bright_white", "dark_orange")
MAX_RUNS = len(PALETTE)


class CompareScreen(Screen[None]):
    """Runs side by side. `run_dirs`: the runs' directories (2 to MAX_RUNS)."""

    DEFAULT_CSS = """
    CompareScreen { layout: vertical; }
    CompareScreen #cmp-title { height: 1; background: $panel; padding: 0 1; }
    CompareScreen #cmp-chart {
        height: 1fr; min-height: 6; border: round $primary-muted;
        border-title-color: $text-muted; border-subtitle-color: $text-muted;
    }
    CompareScreen #cmp-legend { height: auto; max-height: 8; padding: 0 1; }
    CompareScreen #cmp-table { height: 1fr; min-height: 4; }
    CompareScreen #cmp-error { color: $error; height: auto; padding: 0 1; }
    """
    BINDINGS = [
        Binding("l", "log_scale", "Log scale"),
        Binding("r", "reload", "Read again"),
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
    ]

    class Loaded(Message):
        def __init__(self, comparison: Comparison | None, error: str | None) -> None:
            super().__init__()
            self.comparison, self.error = comparison, error

    def __init__(self, run_dirs: list[Path]) -> None:
        super().__init__()
        self.run_dirs = list(run_dirs)[:MAX_RUNS]
        self.comparison: Comparison | None = None
        self.loaded = False

    def compose(self) -> ComposeResult:
        title = f"compare {len(self.run_dirs)} runs"
        yield Static(Text.assemble(("tuiwiz ", "bold"), title), id="cmp-title")
        chart = RunsChart(id="cmp-chart")
        chart.border_title = "loss by step"
        chart.border_subtitle = f"⣀ train  {EVAL_MARK} eval  {BASE_MARK} base model"
        yield chart
        yield Static("reading the runs...", id="cmp-legend")
        # No cursor: the arrow keys scroll the table (a highlighted row would mean nothing).
        yield DataTable(id="cmp-table", cursor_type="none", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self._load(self.run_dirs)

    @in_thread("comparing the runs")
    def _load(self, run_dirs: list[Path]) -> None:
        from tuiwiz.compare import compare_dirs
        from tuiwiz.errors import TuiwizError

        try:
            self.post_message(self.Loaded(compare_dirs(run_dirs), None))
        except TuiwizError as e:
            self.post_message(self.Loaded(None, str(e)))
        except OSError as e:
            self.post_message(self.Loaded(None, f"cannot read a run: {e}"))

    def on_compare_screen_loaded(self, message: Loaded) -> None:
        self.loaded = True
        if message.comparison is None:
            self.query_one("#cmp-legend", Static).update(Text(message.error or "", style="red"))
            return
        self.comparison = comparison = message.comparison
        self.query_one(RunsChart).set_series(
            [
                Series(
                    [(p.step, p.value) for p in run.train],
                    [(p.step, p.value) for p in run.evals],
                    run.base_eval_loss,
                    colour,
                    colour,
                    colour,
                )
                for run, colour in zip(comparison.runs, PALETTE)
            ]
        )
        legend = Text()
        for i, (run, colour) in enumerate(zip(comparison.runs, PALETTE)):
            if i:
                legend.append("\n")
            legend.append("⣿ ", style=colour)
            legend.append(run.id, style="bold")
            legend.append("  " + short_differences(comparison, run), style="dim")
        self.query_one("#cmp-legend", Static).update(legend)
        self._fill_table(comparison)
        self.query_one(DataTable).focus()

    def _fill_table(self, comparison: Comparison) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_column("", key="label")
        for run, colour in zip(comparison.runs, PALETTE):
            table.add_column(Text(run.id, style=f"bold {colour}"), key=str(run.path))
        for key in comparison.differing:
            cells = [fmt_value(v) for v in comparison.values(key)]
            table.add_row(Text(key, style="cyan"), *cells)
        if not comparison.differing:
            table.add_row(
                Text("(the presets are the same)", style="dim"), *[""] * len(comparison.runs)
            )
        for row in metric_rows(comparison):
            cells = [
                Text(c, style="bold green" if i == row.best else "")
                for i, c in enumerate(row.cells)
            ]
            table.add_row(Text(row.label, style="bold"), *cells)

    def action_log_scale(self) -> None:
        chart = self.query_one(RunsChart)
        chart.log_scale = not chart.log_scale
        chart.border_title = "loss by step" + (" (log scale)" if chart.log_scale else "")
        chart.refresh()

    def action_reload(self) -> None:
        """Read the runs again (a run still training has logged more since)."""
        self._load(self.run_dirs)

    def action_back(self) -> None:
        self.dismiss(None)
