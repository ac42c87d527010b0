"""The run configuration: sections, keys, defaults and validation.

A preset is plain data (TOML) with the sections [model], [quantization], [lora], [data],
[training] and [launch] (how many processes train, on how many machines; see tuiwiz.launch).
Keys use Hugging Face's own names, so they map one to one onto BitsAndBytesConfig, LoraConfig
and TrainingArguments. `[training]` accepts any TrainingArguments field.

Validation here is cheap (no torch, no transformers): types, ranges, names. What needs the model
or the dataset (target modules, columns) is checked by `tuiwiz.train.preflight` before a run starts.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tuiwiz import speed
from tuiwiz.errors import ConfigError
from tuiwiz.training_fields import MANAGED_KEYS, accepted_fields, check_training_value

SCHEMA_VERSION = 1
SECTIONS = ("model", "quantization", "lora", "data", "training", "launch")
DATA_FORMATS = ("auto", "alpaca", "messages", "sharegpt", "prompt_completion", "text")
DTYPES = ("bfloat16", "float16", "float32")


@dataclass(frozen=True)
class Key:
    """One key of a fixed section: its accepted types, default and extra check."""

    types: tuple[type, ...]
    default: Any
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None  # returns the reason a value is wrong
    required: bool = False


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def _fraction(v: Any) -> str | None:
    return None if 0 <= v < 1 else "must be in [0, 1)"


def _targets(v: Any) -> str | None:
    if isinstance(v, str):
        return None if v == "all-linear" else 'must be a list of module names or "all-linear"'
    if not v or not all(isinstance(x, str) and x for x in v):
        return "must be a non-empty list of module names"
    return None


def _string_list(v: Any) -> str | None:
    return None if all(isinstance(x, str) for x in v) else "must be a list of strings"


def _string_table(v: Any) -> str | None:
    ok = all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())
    return None if ok else "must map column names (strings) to column names (strings)"


def _nproc(v: Any) -> str | None:
    if isinstance(v, str):
        return None if v == "auto" else 'must be a number of processes >= 1 or "auto"'
    return None if v >= 1 else 'must be >= 1 (or "auto": one process per visible GPU)'


def _data_nproc(v: Any) -> str | None:
    if isinstance(v, str):
        return None if v == "auto" else 'must be a number of processes >= 1 or "auto"'
    return None if v >= 1 else 'must be >= 1 (or "auto": the cores available, up to 8)'


def _at_least_one(v: Any) -> str | None:
    return None if v >= 1 else "must be >= 1"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _port(v: Any) -> str | None:
    return None if 1 <= v <= 65535 else "must be a TCP port, 1 to 65535"


def _address(v: Any) -> str | None:
    ok = v and not any(c.isspace() for c in v) and v.isprintable()
    return None if ok else "must be a host name or IP address"


SCHEMA: dict[str, dict[str, Key]] = {
    "model": {
        "name_or_path": Key((str,), None, required=True),
        "revision": Key((str,), "main"),
        "attn_implementation": Key(
            (str,), "sdpa", choices=("sdpa", "eager", "flash_attention_2", "flash_attention_3")
        ),
        "trust_remote_code": Key((bool,), False),
        "torch_dtype": Key((str,), "auto", choices=("auto", *DTYPES)),
    },
    "quantization": {
        "load_in_4bit": Key((bool,), True),
        "load_in_8bit": Key((bool,), False),
        "bnb_4bit_quant_type": Key((str,), "nf4", choices=("nf4", "fp4")),
        "bnb_4bit_use_double_quant": Key((bool,), True),
        "bnb_4bit_compute_dtype": Key((str,), "bfloat16", choices=DTYPES),
        # tuiwiz's own: whether peft's prepare_model_for_kbit_training upcasts the weights that
        # are not quantized (embeddings, LM head, norms) to float32 (tuiwiz.train.builders).
        "upcast_unquantized": Key((bool,), True),
    },
    "lora": {
        "r": Key((int,), 16, check=_positive),
        "lora_alpha": Key((int, float), 32, check=_positive),
        "lora_dropout": Key((int, float), 0.05, check=_fraction),
        "target_modules": Key((list, str), "all-linear", check=_targets),
        "bias": Key((str,), "none", choices=("none", "all", "lora_only")),
        "use_rslora": Key((bool,), False),
        "use_dora": Key((bool,), False),
        "modules_to_save": Key((list,), [], check=_string_list),
    },
    "data": {
        "path": Key((str,), None, required=True),
        "format": Key((str,), "auto", choices=DATA_FORMATS),
        "split": Key((str,), "train"),
        "subset": Key((str,), ""),
        "columns": Key((dict,), {}, check=_string_table),
        "max_seq_length": Key((int,), 1024, check=_positive),
        "validation_split": Key((int, float), 0.0, check=_fraction),
        "train_on_prompt": Key((bool,), False),
        "packing": Key((bool,), False),
        "max_samples": Key((int,), 0, check=lambda v: None if v >= 0 else "must be >= 0"),
        "num_proc": Key((int, str), "auto", check=_data_nproc),
    },
    # How many training processes, on how many machines (torchrun); see tuiwiz.launch.
    "launch": {
        "nproc_per_node": Key((int, str), 1, check=_nproc),
        "nnodes": Key((int,), 1, check=_at_least_one),
        "node_rank": Key((int,), 0, check=_non_negative),
        "master_addr": Key((str,), "127.0.0.1", check=_address),
        "master_port": Key((int,), 29500, check=_port),
        "strategy": Key((str,), "ddp", choices=("ddp", "fsdp")),
    },
}

# Sections written into a preset file only when they differ from their defaults: a preset that
# trains on one process says nothing about launching (and reads exactly as it did before).
OPTIONAL_SECTIONS = ("launch",)


def section_defaults(section: str) -> dict[str, Any]:
    return {name: copy.deepcopy(key.default) for name, key in SCHEMA[section].items()}


TOP_LEVEL: dict[str, Key] = {
    "schema_version": Key((int,), SCHEMA_VERSION),
    "name": Key((str,), "untitled"),
    "description": Key((str,), ""),
}

# Training keys written into every resolved preset (so preset.toml says exactly what ran), with
# tuiwiz's defaults where they differ from Hugging Face's (documented in tuiwiz.explain).
TRAINING_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 1.0,
    "max_steps": -1,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 4,
    "gradient_checkpointing": True,
    "learning_rate": 2e-4,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.03,
    "weight_decay": 0.0,
    "optim": "paged_adamw_8bit",
    "logging_steps": 10,
    "save_steps": 100,
    "seed": 42,
}

# [training] keys of tuiwiz's own: handled here and by tuiwiz.train.builders, never passed to
# TrainingArguments as they are, and written into a preset only when set.
TUIWIZ_TRAINING_KEYS: dict[str, Key] = {
    "speed": Key((str,), speed.DEFAULT, choices=speed.SPEEDS),
}

# What the wizard shows for speed and memory options a preset leaves unset: tuiwiz's and the
# libraries' defaults (not written into resolved presets, which would then say more than was set).
TRAINING_OPTION_DEFAULTS: dict[str, Any] = {
    "speed": speed.DEFAULT,
    "padding_free": False,
    "use_liger_kernel": False,
    "train_sampling_strategy": "random",
    "activation_offloading": False,
}

# Range checks for the training keys a beginner meets; TrainingArguments checks the rest.
TRAINING_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "learning_rate": _positive,
    "per_device_train_batch_size": _positive,
    "per_device_eval_batch_size": _positive,
    "gradient_accumulation_steps": _positive,
    "num_train_epochs": _positive,
    "max_steps": lambda v: None if v == -1 or v > 0 else "must be > 0, or -1 to use epochs",
    "weight_decay": lambda v: None if v >= 0 else "must be >= 0",
    "warmup_steps": lambda v: None if v >= 0 else "must be >= 0 (a fraction < 1 or a step count)",
    "logging_steps": _positive,
    "save_steps": _positive,
    "eval_steps": _positive,
    "max_grad_norm": lambda v: None if v >= 0 else "must be >= 0",
}


# Names people reach for that Hugging Face spells otherwise.
ALIASES = {
    "rank": "r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "targets": "target_modules",
    "target_layers": "target_modules",
    "lr": "learning_rate",
    "batch_size": "per_device_train_batch_size",
    "epochs": "num_train_epochs",
    "grad_accum": "gradient_accumulation_steps",
    "gradient_accumulation": "gradient_accumulation_steps",
    "optimizer": "optim",
    "scheduler": "lr_scheduler_type",
    "warmup_ratio": "warmup_steps",
    "max_length": "max_seq_length",
    "model": "name_or_path",
    "dataset": "path",
    "nproc": "nproc_per_node",
    "num_processes": "nproc_per_node",
    "gpus": "nproc_per_node",
    "num_nodes": "nnodes",
    "num_machines": "nnodes",
    "machine_rank": "node_rank",
}


def _shown(name: str) -> str:
    """A key as error messages show it: escaped when it holds newlines or other controls."""
    return name if name.isprintable() else repr(name)


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    if ALIASES.get(word) in choices:
        return f" (did you mean '{ALIASES[word]}'?)"
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def _type_names(types: tuple[type, ...]) -> str:
    names = {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(names[t] for t in types)


def _not_finite(value: Any) -> bool:
    """NaN and infinity are floats, but no setting means anything with them."""
    return isinstance(value, float) and not math.isfinite(value)


def _check_value(where: str, value: Any, key: Key) -> None:
    if not _type_ok(value, key.types):
        raise ConfigError(f"{where} must be {_type_names(key.types)}, got {value!r}")
    if _not_finite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    if key.choices is not None and value not in key.choices:
        options = ", ".join(repr(c) for c in key.choices)
        raise ConfigError(
            f"{where} = {value!r} is not one of {options}{did_you_mean(str(value), key.choices)}"
        )
    if key.check is not None and (reason := key.check(value)):
        raise ConfigError(f"{where} {reason}, got {value!r}")


Origins = dict[tuple[str, str], str]  # (section, key) -> where its value came from


@dataclass(frozen=True)
class _Blame:
    """Who an error message blames: the preset file, or the `--set` that gave the value."""

    source: str
    origins: Origins

    def prefix(self, *keys: tuple[str, str]) -> str:
        """`--set training.lr=1` when one of `keys` came from --set, else the file's name."""
        return next((self.origins[k] for k in keys if k in self.origins), self.source)

    def key(self, section: str, name: str) -> str:
        """`demo.toml: [training] learning_rate`, or `--set training.learning_rate=1: [...] ...`."""
        return f"{self.prefix((section, name))}: [{section}] {_shown(name)}"


