"""Step 4: which linear layers get LoRA adapters: the model's real modules as a checklist with
their parameter counts, quick choices, and the live trainable parameter count."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import SelectionList, Static

from tuiwiz.inspect.overview import human_count
from tuiwiz.ui.wizard.base import StepScreen
from tuiwiz.ui.wizard.lora_counts import trainable_line

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")


class TargetsStep(StepScreen):
    STEP = "targets"
    BINDINGS = [
        Binding("1", "quick('qv')", "q+v"),
        Binding("2", "quick('attention')", "Attention"),
        Binding("3", "quick('all')", "All linear"),
    ]
    DEFAULT_CSS = """
    TargetsStep #modules { height: auto; max-height: 14; border: round $primary-darken-2; }
    TargetsStep #trainable { height: auto; margin-top: 1; }
    """

    def compose_form(self) -> ComposeResult:
        yield Static("LoRA target modules", classes="section-title")
        yield Static(
            "Space toggles a module (×layers, weights). Quick choices: 1 q_proj + v_proj · "
            "2 all attention · 3 all linear layers",
            classes="note",
        )
        modules = SelectionList[str](id="modules")
        modules.explain_key = "lora.target_modules"  # type: ignore[attr-defined]
        yield modules
        yield Static("", id="trainable")
        yield Static("", classes="problem", id="targets-problem")

    _shown_for: tuple | None = None  # the model whose modules the list shows

    def on_mount(self) -> None:
        self.query_one("#modules").focus()

    def refresh_derived(self) -> None:
        item = self.app.model_overview()  # type: ignore[attr-defined]
        modules = self.query_one("#modules", SelectionList)
        if item.done and not item.error and self._shown_for != item.key:
            self._shown_for = item.key
            with modules.prevent(SelectionList.SelectedChanged):
                modules.clear_options()
                for name, info in item.value.summary.linear_modules().items():
                    label = Text.assemble(
                        (f"{name:<14}", "bold"),
                        f" ×{info['count']:<3} {human_count(info['params']):>7}",
                    )
                    modules.add_option((label, name, False))
        self._select_from_draft()
        self.query_one("#trainable", Static).update(trainable_line(self.app, self.draft))

    def _available(self) -> list[str]:
        modules = self.query_one("#modules", SelectionList)
        return [modules.get_option_at_index(i).value for i in range(modules.option_count)]

    def _select_from_draft(self) -> None:
        modules = self.query_one("#modules", SelectionList)
        targets = self.draft.get("lora.target_modules")
        wanted = set(self._available()) if isinstance(targets, str) else set(targets)
        with modules.prevent(SelectionList.SelectedChanged):
            for name in self._available():
                if name in wanted:
                    modules.select(name)
                else:
                    modules.deselect(name)
        problem = self.query_one("#targets-problem", Static)
        problem.update("Choose at least one module." if not wanted else "")

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        selected = [n for n in self._available() if n in event.selection_list.selected]
        if selected:
            everything = set(selected) == set(self._available())
            self.draft.set("lora.target_modules", "all-linear" if everything else selected)
            self.draft.invalid.pop("lora.target_modules", None)
        else:
            self.draft.invalid["lora.target_modules"] = "must name at least one module"
        self.refresh_derived()

    def action_quick(self, which: str) -> None:
        available = self._available()
        if which == "all":
            self.draft.set("lora.target_modules", "all-linear")
        else:
            names = ("q_proj", "v_proj") if which == "qv" else ATTENTION
            chosen = [n for n in names if n in available]
            if not chosen:
                self.notify(
                    f"This model has no {' / '.join(names)}; pick its modules in the list.",
                    severity="warning",
                )
                return
            self.draft.set("lora.target_modules", chosen)
        self.refresh_derived()
