"""Pilot tests of the Try it screen, driven by the keyboard at 80x24: a real finished demo run
(4-bit QLoRA, trained once for this module), and fakes where a test needs to hold the model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Input, Static

from tuiwiz.ui.tryit import TryItHelp, TryItScreen

PROMPT = "Uppercase:\\n\\nxuniz"  # as typed: \n is a line break


class TryApp(App):
    """The smallest app that shows the screen, as the dashboard does: pushed over another."""

    def __init__(self, run_dir: Path, loader=None) -> None:
        super().__init__()
        self.run_dir, self.loader = run_dir, loader

    def on_mount(self) -> None:
        self.push_screen(TryItScreen(self.run_dir, loader=self.loader))


def drive(app: App, script) -> None:
    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await script(pilot)

    asyncio.run(main())


async def settle(pilot) -> None:
    """Wait until every worker is done and what they posted has been applied."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def status(app: App) -> str:
    return str(app.screen.query_one("#tryit-status", Static).render())


@pytest.fixture(scope="module")
def finished_run(demo_run) -> Path:
    """A real run of the demo preset: finished, with its adapter (conftest's shared one)."""
    return demo_run.path


@pytest.mark.e2e
def test_prompt_streams_base_and_fine_tuned_answers(finished_run: Path):
    from tuiwiz.after.generate import load_for_chat

    loaded = {}

    def loader(run_dir, progress):
        loaded["chat"] = load_for_chat(run_dir, progress)
        return loaded["chat"]

    app = TryApp(finished_run, loader)

    async def script(pilot) -> None:
        await settle(pilot)
        assert isinstance(app.screen, TryItScreen)
        assert status(app).startswith("Ready.")
        assert app.focused is app.screen.query_one("#tryit-prompt", Input)
        await pilot.press(*PROMPT)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert screen.answers == {"base": "xuniz", "tuned": "XUNIZ"}
        assert str(screen.query_one("#tryit-tuned-text", Static).render()) == "XUNIZ"
        assert screen.query_one("#tryit-prompt", Input).value == ""
        # The same answers as the core gives (greedy): the screen adds nothing of its own.
        chat = loaded["chat"]
        assert chat.reply("Uppercase:\n\nxuniz") == "XUNIZ"
        assert chat.reply("Uppercase:\n\nxuniz", adapter=False) == "xuniz"
        # Settings by command, as in `tuiwiz chat`.
        await pilot.press(*"/set max_new_tokens 2", "enter")
        assert "max_new_tokens=2" in status(app)
        assert screen.session.settings.max_new_tokens == 2
        await pilot.press(*PROMPT, "enter")
        await settle(pilot)
        assert screen.answers == {"base": "xu", "tuned": "XU"}
        # Both panes fit side by side at 80 columns.
        base, tuned = (screen.query_one(f"#tryit-{s}").region for s in ("base", "tuned"))
        assert base.width >= 30 and tuned.x >= base.right and tuned.right <= 80
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TryItScreen)

    drive(app, script)


@pytest.mark.e2e
def test_a_run_without_an_adapter_shows_the_reason(finished_run: Path, tmp_path: Path):
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    (stopped / "preset.toml").write_text((finished_run / "preset.toml").read_text())
    (stopped / "status.json").write_text('{"state": "stopped", "id": "stopped"}')
    app = TryApp(stopped)

    async def script(pilot) -> None:
        await settle(pilot)
        text = status(app)
        assert text.startswith("Cannot load: run stopped has no finished adapter")
        assert "-error" in app.screen.query_one("#tryit-status").classes
        await pilot.press(*"hello", "enter")
        assert "not loaded" in status(app)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TryItScreen)

    drive(app, script)


class FakeChat:
    """Streams words one by one; each word waits for `step` so a test controls the pace."""

    def __init__(self, step: threading.Event | None = None) -> None:
        self.step = step
        self.calls: list[tuple[bool, object]] = []

    def stream(self, messages, settings, adapter=True, stop=None) -> Iterator[str]:
        self.calls.append((adapter, settings))
        for word in ("tuned" if adapter else "base", " says", " hi"):
            if self.step is not None:
                self.step.wait(timeout=30)
            if stop is not None and stop.is_set():
                return
            yield word


