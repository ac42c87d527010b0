"""The F-key twins of the wizard's Ctrl keys (tuiwiz/ui/keys.py): they work in a terminal as in
a browser, and in a browser the footer names them instead of the Ctrl keys a browser keeps."""

from __future__ import annotations

import pytest
from textual.widgets._footer import FooterKey

from tuiwiz import presets
from tuiwiz.ui.app import TuiwizApp
from tuiwiz.ui.draft import Draft
from tuiwiz.ui.wizard.base import GotoScreen

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def steady_world(monkeypatch, demo_model):
    monkeypatch.setattr("tuiwiz.inspect.overview.cached_hub_models", lambda: [])


def demo_app(step: str) -> TuiwizApp:
    resolved, _ = presets.load("demo")
    return TuiwizApp(Draft(resolved), start=step)


def footer(app: TuiwizApp) -> dict[str, str]:
    """The footer's keys: action -> the key shown."""
    return {key.action: key.key_display for key in app.screen.query(FooterKey)}


async def test_the_f_keys_move_between_steps_and_quit():
    app = demo_app("model")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        assert app.screen.STEP == "dataset"
        await pilot.press("f2")
        assert app.screen.STEP == "model"
        await pilot.press("f6")
        assert app.screen.STEP == "review"
        bound = {key: b.action for key, (_, b, _, _) in app.screen.active_bindings.items()}
        assert bound["f9"] == "launch" and bound["f7"] == "save"
        await pilot.press("f4")
        assert isinstance(app.screen, GotoScreen)
        await pilot.press("escape")
        await pilot.press("f10")
    assert app.return_code == 0 and not app.is_running


async def test_a_browser_footer_names_the_f_keys(monkeypatch):
    app = demo_app("training")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        terminal = footer(app)
        assert terminal["next"] == "^n" and terminal["quit"] == "^q"
    monkeypatch.setattr(TuiwizApp, "is_web", property(lambda self: True))
    app = demo_app("training")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        web = footer(app)
        assert (web["next"], web["back"], web["goto"], web["review"], web["quit"]) == (
            "f3",
            "f2",
            "f4",
            "f6",
            "f10",
        )
        assert web["help"] == "f1"