def override_origins(overrides: list[str]) -> Origins:
    """Where each overridden key's value came from: `--set section.key=value` (the last wins)."""
    origins: Origins = {}
    for text in overrides:
        section, key, _ = parse_override(text)
        origins[(section, key)] = f"--set {text.strip()}"
    return origins


def _validate_training(table: dict[str, Any], blame: _Blame) -> None:
    fields = accepted_fields()
    for name, value in table.items():
        where = blame.key("training", name)
        if name in TUIWIZ_TRAINING_KEYS:
            _check_value(where, value, TUIWIZ_TRAINING_KEYS[name])
            continue
        if name in MANAGED_KEYS:
            raise ConfigError(f"{where} cannot be set in a preset: {MANAGED_KEYS[name]}")
        if name not in fields:
            known = [*fields, *TUIWIZ_TRAINING_KEYS]
            hint = did_you_mean(name, known) or " (see `tuiwiz explain` for common keys)"
            prefix = blame.prefix(("training", name))
            raise ConfigError(f"{prefix}: unknown key [training] {_shown(name)}{hint}")
        if reason := check_training_value(name, value):
            raise ConfigError(f"{where} {reason}")
        if _not_finite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        if name in TRAINING_CHECKS and (reason := TRAINING_CHECKS[name](value)):
            raise ConfigError(f"{where} {reason}, got {value!r}")
    if table.get("fp16") and table.get("bf16"):
        prefix = blame.prefix(("training", "fp16"), ("training", "bf16"))
        raise ConfigError(f"{prefix}: [training] fp16 and bf16 are both true; choose one")