def test_loading_never_blocks_the_screen(tmp_path: Path):
    """While the model loads (a loader that waits), typing and commands still work."""
    release = threading.Event()

    def loader(run_dir, progress):
        progress("loading the model")
        release.wait(timeout=30)
        return FakeChat()

    app = TryApp(tmp_path, loader)

    async def script(pilot) -> None:
        await pilot.pause()
        await pilot.press(*"hi", "enter")
        assert "not loaded" in status(app)
        assert app.screen.query_one("#tryit-prompt", Input).value == "hi"  # kept to send later
        await pilot.press("ctrl+u", *"/set temperature 0.5", "enter")
        assert "temperature=0.5" in status(app)
        await pilot.press(*"/set temperature hot", "enter")
        assert "not a number" in status(app)
        assert "-error" in app.screen.query_one("#tryit-status").classes
        release.set()
        await settle(pilot)
        assert status(app).startswith("Ready. max_new_tokens=256 temperature=0.5")
        await pilot.press(*"hi", "enter")
        await settle(pilot)
        assert app.screen.answers == {"base": "base says hi", "tuned": "tuned says hi"}
        fake = app.screen.chat
        assert [adapter for adapter, _ in fake.calls] == [True, False]  # fine-tuned first
        assert fake.calls[0][1].temperature == 0.5

    drive(app, script)


def test_f2_stops_an_answer_and_help_opens(tmp_path: Path):
    step = threading.Event()
    app = TryApp(tmp_path, lambda run_dir, progress: FakeChat(step))

    async def script(pilot) -> None:
        await settle(pilot)
        await pilot.press(*"hi", "enter")
        assert app.screen.busy
        await pilot.press(*"more", "enter")
        assert "Still answering" in status(app)
        await pilot.press("ctrl+u")
        await pilot.press("f2")
        step.set()
        await settle(pilot)
        assert not app.screen.busy and status(app).startswith("Stopped.")
        assert app.screen.answers["base"] == ""  # the base model never started
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, TryItHelp)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TryItScreen)
        await pilot.press(*"/quit", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, TryItScreen)

    drive(app, script)


def test_an_error_while_answering_is_shown_not_raised(tmp_path: Path):
    class Broken(FakeChat):
        def stream(self, messages, settings, adapter=True, stop=None):
            yield "par"
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    app = TryApp(tmp_path, lambda run_dir, progress: Broken())

    async def script(pilot) -> None:
        await settle(pilot)
        await pilot.press(*"hi", "enter")
        await settle(pilot)
        assert status(app) == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
        assert app.screen.answers["tuned"] == "par"
        await pilot.press(*"again", "enter")  # the screen still works
        await settle(pilot)
        assert "RuntimeError" in status(app)

    drive(app, script)


def demo_run_dir(tmp_path: Path) -> Path:
    """A run directory of the demo preset, as far as Try it reads it before the model loads."""
    from tuiwiz import presets

    run = tmp_path / "run"
    run.mkdir()
    config, _ = presets.load("demo")
    (run / "preset.toml").write_text(presets.to_toml(config))
    return run


def test_the_placeholder_suggests_a_prompt_the_demo_understands(tmp_path: Path):
    from tuiwiz.demo import DEMO_INSTRUCTION, demo_heldout_path, load_jsonl

    word = load_jsonl(demo_heldout_path())[0]["input"]
    app = TryApp(demo_run_dir(tmp_path), lambda run_dir, progress: FakeChat())

    async def script(pilot) -> None:
        await settle(pilot)
        placeholder = app.screen.query_one("#tryit-prompt", Input).placeholder
        assert f"e.g. {DEMO_INSTRUCTION}\\n\\n{word}" in placeholder, placeholder

    drive(app, script)


def test_an_empty_answer_says_so(tmp_path: Path):
    class Silent(FakeChat):
        def stream(self, messages, settings, adapter=True, stop=None):
            self.calls.append((adapter, settings))
            yield from (["  \n"] if adapter else [])

    app = TryApp(tmp_path, lambda run_dir, progress: Silent())

    async def script(pilot) -> None:
        await settle(pilot)
        await pilot.press(*"hi", "enter")
        await settle(pilot)
        for side in ("tuned", "base"):
            shown = str(app.screen.query_one(f"#tryit-{side}-text", Static).render())
            assert shown == "(empty answer)", (side, shown)
        assert status(app).startswith("Answers to: hi")

    drive(app, script)
