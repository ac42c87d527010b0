"""The live run dashboard: a reader of one run directory, usable as a screen in any Textual app.

Everything that touches the disk, NVML or the estimator runs in thread workers; the UI loop only
folds what they post. The run directory is read, never written, except through the two actions
that change a run on purpose: stop (SIGTERM, as `tuiwiz stop`) and relaunch with a suggestion
(a new run directory).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Log, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from tuiwiz.train.rundir import RunDir
from tuiwiz.ui.dashboard.chart import LossChart
from tuiwiz.ui.dashboard.dialogs import ConfirmStop, FilesScreen, HelpScreen, listing
from tuiwiz.ui.dashboard.model import RunView, duration, size
from tuiwiz.ui.dashboard.panels import GpuPanel, StatsPanel, TitleBar
from tuiwiz.ui.dashboard.reader import RunReader, Update

LOG_LINES = 500
HELP = [
    ("s", "stop training gracefully (asks first; it saves a checkpoint)"),
    ("d", "detach: leave training running and quit"),
    ("t", "try the finished adapter"),
    ("1-9", "start a new run with that suggestion (failed runs)"),
    ("enter", "start a new run with the selected suggestion"),
    ("o", "show the run directory and its files"),
    ("l", "loss chart: log / linear scale"),
    ("tab", "move between the log and the suggestions"),
    ("up/down", "scroll the log"),
    ("?", "this help"),
    ("q", "quit (training keeps running)"),
    ("esc", "back to the screen before (inside the wizard)"),
]


class _Inbox:
    """Updates from the reader thread, merged until the UI takes them (so they never pile up).
    Each belongs to a generation (one per run shown); a newer generation drops older updates."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: tuple[int, Update] | None = None

    def put(self, generation: int, update: Update) -> None:
        with self._lock:
            if self._pending is not None and self._pending[0] == generation:
                old = self._pending[1]
                if not update.reset and not update.error:
                    update.events = old.events + update.events
                    update.reset = old.reset
                    update.log_lines = (old.log_lines + update.log_lines)[-LOG_LINES:]
            self._pending = (generation, update)

    def take(self, generation: int) -> Update | None:
        with self._lock:
            if self._pending is None or self._pending[0] != generation:
                return None
            update, self._pending = self._pending[1], None
            return update


