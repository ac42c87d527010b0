"""Step 2: the model: a Hub id or a local directory, models already on this machine, and a
summary of the chosen one from the inspector."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.timer import Timer
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tuiwiz.bundled import DEMO_MODEL
from tuiwiz.inspect.overview import human_count
from tuiwiz.ui.widgets.field_row import FieldRow
from tuiwiz.ui.wizard.base import StepScreen
from tuiwiz.ui.workers import in_thread

TRUST_WARNING = (
    "⚠ trust_remote_code is on: loading this model runs Python code from its repository with "
    "your permissions. Turn it on only for repositories you trust."
)


class ModelStep(StepScreen):
    STEP = "model"
    DEFAULT_CSS = """
    ModelStep #local { height: auto; max-height: 7; border: round $primary-darken-2; }
    ModelStep #summary { height: auto; margin-top: 1; }
    ModelStep #trust-warning { color: $warning; height: auto; }
    """
    _debounce: Timer | None = None

    def compose_form(self) -> ComposeResult:
        yield Static("Model", classes="section-title")
        yield FieldRow("model.name_or_path", "Model (id or dir)")
        yield Static("On this machine (Enter picks one):", classes="note")
        local = OptionList(Option(f"{DEMO_MODEL}  (bundled tiny demo)", id=DEMO_MODEL), id="local")
        local.explain_key = "model.name_or_path"  # type: ignore[attr-defined]
        yield local
        yield Static("", id="summary")
        yield FieldRow("model.revision")
        yield FieldRow("model.trust_remote_code")
        yield Static("", id="trust-warning")
        yield FieldRow("model.attn_implementation")
        yield FieldRow("model.torch_dtype")

    def on_mount(self) -> None:
        self._list_cached_models()
        self.query_one("#f-model-name_or_path Input").focus()

    @in_thread("listing the cached models")
    def _list_cached_models(self) -> None:
        from tuiwiz.inspect.overview import cached_hub_models

        models = cached_hub_models()
        self.app.call_from_thread(self._show_cached, models)

    def _show_cached(self, models: list[tuple[str, int]]) -> None:
        local = self.query_one("#local", OptionList)
        for repo_id, size in models:
            local.add_option(
                Option(f"{repo_id}  ({size / 2**30:.1f} GiB in the HF cache)", id=repo_id)
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        row = self.query_one("#f-model-name_or_path", FieldRow)
        self.draft.set("model.name_or_path", event.option.id)
        row.load()
        self.refresh_derived()

    def explain_extra(self, key: str | None) -> str:
        if key == "model.trust_remote_code" and self.draft.get(key):
            return TRUST_WARNING
        return ""

    def refresh_derived(self) -> None:
        trust = bool(self.draft.get("model.trust_remote_code"))
        self.query_one("#trust-warning", Static).update(TRUST_WARNING if trust else "")
        if self._debounce is not None:
            self._debounce.stop()
        # Typing a Hub id fires a change per key: look it up once typing pauses.
        self._debounce = self.set_timer(0.4, self._show_summary)

    def lookup_done(self) -> None:
        self._show_summary()

    def _show_summary(self) -> None:
        if not self.is_mounted:
            return
        summary = self.query_one("#summary", Static)
        if not self.draft.get("model.name_or_path"):
            summary.update(Text("Type a Hub id (org/name) or a directory with config.json.", "dim"))
            return
        item = self.app.model_overview()  # type: ignore[attr-defined]
        if not item.done:
            waiting = "Reading the model's config…"
            if self.draft.get("model.name_or_path") == DEMO_MODEL:
                waiting += " (the demo model is built on first use: about a minute)"
            summary.update(Text(waiting, "dim italic"))
        elif item.error:
            summary.update(Text(f"✗ {item.error}", "bold red"))
        else:
            o = item.value
            template = {True: "yes", False: "no (a plain layout is used)", None: "unknown"}
            text = Text()
            text.append("✓ ", "green")
            text.append(f"{o.architecture}", "bold")
            text.append(f"  {human_count(o.total_params)} parameters\n")
            text.append(f"  {o.layers} layers, hidden size {o.hidden_size}, ")
            text.append(f"context {o.context_length or '?'} tokens\n")
            text.append(f"  chat template: {template[o.chat_template]}")
            summary.update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_next()
