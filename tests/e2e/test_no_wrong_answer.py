"""Results tuiwiz could not stand behind, and runs that were lost or left half-done: each case
is trained for real on the demo model, and each ends in a right answer or a loud one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuiwiz.bundled import resolve_data
from tuiwiz.train.events import read_events
from tuiwiz.train.rundir import RunDir

pytestmark = pytest.mark.e2e

TINY = ["training.save_steps=1", "training.logging_steps=1"]


def tuiwiz(*args: str, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "tuiwiz", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def sets(*overrides: str) -> list[str]:
    return [x for o in overrides for x in ("--set", o)]


def kinds(run: Path) -> list[str]:
    return [e["event"] for e in read_events(RunDir(run).events)]


def adapter_bytes(folder: Path) -> bytes:
    return (folder / "adapter_model.safetensors").read_bytes()


def test_paths_are_resolved_once_and_changed_data_is_refused(tmp_path: Path, demo_model):
    """A preset says `data/train.jsonl` beside it. Training, resuming and scoring from other
    directories (each with a decoy data/train.jsonl) all read the preset's file; once that file
    changes, resume and eval refuse instead of using other data."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    data = project / "data" / "train.jsonl"
    shutil.copyfile(resolve_data("tuiwiz:demo-data"), data)
    preset = project / "task.toml"
    preset.write_text(
        'name = "task"\n[model]\nname_or_path = "tuiwiz:demo-model"\n'
        '[data]\npath = "data/train.jsonl"\nvalidation_split = 0.1\nmax_seq_length = 64\n'
        "[training]\nmax_steps = 2\nsave_steps = 1\nlogging_steps = 1\n"
        'per_device_train_batch_size = 4\ngradient_accumulation_steps = 1\noptim = "adamw_torch"\n'
    )
    decoys = []
    for name in ("b", "c"):
        (tmp_path / name / "data").mkdir(parents=True)
        decoy = tmp_path / name / "data" / "train.jsonl"
        decoy.write_text('{"instruction": "Say no", "output": "no"}\n' * 50)
        decoys.append(tmp_path / name)
    run = tmp_path / "run"
    started = tuiwiz(
        "run", str(preset), "--output-dir", str(run), cwd=decoys[0],
        env={"TUIWIZ_FAULT": "stop@1"},
    )  # fmt: skip
    assert started.returncode == 3, started.stderr
    assert f'path = "{data}"' in RunDir(run).preset.read_text()
    assert RunDir(run).status()["data_sha256"]

    original = data.read_bytes()
    data.write_bytes(original + b'{"instruction": "new", "output": "row"}\n')
    refused = tuiwiz("resume", str(run), cwd=decoys[1])
    assert refused.returncode == 2
    assert "the data changed since run" in refused.stderr and str(data) in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert RunDir(run).status()["state"] == "stopped"  # untouched

    data.write_bytes(original)
    # A crash can leave a damaged line in events.jsonl: resume reads past it.
    with RunDir(run).events.open("ab") as f:
        f.write(b"\x00\x00\x00\xff\n")
    resumed = tuiwiz("resume", str(run), cwd=decoys[1])
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr

    scored = tuiwiz("eval", str(run), "--json", cwd=decoys[1])
    assert scored.returncode == 0, scored.stderr
    eval_json = (run / "eval.json").read_bytes()
    # The demo's own validation rows, not the decoy's "Say no".
    assert json.loads(scored.stdout)["validation_examples"] == 80

    data.write_bytes(original + b'{"instruction": "new", "output": "row"}\n')
    refused = tuiwiz("eval", str(run), cwd=decoys[1])
    assert refused.returncode == 2 and "the data changed since run" in refused.stderr
    assert (run / "eval.json").read_bytes() == eval_json  # the card's numbers stay right


def test_a_diverging_run_fails_and_ships_nothing(tmp_path: Path, demo_model):
    run = tmp_path / "run"
    result = tuiwiz(
        "run", "demo", "--output-dir", str(run),
        *sets("training.learning_rate=50", "training.max_steps=6", "training.save_steps=1",
              "training.logging_steps=1", "data.validation_split=0"),
    )  # fmt: skip
    assert result.returncode == 1
    status = RunDir(run).status()
    assert status["state"] == "failed" and status["reason"].startswith("training diverged")
    assert "Lower the learning rate" in status["reason"]
    assert status["suggestions"][0]["overrides"] == ["training.learning_rate=0.0002"]
    assert "try: a lower learning rate" in result.stderr
    assert not (run / "adapter").exists()
    assert kinds(run)[-1] == "failed" and "finished" not in kinds(run)
    # Every checkpoint left holds finite numbers: it is safe to resume from with other settings.
    from safetensors.torch import load_file

    checkpoints = RunDir(run).complete_checkpoints()
    assert checkpoints  # (at this learning rate the demo diverges at step 3)
    for _, path in checkpoints:
        tensors = load_file(str(path / "adapter_model.safetensors"))
        assert all(t.isfinite().all() for t in tensors.values())
    exported = tuiwiz("export", str(run), "--out", str(tmp_path / "out"))
    assert exported.returncode == 2 and "no finished adapter" in exported.stderr


