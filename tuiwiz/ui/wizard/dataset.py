"""Step 3: the dataset: path or Hub id, detected format (overridable), column mapping, three
examples rendered exactly as the model sees them, and token-length statistics."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.timer import Timer
from textual.widgets import Static

from tuiwiz.ui.widgets.field_row import FieldRow
from tuiwiz.ui.wizard.base import StepScreen

EXAMPLE_CHARS = 600  # of each rendered example shown; the statistics cover whole examples
CUT_CHARS = 200  # of the part beyond max_seq_length shown, struck out


def _append_capped(text: Text, parts: list[tuple[str, str]], cap: int) -> None:
    shown = 0
    for part, style in parts:
        piece = part[: max(0, cap - shown)]
        shown += len(piece)
        text.append(piece, style)
    if shown >= cap:
        text.append(" …", "dim")


def render_example(segments, cut: int | None = None, limit: int = 0) -> Text:
    """Prompt (masked from the loss) dim on a dark band; the trained answer bright green; where
    max_seq_length cuts the example, a marker, and the part training never sees struck out."""
    from tuiwiz.data.preview import split_at

    kept, dropped = split_at(segments, cut) if cut is not None else (segments, [])
    text = Text()
    styled = [(s.text, "bold green" if s.trained else "dim on grey11") for s in kept]
    _append_capped(text, styled, EXAMPLE_CHARS)
    if cut is not None:
        text.append(f" ✂ cut here (max_seq_length {limit}) ", "bold yellow")
        _append_capped(text, [(s.text, "dim strike") for s in dropped], CUT_CHARS)
    return text


def stats_text(p, max_seq_length: int) -> Text:
    t = Text()
    t.append(f"{p.format}", "bold")
    t.append(f" ({p.why}); {p.rows:,} rows")
    if p.skipped:
        skipped = ", ".join(f"{n} {why}" for why, n in p.skipped.items())
        t.append(f"; skipped: {skipped}", "yellow")
    if p.token_problem:
        t.append(f"\n{p.token_problem[:1].upper()}{p.token_problem[1:]}", "yellow")
        return t
    t.append("\nTokens per example")
    examples = p.rows - sum(p.skipped.values())
    if p.measured < examples:  # a big dataset: measured on a sample, trained on all of it
        t.append(f" (a random sample of {p.measured:,} of {examples:,}; training uses all)")
    t.append(f": median {p.median_tokens:.0f}, 95th percentile {p.p95_tokens:.0f}, ")
    t.append(f"max {p.max_tokens}  vs max_seq_length {max_seq_length}\n")
    share = p.truncated_share
    style = "green" if share == 0 else ("yellow" if share < 0.05 else "bold red")
    t.append(f"{share:.1%} of examples would be truncated", style)
    if share > 0:
        t.append(" (their ends, usually the answer, are cut)", style)
    return t


class DatasetStep(StepScreen):
    STEP = "dataset"
    DEFAULT_CSS = """
    DatasetStep #stats { height: auto; margin-top: 1; }
    DatasetStep .example { height: auto; border: round $primary-darken-2; padding: 0 1; }
    DatasetStep #legend { height: auto; }
    """
    _debounce: Timer | None = None
    _progress_timer: Timer | None = None

    def compose_form(self) -> ComposeResult:
        yield Static("Dataset", classes="section-title")
        yield FieldRow("data.path", "Dataset (path / id)")
        yield FieldRow("data.format")
        yield FieldRow("data.columns", "Column mapping")
        yield FieldRow("data.split")
        yield FieldRow("data.max_seq_length")
        yield FieldRow("data.validation_split")
        yield FieldRow("data.train_on_prompt")
        yield FieldRow("data.packing")
        yield FieldRow("data.max_samples")
        yield Static("", id="stats")
        yield Static(
            Text.assemble(
                "Examples as the model sees them: ",
                ("prompt (not trained)", "dim on grey11"),
                "  ",
                ("answer (trained)", "bold green"),
            ),
            id="legend",
        )
        for i in range(3):
            yield Static("", classes="example", id=f"example-{i}")

    def on_mount(self) -> None:
        self.query_one("#f-data-path Input").focus()

    def refresh_derived(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.4, self._show_preview)

    def lookup_done(self) -> None:
        self._show_preview()

    def _show_progress(self) -> None:
        if not self.draft.invalid:
            self._show_preview()

    def _show_preview(self) -> None:
        if not self.is_mounted:
            return
        stats = self.query_one("#stats", Static)
        examples = [self.query_one(f"#example-{i}", Static) for i in range(3)]
        if self.draft.invalid:
            return  # keep the last preview until the typed values are valid again
        item = self.app.data_preview()  # type: ignore[attr-defined]
        if not item.done:
            from tuiwiz.ui.background import preview_progress

            doing = preview_progress(item.key)
            text = f"Reading the dataset: {doing}…" if doing else "Reading the dataset…"
            stats.update(Text(text, "dim italic"))
            if self._progress_timer is None:  # look again while it works
                self._progress_timer = self.set_interval(0.5, self._show_progress)
            return
        if self._progress_timer is not None:
            self._progress_timer.stop()
            self._progress_timer = None
        if item.error:
            stats.update(Text(f"✗ {item.error}", "bold red"))
            for e in examples:
                e.display = False
            return
        p = item.value
        limit = int(self.draft.get("data.max_seq_length"))
        stats.update(stats_text(p, limit))
        self.query_one("#legend", Static).display = bool(p.examples)
        for i, e in enumerate(examples):
            e.display = i < len(p.examples)
            if i < len(p.examples):
                e.update(render_example(p.examples[i], p.cuts[i], limit))
