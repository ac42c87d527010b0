"""One configuration field: its name, an input, and the reason when the value is invalid.

The row writes valid values straight into the app's draft and flags invalid ones at the field;
the screen learns of every change through `FieldRow.Changed` to refresh derived values.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, Select, Static

from tuiwiz.explain import explain
from tuiwiz.ui.draft import VIRTUAL, Draft, FieldSpec, field, format_value

# The explanation shown for a wizard-only key: the real key it stands for.
EXPLAIN_AS = {
    "quantization.mode": "quantization.load_in_4bit",
    "training.precision": "training.bf16",
}


def title_of(key: str) -> str:
    if key == "quantization.mode":
        return "Quantization"
    if key == "training.precision":
        return "Precision"
    return explain(EXPLAIN_AS.get(key, key)).title


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


class FieldRow(Vertical):
    DEFAULT_CSS = """
    FieldRow { height: auto; margin: 0 0 0 0; }
    FieldRow > Horizontal { height: 1; }
    FieldRow .field-label { width: 22; color: $text-muted; }
    FieldRow:focus-within .field-label { color: $accent; text-style: bold; }
    FieldRow .field-control { width: 1fr; }
    FieldRow Input.field-control { height: 1; }
    FieldRow .field-error { color: $error; height: auto; padding-left: 22; display: none; }
    FieldRow.-invalid .field-error { display: block; }
    FieldRow.-invalid Input { color: $error; }
    """

    class Changed(Message):
        def __init__(self, row: FieldRow, value: Any) -> None:
            super().__init__()
            self.row, self.key, self.value = row, row.key, value

    def __init__(self, key: str, label: str | None = None, id: str | None = None) -> None:
        super().__init__(id=id or "f-" + key.replace(".", "-"))
        self.key = key
        self.spec: FieldSpec = field(key)
        self.label = label or title_of(key)

    @property
    def draft(self) -> Draft:
        return self.app.draft  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="field-label")
            yield self._control()
        yield Static("", classes="field-error")

    def _control(self):
        value = self.draft.get(self.key)
        if self.spec.kind == "bool":
            return Checkbox(_yes_no(value), bool(value), compact=True, classes="field-control")
        if self.spec.kind == "choice":
            options = [(c, c) for c in self.spec.choices]
            if value not in self.spec.choices:
                options.append((str(value), value))
            return Select(
                options, value=value, allow_blank=False, compact=True, classes="field-control"
            )
        return Input(format_value(value), compact=True, classes="field-control")

    @property
    def control(self):
        return self.query_one(".field-control")

    def load(self) -> None:
        """Show the draft's value (after Back, a preset load or an applied suggestion)."""
        if self.key in self.draft.invalid:
            return  # keep the user's invalid text and its reason on screen
        value = self.draft.get(self.key)
        control = self.control
        with control.prevent(Input.Changed, Checkbox.Changed, Select.Changed):
            if isinstance(control, Checkbox):
                control.value = bool(value)
                control.label = _yes_no(value)
            elif isinstance(control, Select):
                if value in self.spec.choices:
                    control.value = value
            elif control.value != format_value(value):
                control.value = format_value(value)
        self._show_error(None)

    def _show_error(self, reason: str | None) -> None:
        self.set_class(bool(reason), "-invalid")
        self.query_one(".field-error", Static).update(f"✗ {reason}" if reason else "")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        reason = self.draft.set_text(self.key, event.value)
        self._show_error(reason)
        self.post_message(self.Changed(self, None if reason else self.draft.get(self.key)))

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        event.checkbox.label = _yes_no(event.value)
        self._apply(bool(event.value))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.BLANK:
            self._apply(event.value)

    def _apply(self, value: Any) -> None:
        reason = self.draft.check(self.key, value) if self.key not in VIRTUAL else None
        if reason:
            self.draft.invalid[self.key] = reason
        else:
            self.draft.set(self.key, value)
        self._show_error(reason)
        self.post_message(self.Changed(self, value))
