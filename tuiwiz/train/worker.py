"""The training process: `python -m tuiwiz.train.worker --run-dir DIR [--resume]`.

It runs in its own session, apart from any terminal. Before the run directory exists it checks
everything that needs the model or the data (so bad input leaves nothing behind) and tells its
launcher the outcome on stdout, one handshake line. From then on it talks only through the run
directory: its output goes to train.log, its progress to events.jsonl and status.json.

When the preset's [launch] asks for several processes, this process becomes their supervisor
(tuiwiz.train.supervisor): it starts torchrun, which starts the rank processes
(`--rank-process`, tuiwiz.train.rank) that train. `--prepare` and `--finalize` are the
supervisor's first and last steps on their own, for batch scripts (tuiwiz.launch.slurm_script).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

HANDSHAKE = "TUIWIZ-HANDSHAKE "
ACK = "ack"
ACK_TIMEOUT = 10.0  # seconds a launcher has to acknowledge the last handshake line


class Handshake:
    """The start of a run, between this process and the one that launched it (`tuiwiz run`, the
    wizard): progress lines and one last line (ready, or error) on stdout, and the launcher's
    acknowledgement of that last line on stdin.

    The launcher can vanish at any moment (a dropped SSH connection): writing to it then fails,
    and this process carries on without it. Whether the launcher saw the last line is what the
    acknowledgement tells: a run that could not start, and whose reason nobody saw, leaves that
    reason where `tuiwiz runs` shows it (see _record_unseen_failure).
    """

    def __init__(self) -> None:
        self.plain = False  # no launcher (--prepare in a batch script): plain lines on stderr
        self.gone = False

    def say(self, kind: str, **fields: Any) -> None:
        if self.plain:
            if "message" in fields:
                prefix = "error: " if kind == "error" else ""
                print(f"tuiwiz: {prefix}{fields['message']}", file=sys.stderr, flush=True)
            return
        if self.gone:
            return
        try:
            sys.stdout.write(HANDSHAKE + json.dumps({"kind": kind, **fields}) + "\n")
            sys.stdout.flush()
        except OSError:  # BrokenPipeError: the launcher is gone
            self._lost()

    def _lost(self) -> None:
        self.gone = True
        # Later writes (and the interpreter's last flush) must not fail on the broken pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)

    def read_config(self) -> Any:
        """The configuration the launcher sends first: one JSON line."""
        return json.loads(sys.stdin.readline())

    def acknowledged(self) -> bool:
        """Whether the launcher acknowledged the last line (False once it is gone)."""
        import select

        if self.plain:
            return True
        if self.gone:
            return False
        try:
            readable, _, _ = select.select([sys.stdin], [], [], ACK_TIMEOUT)
            return bool(readable) and sys.stdin.readline().strip() == ACK
        except (OSError, ValueError):
            return False


channel = Handshake()


def say(kind: str, **fields: Any) -> None:
    """A handshake line to the launcher (before the run starts)."""
    channel.say(kind, **fields)


class Worker:
    def __init__(self, run_dir: Path, resume: bool, rank: int | None = None) -> None:
        from tuiwiz.train.rundir import RunDir

        self.run = RunDir(run_dir)
        self.resume = resume
        self.rank = rank  # None in the launched process; the global rank in a rank process
        self.callback = None  # set once the trainer exists; signals before that just exit
        self.writer = None
        self.pending_stop = False  # a rank's stop request from before its trainer existed
        self.joined = False  # a node > 0 of a multi-node run: node 0 keeps the run's files
        self.gpus = 0
        self.resume_from: Path | None = None
        self.prepare_only = False  # --prepare: a batch script continues (or starts) the run
        self.data_sha256: str | None = None  # what the run trains on (recorded, checked later)

    @property
    def main(self) -> bool:
        """Whether this process writes the run's events, status and adapter."""
        return self.rank in (None, 0)

    # --- before the run directory exists ------------------------------------------------
    def load_config(self, preset_file: Path | None = None) -> dict[str, Any]:
        from tuiwiz import presets
        from tuiwiz.errors import TuiwizError

        if not self.resume:
            if preset_file is not None:  # --prepare of a batch script: the embedded preset
                return presets.load_run_preset(preset_file)
            return channel.read_config()
        if not self.run.is_run():
            raise TuiwizError(f"{self.run.path}: not a tuiwiz run directory (no preset.toml)")
        return self.run.config()

    def preflight(self, config: dict[str, Any]) -> dict[str, Any]:
        """Check what needs the model and data; returns what the run needs later."""
        from tuiwiz import bundled
        from tuiwiz.data import identity, prepare
        from tuiwiz.inspect import model as inspect_model
        from tuiwiz.train import builders

        model_ref = config["model"]["name_or_path"]
        if config["model"]["trust_remote_code"]:
            say(
                "progress",
                message=f"warning: trust_remote_code is on: Python code from "
                f"{model_ref} will run on this machine",
            )
        self.check_launch(config)
        if not self.resume:
            from tuiwiz.train import registry

            registry.check_writable()  # before anything of the run exists
        model_path = bundled.resolve_model(model_ref, lambda m: say("progress", message=m))
        # The preset keeps "tuiwiz:demo-data"; only the copy used for reading is resolved.
        data = {**config["data"], "path": bundled.resolve_data(config["data"]["path"])}
        summary = inspect_model.summarize(
            model_path, config["model"]["revision"], config["model"]["trust_remote_code"]
        )
        inspect_model.check_target_modules(
            config["lora"]["target_modules"], list(summary.linear_modules())
        )
        self.data_sha256 = identity.fingerprint(data)
        if self.resume:
            run = self.run.status().get("id") or self.run.path.name
            identity.check_unchanged(self.run.status().get("data_sha256"), data, run, "resuming it")
        tokenizer = self.checked_tokenizer(model_path, config)
        cached = prepare.is_cached(data, tokenizer)
        if not cached and (problem := prepare.cache_problem()):
            say("progress", message=problem)
        normalized = None if cached else prepare.load_examples(data)
        has_validation = data["validation_split"] > 0
        builders.training_arguments(
            config, self.run.checkpoints, has_validation, notice=lambda m: None
        )
        training = config["training"]
        if 0 < training["max_steps"] < training["logging_steps"]:
            say(
                "progress",
                message=f"logging_steps = {training['logging_steps']} is more than max_steps = "
                f"{training['max_steps']}: no step will log its loss (the run's mean loss is "
                "reported at the end)",
            )
        if builders.device_kind() == "cpu":
            say(
                "progress",
                message="no CUDA GPU found: training runs on the CPU (slow for real models)",
            )
        return {
            "model_path": model_path,
            "tokenizer": tokenizer,
            "examples": normalized,
            "data": data,
        }

    @staticmethod
    def checked_tokenizer(model_path: str, config: dict[str, Any]) -> Any:
        """The tokenizer training uses; a model without a working one is refused here (it would
        otherwise train on end-of-sequence tokens alone)."""
        from tuiwiz.data.preview import NoTokenizer, tokenizer_for
        from tuiwiz.errors import ModelError

        try:
            return tokenizer_for(model_path, config)
        except NoTokenizer as e:
            raise ModelError(
                f"training needs the model's tokenizer: {e.reason}; add the tokenizer files to "
                f"{e.model}, or use the model's Hub id"
            ) from None

    def check_launch(self, config: dict[str, Any]) -> None:
        """[launch] against this machine's GPUs (fsdp needs CUDA, one process per GPU)."""
        import torch

        from tuiwiz import launch

        cuda = torch.cuda.is_available()
        self.gpus = launch.visible_gpus() if cuda else 0
        if cuda and self.gpus == 0:
            self.gpus = torch.cuda.device_count()  # CUDA without NVML readings
        launch.check(config, self.gpus, cuda)

    def open_run(self, config: dict[str, Any]) -> None:
        import socket

        from tuiwiz import launch, presets
        from tuiwiz.train import events

        if launch.settings(config)["node_rank"] > 0:
            # Another node of a multi-node run: node 0 creates, registers and writes the run;
            # this one only keeps its processes' logs there (a shared or an identical path).
            self.joined = True
            self.run.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            return
        if self.resume:
            self.run_id = self.run.status().get("id") or self.run.path.name
            self.run.lock()
            # Checked again now that no other process can train into the run: it may have
            # finished its last step while this process started.
            if self.run.status().get("state") == "finished":
                from tuiwiz.errors import TuiwizError

                raise TuiwizError(f"{self.run.path}: the run has finished; nothing to resume")
            for path in self.run.remove_incomplete_checkpoints():
                print(f"removed the incomplete checkpoint {path}", file=sys.stderr)
            latest = self.run.latest_checkpoint()
            if latest is None:
                # Stopped or failed before its first checkpoint: nothing to continue from, so
                # it trains again from step 0, in its own directory.
                say("progress", message="no checkpoint yet: training starts again from step 0")
                from tuiwiz.fileio import write_atomic

                write_atomic(self.run.events, "")
                self.run.write_preset(presets.to_toml(config))
                self.resume_from = None
            else:
                events.truncate_after(self.run.events, latest[0])
                self.resume_from = latest[1]
            self.run.stop_file.unlink(missing_ok=True)  # a stop asked of the run before
        else:
            self.create_run(config)
        self.run.write_status(
            id=self.run_id,
            state="running",
            phase="preparing",
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=self.run.status().get("started_at", time.time()),
            reason=None,
            suggestions=None,
            failed_rank=None,
            resume_from=str(self.resume_from) if self.resume_from else None,
            data_sha256=self.data_sha256,
        )
        shutil.rmtree(self.run.failures, ignore_errors=True)  # failures of an earlier attempt
        self.writer = events.EventWriter(self.run.events)

    def create_run(self, config: dict[str, Any]) -> None:
        """A new run directory, with its preset, registered; if any of it fails, nothing of it
        is left behind (the same --output-dir works once the cause is fixed)."""
        from tuiwiz import presets
        from tuiwiz.train import registry

        existed = self.run.path.exists()
        self.run.create()
        try:
            self.run.lock()
            self.run.write_preset(presets.to_toml(config))
            self.resume_from = None
            self.run_id = registry.register(self.run, config["name"], time.time())
        except BaseException:
            self.run.unlock()
            for name in ("preset.toml", ".lock"):
                (self.run.path / name).unlink(missing_ok=True)
            if not existed:
                shutil.rmtree(self.run.path, ignore_errors=True)
            raise

    def warm_data_cache(self, config: dict[str, Any], ready: dict[str, Any]) -> None:
        """Tokenize once, here, so that the rank processes all read the tokenization cache."""
        from tuiwiz.data import prepare

        prepare.prepare(
            ready["data"],
            ready["tokenizer"],
            seed=config["training"].get("seed", 42),
            examples=ready["examples"],
            log=print,
        )

    # --- the run ------------------------------------------------------------------------
    def train(self, config: dict[str, Any], ready: dict[str, Any]) -> str:
        from transformers.utils import logging as hf_logging

        from tuiwiz.data import prepare
        from tuiwiz.train import builders
        from tuiwiz.train.callbacks import BaseEvalCallback, EventsCallback

        hf_logging.disable_progress_bar()
        training = config["training"]
        if builders.uses_fsdp(config):
            # With cpu_ram_efficient_loading, transformers reads the weights on the first process
            # only when it knows that FSDP (accelerate) will distribute them.
            os.environ.setdefault("ACCELERATE_USE_FSDP", "true")
        train_ds, eval_ds, report = prepare.prepare(
            ready["data"],
            ready["tokenizer"],
            seed=training.get("seed", 42),
            examples=ready["examples"],
            log=print,
        )
        print(f"data: {json.dumps(report.__dict__)}", flush=True)
        args = builders.training_arguments(config, self.run.checkpoints, eval_ds is not None)
        from transformers import set_seed

        # The adapters are initialized randomly when the model is built, before the trainer
        # seeds anything: seed first, or two runs of one preset start from different adapters.
        set_seed(args.seed)
        model = builders.load_model(ready["model_path"], config)
        trainable, total = model.get_nb_trainable_parameters()
        print(f"model: {total:,} parameters, {trainable:,} trainable ({trainable / total:.3%})")
        from tuiwiz import launch
        from tuiwiz.config import effective_batch_size

        distributed = args.world_size > 1
        started = {
            "device": builders.device_kind(),
            "data_format": report.format,
            "train_examples": report.train_examples,
            "validation_examples": report.validation_examples,
            "effective_batch_size": effective_batch_size(config, args.world_size),
            "world_size": args.world_size,
            "strategy": launch.settings(config)["strategy"] if distributed else None,
            "trainable_params": trainable,
            "total_params": total,
            "resumed_from": str(self.resume_from) if self.resume_from else None,
        }
        limit = config["training"].get("save_total_limit")
        self.callback = EventsCallback(
            self.run,
            self.writer,
            started,
            save_total_limit=limit,
            main=self.main,
            distributed=distributed,
        )
        self.callback.stop_requested = self.pending_stop
        from trl import SFTTrainer

        from tuiwiz.train import faults
        from tuiwiz.train.resume import (
            LossWindow,
            final_step,
            load_adapter_in_place,
            load_adapter_weights,
        )

        window = LossWindow(self.run.checkpoints, self.resume_from, self.rank or 0)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=ready["tokenizer"],
            callbacks=[window, self.callback],  # the window is saved before COMPLETE is marked
        )
        window.trainer = trainer
        faults.install(trainer, self.callback)
        if self.resume_from is not None and not builders.uses_fsdp(config):
            load_adapter_in_place(trainer)  # FSDP loads its own (sharded) checkpoint format
        if self.resume_from is not None and (step := final_step(self.resume_from)) is not None:
            # Stopped at its last step (by an older tuiwiz): nothing is left to train, only
            # the adapter to write, from that checkpoint.
            load_adapter_weights(trainer.model, self.resume_from)
            trainer.state.global_step = trainer.state.max_steps = step
            return self.finish(trainer, {}, ready["tokenizer"], config)
        if self.resume_from is None and eval_ds is not None and not args.eval_on_start:
            # The base model's validation loss, as the `eval` event of step 0 marked "base".
            trainer.add_callback(BaseEvalCallback(trainer, self.callback))
        result = trainer.train(
            resume_from_checkpoint=str(self.resume_from) if self.resume_from else None
        )
        return self.finish(trainer, result.metrics, ready["tokenizer"], config)

    def finish(
        self, trainer: Any, metrics: dict[str, Any], tokenizer: Any, config: dict[str, Any]
    ) -> str:
        """Record how training ended; a finished run also gets its adapter, written aside first."""
        step = trainer.state.global_step
        if self.callback.diverged_at is not None:
            return self.fail_diverged(trainer, config)
        # A stop that lands on the last step has nothing left to train: the run is finished.
        if self.callback.stop_requested and step < trainer.state.max_steps:
            if self.main:
                latest = self.run.latest_checkpoint()
                self.writer.write(
                    "stopped", step=step, checkpoint=str(latest[1]) if latest else None
                )
                self.run.write_status(state="stopped", phase="done", step=step)
            return "stopped"
        staging = self.run.path / ".adapter.partial"
        if self.main:
            shutil.rmtree(staging, ignore_errors=True)
        if getattr(trainer, "is_fsdp_enabled", False):
            # One adapter file, gathered from the shards (every rank takes part).
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(staging))  # with several processes, only rank 0 writes
        if not self.main:
            return "finished"
        tokenizer.save_pretrained(str(staging))
        shutil.rmtree(self.run.adapter, ignore_errors=True)
        staging.rename(self.run.adapter)
        self.writer.write(
            "finished",
            step=step,
            loss=self.callback.last_loss,
            train_loss=metrics.get("train_loss"),
            train_runtime=metrics.get("train_runtime"),
            adapter=str(self.run.adapter),
        )
        self.run.write_status(
            state="finished", phase="done", step=step, adapter=str(self.run.adapter)
        )
        return "finished"

    def fail_diverged(self, trainer: Any, config: dict[str, Any]) -> str:
        """The weights stopped being finite numbers: the run fails, with what to change; its
        checkpoints (all saved before) are kept, and no adapter is written."""
        from tuiwiz.train.diverged import advice, reason

        if self.main:
            latest = self.run.latest_checkpoint()
            why = reason(self.callback.diverged_at, config, latest[1] if latest else None)
            suggestions = advice(config)
            self.writer.write(
                "failed",
                step=self.callback.diverged_at,
                reason=why,
                suggestions=suggestions,
            )
            self.run.write_status(state="failed", phase="done", reason=why, suggestions=suggestions)
        return "failed"

    def request_stop(self, signum: int, frame: Any) -> None:
        if self.callback is None:
            if self.rank is not None:
                # A rank must not leave alone: the others would wait for it forever. It stops
                # with them, at the end of the first step (a checkpoint of step 1).
                self.pending_stop = True
                return
            raise KeyboardInterrupt  # nothing trained yet: stop right away
        self.callback.request_stop()


