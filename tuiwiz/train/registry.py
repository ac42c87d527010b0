"""The run registry: every run, wherever its directory is, findable from any working directory.

Each run leaves one small JSON file under `<data dir>/runs/` (XDG data home, or TUIWIZ_DATA_DIR)
naming its directory. Commands that take RUN accept a run directory's path, a run id, or a
unique prefix of an id.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuiwiz.errors import TuiwizError
from tuiwiz.fileio import write_json_atomic
from tuiwiz.paths import data_dir
from tuiwiz.train.rundir import RunDir
from tuiwiz.train.state import RunState, state_of

WORKER_MODULE = "tuiwiz.train"  # `python -m tuiwiz.train`: a training process


@dataclass(frozen=True)
class RunEntry:
    id: str
    path: Path
    name: str
    created_at: float


def registry_dir() -> Path:
    return data_dir() / "runs"


def _entry(raw: Any) -> RunEntry | None:
    """A registry file's entry, or None when it is damaged (a field missing or of the wrong
    type)."""
    if not isinstance(raw, dict):
        return None
    run_id, path, name, created = (raw.get(k) for k in ("id", "path", "name", "created_at"))
    if not (isinstance(run_id, str) and run_id and isinstance(path, str) and path):
        return None
    if not isinstance(created, int | float) or isinstance(created, bool):
        return None
    return RunEntry(run_id, Path(path), name if isinstance(name, str) else run_id, created)


def _entries() -> list[RunEntry]:
    folder = registry_dir()
    out = []
    for file in folder.glob("*.json") if folder.is_dir() else []:
        try:
            entry = _entry(json.loads(file.read_bytes()))
        except (OSError, ValueError):
            entry = None
        if entry is None:  # a damaged entry hides one run, it never breaks the listing
            from tuiwiz.notices import notice_once

            notice_once(f"{file}: a damaged run registry entry; that run is left out")
            continue
        out.append(entry)
    return sorted(out, key=lambda e: e.created_at)


def check_writable() -> None:
    """Fail with one line unless runs can be registered (a read-only home on a cluster node)."""
    import tempfile

    folder = registry_dir()
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise TuiwizError(
            f"{folder}: cannot write the run registry ({e.strerror or e}); tuiwiz registers every "
            "run there so that `tuiwiz runs` finds it. Make it writable, or set TUIWIZ_DATA_DIR "
            "to a writable directory"
        ) from None
    finally:
        for path in missing:  # a check leaves nothing behind (the run registers itself later)
            with contextlib.suppress(OSError):
                path.rmdir()


def register(run: RunDir, name: str, created_at: float) -> str:
    """Record a run; returns its id (the directory's name, made unique if needed)."""
    folder = registry_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = run.path.resolve()
    for entry in _entries():
        if entry.path == path:
            return entry.id
    base = run.path.name
    run_id, n = base, 1
    while (folder / f"{run_id}.json").exists():
        n += 1
        run_id = f"{base}-{n}"
    write_json_atomic(
        folder / f"{run_id}.json",
        {
            "id": run_id,
            "path": str(path),
            "name": name,
            "created_at": created_at,
        },
    )
    return run_id


def resolve(ref: str) -> RunDir:
    """A run from a directory path, an id, or a unique prefix of an id."""
    path = Path(ref).expanduser()
    if path.is_dir():
        run = RunDir(path.resolve())
        if not run.is_run():
            raise TuiwizError(f"{ref}: not a tuiwiz run directory (no preset.toml / status.json)")
        return run
    entries = _entries()
    exact = [e for e in entries if e.id == ref]
    matches = exact or [e for e in entries if e.id.startswith(ref)]
    if not matches:
        raise TuiwizError(
            f"no run '{ref}': give a run directory, a run id or a prefix of one (see `tuiwiz runs`)"
        )
    if len(matches) > 1:
        names = ", ".join(e.id for e in matches[:5])
        raise TuiwizError(f"'{ref}' matches several runs ({names}); give more of the id")
    run = RunDir(matches[0].path)
    if not run.is_run():
        raise TuiwizError(f"run '{matches[0].id}': its directory {run.path} is gone")
    return run


def process_alive(pid: Any, run_dir: str | Path | None = None) -> bool:
    """Whether `pid` is a live tuiwiz training process, and (with `run_dir`) the one training
    that run: after a crash the pid can be reused, even by the training process of another run.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    except OverflowError:
        return False  # not a pid at all
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust kill(0)
    if WORKER_MODULE.encode() not in args:
        return False
    return run_dir is None or _trains_into(pid, args, Path(run_dir))


def _trains_into(pid: int, args: list[bytes], run_dir: Path) -> bool:
    """Whether the process's `--run-dir` argument names `run_dir` (relative to its own working
    directory, as it read it)."""
    try:
        given = os.fsdecode(args[args.index(b"--run-dir") + 1])
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (ValueError, IndexError, OSError):
        return False
    return os.path.realpath(os.path.join(cwd, given)) == os.path.realpath(run_dir)


def on_this_host(status: dict[str, Any]) -> bool:
    """Whether the run's training process runs on this machine (so its pid means something
    here); runs started by a batch script on a cluster node are read from elsewhere too."""
    import socket

    host = status.get("host")
    return host is None or host == socket.gethostname()


def effective_state(status: dict[str, Any], run_dir: str | Path | None = None) -> RunState:
    """The status's state, or crashed when it says running but its process is gone (or the pid
    now belongs to another process: `run_dir` is the run the status belongs to)."""
    state = state_of(status.get("state"))
    if (
        state == RunState.RUNNING
        and on_this_host(status)
        and not process_alive(status.get("pid"), run_dir)
    ):
        return RunState.CRASHED
    return state


def request_stop(run: RunDir) -> int | None:
    """Ask a running run to save a checkpoint and stop (its training process then ends in
    state stopped): SIGTERM to its process, or, for a run that trains on another machine (a
    cluster node), the STOP file it checks at every step's end. Returns the pid signalled, or
    None when asked through the file. `tuiwiz stop` and the dashboard's stop key take this."""
    import signal

    status = run.status()
    state = effective_state(status, run.path)
    if state != RunState.RUNNING:
        raise TuiwizError(f"{run.path}: the run is not running (state: {state})")
    if not on_this_host(status):
        run.stop_file.write_text("stop\n")
        return None
    try:
        os.kill(status["pid"], signal.SIGTERM)
    except ProcessLookupError:
        raise TuiwizError(f"{run.path}: the training process has just ended") from None
    return status["pid"]


def list_runs() -> list[tuple[RunEntry, dict[str, Any]]]:
    """Every registered run whose directory still exists, with its status, oldest first."""
    return [(e, RunDir(e.path).status()) for e in _entries() if RunDir(e.path).is_run()]
