"""The plain-language explanation of the focused field, from tuiwiz.explain (the one source)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tuiwiz.explain import explain


class ExplainPanel(Static):
    DEFAULT_CSS = """
    ExplainPanel {
        width: 34; height: 1fr; padding: 0 1; border-left: vkey $primary-darken-2;
        overflow-y: auto;
    }
    """

    def show_key(self, key: str | None, extra: str = "") -> None:
        if key is None:
            self.update(extra)
            return
        from tuiwiz.ui.widgets.field_row import EXPLAIN_AS

        try:
            e = explain(EXPLAIN_AS.get(key, key))
        except KeyError:
            self.update(extra)
            return
        text = Text()
        text.append(e.title + "\n", style="bold")
        text.append(e.body + "\n\n")
        text.append("Range: ", style="bold")
        text.append(e.range + "\n")
        text.append("Default: ", style="bold")
        text.append(e.default + "\n")
        if extra:
            text.append("\n" + extra)
        self.update(text)
