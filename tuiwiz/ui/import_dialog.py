"""The "Import a config" dialog of the Start screen: asks for an axolotl or LLaMA-Factory YAML,
imports it (tuiwiz.importing), shows the report, and hands the preset back to open it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Static

from tuiwiz.errors import describe_error
from tuiwiz.ui.workers import in_thread

STYLES = {"check": "bold red", "not carried": "yellow", "translated": "", "default": "dim"}


def yaml_files(folder: Path, limit: int = 400) -> list[str]:
    """YAML files in `folder` and its direct subfolders, relative to it (input suggestions);
    at most `limit` entries are looked at, so a huge folder costs nothing noticeable."""
    found: list[str] = []
    seen = 0
    queue = [(folder, "")]
    while queue and seen < limit:
        directory, prefix = queue.pop(0)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > limit or entry.name.startswith("."):
                continue
            if entry.name.endswith((".yml", ".yaml")) and entry.is_file():
                found.append(prefix + entry.name)
            elif not prefix and entry.is_dir(follow_symlinks=False):
                queue.append((Path(entry.path), entry.name + "/"))
    return found


def report_text(imported: Any) -> Text:
    """The import report, coloured by kind (what to check first in red)."""
    article = "an" if imported.tool == "axolotl" else "a"
    text = Text(f"Read {imported.path.name} as {article} {imported.tool_name} config.\n")
    for kind, heading, notes in imported.sections():
        text.append(f"{heading} ({len(notes)}):\n", style="bold")
        for note in notes:
            text.append(f"  {note.line()}\n", style=STYLES.get(kind, ""))
    text.append(imported.summary(), style="dim")
    return text


class ImportDialog(ModalScreen[dict | None]):
    """Dismisses with the imported preset (resolved) to open in the wizard, or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    ImportDialog { align: center middle; }
    ImportDialog #import-box {
        width: 96; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    ImportDialog .title { text-style: bold; color: $accent; }
    ImportDialog .note { color: $text-muted; }
    ImportDialog #import-report-box { height: auto; max-height: 14; }
    ImportDialog #import-buttons { height: auto; align-horizontal: right; }
    ImportDialog Button { margin-left: 1; }
    """

    class Done(Message):
        def __init__(self, imported: Any, error: str | None) -> None:
            super().__init__()
            self.imported, self.error = imported, error

    def __init__(self, folder: Path | None = None) -> None:
        super().__init__()
        self.folder = folder or Path.cwd()
        self.imported: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(id="import-box"):
            yield Static("Import an axolotl or LLaMA-Factory config", classes="title")
            yield Static(
                "The YAML file's path (relative to the current folder, or absolute). Enter "
                "imports it; nothing is written until you save the preset in the wizard.",
                classes="note",
            )
            suggestions = yaml_files(self.folder)
            yield Input(
                placeholder="config.yml",
                id="import-path",
                suggester=SuggestFromList(suggestions, case_sensitive=True)
                if suggestions
                else None,
            )
            with VerticalScroll(id="import-report-box"):
                yield Static("", id="import-report")
            with Horizontal(id="import-buttons"):
                yield Button(
                    "Open in the wizard", id="import-open", variant="primary", disabled=True
                )
                yield Button("Cancel", id="import-cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        if not path:
            return
        self.query_one("#import-open", Button).disabled = True
        self.query_one("#import-report", Static).update(Text("importing...", style="dim"))
        self._import(str(self.folder / Path(path).expanduser()))

    @in_thread("importing the config", exclusive=True)
    def _import(self, path: str) -> None:
        from tuiwiz.errors import TuiwizError
        from tuiwiz.importing import import_config

        try:
            self.post_message(self.Done(import_config(path), None))
        except TuiwizError as e:
            self.post_message(self.Done(None, str(e)))
        except Exception as e:  # shown in the dialog, never a traceback
            self.post_message(self.Done(None, describe_error(e)))

    def on_import_dialog_done(self, message: Done) -> None:
        report = self.query_one("#import-report", Static)
        self.imported = message.imported
        if message.imported is None:
            report.update(Text(message.error or "", style="bold red"))
            self.query_one("#import-path", Input).focus()
            return
        report.update(report_text(message.imported))
        button = self.query_one("#import-open", Button)
        button.disabled = False
        button.focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "import-open" and self.imported is not None:
            self.dismiss(self.imported.preset)
        else:
            self.dismiss(None)
