"""The supervisor: the training process of a run with several processes.

`tuiwiz run` starts the training process as always (own session, handshake, run directory); when
the preset asks for more than one process, that process does not train but supervises: it
starts torchrun in a process group of its own, running one rank process per GPU
(tuiwiz.train.rank), forwards SIGTERM / SIGINT (`tuiwiz stop`, Ctrl-C) straight to the ranks of
its node, so that they save and stop together, and waits. When the ranks end without a final
state (a rank failed, or was killed), it records the earliest failure as the run's reason. So
the launcher, the registry, `tuiwiz stop`, `tuiwiz runs` and resume see one process and one
run, as before.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tuiwiz import presets
from tuiwiz.train import process
from tuiwiz.train.events import EventWriter
from tuiwiz.train.preflight import Ready
from tuiwiz.train.rank import PID_DIR_ENV, SUPERVISOR_ENV, read_failures
from tuiwiz.train.rundir import RunDir
from tuiwiz.train.state import RunState, state_of


class Supervisor:
    def __init__(self, run: RunDir, config: dict[str, Any], ready: Ready, joined: bool) -> None:
        self.run_dir = run
        self.config = config
        self.ready = ready
        self.joined = joined  # another node of a multi-node run: node 0 owns the run's files
        self.stop_requested = False
        self.signalled: set[int] = set()
        self.pid_dir = Path(tempfile.mkdtemp(prefix="tuiwiz-ranks-"))

    def request_stop(self, signum: int, frame: Any) -> None:
        self.stop_requested = True
        self.forward(signal.SIGTERM)  # and from the wait loop, to ranks not started yet

    def run(self) -> int:
        from tuiwiz.train.failures import reason
        from tuiwiz.train.torchrun import torchrun_command

        process.on_stop(self.request_stop)
        config_file = None
        try:
            # Once per node, not per rank; the node that owns the run shows its progress.
            self.ready.warm_cache(
                self.config["training"]["seed"], None if self.joined else self.run_dir
            )
            if self.joined:
                # Another node: its ranks read this node's resolved preset (node 0's is in the
                # run directory; on a filesystem that is not shared, there is none to read).
                config_file = self.pid_dir / "preset.toml"
                config_file.write_text(presets.to_toml(self.config))
            else:
                self.run_dir.write_status(phase="starting", world_size=self.ready.launch.world_size)
            command = torchrun_command(self.ready.launch, self.run_dir.path, config_file)
            print(f"supervisor: {shlex.join(command)}", flush=True)
            code = self.wait(command)
        except BaseException as e:
            if self.joined:
                raise
            record_outcome(self.run_dir, 1, reason=reason(e))
            return RunState.FAILED.exit_code
        finally:
            shutil.rmtree(self.pid_dir, ignore_errors=True)
        print(f"supervisor: torchrun exited with code {code}", flush=True)
        if self.joined:
            return 0 if code == 0 else RunState.FAILED.exit_code
        return record_outcome(self.run_dir, code, stop_requested=self.stop_requested)

    def wait(self, command: list[str]) -> int:
        env = {
            **os.environ,
            SUPERVISOR_ENV: str(os.getpid()),
            PID_DIR_ENV: str(self.pid_dir),
        }
        # Its own process group and session: signals meant for the supervisor stay with it.
        torchrun = subprocess.Popen(command, env=env, start_new_session=True)
        while True:
            try:
                return torchrun.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if self.stop_requested:
                    self.forward(signal.SIGTERM)
                    if not self.signalled:
                        # No rank process yet (torchrun still waits for the other nodes, or is
                        # starting them): nothing trains, so nothing to save; end torchrun.
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(torchrun.pid, signal.SIGTERM)

    def forward(self, signum: int) -> None:
        """Send `signum` to every rank of this node not signalled yet (ranks note their pids)."""
        for path in self.pid_dir.glob("rank*.pid"):
            try:
                pid = int(path.read_text())
            except (OSError, ValueError):
                continue  # being written
            if pid in self.signalled:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
            self.signalled.add(pid)


def record_outcome(
    run: RunDir, code: int, reason: str | None = None, stop_requested: bool = False
) -> int:
    """The run's exit code once its ranks have ended; when no rank wrote a final state, writes
    state failed (or stopped) with the earliest failure a rank recorded."""
    status = run.status()
    state = state_of(status.get("state"))
    if state.final:  # written by rank 0: finished, stopped, or failed (diverged)
        return state.exit_code
    step = status.get("step", 0)
    failures = read_failures(run)
    suggestions: list[dict[str, Any]] = []
    rank = None
    if reason is None and failures:
        first = failures[0]
        rank = first.get("rank")
        suggestions = first.get("suggestions") or []
        reason = f"{first.get('reason')} (rank {rank}; log: {first.get('log')})"
    if reason is None and stop_requested:
        run.write_status(
            state=RunState.STOPPED, phase="done", reason="stopped before the first step"
        )
        return RunState.STOPPED.exit_code
    if reason is None:
        reason = (
            f"the training processes exited with code {code} without a final state "
            f"(see {run.log} and the train-rank*.log files beside it)"
        )
    writer = EventWriter(run.events)
    writer.write("failed", step=step, reason=reason, suggestions=suggestions, rank=rank)
    writer.close()
    run.write_status(
        state=RunState.FAILED,
        phase="done",
        reason=reason,
        suggestions=suggestions,
        failed_rank=rank,
    )
    return RunState.FAILED.exit_code


def finalize(run: RunDir, code: int) -> int:
    """`--finalize CODE`: a batch script's last step, after torchrun exited with CODE."""
    if not run.is_run():
        print(f"tuiwiz: error: {run.path}: not a tuiwiz run directory", flush=True)
        return 2
    outcome = record_outcome(run, code)
    print(f"tuiwiz: {run.path}: {run.status().get('state')}", flush=True)
    return outcome
