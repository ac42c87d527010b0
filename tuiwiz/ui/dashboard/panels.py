"""The dashboard's panels: run numbers, GPU memory (or the process's RAM), and the title bar."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widget import Widget

from tuiwiz.data.progress import Progress
from tuiwiz.gpu import GpuReading, GpuStatus
from tuiwiz.ui.dashboard.model import RunView, loss
from tuiwiz.units import duration, size

STATE_CLASSES = {
    "running": "running",
    "stopping": "running",
    "finished": "good",
    "stopped": "warn",
    "failed": "bad",
    "crashed": "bad",
}


def state_style(widget: Widget, state: str) -> Style:
    kind = STATE_CLASSES.get(state, "muted")
    return widget.get_component_rich_style(f"dash--{kind}")


class DashPanel(Widget):
    """A widget that draws Rich text fitted to its width; subclasses implement `content`."""

    COMPONENT_CLASSES = {
        "dash--running",
        "dash--good",
        "dash--warn",
        "dash--bad",
        "dash--muted",
        "dash--bar",
        "dash--mark",
    }
    DEFAULT_CSS = """
    DashPanel { height: auto; }
    DashPanel > .dash--running { color: $text-primary; text-style: bold; }
    DashPanel > .dash--good { color: $text-success; text-style: bold; }
    DashPanel > .dash--warn { color: $text-warning; text-style: bold; }
    DashPanel > .dash--bad { color: $text-error; text-style: bold; }
    DashPanel > .dash--muted { color: $text-muted; }
    DashPanel > .dash--bar { color: $primary; }
    DashPanel > .dash--mark { color: $text-warning; text-style: bold; }
    """

    def style_of(self, name: str) -> Style:
        return self.get_component_rich_style(f"dash--{name}")

    _lines = 0  # how many lines the last render had

    def render(self) -> Text:
        text = self.content(max(1, self.content_size.width))
        self._lines = text.plain.count("\n") + 1
        return text

    def changed(self) -> None:
        """Redraw; a new layout only when the height may change (layouts are costly)."""
        width = max(1, self.content_size.width)
        self.refresh(layout=self.content(width).plain.count("\n") + 1 != self._lines)

    def content(self, width: int) -> Text:
        raise NotImplementedError


def bar(fraction: float, width: int) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "━" * filled + "╺" * (filled < width) + "━" * max(0, width - filled - 1)


@dataclass
class Numbers:
    """What the stats panel shows, besides the folded events."""

    state: str = "unknown"
    now: float = 0.0
    prepare: Progress | None = None  # the data preparation's, while the run prepares it


class StatsPanel(DashPanel):
    DEFAULT_CSS = "StatsPanel { height: auto; }"

    def __init__(self, view: RunView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = view
        self.numbers = Numbers()

    def update_numbers(
        self, view: RunView, state: str, now: float, prepare: Progress | None = None
    ) -> None:
        self.view, self.numbers = view, Numbers(state, now, prepare)
        self.changed()

    def content(self, width: int) -> Text:
        v, state, now = self.view, self.numbers.state, self.numbers.now
        muted = self.style_of("muted")
        text = Text(no_wrap=True, overflow="ellipsis")

        def row(label: str, *parts: tuple[str, Style | str]) -> None:
            line = Text(f"{label:<8} ", muted)
            for part, style in parts:
                line.append(part, style)
            line.truncate(width, overflow="ellipsis")
            text.append_text(line)
            text.append("\n")

        def bar_row(label: str, head: str, fraction: float) -> None:
            percent = f" {fraction:4.0%}"
            room = width - 9 - len(head) - len(percent)  # 9: the label column and its space
            row(
                label,
                (head, ""),
                (bar(fraction, room) if room >= 4 else "", self.style_of("bar")),
                (percent if room >= 4 else "", ""),
            )

        step, total = v.step, v.max_steps
        prepare = self.numbers.prepare if state in ("running", "stopping") else None
        preparing = step is None and prepare is not None and prepare.fraction < 1
        if preparing:  # the data's progress, in the rows the steps and epochs take later
            bar_row("data", f"{prepare.phase} ", prepare.fraction)
            of = f" of {prepare.total:,}" if prepare.total else ""
            row("", (f"{prepare.done:,}{of}", ""))
            left = f" · {duration(prepare.eta_seconds)} left" if prepare.eta_seconds else ""
            row("", (f"{prepare.rows_per_second:,.0f}/s", ""), (left, muted))
        elif step is None and prepare is not None:
            row("step", ("data ready; loading the model", muted))
        elif step is None:
            row("step", ("loading model and data", muted))
        elif total:
            bar_row("step", f"{step} / {total} ", step / total)
        else:
            row("step", (str(step), ""))
        total_epochs = v.total_epochs
        of = f" / {total_epochs:.2f}" if total_epochs else ""
        if not preparing:  # (as lr below)
            row("epoch", (f"{v.epoch:.2f}{of}" if v.epoch is not None else "-", ""))
        last = v.train[-1][1] if v.train else None
        if v.evals:
            evals = f"   eval {loss(v.evals[-1][1])}"
        else:
            evals = f"   base {loss(v.base_loss)}" if v.base_loss is not None else ""
        row("loss", (loss(last), ""), (evals, ""))
        step_event = v.last_step or {}
        lr = step_event.get("learning_rate")
        speed = step_event.get("tokens_per_second")
        if not preparing:  # the data's rows take its place: the panel keeps its height
            row(
                "lr",
                (f"{lr:.2e}" if isinstance(lr, (int, float)) else "-", ""),
                # A visible separator: spaces alone can be lost (a copied screen, an SVG
                # viewer), running the two numbers together.
                (f" · {speed:,.0f} tok/s" if isinstance(speed, (int, float)) else "", muted),
            )
        running = state in ("running", "stopping")
        eta = v.eta(now) if running else None
        row(
            "elapsed",
            (duration(v.elapsed(now, running)), ""),
            (f"   ETA {duration(eta)}" if running else "", ""),
        )
        if self.screen.size.height >= 34:  # room for the details
            started = v.started or {}
            grad = step_event.get("grad_norm")
            row("grad", (f"{grad:.3g}" if isinstance(grad, (int, float)) else "-", ""))
            if started:
                row(
                    "data",
                    (f"{started.get('train_examples', '?')} train", ""),
                    (f", {started.get('validation_examples') or 0} validation", muted),
                )
                row(
                    "batch",
                    (f"{started.get('effective_batch_size', '?')}", ""),
                    (" effective", muted),
                )
                trainable, total_params = (
                    started.get("trainable_params"),
                    started.get("total_params"),
                )
                if isinstance(trainable, int) and isinstance(total_params, int):
                    row("params", (f"{trainable:,}", ""), (f" of {total_params:,}", muted))
                row("device", (str(started.get("device", "?")), ""))
            ckpt = "-" if v.last_checkpoint is None else f"step {v.last_checkpoint}"
            row("ckpt", (ckpt, ""))
        text.rstrip()
        return text


class GpuPanel(DashPanel):
    """Memory per GPU with the run's estimate marked, or the process's RAM without a GPU."""

    DEFAULT_CSS = "GpuPanel { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.gpus: GpuStatus | None = None
        self.estimate: int | None = None
        self.estimate_note = "estimate: computing..."
        self.pid: int | None = None
        self.rss: tuple[int, bool] | None = None  # (bytes, live)

    def update_gpus(self, status: GpuStatus) -> None:
        self.gpus = status
        self.changed()

    def update_estimate(self, total: int | None, note: str) -> None:
        self.estimate, self.estimate_note = total, note
        self.changed()

    def update_process(self, pid: int | None, rss: tuple[int, bool] | None) -> None:
        if (pid, rss) != (self.pid, self.rss):
            self.pid, self.rss = pid, rss
            self.changed()

    def content(self, width: int) -> Text:
        muted = self.style_of("muted")
        text = Text(overflow="fold")
        if self.gpus is None:
            text.append("reading GPUs...", muted)
            return text
        if not self.gpus.available:
            text.append(f"{self.gpus.error or 'no NVIDIA GPU'}\n", self.style_of("warn"))
            text.append("CPU · RAM ", muted)
            if self.rss is None:
                text.append("not known yet", muted)
            else:
                rss, live = self.rss
                text.append(size(rss), Style(bold=True))
                text.append(f" (pid {self.pid})" if live else " (last logged)", muted)
            return text
        ours = [g for g in self.gpus.gpus if any(p.pid == self.pid for p in g.processes)]
        training = ours[0] if ours else self.gpus.gpus[0]
        for gpu in self.gpus.gpus:
            self._gpu(text, gpu, width, gpu is training)
        text.append(self.estimate_note if self.estimate is None else "", muted)
        text.rstrip()
        return text

    def _gpu(self, text: Text, gpu: GpuReading, width: int, training: bool) -> None:
        muted = self.style_of("muted")
        text.append(f"GPU {gpu.index} ", Style(bold=True))
        text.append(f"{gpu.name}\n", muted)
        total = max(1, gpu.total_bytes)
        at = None
        if training and self.estimate is not None:
            at = min(width - 1, round(self.estimate / total * width))
            label = f"est {size(self.estimate)}"
            if at + 2 + len(label) <= width:
                line = " " * at + "▼ " + label
            else:
                line = " " * max(0, at - len(label) - 1) + label + " ▼"
            text.append(line + "\n", self.style_of("mark"))
        used = max(0, min(width, round(gpu.used_bytes / total * width)))
        # The bar: used memory, free memory, and the estimate marked on it.
        for start, end, char, style in (
            (0, used, "█", self.style_of("bar")),
            (used, width, "░", muted),
        ):
            if at is not None and start <= at < end:
                text.append(char * (at - start), style)
                text.append("┃", self.style_of("mark"))
                text.append(char * (end - at - 1), style)
            else:
                text.append(char * (end - start), style)
        text.append("\n")
        text.append(f"{size(gpu.used_bytes)} / {size(gpu.total_bytes)}")
        mine = next((p for p in gpu.processes if p.pid == self.pid), None)
        if mine is not None and mine.used_bytes is not None:
            text.append(f" · this run {size(mine.used_bytes)}", muted)
        text.append("\n")
        facts = []
        if gpu.utilization_gpu is not None:
            facts.append(f"util {gpu.utilization_gpu}%")
        if gpu.temperature_c is not None:
            facts.append(f"{gpu.temperature_c}°C")
        if gpu.power_w is not None:
            limit = f"/{gpu.power_limit_w:.0f}" if gpu.power_limit_w else ""
            facts.append(f"{gpu.power_w:.0f}{limit} W")
        if facts:
            text.append(" · ".join(facts) + "\n", muted)


class TitleBar(DashPanel):
    DEFAULT_CSS = """
    TitleBar {
        dock: top;
        height: 1;
        background: $panel;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.left = "tuiwiz"
        self.state = "unknown"

    def set(self, left: str, state: str) -> None:
        if (left, state) != (self.left, self.state):
            self.left, self.state = left, state
            self.refresh()

    def render(self) -> Table:
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True)
        grid.add_row(
            Text.assemble(("tuiwiz ", Style(bold=True)), self.left),
            Text("● " + self.state, state_style(self, self.state)),
        )
        return grid


class ExportBar(Widget):
    """An export of the finished run under way (or just done): what it does, and how far the
    GGUF file is written. Hidden until the first export."""

    DEFAULT_CSS = """
    ExportBar { height: 1; layout: horizontal; display: none; padding: 0 1; }
    ExportBar > #export-line { width: 1fr; height: 1; }
    ExportBar > ProgressBar { width: 32; height: 1; }
    """

    def compose(self):
        from textual.widgets import ProgressBar, Static

        yield Static("", id="export-line")
        yield ProgressBar(total=None, show_eta=False, id="export-progress")

    def begin(self, line: str) -> None:
        from textual.widgets import ProgressBar

        self.display = True
        self.say(line)
        self.query_one(ProgressBar).update(total=None, progress=0)

    def say(self, line: str) -> None:
        from textual.widgets import Static

        self.query_one("#export-line", Static).update(line)

    def fraction(self, done: float) -> None:
        from textual.widgets import ProgressBar

        self.query_one(ProgressBar).update(total=100, progress=round(100 * done, 1))

    def end(self, line: str, complete: bool) -> None:
        from textual.widgets import ProgressBar

        self.say(line)
        bar = self.query_one(ProgressBar)
        bar.update(total=100, progress=100 if complete else bar.progress)
