"""Step 7: review: the VRAM estimate (per GPU, for the preset's [launch]: one process, DDP or
FSDP) against every GPU the run uses (NVML), a verdict for each, the estimator's suggestions
(each one key away), the preset as TOML, save under a name, launch."""

from __future__ import annotations

from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Input, Static

from tuiwiz.ui import keys
from tuiwiz.ui.widgets.memory_bar import gib, memory_bar
from tuiwiz.ui.wizard.base import StepScreen
from tuiwiz.ui.workers import in_thread

BAR_WIDTH = 30


def check_memory(resolved: dict[str, Any], lengths=None) -> dict[str, Any]:
    """Estimate, GPU readings and suggestions: everything the memory panel shows. The run uses
    the first nproc_per_node visible GPUs; the tightest of them decides the suggestions.
    `lengths`: the Dataset step's token lengths (tuiwiz.estimate.lengths.TokenLengths), if read."""
    from tuiwiz import speed
    from tuiwiz.estimate import estimate, suggest
    from tuiwiz.estimate.parallel import used_gpus
    from tuiwiz.gpu import read_gpus

    gpus = read_gpus()
    machine = speed.this_machine(cuda=gpus.available)
    est = estimate(resolved, gpu_count=len(gpus.gpus), machine=machine, lengths=lengths)
    used, unused, missing = used_gpus(gpus.gpus, est.launch.nproc_per_node)
    free = min((g.free_bytes for g in used), default=None)
    advice = []
    if free is not None:
        advice = suggest(
            resolved,
            free,
            base=est,
            gpus_free=[g.free_bytes for g in gpus.gpus],
            machine=machine,
            lengths=lengths,
        )
    return {
        "estimate": est,
        "gpus": gpus,
        "used": used,
        "unused": unused,
        "missing": missing,
        "suggestions": advice,
    }


def missing_gpus_line(processes: int, visible: int) -> str:
    """`✗ 2 processes need 2 GPUs; 1 visible`, in the singular where it is one."""
    need = "1 process needs 1 GPU" if processes == 1 else f"{processes} processes need "
    if processes != 1:
        need += f"{processes} GPUs"
    return f"✗ {need}; {visible or 'none'} visible"


def verdict(total: int, free: int) -> tuple[str, str]:
    from tuiwiz.estimate.advice import fits, is_tight

    if not fits(total, free):
        return "does not fit", "bold red"
    if is_tight(total, free):
        return "tight", "bold yellow"
    return "fits", "bold green"


def memory_text(result: dict[str, Any]) -> Text:
    est, status = result["estimate"], result["gpus"]
    used = result.get("used", status.gpus[:1])
    unused = result.get("unused", status.gpus[1:])
    launch = est.launch
    text = Text()
    text.append(f"Estimated peak GPU memory: {gib(est.total)}", "bold")
    if launch.distributed:
        text.append(" per GPU", "bold")
    text.append(f"  ({est.params_trainable:,} trainable parameters)\n")
    if launch.distributed:
        text.append(f"For {launch.describe()}", "bold")
        share = (
            f": each GPU holds 1/{launch.world_size} of the model"
            if launch.fsdp
            else ": each GPU holds a full copy"
        )
        text.append(f"{share}.\n")
    if not status.gpus:
        reason = status.error or "no NVIDIA GPU"
        text.append(reason[0].upper() + reason[1:] + ".\n", "yellow")
        text.append("Training will run on the CPU (slow; fine for the demo). The estimate is ")
        text.append("for a CUDA GPU.\n")
    for g in used:
        word, style = verdict(est.total, g.free_bytes)
        text.append(f"GPU {g.index} {g.name}\n  ")
        text.append(word, style)
        text.append(f": {gib(g.free_bytes)} free of {gib(g.total_bytes)}\n  ")
        text.append_text(memory_bar(BAR_WIDTH, g.total_bytes, g.used_bytes, est.total))
        text.append("\n")
    if used:
        text.append("  ")
        text.append("█", "grey50")
        text.append(" in use  ")
        text.append("█", "green")
        text.append(" this run  ")
        text.append("░", "grey30")
        text.append(" free\n")
    # Without any GPU the run trains on the CPU (said above), where several processes are
    # allowed too: GPUs are missing only on a machine that has some, but too few.
    if result.get("missing") and status.gpus:
        text.append(missing_gpus_line(launch.nproc_per_node, len(status.gpus)) + "\n", "bold red")
    for g in unused:
        text.append(f"GPU {g.index} {g.name}: unused\n", "dim")
    text.append("\nBreakdown:\n", "bold")
    biggest = max((c.bytes for c in est.components), default=1) or 1
    for c in sorted(est.components, key=lambda c: -c.bytes):
        if c.bytes <= 0:
            continue
        bar = "▇" * max(1, round(6 * c.bytes / biggest))
        text.append(f" {c.name:<22}{gib(c.bytes):>9} ")
        text.append(bar + "\n", "cyan")
    for note in getattr(est, "notes", []) or []:
        text.append(f"note: {note}\n", "dim")
    return text