def test_a_stop_on_the_last_step_finishes_the_run(tmp_path: Path, demo_model):
    run = tmp_path / "run"
    overrides = sets("training.max_steps=3", "data.validation_split=0", *TINY)
    result = tuiwiz("run", "demo", "--output-dir", str(run), *overrides,
                    env={"TUIWIZ_FAULT": "stop@3"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert RunDir(run).status()["state"] == "finished"
    adapter = adapter_bytes(run / "adapter")

    # The training process itself re-checks the state once it holds the run's lock: a resume
    # that raced the last step never trains past max_steps.
    worker = subprocess.run(
        [sys.executable, "-m", "tuiwiz.train", "--run-dir", str(run), "--resume"],
        input="",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert worker.returncode == 2 and "the run has finished" in worker.stdout

    # A run an older tuiwiz left "stopped" at its last step, without an adapter: resume writes
    # the adapter from that checkpoint and trains nothing more.
    shutil.rmtree(run / "adapter")
    RunDir(run).write_status(state="stopped", adapter=None)
    events = [e for e in read_events(RunDir(run).events) if e["event"] != "finished"]
    RunDir(run).events.write_text("".join(json.dumps(e) + "\n" for e in events))
    resumed = tuiwiz("resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    steps = [e["step"] for e in read_events(RunDir(run).events) if e["event"] == "step"]
    assert max(steps) == 3 and not (RunDir(run).checkpoints / "checkpoint-4").exists()
    assert adapter_bytes(run / "adapter") == adapter


def test_rotation_keeps_the_best_checkpoint_for_load_best_model_at_end(tmp_path, demo_model):
    """save_total_limit 1 with load_best_model_at_end: the best checkpoint (here the first, by
    asking for the highest validation loss) survives the rotation and becomes the adapter."""
    run = tmp_path / "run"
    result = tuiwiz(
        "run", "demo", "--output-dir", str(run),
        *sets("training.max_steps=6", "training.save_steps=2", "training.eval_steps=2",
              "training.logging_steps=2", "data.validation_split=0.05",
              "training.save_total_limit=1", "training.load_best_model_at_end=true",
              "training.metric_for_best_model=eval_loss", "training.greater_is_better=true"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Could not locate the best model" not in (run / "train.log").read_text()
    kept = [step for step, _ in RunDir(run).complete_checkpoints()]
    assert kept == [2, 6]
    from safetensors.torch import load_file

    best = load_file(str(RunDir(run).checkpoints / "checkpoint-2" / "adapter_model.safetensors"))
    last = load_file(str(RunDir(run).checkpoints / "checkpoint-6" / "adapter_model.safetensors"))
    final = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    assert final.keys() == best.keys()
    assert all((final[k].float() == best[k].float()).all() for k in best)
    assert not all((final[k].float() == last[k].float()).all() for k in best)


def test_killing_the_launcher_during_the_checks_loses_no_run(tmp_path: Path, demo_model):
    """The launcher dies (a dropped SSH connection) while the training process still checks the
    model and data: the run goes on without it."""
    run = tmp_path / "run"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "tuiwiz", "run", "demo", "--output-dir", str(run),
         *sets("training.max_steps=1", "data.validation_split=0", "model.trust_remote_code=true")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    for line in launcher.stdout:
        if "trust_remote_code is on" in line:  # the first thing the checks say
            break
    launcher.kill()
    launcher.wait()
    assert _final_state(run) == "finished"


def test_a_run_that_cannot_start_after_its_launcher_died_says_why(tmp_path: Path, demo_model):
    """The checks fail after the launcher is gone: nobody saw the reason, so `tuiwiz runs`
    shows it."""
    run = tmp_path / "run"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "tuiwiz", "run", "demo", "--output-dir", str(run),
         *sets("model.trust_remote_code=true", 'lora.target_modules=["nope_proj"]')],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    for line in launcher.stdout:
        if "trust_remote_code is on" in line:
            break
    launcher.kill()
    launcher.wait()
    assert _final_state(run) == "failed"
    assert "nope_proj" in RunDir(run).status()["reason"]
    listing = tuiwiz("runs")
    assert "run" in listing.stdout and "nope_proj" in listing.stdout


def _final_state(run: Path, timeout: float = 300) -> str | None:
    """The run's state once it is final (the training process runs on its own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = RunDir(run).status().get("state")
        if state in ("finished", "failed", "stopped"):
            return state
        time.sleep(0.5)
    return None


def test_an_unwritable_registry_fails_before_anything_is_written(tmp_path: Path, demo_model):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # a data directory that cannot be created (as root, modes don't stop)
    run = tmp_path / "run"
    result = tuiwiz(
        "run", "demo", "--output-dir", str(run), env={"TUIWIZ_DATA_DIR": str(blocker / "x")}
    )
    assert result.returncode == 2
    assert "cannot write the run registry" in result.stderr and "TUIWIZ_DATA_DIR" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not run.exists()  # so the same --output-dir works once it is fixed


def test_an_unwritable_cache_only_costs_the_cache(tmp_path: Path, demo_model):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    run = tmp_path / "run"
    result = tuiwiz(
        "run", "demo", "--output-dir", str(run),
        *sets("model.name_or_path=" + str(demo_model), "training.max_steps=1",
              "data.validation_split=0"),
        env={"TUIWIZ_CACHE_DIR": str(blocker / "cache")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "tokenization cache" in result.stderr and "training without it" in result.stderr
    # logging_steps (5) above max_steps (1): said before, and the outcome still has a number.
    assert "no step will log its loss" in result.stderr
    assert "mean training loss" in result.stdout and "; ;" not in result.stdout
