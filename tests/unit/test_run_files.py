"""A run directory and the registry as readers find them after crashes, pid reuse and old
versions: damaged files are skipped and said once, never a traceback or a wrong state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuiwiz.train import events, registry
from tuiwiz.train.rundir import RunDir


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.create()
    run.preset.write_text('[model]\nname_or_path = "m"\n[data]\npath = "/d.jsonl"\n')
    run.write_status(state="stopped", step=4, id="run")
    return run


GOOD = [
    {"event": "started", "time": 1.0, "step": 0, "max_steps": 8},
    {"event": "step", "time": 2.0, "step": 4, "loss": 1.5},
    {"event": "checkpoint", "time": 3.0, "step": 4, "path": "/x"},
]


@pytest.mark.parametrize(
    "damage",
    [
        b"\x00\x00\x00\x00\x00\x00",  # what a crash leaves in a file system's unwritten block
        b'{"event": "step", "step": 5, "loss": 1.2\xff}',  # not UTF-8
        b"[1, 2]",  # JSON, not an event
        b'{"event": "step", "step": "five", "loss": 1.0}',  # a field of the wrong kind
        b'{"event": "step", "step": 6, "loss": "NaN?"}',  # a step without its loss
        b'{"event": 5, "step": 6}',
    ],
    ids=["nul", "not-utf8", "not-an-object", "step-not-a-number", "no-loss", "kind-not-text"],
)
def test_a_damaged_event_line_is_skipped_and_said_once(run: RunDir, damage: bytes, capsys):
    lines = [json.dumps(e).encode() for e in GOOD]
    run.events.write_bytes(b"\n".join([lines[0], damage, *lines[1:]]) + b"\n")
    assert events.read_events(run.events) == GOOD
    assert events.read_events(run.events) == GOOD
    err = capsys.readouterr().err
    assert err.count("damaged line") == 1 and str(run.events) in err
    events.truncate_after(run.events, 4)  # what resume does: it must not break on the damage
    assert events.read_events(run.events) == GOOD


@pytest.mark.parametrize(
    "content",
    [b"[]", b"null", b"\xff\xfe{}", b'{"state": ["running"]}', b'{"state": "exploded"}'],
    ids=["list", "null", "not-utf8", "state-not-a-string", "unknown-state"],
)
def test_a_damaged_status_never_breaks_the_listing(run: RunDir, content: bytes, tmp_path, capsys):
    other = RunDir(tmp_path / "other")
    other.create()
    other.preset.write_text(run.preset.read_text())
    other.write_status(state="finished", step=8, id="other")
    registry.register(run, "damaged", 1.0)
    registry.register(other, "fine", 2.0)
    run.status_file.write_bytes(content)
    status = run.status()
    assert "state" not in status and registry.effective_state(status, run.path) == "unknown"
    listed = subprocess.run(
        [sys.executable, "-m", "tuiwiz", "runs", "--json"], capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert rows["other"]["state"] == "finished" and rows["run"]["state"] == "unknown"
    assert "Traceback" not in listed.stderr and str(run.status_file) in listed.stderr


def test_a_damaged_registry_entry_hides_only_its_run(run: RunDir):
    registry.register(run, "fine", 1.0)
    (registry.registry_dir() / "old.json").write_text(
        json.dumps({"id": "old", "path": str(run.path), "name": "x", "created_at": "2024-01-01"})
    )
    (registry.registry_dir() / "bytes.json").write_bytes(b"\xff\x00")
    assert [e.id for e, _ in registry.list_runs()] == ["run"]


def test_a_reused_pid_is_not_the_run(run: RunDir, tmp_path: Path):
    """After a crash, the pid in status.json can belong to the training process of another run:
    the run is crashed, and `tuiwiz stop` must not stop the other one."""
    from tuiwiz.errors import TuiwizError
    from tuiwiz.train.registry import request_stop

    other = tmp_path / "other-run"
    # A process whose command line is a tuiwiz training process's, of another run directory.
    impostor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(60)",
            "-m",
            "tuiwiz.train",
            "--run-dir",
            str(other),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert impostor.stdout.readline() == "up\n"
        status = run.write_status(state="running", pid=impostor.pid, host=None)
        assert registry.process_alive(impostor.pid)  # a training process...
        assert registry.process_alive(impostor.pid, other)  # ...of the other run...
        assert not registry.process_alive(impostor.pid, run.path)  # ...not of this one
        assert registry.effective_state(status, run.path) == "crashed"
        with pytest.raises(TuiwizError, match="not running"):
            request_stop(run)
        assert impostor.poll() is None  # untouched
    finally:
        impostor.kill()
        impostor.wait()


def test_a_relative_run_dir_argument_is_read_from_the_process_directory(run: RunDir):
    """The pid's --run-dir is relative to that process's working directory."""
    sleeper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(60)",
            "-m",
            "tuiwiz.train",
            "--run-dir",
            run.path.name,
        ],
        cwd=run.path.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sleeper.stdout.readline() == "up\n"
        assert registry.process_alive(sleeper.pid, run.path)
    finally:
        sleeper.kill()
        sleeper.wait()


def _checkpoint(run: RunDir, step: int) -> Path:
    path = run.checkpoints / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "COMPLETE").write_text(f"{step}\n")
    return path


def test_rotation_keeps_the_best_checkpoint(run: RunDir):
    for step in (2, 4, 6, 8):
        _checkpoint(run, step)
    run.rotate_checkpoints(1, best=str(run.checkpoints / "checkpoint-2"))
    assert [s for s, _ in run.complete_checkpoints()] == [2, 8]
    run.rotate_checkpoints(1, best=None)
    assert [s for s, _ in run.complete_checkpoints()] == [8]


def test_the_loss_window_is_restored_exactly(tmp_path: Path):
    """The trainer's float32 running sum goes through JSON and back without a bit changed."""
    import torch

    from tuiwiz.train.resume import LossWindow

    class Trainer:
        _tr_loss = torch.tensor(1.0, dtype=torch.float32) / 3 + torch.tensor(7.123456)
        _globalstep_last_logged = 15
        _total_loss_scalar = 123.456789012345

    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "checkpoint-17").mkdir(parents=True)
    saved = LossWindow(checkpoints, None, rank=0)
    saved.trainer = Trainer()
    saved.save(17)

    class Fresh:
        _tr_loss = torch.tensor(0.0)
        _globalstep_last_logged = 17
        _total_loss_scalar = 0.0

    restored = LossWindow(checkpoints, checkpoints / "checkpoint-17", rank=0)
    restored.trainer = Fresh()
    restored.restore(17)
    assert torch.equal(restored.trainer._tr_loss, Trainer._tr_loss)
    assert restored.trainer._globalstep_last_logged == 15
    assert restored.trainer._total_loss_scalar == Trainer._total_loss_scalar


def test_the_event_and_status_readers_need_no_textual_or_torch():
    code = (
        "import sys; from tuiwiz.train import events, registry, rundir; "
        "assert 'torch' not in sys.modules and 'textual' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code], env=os.environ.copy()).returncode == 0
