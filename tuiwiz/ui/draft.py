"""The wizard's draft: the preset being edited, field by field, with per-field validation.

Plain Python (no textual): the screens read and write it, and it is tested on its own. The draft
holds a preset's raw data; `resolved()` runs the engine's own validation, so what the wizard
launches is exactly what `tuiwiz run` would accept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuiwiz import config as cfg
from tuiwiz import speed
from tuiwiz.bundled import DEMO_DATA, DEMO_MODEL
from tuiwiz.errors import ConfigError

# Any valid value for the two required keys, so that one field can be checked on its own.
_REQUIRED_STUB = {"model": {"name_or_path": "stub"}, "data": {"path": "stub"}}


@dataclass(frozen=True)
class FieldSpec:
    key: str  # "section.key" as in presets and tuiwiz.explain
    kind: str  # text, int, float, number (int or float), bool, choice
    choices: tuple[str, ...] = ()

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]


def _schema_choices(section: str, name: str) -> tuple[str, ...]:
    return tuple(cfg.SCHEMA[section][name].choices or ())


SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "cosine_with_min_lr",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "warmup_stable_decay",
)
OPTIMIZERS = (
    "paged_adamw_8bit",
    "adamw_8bit",
    "paged_adamw_32bit",
    "adamw_torch",
    "adamw_torch_fused",
    "adafactor",
    "sgd",
)
PRECISIONS = ("bf16", "fp16", "fp32")
# batch_rebalance is for several GPUs: set it in the preset
SAMPLING = ("random", "group_by_length", "sequential")
QUANT_MODES = ("4-bit", "8-bit", "none")


def field(key: str) -> FieldSpec:
    """The wizard's description of one key."""
    return FIELDS[key]


FIELDS: dict[str, FieldSpec] = {
    f.key: f
    for f in (
        FieldSpec("preset.name", "text"),
        FieldSpec("model.name_or_path", "text"),
        FieldSpec("model.revision", "text"),
        FieldSpec("model.trust_remote_code", "bool"),
        FieldSpec(
            "model.attn_implementation", "choice", _schema_choices("model", "attn_implementation")
        ),
        FieldSpec("model.torch_dtype", "choice", _schema_choices("model", "torch_dtype")),
        FieldSpec("data.path", "text"),
        FieldSpec("data.format", "choice", cfg.DATA_FORMATS),
        FieldSpec("data.split", "text"),
        FieldSpec("data.columns", "columns"),
        FieldSpec("data.max_seq_length", "int"),
        FieldSpec("data.validation_split", "number"),
        FieldSpec("data.train_on_prompt", "bool"),
        FieldSpec("data.packing", "bool"),
        FieldSpec("data.max_samples", "int"),
        FieldSpec("quantization.mode", "choice", QUANT_MODES),
        FieldSpec(
            "quantization.bnb_4bit_quant_type",
            "choice",
            _schema_choices("quantization", "bnb_4bit_quant_type"),
        ),
        FieldSpec("quantization.bnb_4bit_use_double_quant", "bool"),
        FieldSpec("quantization.bnb_4bit_compute_dtype", "choice", cfg.DTYPES),
        FieldSpec("quantization.upcast_unquantized", "bool"),
        FieldSpec("lora.r", "int"),
        FieldSpec("lora.lora_alpha", "number"),
        FieldSpec("lora.lora_dropout", "number"),
        FieldSpec("lora.use_rslora", "bool"),
        FieldSpec("lora.use_dora", "bool"),
        FieldSpec("training.num_train_epochs", "number"),
        FieldSpec("training.max_steps", "int"),
        FieldSpec("training.per_device_train_batch_size", "int"),
        FieldSpec("training.gradient_accumulation_steps", "int"),
        FieldSpec("training.gradient_checkpointing", "bool"),
        FieldSpec("training.activation_offloading", "bool"),
        FieldSpec("training.learning_rate", "float"),
        FieldSpec("training.lr_scheduler_type", "choice", SCHEDULERS),
        FieldSpec("training.warmup_steps", "number"),
        FieldSpec("training.weight_decay", "number"),
        FieldSpec("training.optim", "choice", OPTIMIZERS),
        FieldSpec("training.precision", "choice", PRECISIONS),
        FieldSpec("training.eval_steps", "int"),
        FieldSpec("training.save_steps", "int"),
        FieldSpec("training.logging_steps", "int"),
        FieldSpec("training.seed", "int"),
        FieldSpec("training.speed", "choice", speed.SPEEDS),
        FieldSpec("training.padding_free", "bool"),
        FieldSpec("training.use_liger_kernel", "bool"),
        FieldSpec("training.train_sampling_strategy", "choice", SAMPLING),
    )
}

# Keys the wizard shows that are not preset keys: each maps onto real ones (see Draft.get/set).
VIRTUAL = {"quantization.mode", "training.precision"}


def parse(spec: FieldSpec, text: str) -> Any:
    """A typed-in string as the field's value; raises ValueError with the reason."""
    text = text.strip()
    if spec.kind == "columns":
        mapping: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            ours, _, theirs = part.partition("=")
            if not ours.strip() or not theirs.strip():
                raise ValueError(f"write role=column pairs, e.g. output=answer; got {part!r}")
            mapping[ours.strip()] = theirs.strip()
        return mapping
    if spec.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"must be a whole number, got {text!r}") from None
    if spec.kind in ("float", "number"):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"must be a number (e.g. 2e-4 or 0.1), got {text!r}") from None
        if spec.kind == "number" and value.is_integer() and "." not in text and "e" not in text:
            return int(value)
        return value
    return text


