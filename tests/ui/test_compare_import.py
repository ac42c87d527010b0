"""The Start screen's "Import a config" dialog and run comparison, driven through Pilot, and
snapshots of the compare screen and the import report at 80x24."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Static
from wizard_helpers import wait_for

from tuiwiz.train.registry import register
from tuiwiz.train.rundir import RunDir
from tuiwiz.ui.app import TuiwizApp
from tuiwiz.ui.compare import PALETTE, CompareScreen
from tuiwiz.ui.dashboard.chart import RunsChart, Series, render_series
from tuiwiz.ui.import_dialog import ImportDialog

ROOT = Path(__file__).resolve().parent.parent
QLORA_1B = ROOT / "fixtures" / "peer-configs" / "axolotl" / "qlora-1b.yml"
LF_SFT = ROOT / "fixtures" / "peer-configs" / "llamafactory" / "llama3_lora_sft.yaml"

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_local_hub_models(monkeypatch):
    monkeypatch.setattr("tuiwiz.inspect.overview.cached_hub_models", lambda: [])


@pytest.fixture
def three_runs(make_run) -> list[Path]:
    """Three registered runs with different learning rates, lengths and logging intervals."""
    paths = [
        make_run("lr-2e-4", losses=(2.0, 1.2, 0.9, 0.7), evals={10: 1.1, 20: 0.8}, gpu=True),
        make_run(
            "lr-1e-4",
            overrides={"training.learning_rate": 1e-4, "lora.r": 8},
            losses=(2.1, 1.6, 1.3, 1.1, 1.0, 0.95),
            every=4,
            evals={12: 1.2, 24: 1.0},
            rate=800,
        ),
        make_run(
            "lr-5e-4",
            overrides={"training.learning_rate": 5e-4, "training.logging_steps": 2},
            losses=(1.9, 1.0, 0.6),
            every=2,
            state="stopped",
            base=None,
        ),
    ]
    for i, path in enumerate(paths):
        register(RunDir(path), path.name, time.time() - 7200 + i)
    return paths


def test_series_share_one_step_axis_in_distinct_colours():
    """Runs logged every 2 and every 5 steps plot against the same step axis, each coloured."""
    a = Series([(2, 2.0), (4, 1.0)], [], None, "cyan", "cyan", "cyan")
    b = Series([(5, 2.0), (10, 1.0)], [(10, 1.5)], 2.5, "yellow", "yellow", "yellow")
    text = render_series([a, b], 40, 10)
    assert text.plain.splitlines()[-1].split() == ["step", "2", "10"]
    colours = {str(span.style) for span in text.spans}
    assert {"cyan", "yellow"} <= colours
    assert "●" in text.plain and "┄" in text.plain


async def test_mark_runs_and_compare_them(three_runs):
    app = TuiwizApp()
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        await pilot.press("space")  # on "New run": not a run, nothing is marked
        assert screen.marked == []
        await pilot.press("c")  # fewer than two marked: a hint, no compare screen
        assert not isinstance(app.screen, CompareScreen)
        await pilot.press("end", "space", "up", "space")  # the two oldest runs
        assert [screen.runs[m].name for m in screen.marked] == ["lr-2e-4", "lr-1e-4"]
        assert "[x]" in str(screen.query_one("#choices").get_option(screen.marked[0]).prompt)
        await pilot.press("space")  # unmark the second, mark the newest instead
        await pilot.press("up", "space")
        await pilot.press("c")
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        await wait_for(pilot, lambda: compare.loaded, "the runs to load")
        names = [run.id for run in compare.comparison.runs]
        assert names == ["lr-2e-4", "lr-5e-4"]
        chart = compare.query_one(RunsChart)
        assert [len(s.train) for s in chart.series] == [4, 3]
        assert [s.train_style for s in chart.series] == list(PALETTE[:2])
        legend = str(compare.query_one("#cmp-legend", Static).render())
        assert "lr-5e-4" in legend and "learning_rate=0.0005" in legend
        table = compare.query_one(DataTable)
        labels = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert "training.learning_rate" in labels and "lora.r" not in labels
        assert "final eval loss" in labels and "peak memory" in labels
        await pilot.press("l")
        assert chart.log_scale
        await pilot.press("escape")
        assert app.screen is screen and len(screen.marked) == 2  # the marks are kept


async def test_import_a_config_from_the_start_screen(tmp_path: Path):
    app = TuiwizApp()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("down", "enter")  # "Import a config"
        dialog = app.screen
        assert isinstance(dialog, ImportDialog)
        dialog.query_one(Input).value = str(tmp_path / "missing.yml")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "no such file" in _report(dialog), "the error")
        assert dialog.query_one("#import-open", Button).disabled
        dialog.query_one(Input).value = str(QLORA_1B)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Not carried over" in _report(dialog), "the report")
        report = _report(dialog)
        assert "as an axolotl config" in report and "dataset_prepared_path" in report
        assert app.focused is dialog.query_one("#import-open", Button)
        await pilot.press("enter")  # Open in the wizard
        assert app.screen.STEP == "model"
        assert app.draft.get("model.name_or_path") == "NousResearch/Llama-3.2-1B"
        assert app.draft.get("lora.r") == 32
        assert app.draft.get("data.packing") is True
        assert app.draft.get("quantization.mode") == "4-bit"


async def test_import_dialog_cancel_opens_nothing():
    app = TuiwizApp()
    async with app.run_test(size=(100, 40)) as pilot:
        start = app.screen
        await pilot.press("down", "enter", "escape")
        assert app.screen is start


def _report(dialog: ImportDialog) -> str:
    return str(dialog.query_one("#import-report", Static).render())


# --- snapshots --------------------------------------------------------------------------------


def test_compare_screen_looks_right(snap_compare, three_runs):
    class CompareApp(TuiwizApp):
        def on_mount(self) -> None:
            self.push_screen(CompareScreen(three_runs))

    async def loaded(pilot) -> None:
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "loaded", False), "the runs")
        await pilot.pause()

    assert snap_compare(CompareApp(), terminal_size=(80, 24), run_before=loaded)


def test_import_report_looks_right(snap_compare):
    async def imported(pilot) -> None:
        await pilot.press("down", "enter")
        dialog = pilot.app.screen
        dialog.query_one(Input).value = str(LF_SFT)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Not carried over" in _report(dialog), "the report")
        dialog.query_one(Input).value = LF_SFT.name  # the same look on every machine
        dialog.query_one(Input).cursor_blink = False
        await pilot.pause()

    assert snap_compare(TuiwizApp(), terminal_size=(80, 24), run_before=imported)
