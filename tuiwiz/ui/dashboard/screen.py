"""The live run dashboard: a reader of one run directory, usable as a screen in any Textual app.

Everything that touches the disk, NVML or the estimator runs in thread workers; the UI loop only
folds what they post. The run directory is read, never written, except through the two actions
that change a run on purpose: stop (SIGTERM, as `tuiwiz stop`) and a new run from a suggestion
(in a new directory). An export of a finished run writes only the folder the user names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Log
from textual.worker import get_current_worker

from tuiwiz.data.progress import from_status
from tuiwiz.errors import describe_error
from tuiwiz.train.rundir import RunDir
from tuiwiz.train.state import RunState
from tuiwiz.ui.dashboard import tasks
from tuiwiz.ui.dashboard.chart import LossChart
from tuiwiz.ui.dashboard.dialogs import (
    ConfirmStop,
    ExportDialog,
    FilesScreen,
    HelpScreen,
    listing,
)
from tuiwiz.ui.dashboard.model import RunView
from tuiwiz.ui.dashboard.outcome import OutcomePanel, describe, usable_suggestions
from tuiwiz.ui.dashboard.panels import ExportBar, GpuPanel, StatsPanel, TitleBar
from tuiwiz.ui.dashboard.reader import LOG_LINES, Inbox, RunReader
from tuiwiz.ui.workers import in_thread

HELP = [
    ("s", "stop training (asks first; it saves a checkpoint)"),
    ("d", "detach: leave training running and quit"),
    ("t", "try the finished adapter"),
    ("e", "export the finished run: GGUF (Ollama, llama.cpp), merged model or adapter"),
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
    DashboardScreen #dash-log { height: 1fr; min-height: 3; scrollbar-size-horizontal: 0; }
    DashboardScreen .dash-box:focus-within { border: round $primary; }
    """

    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("d", "detach", "Detach"),
        Binding("t", "try_it", "Try it"),
        Binding("e", "export", "Export"),
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
        """The reader put something in the inbox; a newer one replaces a pending one."""

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
        """Starting a new run from a suggestion: a progress line, the started job, or an error."""

        def __init__(self, line: str = "", job: Any = None, error: str | None = None) -> None:
            super().__init__()
            self.line, self.job, self.error = line, job, error

    class ExportProgress(Message):
        """An export's progress line, how much of the file is written, its folder or error."""

        def __init__(
            self,
            line: str = "",
            fraction: float | None = None,
            done: Path | None = None,
            error: str | None = None,
        ) -> None:
            super().__init__()
            self.line, self.fraction, self.done, self.error = line, fraction, done, error

        def can_replace(self, message: Message) -> bool:
            # Only a newer fraction replaces a pending one; lines and the outcome all show.
            return (
                isinstance(message, DashboardScreen.ExportProgress)
                and message.fraction is not None
                and self.fraction is not None
            )

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
        """`clock` gives "now" for a running run's elapsed time and ETA (tests fix it)."""
        super().__init__(name=name, id=id, classes=classes)
        self.clock = clock
        self.poll_interval = poll_interval
        self.gpu_interval = gpu_interval
        self.run = RunDir(Path(run_dir))
        self.generation = 0
        self._inbox = Inbox()
        self.exporting = False  # an export of the finished run is under way
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
        self._loaded = {"run": False, "gpu": False, "estimate": False}
        self._loaded_event = threading.Event()
        self._bindings_key: tuple = ()
        self._last_seen: tuple | None = None

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
        yield OutcomePanel(id="dash-outcome")
        log = Log(id="dash-log", classes="dash-box", max_lines=LOG_LINES, auto_scroll=True)
        log.border_title = "train.log"
        yield log
        yield ExportBar(id="dash-export")
        yield Footer()

    @staticmethod
    def _legend(base: bool) -> str:
        legend = "[$text-primary]⣀ train[/]  [$text-warning]● eval[/]"
        return legend + ("  [$text-secondary]┄ base model[/]" if base else "")

    def on_mount(self) -> None:
        self._start()
        self.set_interval(1.0, self._tick)

    def _start(self) -> None:
        self.generation += 1
        self.query_one(TitleBar).set(self._run_label(), "loading")
        self._poll_run(self.generation, self.run)
        self._poll_gpus(self.generation)
        self._estimate(self.generation, self.run)

    def _run_label(self) -> str:
        return self.run.label

    @property
    def run_ref(self) -> str:
        """How the commands name this run: its registry id, or its directory."""
        return str(self.status.get("id") or self.run.path)

    @property
    def loaded(self) -> bool:
        """Whether the run, a GPU reading and the estimate have all been shown once."""
        return self._loaded_event.is_set()

    @property
    def suggestions(self) -> list[dict[str, Any]]:
        if self.state not in (RunState.FAILED, RunState.CRASHED):
            return []
        return usable_suggestions(self.status, self.view.end)

    # --- workers (threads) -----------------------------------------------------------------
    @in_thread("reading the run directory", group="dash-run", exclusive=True)
    def _poll_run(self, generation: int, run: RunDir) -> None:
        worker = get_current_worker()
        reader = RunReader(run)
        while not worker.is_cancelled:
            update = reader.poll()
            seen = (update.state, update.error, update.rss_bytes, update.status.get("updated_at"))
            if update.events or update.log_lines or update.reset or seen != self._last_seen:
                self._last_seen = seen
                self._inbox.put(generation, update)
                self.post_message(self.RunChanged(generation))
            worker.cancelled_event.wait(self.poll_interval)

    @in_thread("reading the GPUs", group="dash-gpu", exclusive=True)
    def _poll_gpus(self, generation: int) -> None:
        from tuiwiz.gpu import GpuStatus, read_gpus

        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                status = read_gpus()
            except Exception as e:  # a reading must never take the dashboard down
                status = GpuStatus([], error=f"GPU readings failed: {describe_error(e)}")
            self.post_message(self.GpuSample(generation, status))
            worker.cancelled_event.wait(self.gpu_interval)

    @in_thread("estimating the run's memory", group="dash-estimate", exclusive=True)
    def _estimate(self, generation: int, run: RunDir) -> None:
        self.post_message(self.EstimateReady(generation, *tasks.estimate_total(run)))

    @in_thread("starting a new run", group="dash-relaunch", exclusive=True)
    def _relaunch(self, run: RunDir, overrides: list[str]) -> None:
        from tuiwiz.errors import TuiwizError

        try:
            job = tasks.start_with(run, overrides, lambda m: self.post_message(self.Relaunch(m)))
        except TuiwizError as e:
            self.post_message(self.Relaunch(error=str(e)))
        except Exception as e:
            self.post_message(self.Relaunch(error=describe_error(e)))
        else:
            self.post_message(self.Relaunch(job=job))

    @in_thread("exporting the run", group="dash-export", exclusive=True)
    def _export(self, run: RunDir, kind: str, out: Path) -> None:
        from tuiwiz.errors import TuiwizError

        post = self.post_message
        try:
            done = tasks.export_run(
                run,
                kind,
                out,
                lambda line: post(self.ExportProgress(line=line)),
                lambda fraction: post(self.ExportProgress(fraction=fraction)),
            )
        except TuiwizError as e:
            post(self.ExportProgress(error=str(e)))
        except Exception as e:
            post(self.ExportProgress(error=describe_error(e)))
        else:
            post(self.ExportProgress(done=Path(done)))

    @in_thread("listing the run's files", group="dash-files", exclusive=True)
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
        self.error = update.error
        if update.error:
            self.state = "unreadable"
        else:
            if update.reset:
                self.view = RunView()
            if self.view.apply(update.events) or update.reset:
                chart = self.query_one(LossChart)
                chart.set_data(self.view.train, self.view.evals, self.view.base_loss)
                chart.border_subtitle = self._legend(self.view.base_loss is not None)
            self.status, self.state = update.status, update.state
            self.latest_checkpoint = update.latest_checkpoint
            if update.log_lines:
                self.query_one(Log).write_lines(update.log_lines)
            live = update.rss_bytes is not None
            rss = update.rss_bytes if live else (self.view.last_step or {}).get("rss_bytes")
            known = isinstance(rss, int) and not isinstance(rss, bool) and rss > 0
            gpu = self.query_one(GpuPanel)
            gpu.update_process(self.status.get("pid"), (rss, live) if known else None)
        if self.stopping and self.state != RunState.RUNNING:
            self.stopping = False
        self._refresh_all()
        self._mark_loaded("run")

    @on(GpuSample)
    def _on_gpu_sample(self, message: GpuSample) -> None:
        if message.generation == self.generation:
            self.query_one(GpuPanel).update_gpus(message.status)
            self._mark_loaded("gpu")

    @on(EstimateReady)
    def _on_estimate(self, message: EstimateReady) -> None:
        if message.generation == self.generation:
            self.query_one(GpuPanel).update_estimate(message.total, message.note)
            self._mark_loaded("estimate")

    @on(Relaunch)
    def _on_relaunch(self, message: Relaunch) -> None:
        if message.error:
            self.relaunching = False
            self.relaunch_line = f"[$text-error]no new run:[/] {escape(message.error)}"
            self.notify(message.error, title="New run not started", severity="error")
        elif message.job is not None:
            old = self.run_ref
            self.run = message.job.run
            self._reset_state()
            self.query_one(LossChart).set_data([], [], None)
            self.query_one(Log).clear()
            self.query_one(StatsPanel).view = self.view
            self.query_one(GpuPanel).update_process(None, None)
            self.query_one(GpuPanel).update_estimate(None, "estimate: computing...")
            self._start()
            self.notify(f"new run {self.run.path.name} (from {old})", title="Started")
        else:
            self.relaunch_line = f"[$text-primary]{escape(message.line)}[/]"
        self._refresh_all()

    @on(ExportProgress)
    def _on_export_progress(self, message: ExportProgress) -> None:
        bar = self.query_one(ExportBar)
        if message.error:
            self.exporting = False
            bar.end(f"[$text-error]export failed:[/] {escape(message.error)}", complete=False)
            self.notify(message.error, title="Not exported", severity="error")
            self.refresh_bindings()
        elif message.done is not None:
            self.exporting = False
            bar.end(f"[$text-success]exported to[/] {escape(str(message.done))}", complete=True)
            self.notify(str(message.done), title="Exported")
            self.refresh_bindings()
        elif message.fraction is not None:
            bar.fraction(message.fraction)
        elif message.line:
            bar.say(f"[$text-primary]export:[/] {escape(message.line)}")

    @on(OutcomePanel.Picked)
    def _on_picked(self, message: OutcomePanel.Picked) -> None:
        self.action_apply_suggestion(message.number)

    def _mark_loaded(self, part: str) -> None:
        self._loaded[part] = True
        if all(self._loaded.values()):
            self._loaded_event.set()

    def _tick(self) -> None:
        if self.state == RunState.RUNNING:
            self._refresh_stats()

    def _display_state(self) -> str:
        return "stopping" if self.stopping and self.state == RunState.RUNNING else self.state

    def _refresh_stats(self) -> None:
        prepare = from_status(self.status) if self.status.get("phase") == "preparing" else None
        panel = self.query_one(StatsPanel)
        panel.update_numbers(self.view, self._display_state(), self.clock(), prepare)

    def _refresh_all(self) -> None:
        state = self._display_state()
        self.query_one(TitleBar).set(self._run_label(), state)
        self._refresh_stats()
        outcome = describe(
            self.state,
            self.status,
            self.run_ref,
            self.run.log,
            self.run.adapter,
            self.view.step,
            self.view.elapsed(self.clock(), False),
            self.latest_checkpoint,
            self.error,
            self.view.end,
        )
        self.query_one(OutcomePanel).show(outcome, self.relaunch_line, self.relaunching)
        # The footer is rebuilt on every refresh_bindings: only when the keys may change.
        keys = (state, self.relaunching, len(self.suggestions))
        if keys != self._bindings_key:
            self._bindings_key = keys
            self.refresh_bindings()

    # --- actions -------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        running = self.state == RunState.RUNNING
        if action == "stop":
            return running and not self.stopping
        if action == "detach":
            return running
        if action == "try_it":
            return self.state == RunState.FINISHED
        if action == "export":
            return self.state == RunState.FINISHED and not self.exporting
        if action == "back":  # only inside an app with screens below (the wizard)
            return self.is_current and len(self.app.screen_stack) > 1
        if action == "apply_suggestion":
            n = parameters[0] if parameters else 0
            return not self.relaunching and isinstance(n, int) and n <= len(self.suggestions)
        return True

    def action_stop(self) -> None:
        if self.state != RunState.RUNNING:
            self.notify("The run is not running.", severity="warning")
            return

        def answered(stop: bool | None) -> None:
            if not stop:
                return
            from tuiwiz.errors import TuiwizError
            from tuiwiz.train.registry import request_stop

            try:
                pid = request_stop(self.run)
            except TuiwizError as e:
                self.notify(str(e), title="Not stopped", severity="error")
                return
            self.stopping = True
            self._refresh_all()
            asked = f"Asked pid {pid}" if pid else "Asked the run (on another machine)"
            self.notify(
                f"{asked} to stop: it saves a checkpoint, then ends in state stopped.",
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
        if self.state == RunState.RUNNING:
            message = (
                f"tuiwiz: training continues in the background (pid {self.status.get('pid')}); "
                f"attach again with: tuiwiz attach {self.run_ref}"
            )
        self.app.exit(message=message)

    def action_try_it(self) -> None:
        if self.state != RunState.FINISHED:
            self.notify("Try it needs a finished run.", severity="warning")
            return
        from tuiwiz.ui.tryit import TryItScreen

        try:
            self.app.push_screen(TryItScreen(self.run.path))
        except Exception as e:
            self.notify(describe_error(e), title="Try it failed", severity="error")

    def action_export(self) -> None:
        if self.state != RunState.FINISHED or self.exporting:
            return

        def chosen(choice: tuple[str, Path] | None) -> None:
            if choice is None:
                return
            kind, out = choice
            self.exporting = True
            self.refresh_bindings()
            self.query_one(ExportBar).begin(f"[$text-primary]export:[/] {escape(str(out))}")
            self._export(self.run, kind, out)

        self.app.push_screen(ExportDialog(self.run.path, tasks.export_kinds()), chosen)

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
        overrides = list(suggestions[n - 1]["overrides"])
        self.relaunching = True
        self.relaunch_line = (
            f"[$text-primary]suggestion {n}: starting a new run with "
            f"{escape(', '.join(overrides))}...[/]"
        )
        self._refresh_all()
        self._relaunch(self.run, overrides)