class DashboardScreen(Screen[None]):
    """The live dashboard of one run directory."""

    DEFAULT_CSS = """
    DashboardScreen { layout: vertical; }
    DashboardScreen #dash-top { height: 2fr; min-height: 7; }
    DashboardScreen #dash-left { width: 38; height: 1fr; }
    DashboardScreen .dash-box {
        border: round $primary-muted;
        border-title-color: $text-muted;
        border-subtitle-color: $text-muted;
        padding: 0 1;
    }
    DashboardScreen #dash-stats { height: auto; }
    DashboardScreen #dash-gpu-box { height: 1fr; min-height: 4; scrollbar-size-vertical: 1; }
    DashboardScreen #dash-chart { height: 1fr; width: 1fr; padding: 0; }
    DashboardScreen #dash-outcome {
        height: auto;
        max-height: 12;
        display: none;
        border: round $primary-muted;
        border-title-color: $text;
        padding: 0 1;
    }
    DashboardScreen #dash-outcome.-shown { display: block; }
    DashboardScreen #dash-outcome.-bad { border: round $error; }
    DashboardScreen #dash-outcome.-good { border: round $success; }
    DashboardScreen #dash-outcome.-warn { border: round $warning; }
    DashboardScreen #dash-suggestions {
        height: auto;
        max-height: 6;
        border: none;
        padding: 0;
        display: none;
    }
    DashboardScreen #dash-suggestions.-shown { display: block; }
    DashboardScreen #dash-hint { color: $text-muted; max-height: 2; }
    DashboardScreen #dash-hint.-empty { display: none; }
    DashboardScreen #dash-log { height: 1fr; min-height: 3; scrollbar-size-horizontal: 0; }
    DashboardScreen .dash-box:focus-within { border: round $primary; }
    """

    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("d", "detach", "Detach"),
        Binding("t", "try_it", "Try it"),
        Binding("o", "files", "Files"),
        Binding("l", "log_scale", "Log scale", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("escape", "back", "Back"),
        *(
            Binding(str(n), f"apply_suggestion({n})", f"Apply {n}", show=False)
            for n in range(1, 10)
        ),
    ]

    class RunChanged(Message):
        """The reader has something new in the inbox; newer ones replace pending ones."""

        def __init__(self, generation: int) -> None:
            super().__init__()
            self.generation = generation

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, DashboardScreen.RunChanged)

    class GpuSample(Message):
        def __init__(self, generation: int, status: Any) -> None:
            super().__init__()
            self.generation, self.status = generation, status

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, DashboardScreen.GpuSample)

    class EstimateReady(Message):
        def __init__(self, generation: int, total: int | None, note: str) -> None:
            super().__init__()
            self.generation, self.total, self.note = generation, total, note

    class Relaunch(Message):
        """Progress of starting a new run from a suggestion: a line, a started job, or an error."""

        def __init__(self, line: str = "", job: Any = None, error: str | None = None) -> None:
            super().__init__()
            self.line, self.job, self.error = line, job, error

    def __init__(
        self,
        run_dir: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.5,
        gpu_interval: float = 1.0,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.clock = clock
        self.poll_interval = poll_interval
        self.gpu_interval = gpu_interval
        self.run = RunDir(Path(run_dir))
        self.generation = 0
        self._inbox = _Inbox()
        self._reset_state()

    def _reset_state(self) -> None:
        self.view = RunView()
        self.status: dict[str, Any] = {}
        self.state = "unknown"  # the effective state: running, finished, failed, ...
        self.error: str | None = None
        self.stopping = False
        self.relaunching = False
        self.relaunch_line = ""
        self.latest_checkpoint: int | None = None
        self.gpu_status: Any = None
        self._loaded = {"run": False, "gpu": False, "estimate": False}
        self._loaded_event = threading.Event()
        self._outcome_key: tuple = ()
        self._bindings_key: tuple = ()

    # --- layout ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield TitleBar(id="dash-title")
        with Horizontal(id="dash-top"):
            with Vertical(id="dash-left"):
                stats = StatsPanel(self.view, id="dash-stats")
                stats.add_class("dash-box")
                stats.border_title = "run"
                yield stats
                with VerticalScroll(id="dash-gpu-box", classes="dash-box") as box:
                    box.border_title = "memory"
                    box.can_focus = False
                    yield GpuPanel(id="dash-gpu")
            chart = LossChart(id="dash-chart", classes="dash-box")
            chart.border_title = "loss"
            chart.border_subtitle = self._legend(False)
            yield chart
        with Vertical(id="dash-outcome"):
            yield Static(id="dash-outcome-text")
            yield OptionList(id="dash-suggestions")
            yield Static(id="dash-hint")
        log = Log(id="dash-log", classes="dash-box", max_lines=LOG_LINES, auto_scroll=True)
        log.border_title = "train.log"
        yield log
        yield Footer()

    def on_mount(self) -> None:
        self._start()
        self.set_interval(1.0, self._tick)

    @staticmethod
    def _legend(base: bool) -> str:
        legend = "[$text-primary]⣀ train[/]  [$text-warning]● eval[/]"
        return legend + ("  [$text-secondary]┄ base model[/]" if base else "")

    def _start(self) -> None:
        self.generation += 1
        self.query_one(TitleBar).set(self._run_label(), "loading")
        self._poll_run(self.generation, self.run)
        self._poll_gpus(self.generation)
        self._estimate(self.generation, self.run)

    def _run_label(self) -> str:
        return str(self.status.get("id") or self.run.path.name)

    @property
    def run_ref(self) -> str:
        """How the commands name this run: its registry id, or its directory."""
        return str(self.status.get("id") or self.run.path)

    # --- workers (threads) -----------------------------------------------------------------
    @work(thread=True, exclusive=True, group="dash-run", exit_on_error=False)
    def _poll_run(self, generation: int, run: RunDir) -> None:
        worker = get_current_worker()
        reader = RunReader(run)
        first = True
        while not worker.is_cancelled:
            update = reader.poll()
            if first or update.events or update.log_lines or update.reset or self._differs(update):
                self._inbox.put(generation, update)
                self.post_message(self.RunChanged(generation))
                first = False
            worker.cancelled_event.wait(self.poll_interval)

    def _differs(self, update: Update) -> bool:
        """Whether a poll without new events still changes what is shown (thread side)."""
        last = getattr(self, "_last_seen", None)
        seen = (update.state, update.error, update.rss_bytes, update.status.get("updated_at"))
        self._last_seen = seen
        return seen != last

    @work(thread=True, exclusive=True, group="dash-gpu", exit_on_error=False)
    def _poll_gpus(self, generation: int) -> None:
        from tuiwiz.gpu import read_gpus

        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                status = read_gpus()
            except Exception as e:  # a reading must never take the dashboard down
                from tuiwiz.gpu import GpuStatus

                status = GpuStatus([], error=f"GPU readings failed: {type(e).__name__}: {e}")
            self.post_message(self.GpuSample(generation, status))
            worker.cancelled_event.wait(self.gpu_interval)

    @work(thread=True, exclusive=True, group="dash-estimate", exit_on_error=False)
    def _estimate(self, generation: int, run: RunDir) -> None:
        try:
            from tuiwiz import config, presets
            from tuiwiz.estimate import estimate

            resolved = config.validate(presets.read_toml(run.preset), source=str(run.preset))
            total, note = estimate(resolved).total, ""
        except Exception as e:  # the estimate is extra information, never a failure
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            total, note = None, f"estimate unavailable: {reason}"
        self.post_message(self.EstimateReady(generation, total, note))

    @work(thread=True, exclusive=True, group="dash-relaunch", exit_on_error=False)
    def _relaunch(self, run: RunDir, overrides: list[str]) -> None:
        from tuiwiz import config, presets
        from tuiwiz.errors import TuiwizError
        from tuiwiz.train import jobs

        try:
            raw = config.apply_overrides(presets.read_toml(run.preset), overrides)
            resolved = config.validate(raw, source=str(run.preset))
            target = jobs.default_run_dir(resolved["name"], root=run.path.parent)
            self.post_message(self.Relaunch(f"starting {target.name}..."))
            job = jobs.start(
                target, config=resolved, progress=lambda m: self.post_message(self.Relaunch(m))
            )
        except TuiwizError as e:
            self.post_message(self.Relaunch(error=str(e)))
        except Exception as e:
            self.post_message(self.Relaunch(error=f"{type(e).__name__}: {e}"))
        else:
            # Reap the process when it ends (and record a hard crash, as `tuiwiz run` does).
            threading.Thread(target=job.wait, name="tuiwiz-reaper", daemon=True).start()
            self.post_message(self.Relaunch(job=job))

    @work(thread=True, exclusive=True, group="dash-files", exit_on_error=False)
    def _list_files(self, path: Path) -> None:
        try:
            lines = listing(path)
        except OSError as e:
            lines = [f"cannot list it: {e.strerror or e}"]
        self.app.call_from_thread(self.app.push_screen, FilesScreen(path, lines))

    # --- applying what the workers found --------------------------------------------------
    @on(RunChanged)
    def _on_run_changed(self, message: RunChanged) -> None:
        update = self._inbox.take(self.generation)
        if update is None:
            return
        if update.error:
            self.error = update.error
            self.state = "unreadable"
        else:
            self.error = None
            if update.reset:
                self.view = RunView()
            if self.view.apply(update.events) or update.reset:
                chart = self.query_one(LossChart)
                chart.set_data(self.view.train, self.view.evals, self.view.base_loss)
                chart.border_subtitle = self._legend(self.view.base_loss is not None)
            self.status = update.status
            self.state = update.state
            self.latest_checkpoint = update.latest_checkpoint
            if update.log_lines:
                self.query_one(Log).write_lines(update.log_lines)
            live = update.rss_bytes is not None
            rss = update.rss_bytes if live else (self.view.last_step or {}).get("rss_bytes")
            gpu = self.query_one(GpuPanel)
            gpu.update_process(self.status.get("pid"), (rss, live) if rss else None)
        if self.stopping and self.state != "running":
            self.stopping = False
        self._refresh_all()
        self._mark_loaded("run")

    @on(GpuSample)
    def _on_gpu_sample(self, message: GpuSample) -> None:
        if message.generation != self.generation:
            return
        self.gpu_status = message.status
        self.query_one(GpuPanel).update_gpus(message.status)
        self._mark_loaded("gpu")

    @on(EstimateReady)
    def _on_estimate(self, message: EstimateReady) -> None:
        if message.generation != self.generation:
            return
        self.query_one(GpuPanel).update_estimate(message.total, message.note)
        self._mark_loaded("estimate")

    @on(Relaunch)
    def _on_relaunch(self, message: Relaunch) -> None:
        if message.error:
            self.relaunching = False
            self.relaunch_line = (
                f"[$text-error]could not start the new run:[/] {escape(message.error)}"
            )
            self.notify(message.error, title="New run not started", severity="error")
        elif message.job is not None:
            old = self.run_ref
            self.run = message.job.run
            self._reset_state()
            self._rebuild_widgets()
            self._start()
            self.notify(f"new run {self.run.path.name} (from {old})", title="Started")
        else:
            self.relaunch_line = f"[$text-primary]{escape(message.line)}[/]"
        self._refresh_outcome()
        self.refresh_bindings()

    def _rebuild_widgets(self) -> None:
        self.query_one(LossChart).set_data([], [], None)
        self.query_one(Log).clear()
        self.query_one(StatsPanel).view = self.view
        gpu = self.query_one(GpuPanel)
        gpu.update_process(None, None)
        gpu.update_estimate(None, "estimate: computing...")

    def _mark_loaded(self, part: str) -> None:
        self._loaded[part] = True
        if all(self._loaded.values()):
            self._loaded_event.set()

    @property
    def loaded(self) -> bool:
        """Whether the run, a GPU reading and the estimate have all been shown once."""
        return self._loaded_event.is_set()

    def _tick(self) -> None:
        if self.state == "running":
            self._refresh_stats()

    def _display_state(self) -> str:
        return "stopping" if self.stopping and self.state == "running" else self.state

    def _refresh_stats(self) -> None:
        self.query_one(StatsPanel).update_numbers(self.view, self._display_state(), self.clock())

    def _refresh_all(self) -> None:
        state = self._display_state()
        self.query_one(TitleBar).set(self._run_label(), state)
        self._refresh_stats()
        self._refresh_outcome()
        # The footer is rebuilt on every refresh_bindings: only when the keys may change.
        keys = (state, self.relaunching, len(self.suggestions))
        if keys != self._bindings_key:
            self._bindings_key = keys
            self.refresh_bindings()

    # --- the outcome panel: finished, stopped, failed (with suggestions), crashed ------------
    @property
    def suggestions(self) -> list[dict[str, Any]]:
        if self.state not in ("failed", "crashed"):
            return []
        found = self.status.get("suggestions") or (self.view.end or {}).get("suggestions") or []
        return [s for s in found if isinstance(s, dict) and s.get("overrides")][:9]

    def _outcome(self) -> tuple[str, str, str]:
        """(kind, title, text) of the outcome panel; kind "" hides it."""
        ref = escape(self.run_ref)
        log = escape(str(self.run.log))
        checkpoint = self.latest_checkpoint
        resume = (
            f"Continue from checkpoint {checkpoint}: [b]tuiwiz resume {ref}[/]"
            if checkpoint is not None
            else "No complete checkpoint was saved: fix the cause and start a new run."
        )
        if self.error:
            return "bad", "cannot read the run", escape(self.error)
        if self.state == "finished":
            adapter = escape(str(self.status.get("adapter") or self.run.adapter))
            took = duration(self.view.elapsed(self.clock(), False))
            return (
                "good",
                "finished",
                (
                    f"Trained {self.view.step} steps in {took}. Adapter: [b]{adapter}[/]\n"
                    "Press [b]t[/] to try it."
                ),
            )
        if self.state == "stopped":
            reason = self.status.get("reason")
            why = f" ({escape(str(reason))})" if reason else ""
            return "warn", "stopped", f"Stopped at step {self.view.step or 0}{why}. {resume}"
        if self.state == "crashed":
            return (
                "bad",
                "crashed",
                (
                    "The training process is gone without recording how it ended (killed, or "
                    f"out of system memory?). Log: {log}\n{resume}"
                ),
            )
        if self.state == "failed":
            reason = escape(str(self.status.get("reason") or "no reason recorded"))
            text = f"[b]{reason}[/]"
            if self.suggestions:
                text += (
                    f"\nPress 1-{len(self.suggestions)} (or select and press enter) to start a "
                    "new run with that change:"
                )
            else:
                text += f"\n{resume}\nLog: {log}"
            return "bad", "failed", text
        return "", "", ""

    def _refresh_outcome(self) -> None:
        kind, title, text = self._outcome()
        box = self.query_one("#dash-outcome")
        suggestions = self.suggestions
        key = (kind, title, text, repr(suggestions), self.relaunching, self.relaunch_line)
        if key == self._outcome_key:
            return
        self._outcome_key = key
        box.set_class(bool(kind), "-shown")
        for name in ("good", "warn", "bad"):
            box.set_class(kind == name, f"-{name}")
        box.border_title = title
        self.query_one("#dash-outcome-text", Static).update(text)
        options = self.query_one("#dash-suggestions", OptionList)
        had = options.option_count
        options.set_options(self._suggestion_options(suggestions))
        options.set_class(bool(suggestions), "-shown")
        options.disabled = self.relaunching
        if suggestions and not had:
            options.highlighted = 0
            options.focus()
        self._refresh_hint()

    def _refresh_hint(self) -> None:
        hint = self.relaunch_line
        options = self.query_one("#dash-suggestions", OptionList)
        suggestions = self.suggestions
        if not hint and suggestions and options.highlighted is not None:
            chosen = suggestions[min(options.highlighted, len(suggestions) - 1)]
            hint = f"enter: a new run with {escape(', '.join(chosen['overrides']))}"
        widget = self.query_one("#dash-hint", Static)
        widget.update(hint)
        widget.set_class(not hint, "-empty")

    def _suggestion_options(self, suggestions: list[dict[str, Any]]) -> list[Option]:
        options = []
        for n, s in enumerate(suggestions, 1):
            fits = {True: "fits", False: "still too big", None: ""}.get(s.get("fits"), "")
            total = s.get("total_bytes")
            estimate = f"est. {size(total)}" if total else ""
            facts = ", ".join(part for part in (estimate, fits) if part)
            options.append(
                Option(
                    f"[b]{n}[/] {escape(str(s.get('title', '')))}"
                    + (f" [$text-muted]({facts})[/]" if facts else ""),
                    id=f"suggestion-{n}",
                )
            )
        return options

    @on(OptionList.OptionHighlighted, "#dash-suggestions")
    def _on_suggestion_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._refresh_hint()

    @on(OptionList.OptionSelected, "#dash-suggestions")
    def _on_suggestion_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_apply_suggestion(event.option_index + 1)

    # --- actions -------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        running = self.state == "running"
        if action in ("stop", "detach"):
            return running and not self.stopping if action == "stop" else running
        if action == "try_it":
            return self.state == "finished"
        if action == "back":  # only inside an app with screens below (the wizard)
            return self.is_current and len(self.app.screen_stack) > 1
        if action == "apply_suggestion":
            n = parameters[0] if parameters else 0
            return not self.relaunching and isinstance(n, int) and n <= len(self.suggestions)
        return True

    def action_stop(self) -> None:
        if self.state != "running":
            self.notify("The run is not running.", severity="warning")
            return

        def answered(stop: bool | None) -> None:
            if not stop:
                return
            from tuiwiz.commands.stop import request_stop
            from tuiwiz.errors import TuiwizError

            try:
                pid = request_stop(self.run)
            except TuiwizError as e:
                self.notify(str(e), title="Not stopped", severity="error")
                return
            self.stopping = True
            self._refresh_all()
            self.notify(
                f"Asked pid {pid} to stop: it saves a checkpoint, then ends in state stopped.",
                title="Stopping",
            )

        self.app.push_screen(ConfirmStop(self.run_ref), answered)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1 and self.is_current:
            self.app.pop_screen()

    def action_detach(self) -> None:
        self._leave()

    def action_quit(self) -> None:
        self._leave()

    def _leave(self) -> None:
        message = None
        if self.state == "running":
            message = (
                f"tuiwiz: training continues in the background (pid {self.status.get('pid')}); "
                f"attach again with: tuiwiz attach {self.run_ref}"
            )
        self.app.exit(message=message)

    def action_try_it(self) -> None:
        if self.state != "finished":
            self.notify("Try it needs a finished run.", severity="warning")
            return
        try:
            from tuiwiz.ui.tryit import TryItScreen
        except ImportError:
            self.notify("Try it is not available in this version yet.", severity="warning")
            return
        try:
            self.app.push_screen(TryItScreen(self.run.path))
        except Exception as e:
            self.notify(f"{type(e).__name__}: {e}", title="Try it failed", severity="error")

    def action_files(self) -> None:
        self._list_files(self.run.path)

    def action_log_scale(self) -> None:
        chart = self.query_one(LossChart)
        chart.log_scale = not chart.log_scale
        chart.border_title = "loss (log scale)" if chart.log_scale else "loss"

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(HELP))

    def action_apply_suggestion(self, n: int) -> None:
        suggestions = self.suggestions
        if self.relaunching or not 1 <= n <= len(suggestions):
            return
        chosen = suggestions[n - 1]
        self.relaunching = True
        self.relaunch_line = (
            f"[$text-primary]suggestion {n}: starting a new run with "
            f"{escape(' '.join(chosen['overrides']))}...[/]"
        )
        self._refresh_outcome()
        self.refresh_bindings()
        self._relaunch(self.run, list(chosen["overrides"]))
