"""How a run ended and what to do next: finished (try it), stopped (resume), failed (the reason,
and the estimator's suggestions to pick from), crashed, or a run directory that cannot be read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tuiwiz.train.state import RunState
from tuiwiz.units import duration, size


@dataclass
class Outcome:
    kind: str  # good / warn / bad, or "" while there is nothing to say (running)
    title: str
    text: str  # Textual markup
    suggestions: list[dict[str, Any]]


def usable_suggestions(status: dict[str, Any], end: dict[str, Any] | None) -> list[dict]:
    found = status.get("suggestions") or (end or {}).get("suggestions") or []
    if not isinstance(found, list):
        return []
    return [
        s
        for s in found
        if isinstance(s, dict)
        and isinstance(s.get("overrides"), list)
        and s["overrides"]
        and all(isinstance(o, str) for o in s["overrides"])
    ][:9]


def describe(
    state: str,
    status: dict[str, Any],
    run_ref: str,
    log: Path,
    adapter: Path,
    steps: int | None,
    elapsed: float | None,
    checkpoint: int | None,
    error: str | None = None,
    end: dict[str, Any] | None = None,
) -> Outcome:
    ref = escape(run_ref)
    resume = (
        f"Continue from checkpoint {checkpoint}: [b]tuiwiz resume {ref}[/]"
        if checkpoint is not None
        else "No complete checkpoint was saved: fix the cause and start a new run."
    )
    if error:
        return Outcome("bad", "cannot read the run", escape(error), [])
    if state == RunState.FINISHED:
        where = escape(str(status.get("adapter") or adapter))
        text = (
            f"Trained {steps} steps in {duration(elapsed)}. Adapter: [b]{where}[/]\n"
            "Press [b]t[/] to try it, [b]e[/] to export it (GGUF for Ollama, llama.cpp)."
        )
        return Outcome("good", "finished", text, [])
    if state == RunState.STOPPED:
        reason = status.get("reason")
        why = f" ({escape(str(reason))})" if reason else ""
        return Outcome("warn", "stopped", f"Stopped at step {steps or 0}{why}. {resume}", [])
    if state == RunState.CRASHED:
        text = (
            "The training process is gone without recording how it ended (killed, or out of "
            f"system memory?). Log: {escape(str(log))}\n{resume}"
        )
        return Outcome("bad", "crashed", text, [])
    if state == RunState.FAILED:
        suggestions = usable_suggestions(status, end)
        text = f"[b]{escape(str(status.get('reason') or 'no reason recorded'))}[/]"
        if suggestions:
            text += (
                f"\nPress 1-{len(suggestions)} (or select and press enter) to start a new run "
                "with that change:"
            )
        else:
            text += f"\n{resume}\nLog: {escape(str(log))}"
        return Outcome("bad", "failed", text, suggestions)
    return Outcome("", "", "", [])


class OutcomePanel(Vertical):
    """The outcome, with the suggestions as a list: a number key or enter picks one."""

    DEFAULT_CSS = """
    OutcomePanel {
        height: auto;
        max-height: 12;
        display: none;
        border: round $primary-muted;
        border-title-color: $text;
        padding: 0 1;
    }
    OutcomePanel.-shown { display: block; }
    OutcomePanel.-bad { border: round $error; }
    OutcomePanel.-good { border: round $success; }
    OutcomePanel.-warn { border: round $warning; }
    OutcomePanel > #dash-suggestions {
        height: auto;
        max-height: 6;
        border: none;
        padding: 0;
        display: none;
    }
    OutcomePanel > #dash-suggestions.-shown { display: block; }
    OutcomePanel > #dash-hint { color: $text-muted; max-height: 2; }
    OutcomePanel > #dash-hint.-empty { display: none; }
    """

    class Picked(Message):
        """A suggestion was chosen (1-based)."""

        def __init__(self, number: int) -> None:
            super().__init__()
            self.number = number

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.outcome = Outcome("", "", "", [])
        self.progress = ""  # markup: what starting a new run is doing, or why it failed
        self._key: tuple = ()

    def compose(self) -> ComposeResult:
        yield Static(id="dash-outcome-text")
        yield OptionList(id="dash-suggestions")
        yield Static(id="dash-hint")

    def show(self, outcome: Outcome, progress: str, busy: bool) -> None:
        key = (outcome, progress, busy)
        if key == self._key:
            return
        self._key, self.outcome, self.progress = key, outcome, progress
        self.set_class(bool(outcome.kind), "-shown")
        for name in ("good", "warn", "bad"):
            self.set_class(outcome.kind == name, f"-{name}")
        self.border_title = outcome.title
        self.query_one("#dash-outcome-text", Static).update(outcome.text)
        options = self.query_one(OptionList)
        had = options.option_count
        options.set_options(self._options(outcome.suggestions))
        options.set_class(bool(outcome.suggestions), "-shown")
        options.disabled = busy
        if outcome.suggestions and not had:
            options.highlighted = 0
            options.focus()
        self._refresh_hint()

    def _refresh_hint(self) -> None:
        hint = self.progress
        options = self.query_one(OptionList)
        suggestions = self.outcome.suggestions
        if not hint and suggestions and options.highlighted is not None:
            chosen = suggestions[min(options.highlighted, len(suggestions) - 1)]
            hint = f"enter: a new run with {escape(', '.join(chosen['overrides']))}"
        widget = self.query_one("#dash-hint", Static)
        widget.update(hint)
        widget.set_class(not hint, "-empty")

    @staticmethod
    def _options(suggestions: list[dict[str, Any]]) -> list[Option]:
        options = []
        for n, s in enumerate(suggestions, 1):
            fits = {True: "fits", False: "still too big"}.get(s.get("fits"), "")
            total = s.get("total_bytes")
            facts = ", ".join(
                part for part in (f"est. {size(total)}" if total else "", fits) if part
            )
            options.append(
                Option(
                    f"[b]{n}[/] {escape(str(s.get('title', '')))}"
                    + (f" [$text-muted]({facts})[/]" if facts else ""),
                    id=f"suggestion-{n}",
                )
            )
        return options

    @on(OptionList.OptionHighlighted)
    def _highlighted(self) -> None:
        self._refresh_hint()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Picked(event.option_index + 1))
