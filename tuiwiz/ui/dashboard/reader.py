"""Reads a run directory incrementally, in the dashboard's thread worker (never in the UI loop).

Each `poll()` returns what is new since the previous one: events after the last byte offset,
complete new lines of train.log, the status and its effective state. It only reads: attaching to
a run never changes its directory.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiwiz.errors import describe_error
from tuiwiz.train import events as ev
from tuiwiz.train.registry import effective_state
from tuiwiz.train.rundir import RunDir
from tuiwiz.train.state import RunState
from tuiwiz.ui.dashboard.loglines import tidy

LOG_TAIL_BYTES = 32 * 1024  # how much of an existing log is shown on attach
LOG_LINES = 500  # lines of the log the dashboard keeps


@dataclass
class Update:
    events: list[dict[str, Any]] = field(default_factory=list)
    reset: bool = False  # events.jsonl was rewritten (a resume dropped steps): start over
    status: dict[str, Any] = field(default_factory=dict)
    state: str = "unknown"
    log_lines: list[str] = field(default_factory=list)
    rss_bytes: int | None = None  # the training process's resident memory, while it runs
    latest_checkpoint: int | None = None  # the step of the newest complete checkpoint
    error: str | None = None  # the run directory cannot be read


def process_rss(pid: Any) -> int | None:
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _clean(line: str) -> str:
    """What a terminal would show of a line (the text after its last carriage return), with the
    Trainer's metric dicts as aligned columns."""
    return tidy(line.rstrip("\r").rsplit("\r", 1)[-1].expandtabs(4))


class RunReader:
    def __init__(self, run: RunDir) -> None:
        self.run = run
        self._events_offset = 0
        self._events_inode: int | None = None
        self._log_offset: int | None = None  # None: not read yet, start from the tail
        self._log_mid_line = False  # the tail started in the middle of a line

    def poll(self) -> Update:
        update = Update()
        try:
            if not self.run.path.is_dir():
                raise FileNotFoundError(f"{self.run.path}: no such directory")
            status = self.run.status()
            update.status = status if isinstance(status, dict) else {}
            state = effective_state(update.status, self.run.path) if update.status else None
            update.state = state or "unknown"
            update.events, update.reset = self._read_events()
            update.log_lines = self._read_log()
            if update.state == RunState.RUNNING:
                update.rss_bytes = process_rss(update.status.get("pid"))
            elif update.state in (RunState.FAILED, RunState.STOPPED, RunState.CRASHED):
                latest = self.run.latest_checkpoint()
                update.latest_checkpoint = latest[0] if latest else None
        except OSError as e:
            update.error = f"cannot read the run directory: {e.strerror or e}"
            if getattr(e, "filename", None):
                update.error += f" ({e.filename})"
        except Exception as e:  # shown as the run's state, never a stale "running"
            update.error = f"cannot read the run directory: {describe_error(e)}"
        return update

    def _read_events(self) -> tuple[list[dict[str, Any]], bool]:
        path = self.run.events
        try:
            stat = path.stat()
        except FileNotFoundError:
            return [], False
        reset = False
        if self._events_inode not in (None, stat.st_ino) or stat.st_size < self._events_offset:
            self._events_offset, reset = 0, True  # replaced (resume truncation): read it again
        self._events_inode = stat.st_ino
        events, self._events_offset = ev.read_new(path, self._events_offset)
        return events, reset

    def _read_log(self) -> list[str]:
        path: Path = self.run.log
        try:
            with path.open("rb") as f:
                if self._log_offset is None:
                    size = f.seek(0, os.SEEK_END)
                    self._log_offset = max(0, size - LOG_TAIL_BYTES)
                    self._log_mid_line = self._log_offset > 0
                f.seek(self._log_offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        chunk, self._log_offset = data[:end], self._log_offset + end
        lines = chunk.decode("utf-8", errors="replace").split("\n")[:-1]
        if self._log_mid_line and lines:
            lines, self._log_mid_line = lines[1:], False
        return [_clean(line) for line in lines]


class Inbox:
    """Updates from the reader thread, merged until the UI takes them (so they never pile up).
    Each belongs to a generation (one per run shown); a newer generation drops older updates."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: tuple[int, Update] | None = None

    def put(self, generation: int, update: Update) -> None:
        with self._lock:
            if self._pending is not None and self._pending[0] == generation:
                old = self._pending[1]
                if not update.reset and not update.error:
                    update.events = old.events + update.events
                    update.reset = old.reset
                    update.log_lines = (old.log_lines + update.log_lines)[-LOG_LINES:]
            self._pending = (generation, update)

    def take(self, generation: int) -> Update | None:
        with self._lock:
            if self._pending is None or self._pending[0] != generation:
                return None
            update, self._pending = self._pending[1], None
            return update
