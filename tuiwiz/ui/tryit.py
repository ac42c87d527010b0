"""Try it: prompt a finished run and read the base model's and the fine-tuned model's answers
side by side, as they are generated.

The model loads and generates in thread workers (tuiwiz.after.generate, the same core as
`tuiwiz chat`); text reaches the panes through `call_from_thread`, so the event loop never
waits on the model. Slash commands are those of `tuiwiz chat` (/set, /settings, /history, ...).
Errors are shown on the screen, never as a traceback. Escape goes back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from tuiwiz.after.generate import GenerationSettings, describe
from tuiwiz.after.session import HELP, ChatSession
from tuiwiz.errors import one_line
from tuiwiz.ui.workers import in_thread

Loader = Callable[[Path, Callable[[str], None]], Any]  # (run dir, progress) -> ChatModel
PANES = (("base", "base model"), ("tuned", "fine-tuned"))
PLACEHOLDER = "a prompt; Enter sends, \\n is a line break, /help for commands"
EMPTY_ANSWER = "(empty answer)"  # what a pane says when the model answered nothing at all
ORDER = ("tuned", "base")  # one model answers at a time: the fine-tuned one first


def _load(run_dir: Path, progress: Callable[[str], None]) -> Any:
    from tuiwiz.after.generate import load_for_chat
    from tuiwiz.after.loading import quiet_libraries

    quiet_libraries()  # library progress bars on stderr would garble the screen
    return load_for_chat(run_dir, progress)


class TryItHelp(ModalScreen[None]):
    """The commands and settings of Try it."""

    DEFAULT_CSS = """
    TryItHelp { align: center middle; background: $background 60%; }
    TryItHelp > VerticalScroll {
        width: 80; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }

    """
    BINDINGS = [Binding("escape,q,enter", "close", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "Try it: help (esc closes)"
            yield Static(Text(HELP.replace("(Ctrl-D too)", "(or Escape)")))

    def action_close(self) -> None:
        self.dismiss(None)


class TryItScreen(Screen[None]):
    """Prompt a finished run; base and fine-tuned answers stream side by side."""

    DEFAULT_CSS = """
    TryItScreen { layout: vertical; }
    TryItScreen #tryit-title { height: 1; padding: 0 1; background: $primary-muted; }
    TryItScreen #tryit-status { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    TryItScreen #tryit-status.-error { color: $error; }
    TryItScreen #tryit-prompt { margin: 0 0; }
    TryItScreen #tryit-panes { height: 1fr; }
    TryItScreen .tryit-pane {
        width: 1fr;
        height: 1fr;
        border: round $primary-muted;
        border-title-color: $text-muted;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    TryItScreen .tryit-pane:focus { border: round $primary; }
    TryItScreen .tryit-pane.-busy { border: round $accent; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("f2", "stop", "Stop answer"),
        Binding("f1", "help", "Help"),
    ]

    def __init__(self, run_dir: str | Path, loader: Loader | None = None) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.loader = loader or _load
        self.chat: Any = None  # the ChatModel once loaded
        self.session = ChatSession(settings=GenerationSettings(), compare=True)
        self.answers = {side: "" for side, _ in PANES}
        self.busy = False
        self._stop = threading.Event()

    # --- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(Text(f"Try it: {self.run_dir.name}"), id="tryit-title")
        yield Static("Loading the model…", id="tryit-status")
        yield Input(placeholder=PLACEHOLDER, id="tryit-prompt")
        with Horizontal(id="tryit-panes"):
            for side, title in PANES:
                with VerticalScroll(id=f"tryit-{side}", classes="tryit-pane") as pane:
                    pane.border_title = title
                    yield Static(id=f"tryit-{side}-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#tryit-prompt", Input).focus()
        self.load_model()

    def on_unmount(self) -> None:
        self._stop.set()  # a generation still running ends after its current token
        self.chat = None

    # --- helpers run on the event loop ----------------------------------------------------
    def status(self, text: str, error: bool = False) -> None:
        widget = self.query_one("#tryit-status", Static)
        widget.update(Text(text))
        widget.set_class(error, "-error")

    last_prompt = ""  # shown above the answers, so it is clear what they answer

    def _ready_text(self) -> str:
        history = "on" if self.session.history else "off"
        ready = f"Ready. {describe(self.session.settings)}; history {history}. F1: help"
        if self.last_prompt:
            shown = self.last_prompt.replace("\n", "⏎ ")
            shown = shown if len(shown) <= 60 else shown[:59] + "…"
            return f"Answers to: {shown}\n{ready}"
        return ready

    def _loaded(self, chat: Any, example: str | None) -> None:
        self.chat = chat
        if example:
            from tuiwiz.after.examples import as_typed

            prompt = self.query_one("#tryit-prompt", Input)
            prompt.placeholder = f"e.g. {as_typed(example)}  (Enter sends, /help)"
        self.status(self._ready_text())

    def _set_answer(self, side: str, text: str) -> None:
        self.answers[side] = text
        self.query_one(f"#tryit-{side}-text", Static).update(Text(text))

    def _answered(self, side: str) -> None:
        """A finished answer with nothing in it says so: a blank pane looks like a hang."""
        if not self.answers[side].strip():
            self.query_one(f"#tryit-{side}-text", Static).update(Text(EMPTY_ANSWER, "dim italic"))
        self.query_one(f"#tryit-{side}", VerticalScroll).scroll_end(animate=False)

    def _append(self, side: str, chunk: str) -> None:
        self._set_answer(side, self.answers[side] + chunk)

    def _pane_busy(self, side: str | None) -> None:
        for name, _ in PANES:
            self.query_one(f"#tryit-{name}", VerticalScroll).set_class(name == side, "-busy")

    def _finished(self, error: str | None, stopped: bool) -> None:
        self.busy = False
        self._pane_busy(None)
        if error:
            self.status(error, error=True)
        else:
            self.status(("Stopped. " if stopped else "") + self._ready_text())

    # --- input ----------------------------------------------------------------------------
    @on(Input.Submitted, "#tryit-prompt")
    def submitted(self, event: Input.Submitted) -> None:
        line = event.value
        if not line.strip():
            return
        if ChatSession.is_command(line):
            event.input.clear()
            self.command(line)
            return
        if self.chat is None:
            self.status("The model is not loaded (yet); wait for “Ready”.", error=True)
            return
        if self.busy:
            self.status("Still answering: wait, or stop it with F2.")
            return
        event.input.clear()
        prompt = ChatSession.prompt_text(line)
        self.last_prompt = prompt
        self.busy = True
        self._stop = threading.Event()
        for side, _ in PANES:
            self._set_answer(side, "")
        self.status("Answering…")
        self.generate(prompt, self.session.settings, self._stop)

    def command(self, line: str) -> None:
        name = line.strip()[1:].split(" ")[0].lower()
        if name in ("help", "?", "h"):
            self.action_help()
            return
        if name == "compare":
            self.status("Try it always shows both answers.")
            return
        result = self.session.command(line)
        if result.quit:
            self.action_back()
        elif result.error or name in ("settings",):
            self.status(result.message, error=result.error)
        else:
            self.status(f"{result.message}. {self._ready_text()}")

    # --- workers (threads) ----------------------------------------------------------------
    @in_thread("loading the model", group="tryit-load", exclusive=True)
    def load_model(self) -> None:
        worker = get_current_worker()

        def progress(message: str) -> None:
            if not worker.is_cancelled:
                self.app.call_from_thread(self.status, message[:1].upper() + message[1:] + "…")

        try:
            chat = self.loader(self.run_dir, progress)
        except BaseException as e:  # shown on the screen: never a traceback
            if not worker.is_cancelled:
                self.app.call_from_thread(self.status, f"Cannot load: {one_line(e)}", True)
            return
        from tuiwiz.after.examples import example_prompt

        example = example_prompt(self.run_dir)  # a prompt in the form the run trained on
        if not worker.is_cancelled:
            self.app.call_from_thread(self._loaded, chat, example)

    @in_thread("generating an answer", group="tryit-generate", exclusive=True)
    def generate(self, prompt: str, settings: GenerationSettings, stop: threading.Event) -> None:
        worker = get_current_worker()
        chat, error = self.chat, None
        try:
            for side in ORDER:
                if stop.is_set() or worker.is_cancelled:
                    break
                self.app.call_from_thread(self._pane_busy, side)
                answer = ""
                messages = self.session.messages(side, prompt)
                for chunk in chat.stream(messages, settings, adapter=side == "tuned", stop=stop):
                    answer += chunk
                    if worker.is_cancelled:
                        break
                    self.app.call_from_thread(self._append, side, chunk)
                if not stop.is_set():
                    self.session.record(side, prompt, answer.strip())
                    self.app.call_from_thread(self._answered, side)
        except BaseException as e:
            error = one_line(e)
        if not worker.is_cancelled:
            self.app.call_from_thread(self._finished, error, stop.is_set())

    # --- actions --------------------------------------------------------------------------
    def action_back(self) -> None:
        self._stop.set()
        self.workers.cancel_group(self, "tryit-generate")
        self.workers.cancel_group(self, "tryit-load")
        self.dismiss(None)

    def action_stop(self) -> None:
        if self.busy:
            self._stop.set()

    def action_help(self) -> None:
        self.app.push_screen(TryItHelp())
