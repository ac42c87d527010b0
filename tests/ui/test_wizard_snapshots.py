"""Snapshots pin the look of every wizard step at 80x24 (the smallest terminal we support).

Update them after an intended change with `.venv/bin/pytest tests/ui --snapshot-update`, and
look at the SVGs before committing."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input
from wizard_helpers import lookups_done

from tuiwiz import presets
from tuiwiz.ui.app import TuiwizApp
from tuiwiz.ui.draft import Draft

ROOT = Path(__file__).resolve().parent.parent
NVML = ROOT / "fixtures" / "nvml"
STEPS = ["start", "model", "dataset", "targets", "quantlora", "training", "review"]


@pytest.fixture(autouse=True)
def steady_world(monkeypatch, demo_model):
    """No Hugging Face cache listing, a fixed GPU, no earlier runs (a fresh data dir), and no
    line from the machine's own health checks on the Start step (tests/ui/test_wizard.py)."""
    monkeypatch.setattr("tuiwiz.inspect.overview.cached_hub_models", lambda: [])
    monkeypatch.setattr("tuiwiz.doctor.start_screen_problems", lambda: None)
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))


def demo_app(step: str) -> TuiwizApp:
    resolved, _ = presets.load("demo")
    return TuiwizApp(Draft(resolved), start=step)


async def settle(pilot) -> None:
    await lookups_done(pilot)
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("step", STEPS)
def test_step_looks_right(snap_compare, step):
    assert snap_compare(demo_app(step), terminal_size=(80, 24), run_before=settle)


def test_help_looks_right(snap_compare):
    assert snap_compare(
        demo_app("training"), press=["f1"], terminal_size=(80, 24), run_before=settle
    )


def test_review_on_two_gpus_looks_right(snap_compare, monkeypatch):
    """FSDP over two GPUs at 80x24: the per-GPU estimate, one verdict and bar per GPU."""
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "two_gpus_busy.json"))
    app = demo_app("review")
    app.draft.raw["launch"] = {"nproc_per_node": 2, "strategy": "fsdp"}
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)
