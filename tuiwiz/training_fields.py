"""The fields of `transformers.TrainingArguments`, read without importing transformers.

`[training]` accepts any TrainingArguments field. Validating a preset must not cost the seconds
that `import transformers` (and torch) take, so the dataclass is read from its source with `ast`:
the field names, their annotations and their literal defaults. The training process later builds
the real object, which remains the final authority.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from typing import Any

# Keys that tuiwiz sets itself, or that must never be stored in a preset.
MANAGED_KEYS = {
    "output_dir": "the run directory is chosen by tuiwiz; use `tuiwiz run --output-dir DIR`",
    "resume_from_checkpoint": "use `tuiwiz run --resume RUN_DIR`",
    "hub_token": "tokens are never stored in presets; set the HF_TOKEN environment variable",
}


@dataclass(frozen=True)
class TrainingField:
    name: str
    annotation: str  # e.g. "int", "IntervalStrategy | str", "list[str] | None"
    default: Any  # the literal default, or None when it is computed


# TRL SFTConfig fields (not TrainingArguments ones) that [training] accepts too: the speed and
# memory options whose effect tuiwiz explains and estimates. The rest of SFTConfig's own fields
# are covered by [data] or set by tuiwiz (see tuiwiz.explain's note on [training]).
SFT_FIELDS = {
    "padding_free": TrainingField("padding_free", "bool", False),
    "activation_offloading": TrainingField("activation_offloading", "bool", False),
}


def _literal_default(value: ast.expr | None) -> Any:
    if value is None:
        return None
    if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "field":
        for kw in value.keywords:
            if kw.arg == "default":
                return _literal_default(kw.value)
            if kw.arg == "default_factory":
                return None
        return None
    try:
        return ast.literal_eval(value)
    except ValueError:
        return None


# Fields every TrainingArguments has had: a class without them is not the one tuiwiz reads.
_KNOWN_FIELDS = ("learning_rate", "per_device_train_batch_size", "num_train_epochs", "max_steps")


@cache
def training_fields() -> dict[str, TrainingField]:
    """Every TrainingArguments field by name, from transformers' training_args.py; an
    IncompatibleError (one line naming the transformers version) when that file no longer
    declares the dataclass there."""
    from tuiwiz import compat

    path = compat.transformers_source("training_args.py")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError) as e:
        raise compat.IncompatibleError(
            compat.with_version("transformers", f"cannot read {path.name} ({e})")
        ) from None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "TrainingArguments":
            fields = {
                stmt.target.id: TrainingField(
                    stmt.target.id, ast.unparse(stmt.annotation), _literal_default(stmt.value)
                )
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            }
            if all(name in fields for name in _KNOWN_FIELDS):
                return fields
    raise compat.IncompatibleError(
        compat.with_version(
            "transformers",
            f"{path.name} no longer declares the TrainingArguments fields tuiwiz reads",
        )
    )


def _accepted_kinds(annotation: str) -> set[type]:
    """The TOML value types an annotation admits (enums and Literals admit strings)."""
    kinds: set[type] = set()
    text = annotation.replace(" ", "")
    for part in text.split("|"):
        if part.startswith(("list[", "tuple[")) or part in {"list", "tuple"}:
            kinds.add(list)
        elif part.startswith("dict"):
            kinds.add(dict)
        elif part == "bool" or part.startswith("Literal[False") or part.startswith("Literal[True"):
            kinds.add(bool)
        elif part == "int":
            kinds.add(int)
        elif part == "float":
            kinds.update({float, int})
        elif part != "None":
            kinds.add(str)  # str itself, and every enum (IntervalStrategy, OptimizerNames, ...)
    return kinds


def accepted_fields() -> dict[str, TrainingField]:
    """The fields [training] accepts: every TrainingArguments field and SFT_FIELDS."""
    return {**training_fields(), **SFT_FIELDS}


def check_training_value(name: str, value: Any) -> str | None:
    """None when `value` has a type the field accepts, else a short reason."""
    spec = accepted_fields()[name]
    kinds = _accepted_kinds(spec.annotation)
    # bool is a subclass of int in Python, but `true` is never a valid step count.
    ok = (
        isinstance(value, bool)
        if bool in kinds and isinstance(value, bool)
        else (not isinstance(value, bool) and any(isinstance(value, k) for k in kinds))
    )
    if ok or not kinds:
        return None
    names = sorted(k.__name__.replace("str", "string").replace("dict", "table") for k in kinds)
    return f"expects {' or '.join(names)} ({spec.annotation}), got {type(value).__name__} {value!r}"
