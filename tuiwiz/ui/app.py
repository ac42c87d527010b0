"""The tuiwiz Textual app: the wizard's steps and the run dashboard over one draft preset.

Thin on purpose: screens live in tuiwiz/ui/wizard and tuiwiz/ui/dashboard, the draft in
tuiwiz/ui/draft.py, slow lookups in tuiwiz/ui/background.py. Heavy libraries load in workers,
never before the first frame.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding

from tuiwiz.errors import one_line
from tuiwiz.ui import background, keys
from tuiwiz.ui.draft import Draft
from tuiwiz.ui.workers import in_thread

SCREENS: dict[str, tuple[str, str]] = {
    "start": ("tuiwiz.ui.wizard.start", "StartStep"),
    "model": ("tuiwiz.ui.wizard.model", "ModelStep"),
    "dataset": ("tuiwiz.ui.wizard.dataset", "DatasetStep"),
    "targets": ("tuiwiz.ui.wizard.targets", "TargetsStep"),
    "quantlora": ("tuiwiz.ui.wizard.quant_lora", "QuantLoraStep"),
    "training": ("tuiwiz.ui.wizard.training", "TrainingStep"),
    "review": ("tuiwiz.ui.wizard.review", "ReviewStep"),
}


class TuiwizApp(App):
    TITLE = "tuiwiz"
    BINDINGS = [Binding(keys.both("ctrl+q"), "quit", "Quit", priority=True)]

    def __init__(self, draft: Draft | None = None, start: str = "start") -> None:
        super().__init__()
        self.draft = draft or Draft()
        self.start_step = start
        self.lookups = background.LookupCache()

    def get_default_screen(self):
        """The first step is the app's base screen: drawn in the very first frame, with no
        blank screen before it."""
        import importlib

        module, cls = SCREENS[self.start_step]
        self._home = getattr(importlib.import_module(module), cls)()
        return self._home

    def get_key_display(self, binding: Binding) -> str:
        """In a browser the footer names the F-key twins of the Ctrl keys (tuiwiz/ui/keys.py)."""
        return keys.footer_display(binding.key, self.is_web) or super().get_key_display(binding)

    def on_mount(self) -> None:
        # After the first frame: importing in a thread still competes with drawing it.
        self.set_timer(0.5, self._warm_up)

    @in_thread("loading the wizard's libraries", group="warm-up")
    def _warm_up(self) -> None:
        """Import what later steps need while the user reads the first screen."""
        import tuiwiz.config  # noqa: F401
        import tuiwiz.inspect.model  # noqa: F401

    def goto(self, name: str) -> None:
        if name == self.start_step:  # the base screen: uncover it
            while self.screen is not self._home and len(self.screen_stack) > 1:
                self.pop_screen()
            return
        if not self.is_screen_installed(name):
            import importlib

            module, cls = SCREENS[name]
            self.install_screen(getattr(importlib.import_module(module), cls)(), name)
        if self.screen is self._home:
            self.push_screen(name)  # the base screen stays underneath
        else:
            self.switch_screen(name)

    def load_draft(self, draft: Draft, step: str = "model") -> None:
        """Replace the draft (a preset or a run's settings were opened) and show a step."""
        self.draft = draft
        self.goto(step)

    # --- slow lookups, shared by the steps ------------------------------------------------------

    def lookup(self, kind: str, key: tuple, fn: Callable[[], Any]) -> background.Lookup:
        """The cached result for `key`, or a pending one whose worker is started now; the
        current screen's refresh_derived() runs when it completes."""
        item = self.lookups.get(kind, key)
        if item is None:
            item = self.lookups.start(kind, key)
            self._run_lookup(item, fn)
        return item

    @in_thread("a lookup")
    def _run_lookup(self, item: background.Lookup, fn: Callable[[], Any]) -> None:
        try:
            item.value = fn()
        except Exception as e:  # shown in the step, never a traceback
            item.error = one_line(e)
        item.done = True
        self.call_from_thread(self._lookup_done)

    def _lookup_done(self) -> None:
        done = getattr(self.screen, "lookup_done", None)
        if done is not None:
            done()

    def model_overview(self) -> background.Lookup:
        key = background.model_key(self.draft)
        return self.lookup("model", key, lambda: background.load_model_overview(key))

    def data_preview(self) -> background.Lookup:
        key = background.data_key(self.draft)
        data = {
            k: self.draft.get(f"data.{k}")
            for k in (
                "path",
                "format",
                "split",
                "subset",
                "columns",
                "max_seq_length",
                "max_samples",
                "train_on_prompt",
            )
        }
        model = {
            k: self.draft.get(f"model.{k}")
            for k in ("name_or_path", "revision", "trust_remote_code")
        }
        return self.lookup("data", key, lambda: background.load_preview(key, data, model))

    # --- runs ---------------------------------------------------------------------------------

    def show_run(self, run_dir: Path) -> None:
        from tuiwiz.ui.dashboard import DashboardScreen

        self.push_screen(DashboardScreen(run_dir))
