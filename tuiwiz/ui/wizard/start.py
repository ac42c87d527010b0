"""Step 1: start a new run, open a preset (shipped or saved), or open a recent run."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tuiwiz.ui.draft import Draft
from tuiwiz.ui.wizard.base import StepScreen


def _ago(t: float) -> str:
    s = max(0, time.time() - t)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{int(s // size)}{unit} ago"
    return "just now"


class StartStep(StepScreen):
    STEP = "start"
    BINDINGS = [Binding("p", "reuse_run", "Reuse run's settings", show=False)]
    DEFAULT_CSS = """
    StartStep #choices { height: 1fr; border: none; }
    """

    def compose_form(self) -> ComposeResult:
        yield Static("What would you like to do?", classes="section-title")
        yield OptionList(id="choices")
        yield Static(
            "Enter opens the highlighted item. On a recent run: Enter shows its dashboard, "
            "P starts a new run from its settings.",
            classes="note",
        )

    def on_mount(self) -> None:
        self.query_one("#choices").focus()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.reload()  # drawn in the first frame: deferring it only made the full screen later

    def reload(self) -> None:
        from tuiwiz import presets
        from tuiwiz.train.registry import effective_state, list_runs

        options: list[Option | None] = [
            Option(Text.assemble(("New run", "bold"), " — start from the defaults"), id="new"),
            None,
        ]
        self.presets: dict[str, Path] = {}
        for info in presets.list_presets():
            option_id = f"preset:{info.origin}:{info.name}"
            self.presets[option_id] = info.path
            label = Text.assemble(
                (f"{info.name}", "bold"),
                (f"  [{info.origin}]", "dim"),
                "\n   ",
                (info.description or "(no description)", "italic"),
            )
            options.append(Option(label, id=option_id))
        self.runs: dict[str, Path] = {}
        runs = list(reversed(list_runs()))[:10]  # newest first
        if runs:
            options.append(None)
        for entry, status in runs:
            option_id = f"run:{entry.id}"
            self.runs[option_id] = entry.path
            state = effective_state(status, entry.path)
            step = f"step {status.get('step', 0)}/{status.get('max_steps', '?')}"
            label = Text.assemble(
                ("run ", "dim"),
                (entry.id, "bold"),
                f"  {entry.name}  ",
                (state, _STATE_STYLE.get(state, "")),
                f"  {step}  ",
                (_ago(entry.created_at), "dim"),
            )
            options.append(Option(label, id=option_id))
        choices = self.query_one("#choices", OptionList)
        choices.clear_options()
        choices.add_options(options)
        choices.highlighted = 0

    def explain_extra(self, key: str | None) -> str:
        return (
            "A preset is a saved configuration: every setting of a run, in a TOML file you can "
            "also run without this wizard: tuiwiz run NAME.\n\nShipped presets come with "
            "tuiwiz; saved ones are yours (saved from the Review step)."
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or ""
        if option_id == "new":
            self.app.load_draft(Draft(), "model")  # type: ignore[attr-defined]
        elif option_id in self.presets:
            self._open_preset(self.presets[option_id])
        elif option_id in self.runs:
            self.app.show_run(self.runs[option_id])  # type: ignore[attr-defined]

    def _open_preset(self, path: Path) -> None:
        from tuiwiz import presets
        from tuiwiz.errors import TuiwizError

        try:
            resolved, _ = presets.load(str(path), require_data=False)  # data can come later
        except TuiwizError as e:
            self.notify(str(e), title="Cannot open this preset", severity="error", timeout=8)
            return
        self.app.load_draft(Draft(resolved), "model")  # type: ignore[attr-defined]

    def action_reuse_run(self) -> None:
        choices = self.query_one("#choices", OptionList)
        if choices.highlighted is None:
            return
        option_id = choices.get_option_at_index(choices.highlighted).id or ""
        if option_id in self.runs:
            from tuiwiz.train.rundir import RunDir

            self._open_preset(RunDir(self.runs[option_id]).preset)


_STATE_STYLE = {
    "running": "bold cyan",
    "finished": "green",
    "failed": "bold red",
    "crashed": "bold red",
    "stopped": "yellow",
}
