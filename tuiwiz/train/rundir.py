"""The run directory: everything a run writes, and the only channel between it and the world.

preset.toml      the resolved preset, exactly what ran
events.jsonl     the event stream (see tuiwiz.train.events)
status.json      the current state: running, finished, failed or stopped (written atomically)
train.log        the training process's output (with several processes: rank 0's, and the
                 supervisor's and torchrun's)
train-rankN.log  the output of rank N > 0 (several processes); train-nodeN.log: node N's launcher
checkpoints/     checkpoint-N folders; complete ones hold a COMPLETE marker
adapter/         the final LoRA adapter with its tokenizer
.failures/       rankN.json: why rank N failed (several processes), read by the supervisor
STOP             asks the run to stop (written by `tuiwiz stop` where it cannot signal the run)
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from tuiwiz.errors import TuiwizError
from tuiwiz.fileio import write_atomic, write_json_atomic
from tuiwiz.train.state import WRITTEN

COMPLETE_MARKER = "COMPLETE"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# What the other nodes of a multi-node run may write into a run directory before node 0 creates it.
_OTHER_NODES = re.compile(r"^train-(rank|node)\d+\.log$")


# status.json's fields that readers rely on, with the types they rely on.
_STATUS_TYPES: dict[str, tuple[type, ...]] = {
    "state": (str,),
    "phase": (str,),
    "id": (str,),
    "host": (str,),
    "reason": (str,),
    "adapter": (str,),
    "checkpoint": (str,),
    "resume_from": (str,),
    "data_sha256": (str,),
    "pid": (int,),
    "step": (int,),
    "max_steps": (int,),
    "world_size": (int,),
    "effective_batch_size": (int,),
    "failed_rank": (int,),
    "loss": (int, float),
    "eval_loss": (int, float),
    "base_eval_loss": (int, float),
    "epoch": (int, float),
    "started_at": (int, float),
    "updated_at": (int, float),
    "suggestions": (list,),
}


def _damaged(path: Path, what: str) -> None:
    from tuiwiz.notices import notice_once

    notice_once(f"{path}: {what}; ignoring what cannot be read", key=f"damaged:{path}")


def clean_status(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """`raw` without the fields whose type is wrong (None stays: a field not known yet)."""
    out = {}
    bad = []
    for name, value in raw.items():
        types = _STATUS_TYPES.get(name)
        ok = (
            types is None
            or value is None
            or (isinstance(value, types) and not isinstance(value, bool))
        )
        if ok and name == "suggestions" and value is not None:
            ok = all(isinstance(s, dict) and isinstance(s.get("overrides"), list) for s in value)
        if ok:
            out[name] = value
        else:
            bad.append(name)
    if out.get("state") is not None and out["state"] not in WRITTEN:
        bad.append("state")
        del out["state"]
    if bad:
        _damaged(path, f"field(s) of the wrong kind: {', '.join(sorted(set(bad)))}")
    return out


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None

    preset = property(lambda self: self.path / "preset.toml")
    events = property(lambda self: self.path / "events.jsonl")
    status_file = property(lambda self: self.path / "status.json")
    log = property(lambda self: self.path / "train.log")
    checkpoints = property(lambda self: self.path / "checkpoints")
    adapter = property(lambda self: self.path / "adapter")
    failures = property(lambda self: self.path / ".failures")
    stop_file = property(lambda self: self.path / "STOP")

    def rank_log(self, rank: int) -> Path:
        """Where a rank process writes its output: rank 0 the run's log, others their own."""
        return self.log if rank == 0 else self.path / f"train-rank{rank}.log"

    def node_log(self, node: int) -> Path:
        return self.path / f"train-node{node}.log"

    def create(self) -> None:
        """Make the directory; it must not exist yet, or be empty (but for the logs of other nodes
        of a multi-node run that started first)."""
        if self.path.exists() and (
            not self.path.is_dir()
            or any(not _OTHER_NODES.match(entry.name) for entry in self.path.iterdir())
        ):
            raise TuiwizError(
                f"{self.path}: already exists and is not empty; choose another --output-dir"
            )
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)  # runs may hold private data; owner only on shared servers

    def is_run(self) -> bool:
        return self.preset.is_file() and self.status_file.is_file()

    @property
    def label(self) -> str:
        """How people name the run: its registry id, or its directory's name."""
        return str(self.status().get("id") or self.path.name)

    def config(self, overrides: list[str] | None = None) -> dict[str, Any]:
        """The run's resolved preset (preset.toml), with `overrides` (`--set` values) applied."""
        from tuiwiz.presets import load_run_preset

        return load_run_preset(self.preset, overrides)

    def status(self) -> dict[str, Any]:
        """status.json's fields; what is damaged (not JSON, not UTF-8, not an object, a field of
        the wrong type) is left out and said once, so one bad file never breaks a listing."""
        try:
            raw = json.loads(self.status_file.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            _damaged(self.status_file, f"unreadable ({type(e).__name__})")
            return {}
        if not isinstance(raw, dict):
            _damaged(self.status_file, f"not a JSON object ({type(raw).__name__})")
            return {}
        return clean_status(raw, self.status_file)

    def write_status(self, **fields: Any) -> dict[str, Any]:
        status = {**self.status(), **fields, "updated_at": time.time()}
        write_json_atomic(self.status_file, status)
        return status

    def write_preset(self, text: str) -> None:
        write_atomic(self.preset, text)

    def lock(self) -> None:
        """Hold an exclusive lock for as long as this process trains into the directory."""
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = self.status().get("pid", "?")
            raise TuiwizError(
                f"{self.path}: another process (pid {pid}) is training into this run directory"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None

    def complete_checkpoints(self) -> list[tuple[int, Path]]:
        """(step, path) of every checkpoint that was completely written, oldest first."""
        found = []
        for entry in self.checkpoints.iterdir() if self.checkpoints.is_dir() else []:
            match = _CHECKPOINT.match(entry.name)
            if match and (entry / COMPLETE_MARKER).is_file():
                found.append((int(match.group(1)), entry))
        return sorted(found)

    def remove_incomplete_checkpoints(self) -> list[Path]:
        """Delete checkpoint folders a crash left half-written; returns what was removed."""
        import shutil

        complete = {path for _, path in self.complete_checkpoints()}
        removed = []
        for entry in self.checkpoints.iterdir() if self.checkpoints.is_dir() else []:
            if _CHECKPOINT.match(entry.name) and entry not in complete:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        return removed

    def rotate_checkpoints(self, keep: int | None, best: str | Path | None = None) -> None:
        """Keep the newest `keep` complete checkpoints (all when keep is None or < 1), and the
        `best` one (the trainer's best_model_checkpoint with load_best_model_at_end) whatever
        its age, as the trainer's own rotation does."""
        import shutil

        if not keep or keep < 1:
            return
        spared = Path(best).name if best else None
        for _, path in self.complete_checkpoints()[:-keep]:
            if path.name != spared:
                shutil.rmtree(path, ignore_errors=True)

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        checkpoints = self.complete_checkpoints()
        return checkpoints[-1] if checkpoints else None
