"""The process `tuiwiz run` and the wizard start for a run (through tuiwiz.train.jobs), in its own
session, apart from any terminal.

Before the run directory exists it checks everything that needs the model or the data
(tuiwiz.train.preflight), so that bad input leaves nothing behind, and tells its launcher the
outcome (tuiwiz.train.handshake). Then it opens the run directory (tuiwiz.train.opening) and from
there on talks only through it: its output goes to train.log, its progress to events.jsonl and
status.json. A run of one process trains here (tuiwiz.train.session); a run of several is
supervised here (tuiwiz.train.supervisor). `prepare` does the checks and the opening only, for a
batch script.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from pathlib import Path
from typing import Any

from tuiwiz.errors import TuiwizError
from tuiwiz.train import process
from tuiwiz.train.handshake import Handshake
from tuiwiz.train.rundir import RunDir
from tuiwiz.train.state import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, RunState


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # nothing trains yet: stop right away


def load_config(run: RunDir, handshake: Handshake, resume: bool, preset: Path | None) -> Any:
    """The configuration to train: the run's own (resume), a batch script's embedded preset
    (--prepare), or what the launcher sent."""
    from tuiwiz import presets

    if resume:
        if not run.is_run():
            raise TuiwizError(f"{run.path}: not a tuiwiz run directory (no preset.toml)")
        return run.config()
    if preset is not None:
        return presets.load_run_preset(preset)
    return handshake.read_config()


def run_process(
    run_dir: Path, resume: bool, prepare: bool = False, preset: Path | None = None
) -> int:
    from tuiwiz.train import failures, opening, preflight

    run = RunDir(run_dir)
    handshake = Handshake(plain=prepare)
    # Library chatter before the run exists is kept aside and put into the log afterwards.
    early = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (lives as long as the process)
    if prepare:
        resume = run.is_run()  # a batch script submitted again continues its run
        if resume and run.status().get("state") == RunState.FINISHED:
            handshake.say("error", message=f"{run.path}: the run has finished; nothing to train")
            return EXIT_BAD_INPUT
    else:
        os.dup2(early.fileno(), 2)
    process.on_stop(_interrupt)
    config = None
    try:
        config = load_config(run, handshake, resume, preset)
        ready = preflight.run_checks(config, run, handshake, resume)
        config = {**config, "launch": ready.launch.section()}  # preset.toml says what ran
        opened = opening.open_run(run, config, ready, resume, handshake)
        if prepare:
            ready.warm_cache(config["training"]["seed"], run)
            handshake.progress(f"ready to train {run.path}")
            return 0
    except (TuiwizError, KeyboardInterrupt, Exception) as e:
        if isinstance(e, TuiwizError):
            message, code = str(e), EXIT_BAD_INPUT
        elif isinstance(e, KeyboardInterrupt):
            message, code = "stopped before training started", EXIT_INTERRUPTED
        else:  # an unexpected failure still gets one readable line
            message, code = failures.reason(e), EXIT_FAILED
            traceback.print_exc()
        handshake.say("error", message=message)
        if not handshake.acknowledged() and not isinstance(e, KeyboardInterrupt):
            opening.record_unseen_failure(run, config, resume, message)
        return code
    role = "node" if opened.joined else "run"
    handshake.say("ready", run_dir=str(run.path), pid=os.getpid(), role=role)
    process.redirect_output(run.node_log(ready.launch.node_rank) if opened.joined else run.log)
    early.seek(0)
    os.write(2, early.read())
    if ready.launch.distributed:
        from tuiwiz.train.supervisor import Supervisor

        return Supervisor(run, config, ready, opened.joined).run()
    return _train(run, config, ready, opened)


def _train(run: RunDir, config: dict[str, Any], ready: Any, opened: Any) -> int:
    """A run of one process, trained here."""
    from tuiwiz.train.session import Session

    session = Session(run, config, ready, opened.writer, opened.resume_from)
    process.on_stop(session.request_stop)
    try:
        state = session.train()
    except KeyboardInterrupt:
        # A stop request that came before the trainer existed: nothing trained, nothing to save.
        run.write_status(
            state=RunState.STOPPED, phase="done", reason="stopped before the first step"
        )
        return RunState.STOPPED.exit_code
    except BaseException as e:
        traceback.print_exc()
        session.record_failure(e)
        return RunState.FAILED.exit_code
    finally:
        # The outcome is written: a resume may start now, while the libraries wind down.
        run.unlock()
    return state.exit_code
