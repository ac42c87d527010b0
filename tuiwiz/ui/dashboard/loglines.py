"""The Trainer's metric lines in train.log, as the dashboard's log panel shows them.

The Trainer prints each log as a Python dict ("{'loss': '1.234', 'grad_norm': '0.5', ...}"):
long, quoted, and cut at the panel's edge before the numbers that matter. `tidy` turns such a
line into columns with short labels, the important numbers first, each value in a column of
fixed width, so that consecutive lines line up. The line is parsed with ast.literal_eval, which
reads Python literals and never runs code; any line that is not a flat dict of numbers is shown
as it is.
"""

from __future__ import annotations

import ast

MAX_LINE = 4000  # longer lines are never the Trainer's metrics: not worth parsing

# key -> (label, width, format), in the order shown: what matters most first.
COLUMNS: dict[str, tuple[str, int, str]] = {
    "loss": ("loss", 8, ".4f"),
    "eval_loss": ("eval_loss", 8, ".4f"),
    "train_loss": ("train_loss", 8, ".4f"),
    "grad_norm": ("grad", 7, ".4g"),
    "learning_rate": ("lr", 8, ".2e"),
    "epoch": ("epoch", 5, ".2f"),
    "mean_token_accuracy": ("acc", 6, ".3f"),
    "eval_mean_token_accuracy": ("acc", 6, ".3f"),
    "entropy": ("entropy", 6, ".3f"),
    "eval_entropy": ("entropy", 6, ".3f"),
    "num_tokens": ("tokens", 9, ",.0f"),
    "eval_num_tokens": ("tokens", 9, ",.0f"),
    "train_tokens_per_second": ("tok/s", 7, ",.0f"),
    "train_samples_per_second": ("samples/s", 6, ".4g"),
    "eval_samples_per_second": ("samples/s", 6, ".4g"),
    "train_steps_per_second": ("steps/s", 6, ".4g"),
    "eval_steps_per_second": ("steps/s", 6, ".4g"),
    "train_runtime": ("time", 7, ".1f"),
    "eval_runtime": ("time", 7, ".1f"),
}
HIDDEN = {"num_input_tokens_seen", "total_flos"}  # the same as tokens / of no use here


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _metrics(line: str) -> dict[str, float] | None:
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")) or len(text) > MAX_LINE:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, dict) or not value:
        return None
    numbers = {str(k): _number(v) for k, v in value.items()}
    if any(v is None for v in numbers.values()):
        return None
    return numbers  # type: ignore[return-value]


def tidy(line: str) -> str:
    """A metric dict as aligned columns ("loss   1.2345  grad   0.512  lr 2.00e-04 ..."), any
    other line unchanged."""
    metrics = _metrics(line)
    if metrics is None:
        return line
    known = [k for k in COLUMNS if k in metrics]
    rest = [k for k in metrics if k not in COLUMNS and k not in HIDDEN]
    cells = []
    for key in known:
        label, width, fmt = COLUMNS[key]
        cells.append(f"{label} {format(metrics[key], fmt):>{width}}")
    cells += [f"{key} {metrics[key]:.4g}" for key in rest]
    return "  ".join(cells)
