"""A finished run and its models: the run's resolved preset, its base model loaded exactly as
training loaded it, and its adapter on top."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuiwiz.errors import TuiwizError
from tuiwiz.train.rundir import RunDir

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass(frozen=True)
class FinishedRun:
    run: RunDir
    config: dict[str, Any]  # the resolved preset (preset.toml)

    @property
    def name(self) -> str:
        return self.run.label

    @property
    def adapter(self) -> Path:
        return self.run.adapter

    def model_path(self, progress: Callable[[str], None] | None = None) -> str:
        """The base model's directory or Hub id (the bundled demo model is built if needed)."""
        from tuiwiz import bundled

        return bundled.resolve_model(self.config["model"]["name_or_path"], progress)

    def data(self) -> dict[str, Any]:
        """The [data] section, with the bundled dataset's name resolved to its file."""
        from tuiwiz import bundled

        data = self.config["data"]
        return {**data, "path": bundled.resolve_data(data["path"])}


def has_adapter(run: RunDir) -> bool:
    folder = run.adapter
    return (folder / "adapter_config.json").is_file() and any(
        (folder / name).is_file() for name in ADAPTER_WEIGHTS
    )


def finished_run(ref: str | Path | RunDir) -> FinishedRun:
    """A run (directory, id or id prefix) that has its final adapter; TuiwizError if not."""
    from tuiwiz.train.registry import effective_state, resolve

    if isinstance(ref, RunDir):
        run = ref
        if not run.is_run():
            raise TuiwizError(f"{run.path}: not a tuiwiz run directory (no preset.toml)")
    else:
        run = resolve(str(ref))
    if not has_adapter(run):
        state = effective_state(run.status(), run.path)
        hint = {
            "running": "wait until it finishes (`tuiwiz logs RUN --follow`)",
            "stopped": "finish it with `tuiwiz resume RUN`",
            "failed": "resume it with `tuiwiz resume RUN`",
            "crashed": "resume it with `tuiwiz resume RUN`",
        }.get(state, "pick a finished run (see `tuiwiz runs`)")
        name = run.label
        raise TuiwizError(
            f"run {name} has no finished adapter (it is {state}); " + hint.replace("RUN", name)
        )
    config = run.config()
    return FinishedRun(run, config)


def load_tokenizer(fr: FinishedRun, progress: Callable[[str], None] | None = None):
    from tuiwiz.train import builders

    return builders.load_tokenizer(fr.model_path(progress), fr.config)


def load_tuned(fr: FinishedRun, progress: Callable[[str], None] | None = None):
    """(model with the run's adapter, tokenizer): the base quantized and prepared as in training.

    `model.disable_adapter()` gives the base model itself, so one load serves both.
    """
    import warnings

    from peft import PeftModel, prepare_model_for_kbit_training

    from tuiwiz.train import builders

    path = fr.model_path(progress)
    tokenizer = builders.load_tokenizer(path, fr.config)
    if progress:
        progress(f"loading {fr.config['model']['name_or_path']} with the adapter of {fr.name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # library deprecation notices
        base = builders.load_base_model(path, fr.config)
        if builders.bnb_config(fr.config["quantization"]) is not None:
            # As in training: frozen, and 16-bit weights outside the quantized layers in float32.
            base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
        model = PeftModel.from_pretrained(base, str(fr.adapter), is_trainable=False)
    model.eval()
    return model, tokenizer


def device_of(model: Any):
    return next(model.parameters()).device


def quiet_libraries() -> None:
    """Keep library chatter (progress bars, deprecation notices, info logs) off the terminal:
    the commands print what matters themselves. Call before loading models."""
    from tuiwiz.train.process import quiet_libraries as quiet
    from tuiwiz.train.process import quiet_transformers

    quiet()
    quiet_transformers()
