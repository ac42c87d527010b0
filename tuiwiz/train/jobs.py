"""Start training processes and wait for them: the one path every launch takes (CLI and TUI).

The training process starts in a new session, so it has no controlling terminal: closing the
terminal or the TUI does not reach it. The launcher waits only for its handshake (the run
directory exists, or the one-line reason it does not), then follows the run directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuiwiz.errors import TuiwizError
from tuiwiz.train.handshake import ACK, HANDSHAKE
from tuiwiz.train.rundir import RunDir
from tuiwiz.train.state import RunState
from tuiwiz.train.torchrun import ENTRY


@dataclass
class Job:
    run: RunDir
    process: subprocess.Popen
    # "run": this process trains the run (or supervises its processes) and owns its status;
    # "node": it starts the processes of another node of a multi-node run, node 0 owns the run.
    role: str = "run"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Ask for a graceful stop: the trainer saves a checkpoint and ends in state stopped."""
        if self.alive():
            os.kill(self.process.pid, signal.SIGTERM)

    def wait(self) -> int:
        code = self.process.wait()
        if self.role == "node":
            return code
        status = self.run.status()
        if status.get("state") == RunState.RUNNING:
            # The process is gone without writing a final state (killed, or crashed hard).
            reason = f"training process exited with code {code} (see {self.run.log})"
            self.run.write_status(state=RunState.FAILED, phase="done", reason=reason)
        return code

    def reap_in_background(self) -> Job:
        """Wait for the process in a daemon thread (recording a hard crash, as `wait` does), for
        a launcher that does not follow the run itself: no zombie is left behind."""
        import threading

        threading.Thread(target=self.wait, name="tuiwiz-reaper", daemon=True).start()
        return self


def default_run_dir(name: str, root: Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = (root or Path("runs")) / f"{safe}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path.resolve()


def _acknowledge(process: subprocess.Popen) -> None:
    """Tell the training process its last handshake line arrived (see worker.Handshake)."""
    try:
        process.stdin.write(ACK + "\n")
        process.stdin.close()
    except (OSError, ValueError):  # it has exited already
        pass


def start(
    run_dir: Path,
    config: dict[str, Any] | None = None,
    resume: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> Job:
    """Start a training process; returns once the run directory exists.

    Raises TuiwizError with the process's one-line reason when the run cannot start.
    """
    from tuiwiz import compat

    compat.check_command("run")  # before anything starts (the wizard launches through here too)
    command = [sys.executable, *ENTRY, "--run-dir", str(run_dir)]
    if resume:
        command.append("--resume")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    if config is not None:
        process.stdin.write(json.dumps(config) + "\n")
        process.stdin.flush()
    stray: list[str] = []
    for line in process.stdout:
        if not line.startswith(HANDSHAKE):
            stray.append(line.rstrip())
            continue
        message = json.loads(line[len(HANDSHAKE) :])
        if message["kind"] == "progress":
            progress(message["message"])
        elif message["kind"] == "ready":
            _acknowledge(process)
            process.stdout.close()
            return Job(RunDir(message["run_dir"]), process, message.get("role", "run"))
        elif message["kind"] == "error":
            _acknowledge(process)
            process.wait()
            raise TuiwizError(message["message"])
    _acknowledge(process)
    code = process.wait()
    tail = " | ".join(stray[-3:]) or "no output"
    raise TuiwizError(f"the training process exited with code {code} before starting: {tail}")
