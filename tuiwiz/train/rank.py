"""One of torchrun's training processes: `python -m tuiwiz.train.worker --run-dir D --rank-process`.

torchrun starts one per GPU and gives each its RANK, LOCAL_RANK and WORLD_SIZE. A rank reads the
resolved preset (the run's preset.toml, or --config on the other nodes of a multi-node run) and
trains its share of every batch. Its output goes to its own log: rank 0 to train.log, rank N to
train-rankN.log. Only rank 0 writes events, status, checkpoint markers and the adapter.

The checks and the run directory's bookkeeping (create, or on resume drop later events and
incomplete checkpoints, note the checkpoint in status.json as `resume_from`) are done once,
before torchrun starts, by the supervisor or a batch script's --prepare step; every rank then
resumes from that same checkpoint. A rank that fails writes why to .failures/rankN.json and
exits non-zero; whoever started torchrun (the supervisor, or --finalize) records the first
failure as the run's reason. A stopped rank exits 0, like a finished one: a non-zero exit would
make torchrun take it for a failure and end the others.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

SUPERVISOR_ENV = "TUIWIZ_SUPERVISOR_PID"  # the supervisor's pid: ranks end when it is gone
PID_DIR_ENV = "TUIWIZ_PID_DIR"  # where ranks note their pids, for the supervisor's signals


def run_rank(run_dir: Path, config_file: Path | None) -> int:
    from tuiwiz.train.rundir import RunDir
    from tuiwiz.train.worker import Worker, _advice, _reason, _redirect_output

    rank = int(os.environ.get("RANK", "0"))
    run = RunDir(run_dir)
    _redirect_output(run.rank_log(rank))
    print(f"rank {rank} of {os.environ.get('WORLD_SIZE', '?')}: pid {os.getpid()}", flush=True)
    _watch_supervisor()
    _note_pid(rank)
    worker = Worker(run_dir, resume=False, rank=rank)
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    config: dict[str, Any] = {}
    try:
        config = _load(config_file or run.preset)
        ready = _ready(config)
        _attach(worker, rank)
        outcome = worker.train(config, ready)
        print(f"rank {rank}: {outcome}", flush=True)
        return 0
    except BaseException as e:  # noqa: BLE001 (every failure is recorded, then exits non-zero)
        traceback.print_exc()
        record_failure(run, rank, _reason(e), _advice(e, config) if config else [])
        return 1


def _load(path: Path) -> dict[str, Any]:
    from tuiwiz import presets

    return presets.load_run_preset(path)


def _ready(config: dict[str, Any]) -> dict[str, Any]:
    """What training needs (the supervisor already checked it all): model, tokenizer, data."""
    from tuiwiz import bundled
    from tuiwiz.train import builders

    model_path = bundled.resolve_model(config["model"]["name_or_path"], print)
    data = {**config["data"], "path": bundled.resolve_data(config["data"]["path"])}
    tokenizer = builders.load_tokenizer(model_path, config)
    return {"model_path": model_path, "tokenizer": tokenizer, "examples": None, "data": data}


def _attach(worker: Any, rank: int) -> None:
    """Join the run directory prepared before torchrun started: the checkpoint to resume from;
    rank 0 writes the events (and, with no supervisor, says which process trains)."""
    from tuiwiz.train import events

    status = worker.run.status()
    resume_from = status.get("resume_from")
    worker.resume_from = Path(resume_from) if resume_from else None
    if rank != 0:
        return
    worker.writer = events.EventWriter(worker.run.events)
    if not os.environ.get(SUPERVISOR_ENV):
        # Started by a batch script: this process is the one to signal, on this host.
        worker.run.write_status(pid=os.getpid(), host=socket.gethostname())


def record_failure(run: Any, rank: int, reason: str, suggestions: list[dict[str, Any]]) -> None:
    """Note why this rank failed, for the supervisor (the earliest failure is the cause)."""
    from tuiwiz.fileio import write_json_atomic

    try:
        run.failures.mkdir(exist_ok=True, mode=0o700)
        write_json_atomic(
            run.failures / f"rank{rank}.json",
            {
                "rank": rank,
                "time": time.time(),
                "host": socket.gethostname(),
                "reason": reason,
                "suggestions": suggestions,
                "log": str(run.rank_log(rank)),
            },
        )
    except OSError as e:  # the log still has the traceback
        print(f"rank {rank}: could not record the failure: {e}", file=sys.stderr)


def read_failures(run: Any) -> list[dict[str, Any]]:
    """The failures the ranks recorded, earliest first."""
    found = []
    for path in sorted(run.failures.glob("rank*.json")) if run.failures.is_dir() else []:
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(found, key=lambda f: f.get("time", 0))


def _note_pid(rank: int) -> None:
    folder = os.environ.get(PID_DIR_ENV)
    if folder:
        Path(folder, f"rank{rank}.pid").write_text(str(os.getpid()))


def _watch_supervisor() -> None:
    """End this process if the supervisor that started torchrun is gone (killed outright): a
    run whose supervisor is dead has no one left to record its outcome or forward a stop."""
    pid = os.environ.get(SUPERVISOR_ENV)
    if not pid:
        return

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGKILL)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="tuiwiz-watch-supervisor", daemon=True).start()