def suggestions_text(result: dict[str, Any]) -> Text:
    advice = result["suggestions"]
    if not advice:
        return Text("")
    text = Text("Suggestions (press the number to apply):\n", "bold")
    for i, s in enumerate(advice[:9], 1):
        fits = {True: "fits", False: "still too big", None: ""}[s.fits]
        text.append(f" {i}  ", "bold reverse")
        text.append(f" {s.title}: {gib(s.total_bytes)} ({fits}, saves {gib(s.saves_bytes)})\n")
        text.append(f"     {' '.join('--set ' + o for o in s.overrides)}\n", "dim")
    return text


class ReviewStep(StepScreen):
    STEP = "review"
    BINDINGS = [
        Binding(keys.both("ctrl+l"), "launch", "Launch", priority=True),
        Binding(keys.both("ctrl+s"), "save", "Save preset", priority=True),
        Binding("f5", "recheck", "Re-read GPUs"),
        *[Binding(str(i), f"apply({i})", show=False) for i in range(1, 10)],
    ]
    DEFAULT_CSS = """
    ReviewStep #problem { color: $error; height: auto; }
    ReviewStep #memory, ReviewStep #suggestions { height: auto; }
    ReviewStep #toml { height: auto; margin-top: 1; border: round $primary-darken-2; }
    ReviewStep #actions { height: auto; margin-bottom: 1; }
    ReviewStep #actions Input { width: 1fr; }
    ReviewStep #actions Button { margin-left: 1; min-width: 8; width: auto; }
    ReviewStep #launch-status { height: auto; }
    """
    checks = 0  # bumped by F5 so the GPUs are read again

    def compose_form(self) -> ComposeResult:
        yield Static("Review", classes="section-title")
        yield Static("", id="problem")
        with Horizontal(id="actions"):
            name = Input(placeholder="preset name", id="preset-name", compact=True)
            name.explain_key = "preset.name"  # type: ignore[attr-defined]
            yield name
            yield Button("Save", id="save", compact=True)
            yield Button("Launch", id="launch", variant="success", compact=True)
        yield Static("", id="launch-status")
        yield Static("", id="memory")
        yield Static("", id="suggestions")
        yield Static("", id="toml")

    def on_mount(self) -> None:
        self.query_one("#launch").focus()

    def on_screen_resume(self) -> None:
        self.query_one("#preset-name", Input).value = str(self.draft.get("preset.name"))
        super().on_screen_resume()

    def explain_extra(self, key: str | None) -> str:
        web = self.app.is_web
        return (
            f"{keys.name('ctrl+l', web)} launches the run: it trains in its own process and "
            f"keeps going if this {'tab' if web else 'terminal'} closes. "
            f"{keys.name('ctrl+s', web)} saves this configuration as a preset, to run again "
            "with `tuiwiz run NAME`."
        )

    def refresh_derived(self) -> None:
        problem = self.draft.problem()
        goto = keys.name("ctrl+g", self.app.is_web)
        self.query_one("#problem", Static).update(
            Text(f"✗ Cannot launch yet: {problem}\n  ({goto} goes to any step)") if problem else ""
        )
        self.query_one("#launch", Button).disabled = bool(problem)
        from tuiwiz.presets import to_toml

        if problem:
            # Launch waits for the problem's fix; the memory estimate needs only the model, so
            # it is shown even before a dataset is chosen.
            self.query_one("#toml", Static).update("")
            resolved = self.draft.for_estimate()
            if resolved is None:
                self.query_one("#memory", Static).update("")
                self.query_one("#suggestions", Static).update("")
                return
            data = {k: v for k, v in resolved["data"].items() if v is not None}
            toml_text = to_toml({**resolved, "data": data})  # the estimate's cache key
        else:
            resolved = self.draft.resolved()
            toml_text = to_toml(resolved)
            self.query_one("#toml", Static).update(
                Syntax(toml_text, "toml", theme="ansi_dark", background_color="default")
            )
        lengths = self.data_lengths()
        shape = None if lengths is None else (len(lengths.lengths), lengths.longest)
        item = self.app.lookup(  # type: ignore[attr-defined]
            "memory", (toml_text, self.checks, shape), lambda: check_memory(resolved, lengths)
        )
        memory = self.query_one("#memory", Static)
        if not item.done:
            memory.update(Text("Estimating memory and reading the GPUs…", "dim italic"))
        elif item.error:
            memory.update(Text(f"✗ memory estimate: {item.error}", "bold red"))
            self.query_one("#suggestions", Static).update("")
        else:
            self.memory = item.value
            memory.update(memory_text(item.value))
            self.query_one("#suggestions", Static).update(suggestions_text(item.value))

    def data_lengths(self):
        """The Dataset step's token lengths when it has read them (never started from here:
        the estimate needs only the model)."""
        from tuiwiz.estimate.lengths import TokenLengths
        from tuiwiz.ui import background

        item = self.app.lookups.get("data", background.data_key(self.draft))  # type: ignore[attr-defined]
        if item is None or not item.done or item.error or item.value is None:
            return None
        return TokenLengths.from_preview(item.value)

    # --- actions ----------------------------------------------------------------------------

    memory: dict[str, Any] | None = None

    def action_apply(self, number: int) -> None:
        if isinstance(self.focused, Input) or not self.memory:
            return
        advice = self.memory["suggestions"]
        if number > len(advice):
            return
        chosen = advice[number - 1]
        from tuiwiz.errors import ConfigError

        try:
            self.draft.apply_overrides(chosen.overrides)
        except ConfigError as e:
            self.notify(str(e), title="Not applied", severity="error", timeout=8)
            return
        self.notify(f"Applied: {chosen.title}", title="Suggestion")
        self.refresh_derived()

    def action_recheck(self) -> None:
        self.checks += 1
        self.refresh_derived()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        elif event.button.id == "launch":
            self.action_launch()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_save()

    def action_save(self) -> None:
        from tuiwiz import presets
        from tuiwiz.errors import TuiwizError

        name = self.query_one("#preset-name", Input).value.strip()
        try:
            resolved = self.draft.resolved()
            path = presets.save(resolved, name)
        except TuiwizError as e:
            self.notify(str(e), title="Not saved", severity="error", timeout=8)
            return
        self.draft.set("preset.name", name)
        self.notify(f"Saved {path}\nRun it headless: tuiwiz run {name}", title="Preset saved")

    def action_launch(self) -> None:
        problem = self.draft.problem()
        if problem:
            self.notify(problem, title="Cannot launch", severity="error", timeout=8)
            return
        self.query_one("#launch", Button).disabled = True
        self._launch(self.draft.resolved())

    @in_thread("starting the run", group="launch", exclusive=True)
    def _launch(self, resolved: dict[str, Any]) -> None:
        from tuiwiz.errors import TuiwizError, describe_error
        from tuiwiz.train import jobs

        status = self.query_one("#launch-status", Static)

        def progress(message: str) -> None:
            self.app.call_from_thread(status.update, Text(f"… {message}", "italic"))

        progress("starting the training process")
        try:
            job = jobs.start(
                jobs.default_run_dir(resolved["name"]), config=resolved, progress=progress
            )
        except TuiwizError as e:
            self.app.call_from_thread(self._launch_failed, str(e))
            return
        except Exception as e:  # noqa: BLE001 - shown in the app, not as a traceback
            self.app.call_from_thread(self._launch_failed, describe_error(e))
            return
        # Quitting the app must never wait for training to end.
        self.app.call_from_thread(self._launched, job.reap_in_background())

    def _launch_failed(self, reason: str) -> None:
        self.query_one("#launch-status", Static).update(Text(f"✗ {reason}", "bold red"))
        self.query_one("#launch", Button).disabled = False
        self.notify(reason, title="The run did not start", severity="error", timeout=10)

    def _launched(self, job) -> None:
        self.query_one("#launch-status", Static).update(
            Text(f"✓ training in {job.run.path} (pid {job.pid})", "green")
        )
        self.query_one("#launch", Button).disabled = False
        self.app.show_run(job.run.path)  # type: ignore[attr-defined]
