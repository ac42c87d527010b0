"""The Start step shows any ✗ of `tuiwiz doctor`'s quick checks in one line (from a worker),
and nothing when the machine is fine."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static
from wizard_helpers import wait_for

from tuiwiz.compat import TorchBuild
from tuiwiz.ui.app import TuiwizApp
from tuiwiz.ui.wizard.start import StartStep

NVML = Path(__file__).resolve().parent.parent / "fixtures" / "nvml"
pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def at_once(monkeypatch):
    monkeypatch.setattr(StartStep, "HEALTH_DELAY", 0.01)
    monkeypatch.setattr("tuiwiz.inspect.overview.cached_hub_models", lambda: [])
    monkeypatch.setattr("tuiwiz.compat.torch_build", lambda: TorchBuild("2.13.0+cpu"))


async def test_a_problem_shows_in_one_line(monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))  # GPUs, CPU torch
    app = TuiwizApp()
    async with app.run_test(size=(100, 30)) as pilot:
        health = app.screen.query_one("#health", Static)
        await wait_for(pilot, lambda: health.display, "the health line")
        text = str(health.render())
        assert text.startswith("✗ torch is a CPU build, but this machine has NVIDIA GPUs")
        assert "`tuiwiz doctor` says how to fix it" in text
        assert app.screen.query_one("#choices").has_focus  # the line takes nothing away


async def test_a_fine_machine_shows_nothing(monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))  # CPU only: fine
    app = TuiwizApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.screen.query_one("#health", Static).display
