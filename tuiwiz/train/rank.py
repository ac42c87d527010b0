"""One of torchrun's training processes: `python -m tuiwiz.train --run-dir D --rank-process`.

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
    from tuiwiz.train import failures, process
    from tuiwiz.train.rundir import RunDir

    rank = int(os.environ.get("RANK", "0"))
    run = RunDir(run_dir)
    process.redirect_output(run.rank_log(rank))
    print(f"rank {rank} of {os.environ.get('WORLD_SIZE', '?')}: pid {os.getpid()}", flush=True)
    _watch_supervisor()
    _note_pid(rank)
    # A rank must not leave alone (the others would wait for it forever): a stop asked before
    # it trains is kept, and it stops with the others at the end of the first step.
    stop_asked = threading.Event()
    process.on_stop(lambda signum, frame: stop_asked.set())
    config: dict[str, Any] | None = None
    try:
        config = _load(config_file or run.preset)
        session = _session(run, config, rank)
        session.pending_stop = stop_asked.is_set()
        process.on_stop(session.request_stop)
        state = session.train()
        print(f"rank {rank}: {state}", flush=True)
        return 0
    except BaseException as e:  # noqa: BLE001 (every failure is recorded, then exits non-zero)
        traceback.print_exc()
        record_failure(run, rank, failures.reason(e), failures.advice(e, config))
        return 1


def _load(path: Path) -> dict[str, Any]:
    from tuiwiz import presets

    return presets.load_run_preset(path)


def _session(run: Any, config: dict[str, Any], rank: int) -> Any:
    """This rank's session: what training needs (the supervisor already checked it all), and
    the run directory prepared before torchrun started (the checkpoint to resume from); rank 0
    writes the events (and, with no supervisor, says which process trains)."""
    from tuiwiz import bundled
    from tuiwiz.launch import launch_of
    from tuiwiz.train import builders, events
    from tuiwiz.train.preflight import Ready
    from tuiwiz.train.session import Session

    model_path = bundled.resolve_model(config["model"]["name_or_path"], print)
    data = {**config["data"], "path": bundled.resolve_data(config["data"]["path"])}
    tokenizer = builders.load_tokenizer(model_path, config)
    ready = Ready(model_path, tokenizer, data, None, None, launch_of(config))
    resume_from = run.status().get("resume_from")
    writer = None
    if rank == 0:
        writer = events.EventWriter(run.events)
        if not os.environ.get(SUPERVISOR_ENV):
            # Started by a batch script: this process is the one to signal, on this host.
            run.write_status(pid=os.getpid(), host=socket.gethostname())
    return Session(
        run, config, ready, writer, Path(resume_from) if resume_from else None, rank=rank
    )


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
