"""Step 1: start a new run, import an axolotl / LLaMA-Factory config, open a preset (shipped or
saved), open a recent run, or mark several recent runs and compare them."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import work
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
    BINDINGS = [
        Binding("p", "reuse_run", "Reuse run's settings", show=False),
        Binding("space", "toggle_mark", "Mark run", show=False),
        Binding("c", "compare", "Compare marked", show=False),
    ]
    DEFAULT_CSS = """
    StartStep #choices { height: 1fr; border: none; }
    StartStep #health { display: none; margin-top: 1; }
    """
    HEALTH_DELAY = 1.0  # seconds: the checks start once the first frame is drawn

    def __init__(self) -> None:
        super().__init__()
        self.marked: list[str] = []  # option ids of the runs marked to compare, in order
        self.runs: dict[str, Path] = {}
        self.run_labels: dict[str, Text] = {}

    def compose_form(self) -> ComposeResult:
        yield Static(id="health", classes="problem")
        yield Static("What would you like to do?", classes="section-title")
        yield OptionList(id="choices")
        yield Static(
            "Enter opens the highlighted item. On a recent run: Enter shows its dashboard, "
            "P starts a new run from its settings, Space marks it; C compares the marked runs.",
            classes="note",
        )

    def on_mount(self) -> None:
        self.query_one("#choices").focus()
        self.set_timer(self.HEALTH_DELAY, self._check_health)

    @work(thread=True, exclusive=True, exit_on_error=False, group="health")
    def _check_health(self) -> None:
        """`tuiwiz doctor`'s quick checks: any ✗ (a missing package, torch without CUDA on a
        GPU machine, a full disk) is shown in one line above the choices."""
        from tuiwiz import doctor

        line = doctor.start_screen_problems()
        if line:
            self.app.call_from_thread(self._show_health, line)

    def _show_health(self, line: str) -> None:
        health = self.query_one("#health", Static)
        health.update(Text(line))
        health.display = True

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.reload()  # drawn in the first frame: deferring it only made the full screen later

    def reload(self) -> None:
        from tuiwiz import presets
        from tuiwiz.train.registry import effective_state, list_runs

        options: list[Option | None] = [
            Option(Text.assemble(("New run", "bold"), " — start from the defaults"), id="new"),
            Option(
                Text.assemble(("Import a config", "bold"), " — axolotl, LLaMA-Factory"),
                id="import",
            ),
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
        self.runs = {}
        runs = list(reversed(list_runs()))[:10]  # newest first
        if runs:
            options.append(None)
        self.run_labels = {}
        self.marked = [m for m in self.marked if m in {f"run:{e.id}" for e, _ in runs}]
        for entry, status in runs:
            option_id = f"run:{entry.id}"
            self.runs[option_id] = entry.path
            state = effective_state(status, entry.path)
            step = f"step {status.get('step', 0)}/{status.get('max_steps', '?')}"
            self.run_labels[option_id] = Text.assemble(
                (entry.id, "bold"),
                f"  {entry.name}  ",
                (state, _STATE_STYLE.get(state, "")),
                f"  {step}  ",
                (_ago(entry.created_at), "dim"),
            )
            options.append(Option(self._run_label(option_id), id=option_id))
        choices = self.query_one("#choices", OptionList)
        highlighted = choices.highlighted
        choices.clear_options()
        choices.add_options(options)
        choices.highlighted = (
            highlighted if highlighted is not None and highlighted < len(options) else 0
        )

    def _run_label(self, option_id: str) -> Text:
        marked = option_id in self.marked
        return Text.assemble(
            ("[x] " if marked else "[ ] ", "bold green" if marked else "dim"),
            self.run_labels[option_id],
        )

    def explain_extra(self, key: str | None) -> str:
        return (
            "A preset is a saved configuration: every setting of a run, in a TOML file you can "
            "also run without this wizard: tuiwiz run NAME.\n\nShipped presets come with "
            "tuiwiz; saved ones are yours (saved from the Review step).\n\nImport a config "
            "reads an axolotl or LLaMA-Factory YAML and opens it here, saying what it carried "
            "over and what it could not.\n\nMark recent runs with Space and press C to see "
            "their loss curves on one chart, with the settings that differ."
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or ""
        if option_id == "new":
            self.app.load_draft(Draft(), "model")  # type: ignore[attr-defined]
        elif option_id == "import":
            self.action_import_config()
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

    def action_import_config(self) -> None:
        from tuiwiz.ui.import_dialog import ImportDialog

        def imported(preset: dict | None) -> None:
            if preset is not None:
                self.app.load_draft(Draft(preset), "model")  # type: ignore[attr-defined]

        self.app.push_screen(ImportDialog(), imported)

    def _highlighted_id(self) -> str:
        choices = self.query_one("#choices", OptionList)
        if choices.highlighted is None:
            return ""
        return choices.get_option_at_index(choices.highlighted).id or ""

    def action_toggle_mark(self) -> None:
        from tuiwiz.ui.compare import MAX_RUNS

        option_id = self._highlighted_id()
        if option_id not in self.runs:
            self.notify("Space marks recent runs (below the presets) to compare them")
            return
        if option_id in self.marked:
            self.marked.remove(option_id)
        elif len(self.marked) >= MAX_RUNS:
            self.notify(f"Compare at most {MAX_RUNS} runs at a time", severity="warning")
            return
        else:
            self.marked.append(option_id)
        choices = self.query_one("#choices", OptionList)
        choices.replace_option_prompt(option_id, self._run_label(option_id))

    def action_compare(self) -> None:
        from tuiwiz.ui.compare import CompareScreen

        if len(self.marked) < 2:
            self.notify("Mark two or more recent runs with Space, then press C to compare them")
            return
        self.app.push_screen(CompareScreen([self.runs[m] for m in self.marked]))

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
