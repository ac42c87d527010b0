"""An imported axolotl config trains for real (on the CPU, with the bundled tiny model and data
in place of the config's), and `tuiwiz compare` reads the run the training process wrote."""

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
QLORA_1B = (
    Path(__file__).resolve().parent.parent
    / "fixtures"
    / "peer-configs"
    / "axolotl"
    / "qlora-1b.yml"
)


def tuiwiz(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuiwiz", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ.copy(),
        timeout=600,
    )


def test_imported_axolotl_config_runs_and_compares(tmp_path: Path, demo_model, make_run):
    result = tuiwiz("import", str(QLORA_1B), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # Only what a CPU and the bundled demo need differs from the imported preset: the model
    # and data, the attention kernel (flash-attn needs a GPU) and the length of the run.
    run = tmp_path / "run"
    result = tuiwiz(
        "run", "qlora-1b.toml",
        "--set", "model.name_or_path=tuiwiz:demo-model",
        "--set", "data.path=tuiwiz:demo-data",
        "--set", "model.attn_implementation=sdpa",
        "--set", "training.max_steps=2",
        "--set", "data.max_seq_length=64",
        "--set", "training.gradient_accumulation_steps=1",
        "--output-dir", str(run),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    status = RunDir(run).status()
    assert status["state"] == "finished"
    written = (run / "preset.toml").read_text()
    assert 'optim = "adamw_bnb_8bit"' in written and "lora_alpha = 16" in written

    other = make_run("synthetic")
    result = tuiwiz("compare", str(run), str(other), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    real = data["runs"][0]
    steps = [e for e in read_events(RunDir(run).events) if e["event"] == "step"]
    assert real["final_train_loss"] == {"value": steps[-1]["loss"], "step": steps[-1]["step"]}
    assert real["state"] == "finished" and real["step"] == 2
    assert real["base_eval_loss"] is not None and real["final_eval_loss"] is not None
    assert real["peak_memory_source"] == "rss_bytes"  # the CPU: the process's resident memory
    assert real["peak_memory_bytes"] == max(e["rss_bytes"] for e in steps)
    assert real["wall_seconds"] > 0 and real["tokens_per_second"] > 0
    assert "training.optim" in data["differing_keys"]
