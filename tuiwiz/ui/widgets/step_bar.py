"""The row of wizard steps at the top, the current one highlighted."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

STEPS = [
    ("start", "Start"),
    ("model", "Model"),
    ("dataset", "Data"),
    ("targets", "Targets"),
    ("quantlora", "Quant+LoRA"),
    ("training", "Training"),
    ("review", "Review"),
]


class StepBar(Static):
    DEFAULT_CSS = """
    StepBar { height: 1; background: $primary-darken-3; padding: 0 1; }
    """

    def __init__(self, current: str) -> None:
        super().__init__(self._text(current))  # drawn with the first frame
        self.current = current

    @staticmethod
    def _text(current: str) -> Text:
        text = Text()
        for i, (name, title) in enumerate(STEPS, 1):
            style = "bold reverse" if name == current else "dim"
            text.append(f" {i} {title} ", style=style)
        return text
