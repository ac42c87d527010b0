"""Runs that survive: the launcher's death, SIGTERM and SIGKILL with exact resume, OOM, disk full,
and no secret written anywhere. Real training of the demo model on the CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tuiwiz import presets
from tuiwiz.train import jobs
from tuiwiz.train.events import follow, read_events
from tuiwiz.train.registry import process_alive
from tuiwiz.train.rundir import RunDir

pytestmark = pytest.mark.e2e

# Short runs with a checkpoint every 3 steps and a loss logged every 2 (the mean of 2 steps: a
# stop can land in the middle of that window).
SHORT = [
    "training.max_steps=9",
    "training.save_steps=3",
    "training.logging_steps=2",
    "data.validation_split=0",
    "training.lr_scheduler_type=linear",
]


def config(*extra: str) -> dict:
    return presets.load("demo", SHORT + list(extra))[0]


def losses(run: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in read_events(RunDir(run).events) if e["event"] == "step"}


def adapter_tensors(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(RunDir(run).adapter / "adapter_model.safetensors"))


def wait_for_step(job: jobs.Job, step: int) -> None:
    for event in follow(job.run.events, stop=lambda: not job.alive()):
        if event["event"] == "step" and event["step"] >= step:
            return
    raise AssertionError("the run ended before reaching the step")


def resume(run: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tuiwiz", "resume", str(run)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, demo_model) -> Path:
    run = tmp_path_factory.mktemp("whole") / "run"
    job = jobs.start(run, config=config())
    assert job.wait() == 0
    return run


def test_sigterm_then_resume_is_exact(tmp_path: Path, uninterrupted: Path):
    run = tmp_path / "run"
    job = jobs.start(run, config=config())
    wait_for_step(job, 2)  # early: the stop must land before the last step, on any machine
    os.kill(job.pid, signal.SIGTERM)
    job.wait()
    assert RunDir(run).status()["state"] == "stopped"
    resume(run)
    steps = [e["step"] for e in read_events(RunDir(run).events) if e["event"] == "step"]
    assert steps == [2, 4, 6, 8]  # continuous (one log every 2 steps), no restart at step 0
    assert losses(run) == losses(uninterrupted)  # bit for bit, at every step
    a, b = adapter_tensors(run), adapter_tensors(uninterrupted)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_a_stop_in_the_middle_of_a_logging_window_resumes_exactly(
    tmp_path: Path, uninterrupted: Path, monkeypatch
):
    """Stopped at step 5, between the losses logged at 4 and 6: the resumed run's loss at step 6
    still averages steps 5 and 6, as the run left alone does (the window travels in the
    checkpoint), so every logged loss is the same, bit for bit."""
    monkeypatch.setenv("TUIWIZ_FAULT", "stop@5")
    run = tmp_path / "run"
    assert jobs.start(run, config=config()).wait() == 3
    assert RunDir(run).latest_checkpoint()[0] == 5
    monkeypatch.delenv("TUIWIZ_FAULT")
    resume(run)
    assert sorted(losses(run)) == [2, 4, 6, 8]
    assert losses(run) == losses(uninterrupted)


def test_sigkill_then_resume_loses_at_most_save_steps(tmp_path: Path, uninterrupted: Path):
    run = tmp_path / "run"
    job = jobs.start(run, config=config())
    wait_for_step(job, 5)
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    status = RunDir(run).status()
    assert status["state"] == "failed" and "exited with code -9" in status["reason"]
    last_logged = max(losses(run))
    checkpoint_step, _ = RunDir(run).latest_checkpoint()
    assert last_logged - checkpoint_step <= 3  # save_steps
    resume(run)
    assert losses(run) == losses(uninterrupted)  # from the checkpoint on, the same run


def test_killing_the_launcher_leaves_training_running(tmp_path: Path, demo_model):
    """The launcher is killed outright (as by a dropped SSH session); the run still finishes."""
    run = tmp_path / "run"
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuiwiz",
            "run",
            "demo",
            "--output-dir",
            str(run),
            *(x for s in SHORT for x in ("--set", s)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in launcher.stdout:
        if "run directory" in line:
            break
    launcher.kill()
    launcher.wait()
    pid = RunDir(run).status()["pid"]
    assert process_alive(pid)
    assert os.getsid(pid) == pid  # its own session: no controlling terminal, no SIGHUP from it
    for event in follow(RunDir(run).events, stop=lambda: not process_alive(pid)):
        if event["event"] in ("finished", "failed"):
            break
    assert RunDir(run).status()["state"] == "finished"


def test_out_of_memory_fails_with_advice(tmp_path: Path, demo_model, monkeypatch):
    fixtures = Path(__file__).parent.parent / "fixtures" / "nvml"
    monkeypatch.setenv("TUIWIZ_FAULT", "oom@4")
    # A tiny GPU, so that the estimator has something to advise for the demo model.
    tiny = tmp_path / "tiny_gpu.json"
    snapshot = json.loads((fixtures / "h100_idle.json").read_text())
    for gpu in snapshot["gpus"]:
        gpu["total_bytes"], gpu["used_bytes"], gpu["free_bytes"] = 2**30, 2**30 - 2**20, 2**20
    tiny.write_text(json.dumps(snapshot))
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(tiny))
    run = tmp_path / "run"
    job = jobs.start(run, config=config())
    assert job.wait() == 1
    status = RunDir(run).status()
    assert status["state"] == "failed"
    assert status["reason"].startswith("CUDA out of memory")
    assert RunDir(run).latest_checkpoint()[0] == 3  # the last checkpoint is kept
    failed = [e for e in read_events(RunDir(run).events) if e["event"] == "failed"][0]
    assert failed["suggestions"] == status["suggestions"]
    assert isinstance(status["suggestions"], list)
    listing = subprocess.run(
        [sys.executable, "-m", "tuiwiz", "runs"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert "CUDA out of memory" in listing.stdout


def test_disk_full_while_saving_keeps_the_previous_checkpoint(
    tmp_path: Path, demo_model, monkeypatch
):
    monkeypatch.setenv("TUIWIZ_FAULT", "disk_full@6")
    run = tmp_path / "run"
    job = jobs.start(run, config=config())
    assert job.wait() == 1
    status = RunDir(run).status()
    assert status["state"] == "failed" and "No space left on device" in status["reason"]
    assert RunDir(run).latest_checkpoint()[0] == 3  # the half-written checkpoint-6 is ignored
    monkeypatch.delenv("TUIWIZ_FAULT")
    resume(run)
    assert RunDir(run).status()["state"] == "finished"


def test_two_processes_never_train_into_one_run(tmp_path: Path, demo_model):
    run = tmp_path / "run"
    # Steps enough to be training still when the second process has made its checks (the
    # run is stopped right after): it must be refused for the lock, not for a finished run.
    job = jobs.start(run, config=config("training.max_steps=2000"))
    wait_for_step(job, 1)
    result = subprocess.run(
        [sys.executable, "-m", "tuiwiz", "resume", str(run)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    job.stop()
    job.wait()
    assert result.returncode == 2
    assert "another process" in result.stderr and "is training into this run" in result.stderr


def test_a_token_in_the_environment_is_never_written(tmp_path: Path, demo_model, monkeypatch):
    secret = "hf_tuiwizTestSecret0123456789"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", secret)
    run = tmp_path / "run"
    assert jobs.start(run, config=config("training.max_steps=3")).wait() == 0
    written = [p for p in run.rglob("*") if p.is_file()]
    registry = Path(os.environ["TUIWIZ_DATA_DIR"])
    written += [p for p in registry.rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
