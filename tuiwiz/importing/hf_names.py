"""The optimizer and scheduler names transformers accepts, read from its source without importing
it (as tuiwiz.training_fields reads TrainingArguments): an imported `optim` or
`lr_scheduler_type` is checked against them, so an unknown name is reported at import time
instead of failing the run."""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path


def _enum_values(filename: str, class_name: str) -> frozenset[str]:
    spec = importlib.util.find_spec("transformers")
    if spec is None or spec.origin is None:
        return frozenset()
    source = (Path(spec.origin).parent / filename).read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return frozenset(
                stmt.value.value
                for stmt in node.body
                if isinstance(stmt, ast.Assign)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            )
    return frozenset()


@cache
def optimizers() -> frozenset[str]:
    return _enum_values("training_args.py", "OptimizerNames")


@cache
def schedulers() -> frozenset[str]:
    return _enum_values("trainer_utils.py", "SchedulerType")