def format_value(value: Any) -> str:
    """A value as the text its input shows."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)


def _strip_prefix(message: str, spec: FieldSpec) -> str:
    """`wizard: [training] learning_rate must be > 0, got 0` -> `must be > 0, got 0`."""
    for prefix in (f"wizard: [{spec.section}] {spec.name} ", "wizard: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


class Draft:
    """The preset being edited: raw preset data plus the fields whose typed text is invalid."""

    def __init__(self, raw: dict[str, Any] | None = None) -> None:
        self.raw: dict[str, Any] = copy.deepcopy(raw) if raw else new_raw()
        data = self.raw.get("data")
        if isinstance(data, dict) and data.get("path", "") is None:
            del data["path"]  # a preset opened before its data was chosen (see for_estimate)
        self.invalid: dict[str, str] = {}  # key -> reason, for text that could not be applied
        self.version = 0  # bumped on every change; screens compare it to refresh lazily

    # --- reading ----------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        section, name = key.split(".", 1)
        if key == "quantization.mode":
            if self.get("quantization.load_in_4bit"):
                return "4-bit"
            return "8-bit" if self.get("quantization.load_in_8bit") else "none"
        if key == "training.precision":
            if self.get("training.bf16"):
                return "bf16"
            return "fp16" if self.get("training.fp16") else "fp32"
        if section == "preset":
            return self.raw.get(name, cfg.TOP_LEVEL[name].default)
        table = self.raw.get(section, {})
        if name in table:
            return table[name]
        if section == "training":
            return cfg.TRAINING_DEFAULTS.get(name, cfg.TRAINING_OPTION_DEFAULTS.get(name))
        key_spec = cfg.SCHEMA.get(section, {}).get(name)
        return copy.deepcopy(key_spec.default) if key_spec else None

    def resolved(self) -> dict[str, Any]:
        """The preset resolved by the engine's validation; raises ConfigError (one line).
        Local paths typed into the wizard are relative to its working directory."""
        from tuiwiz import references

        if self.invalid:
            key, reason = next(iter(self.invalid.items()))
            raise ConfigError(f"{key} {reason}")
        resolved = cfg.validate(self.raw, "wizard")
        references.resolve_config(resolved, Path.cwd())
        return resolved

    def for_estimate(self) -> dict[str, Any] | None:
        """The preset resolved for the memory estimate, which needs no data path; None while
        anything else is invalid."""
        if self.invalid:
            return None
        try:
            return cfg.validate(self.raw, "wizard", require_data=False)
        except ConfigError:
            return None

    def problem(self) -> str | None:
        """Why the draft cannot be launched, or None."""
        try:
            self.resolved()
        except ConfigError as e:
            return str(e)
        return None

    # --- writing ----------------------------------------------------------------------------

    def check(self, key: str, value: Any) -> str | None:
        """Why `value` is not valid for `key` on its own, or None."""
        spec = FIELDS.get(key)
        if key in VIRTUAL:
            return None if spec and value in spec.choices else f"must be one of {spec.choices}"
        section, name = key.split(".", 1)
        probe = copy.deepcopy(_REQUIRED_STUB)
        if section == "preset":
            probe[name] = value
        else:
            probe.setdefault(section, {})[name] = value
        try:
            cfg.validate(probe, "wizard")
        except ConfigError as e:
            return _strip_prefix(str(e), spec or FieldSpec(key, "text"))
        return None

    def set(self, key: str, value: Any) -> None:
        """Set a key (already checked). Virtual keys set the real keys they stand for."""
        self.invalid.pop(key, None)
        self.version += 1
        if key == "quantization.mode":
            self._put("quantization.load_in_4bit", value == "4-bit")
            self._put("quantization.load_in_8bit", value == "8-bit")
            return
        if key == "training.precision":
            self._put("training.bf16", value == "bf16")
            self._put("training.fp16", value == "fp16")
            return
        self._put(key, value)

    def _put(self, key: str, value: Any) -> None:
        section, name = key.split(".", 1)
        if section == "preset":
            self.raw[name] = value
        else:
            self.raw.setdefault(section, {})[name] = value

    def set_text(self, key: str, text: str) -> str | None:
        """Apply typed text: parse, check, set. Returns the reason when it is invalid."""
        spec = FIELDS[key]
        try:
            value = parse(spec, text)
            reason = self.check(key, value)
        except ValueError as e:
            reason = str(e)
        if reason:
            self.invalid[key] = reason
            self.version += 1
            return reason
        self.set(key, value)
        return None

    def apply_overrides(self, overrides: list[str]) -> None:
        """Apply `section.key=value` overrides (an estimator suggestion, say)."""
        self.raw = cfg.apply_overrides(self.raw, overrides)
        for text in overrides:
            section, name, _ = cfg.parse_override(text)
            self.invalid.pop(f"{section}.{name}", None)
        self.version += 1


def new_raw() -> dict[str, Any]:
    """A new run's starting point: the engine's defaults, on the bundled demo."""
    return {
        "name": "my-run",
        "description": "",
        "model": {"name_or_path": DEMO_MODEL},
        "data": {"path": DEMO_DATA, "validation_split": 0.05, "max_seq_length": 256},
        "training": {"eval_steps": 50, "bf16": True},
    }
