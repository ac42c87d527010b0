"""Step 6: the training loop's settings, with live derived values: effective batch size
(per-device batch x accumulation x GPUs), steps per epoch, total steps, and the time a run
takes when a throughput is known."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from tuiwiz.ui.widgets.field_row import FieldRow
from tuiwiz.ui.wizard.base import StepScreen
from tuiwiz.units import duration

FIELDS = (
    ("training.num_train_epochs", "Epochs"),
    ("training.max_steps", "Max steps (-1: off)"),
    ("training.per_device_train_batch_size", "Batch size"),
    ("training.gradient_accumulation_steps", "Grad accumulation"),
    ("training.gradient_checkpointing", "Grad checkpointing"),
    ("training.activation_offloading", "Offload activations"),
    ("training.learning_rate", "Learning rate"),
    ("training.lr_scheduler_type", "Scheduler"),
    ("training.warmup_steps", "Warmup"),
    ("training.weight_decay", "Weight decay"),
    ("training.optim", "Optimizer"),
    ("training.precision", "Precision"),
    ("training.eval_steps", "Eval every (steps)"),
    ("training.save_steps", "Save every (steps)"),
    ("training.logging_steps", "Log every (steps)"),
    ("training.seed", "Seed"),
)
SPEED_FIELDS = (
    ("training.speed", "Speed"),
    ("training.padding_free", "Padding-free"),
    ("training.use_liger_kernel", "Liger kernels"),
    ("training.train_sampling_strategy", "Batch sampling"),
)


def world_size(app, draft) -> int | None:
    """Training processes ([launch] nproc_per_node x nnodes; one per GPU), None while the
    GPUs are being counted for nproc_per_node = "auto"."""
    from tuiwiz.errors import ConfigError
    from tuiwiz.launch import launch_of, visible_gpus

    count = None
    if (draft.raw.get("launch") or {}).get("nproc_per_node") == "auto":
        item = app.lookup("gpu-count", (), visible_gpus)
        if not item.done:
            return None
        count = item.value or 0
    try:
        return launch_of(draft.raw, count).world_size
    except ConfigError:
        return 1  # the Review step says what is wrong with [launch]


def derived_text(app, draft) -> Text:
    """Effective batch (per-device batch x accumulation x processes), steps per epoch, total
    steps, estimated time (from what is known)."""
    text = Text()
    try:
        batch = int(draft.get("training.per_device_train_batch_size"))
        accum = int(draft.get("training.gradient_accumulation_steps"))
    except (TypeError, ValueError):
        return Text("(fix the invalid values above)", "dim")
    world = world_size(app, draft)
    if world is None:
        text.append("Effective batch size: counting the GPUs…", "dim")
        return text
    effective = batch * accum * world
    text.append(f"Effective batch size: {effective}", "bold")
    gpus = f" × {world} GPUs" if world > 1 else ""
    text.append(f" ({batch} per step × {accum} accumulated{gpus})\n")
    if draft.get("training.speed") == "fast":
        text.append_text(fast_line(app, draft))
    item = app.data_preview()
    if not item.done:
        text.append("Steps per epoch: reading the dataset…", "dim")
        return text
    if item.error:
        text.append(f"Steps per epoch: unknown ({item.error})", "yellow")
        return text
    p = item.value
    examples = p.rows - sum(p.skipped.values())
    val = draft.get("data.validation_split") or 0
    train_examples = examples - (int(examples * val) if val < 1 else int(val))
    per_epoch = max(1, math.ceil(train_examples / effective))
    max_steps = int(draft.get("training.max_steps") or -1)
    epochs = float(draft.get("training.num_train_epochs") or 1)
    total = max_steps if max_steps > 0 else math.ceil(per_epoch * epochs)
    text.append(f"Steps per epoch: {per_epoch}", "bold")
    text.append(f" ({train_examples:,} training examples)\n")
    text.append(f"Total steps: {total}", "bold")
    text.append(" (max_steps)\n" if max_steps > 0 else f" ({epochs:g} epochs)\n")
    known = app.lookup(
        "throughput",
        (draft.get("model.name_or_path"),),
        lambda: _throughput(draft.get("model.name_or_path")),
    )
    if known.done and known.value:
        rate, run_id = known.value
        seconds = total * effective * p.median_tokens / rate
        text.append(f"Estimated time: ≈{duration(seconds)}", "bold")
        text.append(f" at {rate:,.0f} tokens/s, measured by run {run_id}")
    else:
        text.append("Estimated time: known once a run of this model has trained", "dim")
    return text


def fast_line(app, draft) -> Text:
    """What speed = fast turns into on this machine (with the options the preset sets)."""
    from tuiwiz import speed
    from tuiwiz.errors import ConfigError
    from tuiwiz.launch import visible_gpus

    gpus = app.lookup("gpu-count", (), visible_gpus)
    if not gpus.done:
        return Text("Speed fast: reading the GPUs…\n", "dim")
    try:
        config = draft.for_estimate()
    except ConfigError:
        config = None
    if config is None:
        return Text("")
    machine = speed.this_machine(cuda=bool(gpus.value))
    line = speed.summary(speed.resolve(config, machine), machine)
    return Text("Speed " + line.removeprefix("speed = ") + "\n", "bold")


def _throughput(model: str):
    from tuiwiz.train.history import measured_throughput

    return measured_throughput(model)


class TrainingStep(StepScreen):
    STEP = "training"
    DEFAULT_CSS = """
    TrainingStep #derived { height: auto; margin-top: 1; }
    """

    def compose_form(self) -> ComposeResult:
        yield Static("Training", classes="section-title")
        for key, label in FIELDS:
            yield FieldRow(key, label)
        yield Static("Speed options", classes="section-title")
        for key, label in SPEED_FIELDS:
            yield FieldRow(key, label)
        yield Static("", id="derived", classes="derived")

    def on_mount(self) -> None:
        self.query_one("#f-training-num_train_epochs Input").focus()

    def refresh_derived(self) -> None:
        self.query_one("#derived", Static).update(derived_text(self.app, self.draft))
