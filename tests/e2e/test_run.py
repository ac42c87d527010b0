"""End to end on the CPU: real 4-bit nf4 QLoRA on the bundled tiny model, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuiwiz.train.events import read_events
from tuiwiz.train.rundir import RunDir

pytestmark = pytest.mark.e2e


def tuiwiz(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuiwiz", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ.copy(),
        timeout=600,
    )


def steps(run: Path) -> list[dict]:
    return [e for e in read_events(RunDir(run).events) if e["event"] == "step"]


@pytest.fixture(scope="module")
def demo_run(demo_run) -> Path:
    """One full run of the shipped demo preset (conftest's, shared by every module that reads
    it), and what `tuiwiz run` printed while it trained."""
    run = demo_run.path
    assert f"run directory {run}" in demo_run.stdout
    assert "finished in" in demo_run.stdout and "adapter:" in demo_run.stdout
    return run


def test_demo_run_writes_the_run_directory(demo_run: Path):
    run = RunDir(demo_run)
    assert run.status()["state"] == "finished"
    # The data's preparation left its progress for the dashboard and `tuiwiz run`: done.
    prepared = run.status()["prepare"]
    assert (prepared["phase"], prepared["fraction"]) == ("tokenizing", 1.0), prepared
    kinds = [e["event"] for e in read_events(run.events)]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert "checkpoint" in kinds and "eval" in kinds
    for e in steps(demo_run):
        assert {
            "step",
            "epoch",
            "loss",
            "learning_rate",
            "grad_norm",
            "tokens_per_second",
            "rss_bytes",
            "time",
        } <= e.keys()
    assert (run.adapter / "adapter_model.safetensors").is_file()
    assert (run.adapter / "tokenizer_config.json").is_file()
    assert 'name_or_path = "tuiwiz:demo-model"' in run.preset.read_text()
    assert "train.log" in os.listdir(demo_run)
    assert demo_run.stat().st_mode & 0o077 == 0


def test_demo_loss_falls_to_half(demo_run: Path):
    losses = [e["loss"] for e in steps(demo_run)]
    assert losses[-1] <= 0.5 * losses[0], losses


def test_adapter_loads_back_and_beats_the_base_model(demo_run: Path, demo_model: Path):
    from tuiwiz.demo.compare import compare_on_heldout

    rows = compare_on_heldout(demo_run)
    tuned = sum(r["tuned_ok"] for r in rows)
    base = sum(r["base_ok"] for r in rows)
    assert tuned > base
    assert tuned >= 0.7 * len(rows)


def test_overrides_stop_and_resume_continue_at_the_right_step(
    tmp_path: Path, demo_model, monkeypatch
):
    from tuiwiz import presets
    from tuiwiz.train import jobs

    config, _ = presets.load(
        "demo",
        [
            "training.max_steps=8",
            "training.save_steps=3",
            "training.logging_steps=1",
            "data.validation_split=0",
        ],
    )
    run = tmp_path / "run"
    # A stop during step 4 (as `tuiwiz stop` asks; at an exact step, which a signal sent from
    # here cannot promise): the trainer saves a checkpoint and ends "stopped".
    monkeypatch.setenv("TUIWIZ_FAULT", "stop@4")
    job = jobs.start(run, config=config)
    job.wait()
    monkeypatch.delenv("TUIWIZ_FAULT")
    status = RunDir(run).status()
    assert status["state"] == "stopped", status
    stopped_at = status["step"]
    assert "max_steps = 8" in RunDir(run).preset.read_text()
    result = tuiwiz("run", "--resume", str(run))
    assert result.returncode == 0, result.stderr + result.stdout
    numbers = [e["step"] for e in steps(run)]
    assert numbers == list(range(1, 9)), numbers  # continuous: no gap, no restart at step 0
    started = [e for e in read_events(RunDir(run).events) if e["event"] == "started"]
    assert started[-1]["step"] == stopped_at and started[-1]["resumed_from"]
    assert RunDir(run).status()["state"] == "finished"


def test_cli_overrides_land_in_preset_toml(tmp_path: Path, demo_model):
    run = tmp_path / "run"
    result = tuiwiz(
        "run",
        "demo",
        "--output-dir",
        str(run),
        "--set",
        "training.max_steps=2",
        "--set",
        "lora.r=4",
        "--set",
        "data.validation_split=0",
    )
    assert result.returncode == 0, result.stderr
    text = (run / "preset.toml").read_text()
    assert "max_steps = 2" in text and "r = 4" in text
    assert json.loads((run / "adapter" / "adapter_config.json").read_text())["r"] == 4
