"""Exporting a finished run from the dashboard: the `e` key, the dialog (kind and folder), the
export in a worker with its progress bar; Pilot tests on a synthetic run (the export faked) and
on a real demo run (a real GGUF file), and a snapshot of the dialog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_dashboard import NVML, T0, attach, loaded, wait_for, write_run

from tuiwiz.train.rundir import RunDir
from tuiwiz.ui.dashboard import tasks
from tuiwiz.ui.dashboard.dialogs import ExportDialog
from tuiwiz.ui.dashboard.panels import ExportBar

pytestmark = pytest.mark.anyio


def finished_run(path: Path) -> Path:
    run = write_run(path, state="finished", max_steps=40)
    with (run / "events.jsonl").open("a") as events:
        events.write(json.dumps({"event": "finished", "time": T0 + 90, "step": 40}) + "\n")
    RunDir(run).write_status(adapter="adapter")
    return run


def bar_text(app) -> str:
    return str(app.dashboard.query_one("#export-line").render())


async def test_export_asks_kind_and_folder_and_shows_progress(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no llama-quantize: no k-quants offered
    calls = []

    def fake_export(run, kind, out, progress, fraction):
        calls.append((run.path, kind, out))
        progress("merging the adapter into the weights")
        for done in (0.25, 0.5, 1.0):
            fraction(done)
        out.mkdir()
        return out

    monkeypatch.setattr(tasks, "export_run", fake_export)
    run = finished_run(tmp_path / "run")
    app = attach(run)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        assert screen.check_action("export", ())
        await pilot.press("e")
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        assert [kind for kind, _ in dialog.kinds] == [
            "gguf:q8_0",
            "gguf:f16",
            "merged",
            "adapter",
        ]
        field = dialog.query_one("#export-out")
        assert field.value == str(tmp_path / "run-gguf")
        await pilot.press("down", "down")  # the merged model: the default folder follows
        assert dialog.kind == "merged" and field.value == str(tmp_path / "run-merged")
        await pilot.press("up")
        assert dialog.kind == "gguf:f16" and field.value == str(tmp_path / "run-gguf")
        # A folder that is not empty is refused in the dialog, which stays open.
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("x")
        await pilot.press("enter")  # on to the folder field
        field.value = str(tmp_path / "full")
        await pilot.press("enter")
        assert app.screen is dialog
        assert "exists and is not empty" in str(dialog.query_one("#export-error").render())
        field.value = str(tmp_path / "out")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not screen.exporting, "the export to end")
        assert calls == [(run, "gguf:f16", tmp_path / "out")]
        assert bar_text(app) == f"exported to {tmp_path / 'out'}"
        assert app.dashboard.query_one("#export-progress").percentage == 1.0
        assert screen.check_action("export", ())  # another export may follow


async def test_a_failed_export_says_why_and_escape_cancels(tmp_path: Path, monkeypatch):
    from tuiwiz.errors import TuiwizError

    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))

    def failing(run, kind, out, progress, fraction):
        raise TuiwizError("not enough disk space in /x: the q8_0 GGUF file needs 1.0 GB")

    monkeypatch.setattr(tasks, "export_run", failing)
    app = attach(finished_run(tmp_path / "run"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        await pilot.press("e")
        await pilot.press("escape")
        assert app.screen is screen and not screen.exporting
        assert not screen.query_one(ExportBar).display
        await pilot.press("e", "enter", "enter")
        await wait_for(pilot, lambda: "export failed" in bar_text(app), "the failure")
        assert "not enough disk space" in bar_text(app) and not screen.exporting


async def test_export_is_offered_for_finished_runs_only(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    app = attach(write_run(tmp_path / "run", state="failed", suggestions=[]))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        assert not screen.check_action("export", ())
        await pilot.press("e")
        assert app.screen is screen


def test_snapshot_export_dialog(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    monkeypatch.setenv("PATH", str(tmp_path))
    run = finished_run(tmp_path / "run")

    async def open_dialog(pilot) -> None:
        await loaded(pilot)
        await pilot.press("e")
        await pilot.pause()
        # The folder depends on tmp_path: show a fixed one.
        pilot.app.screen.query_one("#export-out").value = "/home/me/runs/demo-gguf"
        await pilot.pause()

    assert snap_compare(
        attach(run, gpu_interval=3600), terminal_size=(80, 24), run_before=open_dialog
    )


# --- a real demo run --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_demo_run(demo_run):
    """A finished demo run (conftest's shared one: the dashboard only reads it)."""
    return demo_run.path


@pytest.mark.e2e
async def test_a_real_run_exports_a_gguf_file_from_the_dashboard(
    short_demo_run: Path, tmp_path: Path, monkeypatch
):
    import gguf

    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    app = attach(short_demo_run)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        await pilot.press("e", "enter")  # GGUF q8_0, on to the folder
        app.screen.query_one("#export-out").value = str(tmp_path / "gguf")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not screen.exporting, "the export to end", timeout=300)
        assert bar_text(app) == f"exported to {tmp_path / 'gguf'}"
    assert sorted(p.name for p in (tmp_path / "gguf").iterdir()) == [
        "Modelfile",
        "README.md",
        "model.gguf",
        "tuiwiz-preset.toml",
    ]
    reader = gguf.GGUFReader(tmp_path / "gguf" / "model.gguf")
    assert reader.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q8_0