def validate(
    raw: dict[str, Any],
    source: str = "preset",
    *,
    origins: Origins | None = None,
    require_data: bool = True,
) -> dict[str, Any]:
    """Check a preset's data and return it resolved: every fixed key present, defaults filled in.

    `source` names the file in error messages; `origins` (from `override_origins`) names the
    `--set` that gave a key its value, so that an error in it blames the flag, not the file.
    `require_data=False` accepts a preset without `[data] path` (resolved to None): the memory
    estimate reads only the model. Raises ConfigError with a one-line message.
    """
    blame = _Blame(source, origins or {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a preset must be a TOML table")
    resolved: dict[str, Any] = {}
    allowed_top = [*TOP_LEVEL, *SECTIONS]
    for name, value in raw.items():
        if name not in allowed_top:
            hint = did_you_mean(name, allowed_top)
            raise ConfigError(f"{source}: unknown key '{_shown(name)}'{hint}")
        if name in SECTIONS and not isinstance(value, dict):
            raise ConfigError(f"{source}: '{name}' must be a table ([{name}])")
    for name, key in TOP_LEVEL.items():
        value = raw.get(name, key.default)
        _check_value(f"{source}: {name}", value, key)
        resolved[name] = value
    if resolved["schema_version"] != SCHEMA_VERSION:
        raise ConfigError(
            f"{source}: schema_version {resolved['schema_version']} is not supported; "
            f"this tuiwiz reads version {SCHEMA_VERSION}"
        )
    for section, keys in SCHEMA.items():
        table = raw.get(section, {})
        for name in table:
            if name not in keys:
                hint = did_you_mean(name, list(keys))
                prefix = blame.prefix((section, name))
                raise ConfigError(f"{prefix}: unknown key [{section}] {_shown(name)}{hint}")
        out: dict[str, Any] = {}
        for name, key in keys.items():
            if name not in table:
                optional = section == "data" and name == "path" and not require_data
                if key.required and not optional:
                    raise ConfigError(f"{source}: [{section}] {name} is required")
                out[name] = copy.deepcopy(key.default)
                continue
            _check_value(blame.key(section, name), table[name], key)
            out[name] = table[name]
        resolved[section] = out
    q = resolved["quantization"]
    if q["load_in_4bit"] and q["load_in_8bit"]:
        prefix = blame.prefix(("quantization", "load_in_4bit"), ("quantization", "load_in_8bit"))
        raise ConfigError(
            f"{prefix}: [quantization] load_in_4bit and load_in_8bit are both true; choose one"
        )
    launch = resolved["launch"]
    if launch["node_rank"] >= launch["nnodes"]:
        prefix = blame.prefix(("launch", "node_rank"), ("launch", "nnodes"))
        raise ConfigError(
            f"{prefix}: [launch] node_rank = {launch['node_rank']} must be below nnodes = "
            f"{launch['nnodes']} (nodes are numbered 0 to nnodes - 1)"
        )
    training = dict(raw.get("training", {}))
    _validate_training(training, blame)
    resolved["training"] = {**TRAINING_DEFAULTS, **_canonical_names(training, blame)}
    return resolved


# transformers 5 renamed gradient checkpointing to activation checkpointing and keeps the old
# names as aliases. Presets may use either; tuiwiz keeps the well-known name, here only, so
# that every reader (the model loader, the estimator, the wizard) looks at one key.
RENAMED = {
    "activation_checkpointing": "gradient_checkpointing",
    "activation_checkpointing_kwargs": "gradient_checkpointing_kwargs",
}


def _canonical_names(training: dict[str, Any], blame: _Blame) -> dict[str, Any]:
    out = dict(training)
    for new, old in RENAMED.items():
        if new not in out:
            continue
        value = out.pop(new)
        if old in out and out[old] != value:
            prefix = blame.prefix(("training", new), ("training", old))
            raise ConfigError(
                f"{prefix}: [training] {new} = {value!r} and {old} = {out[old]!r} are the same "
                f"setting ({old} is its older name); keep one"
            )
        out[old] = value
    return out


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse `section.key=value` (value in TOML syntax, bare words taken as strings)."""
    from tuiwiz.toml import tomllib

    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(
            f"--set {text!r}: expected section.key=value, e.g. training.learning_rate=1e-4"
        )
    path, raw_value = (part.strip() for part in text.split("=", 1))
    section, key = path.split(".", 1)
    if section not in SECTIONS:
        raise ConfigError(
            f"--set {text!r}: unknown section '{section}'{did_you_mean(section, SECTIONS)}"
        )
    try:
        value = tomllib.loads(f"v = {raw_value}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw_value  # a bare word such as cosine or Qwen/Qwen2.5-0.5B
    return section, key, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of a preset's data with `section.key=value` overrides applied."""
    out = copy.deepcopy(raw)
    for text in overrides:
        section, key, value = parse_override(text)
        table = out.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"--set {text!r}: '{section}' is not a table in this preset")
        table[key] = value
    return out


def effective_batch_size(config: dict[str, Any], world_size: int = 1) -> int:
    """Examples per optimizer step: per-device batch x accumulation x number of processes."""
    t = config["training"]
    return (
        int(t["per_device_train_batch_size"]) * int(t["gradient_accumulation_steps"]) * world_size
    )
