"""Small modal screens of the dashboard: confirm a stop, the key help, the run's files."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tuiwiz.units import size

_DIALOG_CSS = """
{name} {{
    align: center middle;
    background: $background 60%;
}}
{name} > Vertical {{
    width: 64;
    max-width: 90%;
    height: auto;
    max-height: 90%;
    border: round $primary;
    border-title-color: $text;
    background: $surface;
    padding: 0 1;
}}
{name} .dialog-keys {{
    color: $text-muted;
    margin-top: 1;
}}
{name} VerticalScroll {{
    height: auto;
    max-height: 20;
}}
"""


class ConfirmStop(ModalScreen[bool]):
    """Ask before stopping: it ends training (after saving a checkpoint)."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="ConfirmStop")
    BINDINGS = [
        Binding("y", "answer(True)", "stop it"),
        Binding("n,escape", "answer(False)", "keep training"),
    ]

    def __init__(self, run_ref: str) -> None:
        super().__init__()
        self.run_ref = run_ref

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Stop training?"
            yield Static(
                "The run saves a checkpoint at the current step, then ends in state "
                "[b]stopped[/].\nContinue it later with "
                f"[b]tuiwiz resume {escape(self.run_ref)}[/]."
            )
            yield Static("[b]y[/] stop   [b]n[/] / [b]esc[/] keep training", classes="dialog-keys")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class HelpScreen(ModalScreen[None]):
    """Every key of the dashboard, including the ones the footer has no room for."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="HelpScreen")
    BINDINGS = [Binding("escape,q,question_mark,enter", "close", "close")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        width = max(len(k) for k, _ in self.keys)
        lines = [f"[b]{escape(k).ljust(width)}[/]  {escape(what)}" for k, what in self.keys]
        with Vertical() as box:
            box.border_title = "Dashboard keys"
            yield Static("\n".join(lines))
            yield Static(
                "Training runs in its own process: leaving the dashboard never stops it.",
                classes="dialog-keys",
            )

    def action_close(self) -> None:
        self.dismiss(None)


def listing(path: Path, limit: int = 40) -> list[str]:
    """The run directory's entries, one line each (folders with their entry count)."""
    lines = []
    for entry in sorted(path.iterdir(), key=lambda p: (not p.is_dir(), p.name)):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            count = sum(1 for _ in entry.iterdir())
            lines.append(f"{entry.name}/  ({count} entries)")
        else:
            lines.append(f"{entry.name}  {size(entry.stat().st_size)}")
        if len(lines) >= limit:
            lines.append("...")
            break
    return lines


class FilesScreen(ModalScreen[None]):
    """The run directory's path and what is in it."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="FilesScreen")
    BINDINGS = [Binding("escape,q,o,enter", "close", "close")]

    def __init__(self, path: Path, lines: list[str]) -> None:
        super().__init__()
        self.path = path
        self.lines = lines

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Run directory"
            yield Static(f"[b]{escape(str(self.path))}[/]")
            with VerticalScroll():
                yield Static(escape("\n".join(self.lines)) or "(empty)")
            yield Static("[b]esc[/] close", classes="dialog-keys")

    def action_close(self) -> None:
        self.dismiss(None)


def default_destination(run_path: Path, kind: str) -> Path:
    """A new folder beside the run directory, named after the run and the kind of export."""
    suffix = "gguf" if kind.startswith("gguf:") else kind
    return run_path.parent / f"{run_path.name}-{suffix}"


class ExportDialog(ModalScreen["tuple[str, Path] | None"]):
    """What to export a finished run as, and where: dismissed with (kind, folder) or None."""

    DEFAULT_CSS = (
        _DIALOG_CSS.format(name="ExportDialog")
        + """
    ExportDialog OptionList { height: auto; max-height: 8; }
    ExportDialog Input { margin-top: 1; }
    ExportDialog #export-error { color: $text-error; height: auto; }
    ExportDialog #export-error:empty { display: none; }
    """
    )
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, run_path: Path, kinds: list[tuple[str, str]]) -> None:
        super().__init__()
        self.run_path = run_path
        self.kinds = kinds
        self.kind = kinds[0][0]

    def compose(self) -> ComposeResult:
        from textual.widgets import Input, OptionList

        with Vertical() as box:
            box.border_title = f"Export {self.run_path.name}"
            yield OptionList(*(label for _, label in self.kinds), id="export-kind")
            yield Input(
                str(default_destination(self.run_path, self.kind)),
                placeholder="the folder to write (new, or empty)",
                id="export-out",
            )
            yield Static("", id="export-error")
            yield Static(
                "[b]↑/↓[/] kind  [b]tab[/] folder  [b]enter[/] export  [b]esc[/] cancel",
                classes="dialog-keys",
            )

    def on_mount(self) -> None:
        from textual.widgets import OptionList

        self.query_one(OptionList).highlighted = 0

    def on_option_list_option_highlighted(self, event) -> None:
        from textual.widgets import Input

        field = self.query_one("#export-out", Input)
        previous = self.kind
        self.kind = self.kinds[event.option_index][0]
        if field.value == str(default_destination(self.run_path, previous)):
            field.value = str(default_destination(self.run_path, self.kind))

    def on_option_list_option_selected(self, event) -> None:
        from textual.widgets import Input

        self.query_one("#export-out", Input).focus()  # enter on a kind: on to the folder

    def on_input_submitted(self, event) -> None:
        from tuiwiz.after.export import check_target
        from tuiwiz.errors import TuiwizError

        text = event.value.strip()
        if not text:
            self.query_one("#export-error", Static).update("Give the folder to write.")
            return
        out = Path(text).expanduser().absolute()
        try:
            check_target(out)
        except TuiwizError as e:
            self.query_one("#export-error", Static).update(escape(str(e)))
            return
        self.dismiss((self.kind, out))

    def action_cancel(self) -> None:
        self.dismiss(None)
