"""The blocking work behind the dashboard, run in its thread workers (plain Python, no UI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuiwiz.errors import first_line
from tuiwiz.train.rundir import RunDir


def estimate_total(run: RunDir) -> tuple[int | None, str]:
    """The run's estimated peak GPU memory from its resolved preset, or None and why not."""
    try:
        from tuiwiz.estimate import estimate

        resolved = run.config()
        return estimate(resolved).total, ""
    except Exception as e:  # the estimate is extra information, never a failure
        reason = first_line(e)
        return None, f"estimate unavailable: {reason}"


def start_with(run: RunDir, overrides: list[str], progress: Callable[[str], None]) -> Any:
    """Start a new run: this run's preset with `overrides`, in a new directory beside it.

    Blocks until the training process's handshake; raises TuiwizError with its reason. The
    returned job is reaped by a daemon thread (which also records a hard crash, as `tuiwiz run`
    does), so a dashboard that quits early leaves no zombie behind.
    """

    from tuiwiz.train import jobs

    resolved = run.config(overrides)
    target = jobs.default_run_dir(resolved["name"], root=run.path.parent)
    progress(f"starting {target.name}...")
    return jobs.start(target, config=resolved, progress=progress).reap_in_background()


def export_kinds() -> list[tuple[str, str]]:
    """(kind, label) of each export the dashboard offers (k-quants with llama-quantize)."""
    import shutil

    from tuiwiz.after.quantize import TOOL

    kinds = [
        ("gguf:q8_0", "GGUF q8_0: llama.cpp, Ollama, LM Studio"),
        ("gguf:f16", "GGUF f16: twice the size, the 16-bit weights"),
    ]
    if shutil.which(TOOL):
        kinds += [("gguf:q4_k_m", "GGUF q4_k_m: smallest (llama-quantize)")]
    kinds += [
        ("merged", "merged model: transformers, no peft needed"),
        ("adapter", "adapter: for the base model, with peft"),
    ]
    return kinds


def export_run(
    run: RunDir,
    kind: str,
    out: Any,
    progress: Callable[[str], None],
    fraction: Callable[[float], None],
) -> Any:
    """Export a finished run as `kind` (export_kinds) into the folder `out`; returns it.
    Raises TuiwizError with its reason."""
    from tuiwiz.after.export import export
    from tuiwiz.after.loading import finished_run, quiet_libraries

    progress("checking the run, its model and tokenizer")
    fr = finished_run(run)
    quiet_libraries()
    gguf = kind.removeprefix("gguf:") if kind.startswith("gguf:") else None
    return export(fr, out, merge=kind == "merged", progress=progress, gguf=gguf, fraction=fraction)
