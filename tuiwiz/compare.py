"""Compare runs side by side, from their run directories alone (preset.toml, events.jsonl,
status.json): the preset keys that differ between them, and what each run measured.

Used by `tuiwiz compare` and by the TUI's compare screen. Plain Python: reading a run never
changes it, and nothing here needs torch or the model.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiwiz.errors import TuiwizError
from tuiwiz.units import duration, size

MISSING = object()  # a key one run's preset does not have


@dataclass(frozen=True)
class Point:
    step: int
    value: float


@dataclass
class RunSummary:
    """One run, folded from its directory."""

    id: str
    path: Path
    state: str
    settings: dict[str, Any]  # the preset, flattened to dotted keys (training.learning_rate)
    train: list[Point] = field(default_factory=list)  # training loss by step
    evals: list[Point] = field(default_factory=list)  # evaluation loss by step
    base_eval_loss: float | None = None  # the base model's validation loss (adapter off)
    step: int | None = None
    max_steps: int | None = None
    tokens_per_second: float | None = None  # the median over logged steps
    wall_seconds: float | None = None  # training time, summed over sessions (resumes)
    peak_memory: int | None = None  # bytes
    peak_memory_source: str | None = None  # "gpu_max_memory_allocated" or "rss_bytes"

    @property
    def final_train(self) -> Point | None:
        return self.train[-1] if self.train else None

    @property
    def best_train(self) -> Point | None:
        return min(self.train, key=lambda p: p.value) if self.train else None

    @property
    def final_eval(self) -> Point | None:
        return self.evals[-1] if self.evals else None

    @property
    def best_eval(self) -> Point | None:
        return min(self.evals, key=lambda p: p.value) if self.evals else None


@dataclass
class Comparison:
    runs: list[RunSummary]
    differing: list[str]  # dotted preset keys whose values are not the same in every run

    def values(self, key: str) -> list[Any]:
        return [run.settings.get(key, MISSING) for run in self.runs]

    def differences(self, run: RunSummary) -> dict[str, Any]:
        return {k: run.settings.get(k, MISSING) for k in self.differing}

    def to_json(self) -> dict[str, Any]:
        def point(p: Point | None) -> dict[str, Any] | None:
            return {"value": p.value, "step": p.step} if p else None

        def plain(v: Any) -> Any:
            return None if v is MISSING else v

        return {
            "differing_keys": self.differing,
            "runs": [
                {
                    "id": r.id,
                    "path": str(r.path),
                    "state": r.state,
                    "step": r.step,
                    "max_steps": r.max_steps,
                    "settings": {k: plain(v) for k, v in self.differences(r).items()},
                    "final_train_loss": point(r.final_train),
                    "best_train_loss": point(r.best_train),
                    "final_eval_loss": point(r.final_eval),
                    "best_eval_loss": point(r.best_eval),
                    "base_eval_loss": r.base_eval_loss,
                    "tokens_per_second": r.tokens_per_second,
                    "wall_seconds": r.wall_seconds,
                    "peak_memory_bytes": r.peak_memory,
                    "peak_memory_source": r.peak_memory_source,
                }
                for r in self.runs
            ],
        }


# --- reading runs -------------------------------------------------------------------------------


def flatten(preset: dict[str, Any]) -> dict[str, Any]:
    """{"training": {"learning_rate": 1e-4}} -> {"training.learning_rate": 1e-4}; top-level keys
    keep their name. A table inside a section (columns) stays one value."""
    flat: dict[str, Any] = {}
    for key, value in preset.items():
        if isinstance(value, dict):
            for name, inner in value.items():
                flat[f"{key}.{name}"] = inner
        else:
            flat[key] = value
    return flat


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def summarize(run_dir: Path, run_id: str | None = None) -> RunSummary:
    """Fold one run directory. TuiwizError when its preset cannot be read."""
    from tuiwiz import presets
    from tuiwiz.train.events import read_events
    from tuiwiz.train.registry import effective_state
    from tuiwiz.train.rundir import RunDir

    run = RunDir(run_dir)
    status = run.status()
    try:
        preset = presets.read_toml(run.preset)
    except TuiwizError as e:
        raise TuiwizError(f"run {run_id or run_dir.name}: cannot read its preset: {e}") from None
    summary = RunSummary(
        id=str(run_id or status.get("id") or run_dir.name),
        path=run_dir,
        state=effective_state(status) if status else "unknown",
        settings=flatten(preset),
    )
    _fold(summary, read_events(run.events), status)
    return summary


def _fold(summary: RunSummary, events: list[dict[str, Any]], status: dict[str, Any]) -> None:
    sessions: list[list[float]] = []  # [start, last] time of each stretch of training
    rates: list[float] = []
    gpu_peak = rss_peak = None
    for event in events:
        kind, when, step = (
            event.get("event"),
            _number(event.get("time")),
            _number(event.get("step")),
        )
        if kind == "started" and when is not None:
            sessions.append([when, when])
        elif sessions and when is not None:
            sessions[-1][1] = max(sessions[-1][1], when)
        if isinstance(event.get("max_steps"), int) and event["max_steps"] > 0:
            summary.max_steps = event["max_steps"]
        if step is not None and kind in ("step", "finished", "stopped", "failed"):
            summary.step = int(step)
        if kind == "step":
            loss = _number(event.get("loss"))
            if loss is not None and step is not None:
                summary.train.append(Point(int(step), loss))
            if (rate := _number(event.get("tokens_per_second"))) is not None and rate > 0:
                rates.append(rate)
            if (gpu := _number(event.get("gpu_max_memory_allocated"))) is not None:
                gpu_peak = max(gpu_peak or 0.0, gpu)
            if (rss := _number(event.get("rss_bytes"))) is not None:
                rss_peak = max(rss_peak or 0.0, rss)
        elif kind == "eval":
            loss = _number(event.get("eval_loss"))
            if loss is None or step is None:
                continue
            if event.get("base"):
                summary.base_eval_loss = loss
            else:
                summary.evals.append(Point(int(step), loss))
    if summary.step is None and isinstance(status.get("step"), int):
        summary.step = status["step"]
    if summary.base_eval_loss is None:
        summary.base_eval_loss = _number(status.get("base_eval_loss"))
    summary.tokens_per_second = statistics.median(rates) if rates else None
    summary.wall_seconds = sum(last - start for start, last in sessions) if sessions else None
    if gpu_peak is not None:
        summary.peak_memory, summary.peak_memory_source = int(gpu_peak), "gpu_max_memory_allocated"
    elif rss_peak is not None:
        summary.peak_memory, summary.peak_memory_source = int(rss_peak), "rss_bytes"


def differing_keys(runs: list[RunSummary]) -> list[str]:
    """Keys whose values are not the same in every run (a key some runs lack differs), in the
    order the presets list them."""
    keys: dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.settings))

    def differs(key: str) -> bool:
        first = _key(runs[0].settings.get(key, MISSING))
        return any(_key(run.settings.get(key, MISSING)) != first for run in runs[1:])

    return [key for key in keys if differs(key)]


def _key(value: Any) -> Any:
    """A value as compared: 2e-4 and 0.0002 are the same; 1 and 1.0 are too, true and 1 not."""
    if value is MISSING:
        return ("missing",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return ("value", repr(value))


def compare(refs: list[str]) -> Comparison:
    """Resolve each RUN (directory, id or id prefix) and compare them."""
    from tuiwiz.train.registry import resolve

    if len(refs) < 2:
        raise TuiwizError("compare needs at least two runs (see `tuiwiz runs`)")
    runs: list[RunSummary] = []
    seen: dict[Path, str] = {}
    for ref in refs:
        run = resolve(ref)
        path = run.path.resolve()
        if path in seen:
            raise TuiwizError(f"'{ref}' and '{seen[path]}' are the same run; give different runs")
        seen[path] = ref
        runs.append(summarize(path, run.status().get("id")))
    return Comparison(runs, differing_keys(runs))


def compare_dirs(paths: list[Path]) -> Comparison:
    """The same, for run directories already known (the TUI's marked runs)."""
    runs = [summarize(p.resolve()) for p in paths]
    return Comparison(runs, differing_keys(runs))


# --- formatting, shared by the CLI and the TUI -------------------------------------------------


def fmt_value(value: Any) -> str:
    if value is MISSING:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(fmt_value(v) for v in value) or "[]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt_value(v)}" for k, v in value.items()) or "{}"
    return str(value)


