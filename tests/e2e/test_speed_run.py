"""`[training] speed = "fast"` through the real CLI on the CPU: the run trains with what fast
stands for here, and its preset.toml says so; an option this machine cannot run is refused
before anything of the run exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuiwiz.presets import read_toml
from tuiwiz.train.events import read_events
from tuiwiz.train.rundir import RunDir

pytestmark = pytest.mark.e2e


def tuiwiz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuiwiz", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=600,
    )


def test_fast_run_records_what_it_resolved_to(tmp_path: Path, demo_model):
    run = tmp_path / "run"
    result = tuiwiz(
        "run",
        "demo",
        "--set",
        "training.speed=fast",
        "--set",
        "training.max_steps=3",
        "--set",
        "training.logging_steps=1",
        "--output-dir",
        str(run),
    )
    assert result.returncode == 0, result.stderr + result.stdout
    training = read_toml(run / "preset.toml")["training"]
    assert training["speed"] == "fast"
    assert training["padding_free"] is True  # what fast stands for on a machine without CUDA
    assert training["use_liger_kernel"] is False
    assert read_toml(run / "preset.toml")["model"]["attn_implementation"] == "sdpa"
    log = (run / "train.log").read_text()
    assert "speed = fast: padding-free batches, sdpa (Liger kernels off: no CUDA GPU" in log
    steps = [e for e in read_events(RunDir(run).events) if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert all(e["tokens_seen"] > 0 for e in steps)


def test_an_option_this_machine_cannot_run_is_refused_in_one_line(tmp_path: Path, demo_model):
    run = tmp_path / "run"
    result = tuiwiz(
        "run", "demo", "--set", "training.use_liger_kernel=true", "--output-dir", str(run)
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "use_liger_kernel needs a CUDA GPU" in result.stderr
    assert not run.exists()
