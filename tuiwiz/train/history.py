"""What earlier runs measured, for predictions: the training throughput of a model."""

from __future__ import annotations

from tuiwiz.train.events import read_events
from tuiwiz.train.registry import list_runs
from tuiwiz.train.rundir import RunDir


def measured_throughput(model: str) -> tuple[float, str] | None:
    """Median tokens per second of the newest run of `model` that logged steps, with its id."""
    from tuiwiz.toml import tomllib

    for entry, _status in reversed(list_runs()):
        run = RunDir(entry.path)
        try:
            preset = tomllib.loads(run.preset.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if preset.get("model", {}).get("name_or_path") != model:
            continue
        rates = sorted(
            e["tokens_per_second"]
            for e in read_events(run.events)
            if e.get("event") == "step" and e.get("tokens_per_second")
        )
        if rates:
            return rates[len(rates) // 2], entry.id
    return None