def fmt_loss(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0 or 0.001 <= abs(value) < 1000:
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return f"{value:.2e}"


def fmt_point(point: Point | None) -> str:
    return "—" if point is None else f"{fmt_loss(point.value)} @{point.step}"


def fmt_memory(run: RunSummary) -> str:
    if run.peak_memory is None:
        return "—"
    where = "GPU" if run.peak_memory_source == "gpu_max_memory_allocated" else "RSS"
    return f"{size(run.peak_memory, missing='—')} {where}"


@dataclass(frozen=True)
class MetricRow:
    label: str
    cells: list[str]
    best: int | None  # index of the best run on this row (lower loss, higher speed), or None


def metric_rows(comparison: Comparison) -> list[MetricRow]:
    """What each run measured, one row per metric, as the table shows it."""
    runs = comparison.runs

    def row(label: str, cells: list[str], scores: list[float | None] | None = None) -> MetricRow:
        best = None
        known = [(s, i) for i, s in enumerate(scores or []) if s is not None]
        if len(known) > 1 and len({s for s, _ in known}) > 1:
            best = min(known)[1]
        return MetricRow(label, cells, best)

    def values(points: list[Point | None]) -> list[float | None]:
        return [p.value if p else None for p in points]

    steps = [f"{r.step if r.step is not None else '—'}/{r.max_steps or '?'}" for r in runs]
    final_train = [r.final_train for r in runs]
    best_train = [r.best_train for r in runs]
    final_eval = [r.final_eval for r in runs]
    best_eval = [r.best_eval for r in runs]
    rates = [r.tokens_per_second for r in runs]
    return [
        row("state", [r.state for r in runs]),
        row("steps", steps),
        row("final train loss", [fmt_point(p) for p in final_train], values(final_train)),
        row("best train loss", [fmt_point(p) for p in best_train], values(best_train)),
        row("final eval loss", [fmt_point(p) for p in final_eval], values(final_eval)),
        row("best eval loss", [fmt_point(p) for p in best_eval], values(best_eval)),
        row("base model val loss", [fmt_loss(r.base_eval_loss) for r in runs]),
        row(
            "tokens/s (median)",
            [f"{r:,.0f}" if r is not None else "—" for r in rates],
            [-r if r is not None else None for r in rates],
        ),
        row("wall time", [duration(r.wall_seconds, "—") for r in runs]),
        row("peak memory", [fmt_memory(r) for r in runs]),
    ]


def short_differences(comparison: Comparison, run: RunSummary, limit: int = 4) -> str:
    """A run's differing keys in a few words (the chart's legend): lr=0.0001 r=8 ..."""
    parts = []
    for key in comparison.differing:
        if key in ("name", "description", "schema_version"):
            continue
        parts.append(f"{key.split('.', 1)[-1]}={fmt_value(run.settings.get(key, MISSING))}")
    shown = parts[:limit]
    if len(parts) > limit:
        shown.append(f"+{len(parts) - limit} more")
    return " ".join(shown) if shown else "(same settings)"
