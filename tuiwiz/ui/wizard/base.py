"""What every wizard step shares: the step bar, the form beside the explanation of the focused
field, Back / Next, and the keys to move between steps."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.events import DescendantFocus
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from tuiwiz.ui import keys
from tuiwiz.ui.draft import Draft
from tuiwiz.ui.widgets.explain_panel import ExplainPanel
from tuiwiz.ui.widgets.field_row import FieldRow
from tuiwiz.ui.widgets.step_bar import STEPS, StepBar

HELP = """\
Keys (no mouse needed; in a browser, use the F-keys)

  Tab / Shift+Tab  next / previous field
  Ctrl+N  F3       next step (nothing typed is lost)
  Ctrl+B  F2       previous step
  Ctrl+G  F4       go to any step
  Ctrl+R  F6       review: memory check, save, launch
  Ctrl+Q  F10      quit (runs keep going)       F1  this help

  Start    Enter opens · P: new run from a recent run's settings
           Space marks a run · C compares the marked runs
  Model    Enter on a listed model picks it
  Targets  Space toggles · 1 q+v · 2 attention · 3 all linear
  Review   Ctrl+L/F9 launch · Ctrl+S/F7 save · 1-9 a suggestion
           F5 reads the GPUs again

Each field's explanation shows on the right while it is
focused. An invalid value is marked at its field; launch is
refused until it is fixed. Escape closes this help."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: 68; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; padding: 0 1; background: $surface; overflow-y: auto; }
    """

    def __init__(self, text: str = HELP) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static(self.text)


class GotoScreen(ModalScreen[str | None]):
    """Pick a step to jump to."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    GotoScreen { align: center middle; }
    GotoScreen > OptionList { width: 32; height: auto; border: round $accent; }
    """

    def compose(self) -> ComposeResult:
        yield OptionList(
            *[Option(f"{i}  {title}", id=name) for i, (name, title) in enumerate(STEPS, 1)]
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class StepScreen(Screen):
    """A wizard step. Subclasses set STEP and implement compose_form(); refresh() updates what
    depends on the draft (derived values, summaries)."""

    STEP = ""
    BINDINGS = [
        Binding(keys.both("ctrl+n"), "next", "Next"),
        Binding(keys.both("ctrl+b"), "back", "Back"),
        Binding(keys.both("ctrl+g"), "goto", "Go to"),
        Binding(keys.both("ctrl+r"), "review", "Review"),
        Binding("f1", "help", "Help"),
    ]
    DEFAULT_CSS = """
    StepScreen #body { height: 1fr; }
    StepScreen #form { width: 1fr; padding: 0 1; }
    StepScreen .section-title { text-style: bold; color: $accent; margin-top: 1; }
    StepScreen .note { color: $text-muted; }
    StepScreen .derived { color: $success; height: auto; margin-top: 1; }
    StepScreen .problem { color: $error; height: auto; }
    """

    @property
    def draft(self) -> Draft:
        return self.app.draft  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        yield StepBar(self.STEP)
        with Horizontal(id="body"):
            with VerticalScroll(id="form"):
                yield from self.compose_form()
            yield ExplainPanel(id="explain")
        yield Footer()

    def compose_form(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        for row in self.query(FieldRow):
            row.load()
        self.refresh_derived()

    def refresh_derived(self) -> None:
        """Update what depends on the draft; called on every change and when shown."""

    def lookup_done(self) -> None:
        """A background lookup (model, dataset, memory) finished: show its result."""
        self.refresh_derived()

    def on_field_row_changed(self, event: FieldRow.Changed) -> None:
        self.query_one(ExplainPanel).show_key(event.key, self.explain_extra(event.key))
        self.refresh_derived()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        node = event.widget
        while node is not None and not isinstance(node, FieldRow):
            node = node.parent
        key = node.key if isinstance(node, FieldRow) else getattr(event.widget, "explain_key", None)
        self.query_one(ExplainPanel).show_key(key, self.explain_extra(key))

    def explain_extra(self, key: str | None) -> str:
        """Text added under the explanation (a step's own hints)."""
        return ""

    # --- navigation -------------------------------------------------------------------------

    def _index(self) -> int:
        return [name for name, _ in STEPS].index(self.STEP)

    def action_next(self) -> None:
        i = self._index()
        if i + 1 < len(STEPS):
            self.app.goto(STEPS[i + 1][0])  # type: ignore[attr-defined]

    def action_back(self) -> None:
        i = self._index()
        if i > 0:
            self.app.goto(STEPS[i - 1][0])  # type: ignore[attr-defined]

    def action_review(self) -> None:
        self.app.goto("review")  # type: ignore[attr-defined]

    def action_goto(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.app.goto(name)  # type: ignore[attr-defined]

        self.app.push_screen(GotoScreen(), chosen)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())