def _redirect_output(log: Path) -> None:
    """From here on, everything the process prints goes to the run's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tuiwiz-worker")
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument(
        "--rank-process", action="store_true", help="one of torchrun's training processes"
    )
    parser.add_argument("--config", type=Path, help="with --rank-process: the preset to train")
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="check, then create the run directory from --preset or continue it; do not train",
    )
    parser.add_argument("--preset", type=Path, help="with --prepare: the resolved preset file")
    parser.add_argument(
        "--finalize", type=int, metavar="CODE", help="record the outcome of torchrun's exit CODE"
    )
    args = parser.parse_args(argv)
    _quiet_libraries()
    if args.rank_process:
        from tuiwiz.train.rank import run_rank

        return run_rank(args.run_dir, args.config)
    if args.finalize is not None:
        from tuiwiz.train.rundir import RunDir
        from tuiwiz.train.supervisor import finalize

        return finalize(RunDir(args.run_dir), args.finalize)
    # Library chatter before the run exists is kept aside and put into the log afterwards.
    early = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (lives as long as the process)
    if not args.prepare:
        os.dup2(early.fileno(), 2)
    from tuiwiz import launch
    from tuiwiz.errors import TuiwizError

    worker = Worker(args.run_dir, args.resume)
    if args.prepare:
        channel.plain = True
        worker.prepare_only = True
        worker.resume = worker.run.is_run()
        if worker.resume and worker.run.status().get("state") == "finished":
            say("error", message=f"{worker.run.path}: the run has finished; nothing to train")
            return 2
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped SSH session must not end training
    config = None
    try:
        config = worker.load_config(args.preset)
        ready = worker.preflight(config)
        config = launch.resolve(config, worker.gpus)  # preset.toml says how many processes ran
        worker.open_run(config)
        if args.prepare:
            worker.warm_data_cache(config, ready)
            say("progress", message=f"ready to train {worker.run.path}")
            return 0
    except (TuiwizError, KeyboardInterrupt, Exception) as e:
        if isinstance(e, TuiwizError):
            message, code = str(e), 2
        elif isinstance(e, KeyboardInterrupt):
            message, code = "stopped before training started", 130
        else:  # an unexpected failure still gets one readable line
            message, code = _reason(e), 1
            traceback.print_exc()
        say("error", message=message)
        if not channel.acknowledged() and not isinstance(e, KeyboardInterrupt):
            _record_unseen_failure(worker, config, message)
        return code
    role = "node" if worker.joined else "run"
    say("ready", run_dir=str(worker.run.path), pid=os.getpid(), role=role)
    _redirect_output(worker.run.node_log(_node_rank(config)) if worker.joined else worker.run.log)
    early.seek(0)
    os.write(2, early.read())
    if launch.is_distributed(config):
        from tuiwiz.train.supervisor import Supervisor

        return Supervisor(worker, config, ready).run()
    try:
        outcome = worker.train(config, ready)
    except KeyboardInterrupt:
        # A stop request that came before the trainer existed: nothing trained, nothing to save.
        worker.run.write_status(
            state="stopped", phase="done", reason="stopped before the first step"
        )
        return 3
    except BaseException as e:
        reason = _reason(e)
        traceback.print_exc()
        advice = _advice(e, config)
        if worker.writer is not None:
            step = worker.run.status().get("step", 0)
            worker.writer.write("failed", step=step, reason=reason, suggestions=advice)
        worker.run.write_status(state="failed", phase="done", reason=reason, suggestions=advice)
        return 1
    finally:
        # The outcome is written: a resume may start now, while the libraries wind down.
        worker.run.unlock()
    return {"finished": 0, "failed": 1}.get(outcome, 3)


def _record_unseen_failure(worker: Worker, config: dict[str, Any] | None, reason: str) -> None:
    """The run could not start and its launcher is gone (a dropped SSH connection), so nobody saw
    why: record it as a failed run where `tuiwiz runs` shows it. Best effort: a run directory
    that exists and is another run's, or cannot be written, is left alone."""
    import socket

    from tuiwiz import presets
    from tuiwiz.errors import TuiwizError
    from tuiwiz.train import registry

    run = worker.run
    try:
        if worker.resume:
            if run.is_run():
                run.lock()  # never over a run that another process trains
                run.write_status(state="failed", phase="done", reason=f"resume failed: {reason}")
            return
        if config is None or (run.path.exists() and any(run.path.iterdir())):
            return
        run.create()
        run.write_preset(presets.to_toml(config))
        run_id = registry.register(run, config["name"], time.time())
        run.write_status(
            id=run_id,
            state="failed",
            phase="checks",
            reason=reason,
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=time.time(),
        )
    except (OSError, TuiwizError):
        pass


def _quiet_libraries() -> None:
    import warnings

    # Deprecation notices of the libraries (not the user's concern) stay out of the log.
    warnings.simplefilter("ignore", FutureWarning)
    os.umask(0o077)  # a run may hold private data: owner-only files on shared servers
    # Progress bars of the libraries would fill the log with carriage returns.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def _node_rank(config: dict[str, Any]) -> int:
    from tuiwiz import launch

    return int(launch.settings(config)["node_rank"])


def _advice(error: BaseException, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The estimator's changes for a CUDA out-of-memory error (nothing for other errors)."""
    if type(error).__name__ != "OutOfMemoryError":
        return []
    from tuiwiz.train.oom import suggestions

    return suggestions(config)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if type(error).__name__ == "OutOfMemoryError":
        return text if text.startswith("CUDA out of memory") else f"CUDA out of memory: {text}"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
