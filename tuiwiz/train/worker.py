"""The training process: `python -m tuiwiz.train.worker --run-dir DIR [--resume]`.

It runs in its own session, apart from any terminal. Before the run directory exists it checks
everything that needs the model or the data (so bad input leaves nothing behind) and tells its
launcher the outcome on stdout, one handshake line. From then on it talks only through the run
directory: its output goes to train.log, its progress to events.jsonl and status.json.
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


def say(kind: str, **fields: Any) -> None:
    """A handshake line to the launcher (before the run starts)."""
    sys.stdout.write(HANDSHAKE + json.dumps({"kind": kind, **fields}) + "\n")
    sys.stdout.flush()


class Worker:
    def __init__(self, run_dir: Path, resume: bool) -> None:
        from tuiwiz.train.rundir import RunDir

        self.run = RunDir(run_dir)
        self.resume = resume
        self.callback = None  # set once the trainer exists; signals before that just exit
        self.writer = None

    # --- before the run directory exists ------------------------------------------------
    def load_config(self) -> dict[str, Any]:
        from tuiwiz import config, presets
        from tuiwiz.errors import TuiwizError

        if not self.resume:
            return json.loads(sys.stdin.read())
        if not self.run.is_run():
            raise TuiwizError(f"{self.run.path}: not a tuiwiz run directory (no preset.toml)")
        raw = presets.read_toml(self.run.preset)
        return config.validate(raw, source=str(self.run.preset))

    def preflight(self, config: dict[str, Any]) -> dict[str, Any]:
        """Check what needs the model and data; returns what the run needs later."""
        from tuiwiz import bundled
        from tuiwiz.data import prepare
        from tuiwiz.inspect import model as inspect_model
        from tuiwiz.train import builders

        model_ref = config["model"]["name_or_path"]
        if config["model"]["trust_remote_code"]:
            say(
                "progress",
                message=f"warning: trust_remote_code is on: Python code from "
                f"{model_ref} will run on this machine",
            )
        model_path = bundled.resolve_model(model_ref, lambda m: say("progress", message=m))
        # The preset keeps "tuiwiz:demo-data"; only the copy used for reading is resolved.
        data = {**config["data"], "path": bundled.resolve_data(config["data"]["path"])}
        summary = inspect_model.summarize(
            model_path, config["model"]["revision"], config["model"]["trust_remote_code"]
        )
        inspect_model.check_target_modules(
            config["lora"]["target_modules"], list(summary.linear_modules())
        )
        tokenizer = builders.load_tokenizer(model_path, config)
        cached = prepare.is_cached(data, tokenizer)
        normalized = None if cached else prepare.load_examples(data)
        has_validation = data["validation_split"] > 0
        builders.training_arguments(
            config, self.run.checkpoints, has_validation, notice=lambda m: None
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

    def open_run(self, config: dict[str, Any]) -> None:
        from tuiwiz import presets
        from tuiwiz.train import events, registry

        if self.resume:
            self.run_id = self.run.status().get("id") or self.run.path.name
            self.run.lock()
            latest = self.run.latest_checkpoint()
            if latest is None:
                from tuiwiz.errors import TuiwizError

                raise TuiwizError(
                    f"{self.run.path}: no complete checkpoint to resume from; start a new run"
                )
            for path in self.run.remove_incomplete_checkpoints():
                print(f"removed the incomplete checkpoint {path}", file=sys.stderr)
            events.truncate_after(self.run.events, latest[0])
            self.resume_from = latest[1]
        else:
            self.run.create()
            self.run.lock()
            self.run.write_preset(presets.to_toml(config))
            self.resume_from = None
            self.run_id = registry.register(self.run, config["name"], time.time())
        self.run.write_status(
            id=self.run_id,
            state="running",
            phase="preparing",
            pid=os.getpid(),
            started_at=self.run.status().get("started_at", time.time()),
            reason=None,
        )
        self.writer = events.EventWriter(self.run.events)

    # --- the run ------------------------------------------------------------------------
    def train(self, config: dict[str, Any], ready: dict[str, Any]) -> str:
        from transformers.utils import logging as hf_logging

        from tuiwiz.data import prepare
        from tuiwiz.train import builders
        from tuiwiz.train.callbacks import BaseEvalCallback, EventsCallback

        hf_logging.disable_progress_bar()
        training = config["training"]
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
        started = {
            "device": builders.device_kind(),
            "data_format": report.format,
            "train_examples": report.train_examples,
            "validation_examples": report.validation_examples,
            "effective_batch_size": args.per_device_train_batch_size
            * args.gradient_accumulation_steps
            * args.world_size,
            "trainable_params": trainable,
            "total_params": total,
            "resumed_from": str(self.resume_from) if self.resume_from else None,
        }
        limit = config["training"].get("save_total_limit")
        self.callback = EventsCallback(self.run, self.writer, started, save_total_limit=limit)
        from trl import SFTTrainer

        from tuiwiz.train import faults
        from tuiwiz.train.resume import load_adapter_in_place

        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=ready["tokenizer"],
            callbacks=[self.callback],
        )
        faults.install(trainer)
        load_adapter_in_place(trainer)
        if self.resume_from is None and eval_ds is not None and not args.eval_on_start:
            # The base model's validation loss, as the `eval` event of step 0 marked "base".
            trainer.add_callback(BaseEvalCallback(trainer, self.callback))
        result = trainer.train(
            resume_from_checkpoint=str(self.resume_from) if self.resume_from else None
        )
        return self.finish(trainer, result.metrics, ready["tokenizer"])

    def finish(self, trainer: Any, metrics: dict[str, Any], tokenizer: Any) -> str:
        """Record how training ended; a finished run also gets its adapter, written aside first."""
        step = trainer.state.global_step
        if self.callback.stop_requested:
            latest = self.run.latest_checkpoint()
            self.writer.write("stopped", step=step, checkpoint=str(latest[1]) if latest else None)
            self.run.write_status(state="stopped", phase="done", step=step)
            return "stopped"
        staging = self.run.path / ".adapter.partial"
        shutil.rmtree(staging, ignore_errors=True)
        trainer.save_model(str(staging))
        tokenizer.save_pretrained(str(staging))
        shutil.rmtree(self.run.adapter, ignore_errors=True)
        staging.rename(self.run.adapter)
        self.writer.write(
            "finished",
            step=step,
            loss=self.callback.last_loss,
            train_runtime=metrics.get("train_runtime"),
            adapter=str(self.run.adapter),
        )
        self.run.write_status(
            state="finished", phase="done", step=step, adapter=str(self.run.adapter)
        )
        return "finished"

    def request_stop(self, signum: int, frame: Any) -> None:
        if self.callback is None:
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
    args = parser.parse_args(argv)

    import warnings

    # Deprecation notices of the libraries (not the user's concern) stay out of the log.
    warnings.simplefilter("ignore", FutureWarning)
    os.umask(0o077)  # a run may hold private data: owner-only files on shared servers
    # Progress bars of the libraries would fill the log with carriage returns.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # Library chatter before the run exists is kept aside and put into the log afterwards.
    early = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (lives as long as the process)
    os.dup2(early.fileno(), 2)
    from tuiwiz.errors import TuiwizError

    worker = Worker(args.run_dir, args.resume)
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped SSH session must not end training
    try:
        config = worker.load_config()
        ready = worker.preflight(config)
        worker.open_run(config)
    except TuiwizError as e:
        say("error", message=str(e))
        return 2
    except KeyboardInterrupt:
        say("error", message="stopped before training started")
        return 130
    except Exception as e:  # an unexpected failure still gets one readable line
        say("error", message=_reason(e))
        traceback.print_exc()
        return 1
    say("ready", run_dir=str(worker.run.path), pid=os.getpid())
    _redirect_output(worker.run.log)
    early.seek(0)
    os.write(2, early.read())
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
        advice: list[dict[str, Any]] = []
        if type(e).__name__ == "OutOfMemoryError":
            from tuiwiz.train.oom import suggestions

            advice = suggestions(config)
        if worker.writer is not None:
            step = worker.run.status().get("step", 0)
            worker.writer.write("failed", step=step, reason=reason, suggestions=advice)
        worker.run.write_status(state="failed", phase="done", reason=reason, suggestions=advice)
        return 1
    return 0 if outcome == "finished" else 3


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if type(error).__name__ == "OutOfMemoryError":
        return text if text.startswith("CUDA out of memory") else f"CUDA out of memory: {text}"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
