"""One process's training of a run: the data, the model and the Trainer built from the preset,
trained (or resumed) to the end, and the outcome recorded. The launched process runs one session
when the run has one process; with several, each rank process runs one (tuiwiz.train.rank) and
only rank 0 (`main`) writes the run's events, status and adapter."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from tuiwiz.train.events import EventWriter
from tuiwiz.train.preflight import Ready
from tuiwiz.train.rundir import RunDir
from tuiwiz.train.state import RunState


class Session:
    def __init__(
        self,
        run: RunDir,
        config: dict[str, Any],
        ready: Ready,
        writer: EventWriter | None,
        resume_from: Path | None,
        rank: int | None = None,
    ) -> None:
        self.run = run
        self.config = config
        self.ready = ready
        self.writer = writer  # None in ranks other than 0
        self.resume_from = resume_from
        self.rank = rank  # None in the launched process; the global rank in a rank process
        self.callback: Any = None  # the EventsCallback, once the trainer exists
        self.pending_stop = False  # a stop requested before the trainer existed

    @property
    def main(self) -> bool:
        """Whether this process writes the run's events, status and adapter."""
        return self.rank in (None, 0)

    def request_stop(self, signum: int, frame: Any) -> None:
        """SIGTERM / SIGINT: save a checkpoint and stop at the end of the current step."""
        if self.callback is not None:
            self.callback.request_stop()
        elif self.rank is not None:
            # A rank must not leave alone: the others would wait for it forever. It stops with
            # them, at the end of the first step (a checkpoint of step 1).
            self.pending_stop = True
        else:
            raise KeyboardInterrupt  # nothing trained yet: stop right away

    def train(self) -> RunState:
        """Train to the end; the state the run ended in (its status and events written)."""
        from transformers import set_seed
        from transformers.utils import logging as hf_logging
        from trl import SFTTrainer

        from tuiwiz.config import effective_batch_size
        from tuiwiz.data import prepare
        from tuiwiz.data.progress import StatusProgress
        from tuiwiz.train import builders, faults
        from tuiwiz.train.callbacks import BaseEvalCallback, EventsCallback
        from tuiwiz.train.resume import (
            LossWindow,
            final_step,
            load_adapter_in_place,
            load_adapter_weights,
        )

        hf_logging.disable_progress_bar()  # the log keeps the library's warnings
        config, ready = self.config, self.ready
        fsdp = builders.uses_fsdp(config)
        if fsdp:
            # With cpu_ram_efficient_loading, transformers reads the weights on the first process
            # only when it knows that FSDP (accelerate) will distribute them.
            os.environ.setdefault("ACCELERATE_USE_FSDP", "true")
        train_ds, eval_ds, report = prepare.prepare(
            ready.data,
            ready.tokenizer,
            seed=config["training"]["seed"],
            examples=ready.examples,
            log=print,
            progress=StatusProgress(self.run),
        )
        print(f"data: {json.dumps(report.__dict__)}", flush=True)
        args = builders.training_arguments(config, self.run.checkpoints, eval_ds is not None)
        # The adapters are initialized randomly when the model is built, before the trainer
        # seeds anything: seed first, or two runs of one preset start from different adapters.
        set_seed(args.seed)
        model = builders.load_model(ready.model_path, config)
        trainable, total = model.get_nb_trainable_parameters()
        print(f"model: {total:,} parameters, {trainable:,} trainable ({trainable / total:.3%})")
        distributed = args.world_size > 1
        started = {
            "device": builders.device_kind(),
            "data_format": report.format,
            "train_examples": report.train_examples,
            "validation_examples": report.validation_examples,
            "effective_batch_size": effective_batch_size(config, args.world_size),
            "world_size": args.world_size,
            "strategy": ready.launch.strategy if distributed else None,
            "trainable_params": trainable,
            "total_params": total,
            "resumed_from": str(self.resume_from) if self.resume_from else None,
        }
        self.callback = EventsCallback(
            self.run,
            self.writer,
            started,
            save_total_limit=config["training"].get("save_total_limit"),
            main=self.main,
            distributed=distributed,
        )
        self.callback.stop_requested = self.pending_stop
        window = LossWindow(self.run.checkpoints, self.resume_from, self.rank or 0)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=ready.tokenizer,
            callbacks=[window, self.callback],  # the window is saved before COMPLETE is marked
        )
        window.trainer = trainer
        faults.install(trainer, self.callback)
        if self.resume_from is not None and not fsdp:
            load_adapter_in_place(trainer)  # FSDP loads its own (sharded) checkpoint format
        if self.resume_from is not None and (step := final_step(self.resume_from)) is not None:
            # Stopped at its last step (by an older tuiwiz): nothing is left to train, only the
            # adapter to write, from that checkpoint.
            load_adapter_weights(trainer.model, self.resume_from)
            trainer.state.global_step = trainer.state.max_steps = step
            return self.finish(trainer, {})
        if self.resume_from is None and eval_ds is not None and not args.eval_on_start:
            # The base model's validation loss, as the `eval` event of step 0 marked "base".
            trainer.add_callback(BaseEvalCallback(trainer, self.callback))
        result = trainer.train(
            resume_from_checkpoint=str(self.resume_from) if self.resume_from else None
        )
        return self.finish(trainer, result.metrics)

    def finish(self, trainer: Any, metrics: dict[str, Any]) -> RunState:
        """Record how training ended; a finished run also gets its adapter, written aside first."""
        step = trainer.state.global_step
        if self.callback.diverged_at is not None:
            return self.fail_diverged()
        # A stop that lands on the last step has nothing left to train: the run is finished.
        if self.callback.stop_requested and step < trainer.state.max_steps:
            if self.main:
                latest = self.run.latest_checkpoint()
                self.writer.write(
                    "stopped", step=step, checkpoint=str(latest[1]) if latest else None
                )
                self.run.write_status(state=RunState.STOPPED, phase="done", step=step)
            return RunState.STOPPED
        staging = self.run.path / ".adapter.partial"
        if self.main:
            shutil.rmtree(staging, ignore_errors=True)
        if getattr(trainer, "is_fsdp_enabled", False):
            # One adapter file, gathered from the shards (every rank takes part).
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(staging))  # with several processes, only rank 0 writes
        if not self.main:
            return RunState.FINISHED
        self.ready.tokenizer.save_pretrained(str(staging))
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
            state=RunState.FINISHED, phase="done", step=step, adapter=str(self.run.adapter)
        )
        return RunState.FINISHED

    def fail_diverged(self) -> RunState:
        """The weights stopped being finite numbers: the run fails, with what to change; its
        checkpoints (all saved before) are kept, and no adapter is written."""
        from tuiwiz.train.failures import diverged_advice, diverged_reason

        if self.main:
            latest = self.run.latest_checkpoint()
            step = self.callback.diverged_at
            why = diverged_reason(step, self.config, latest[1] if latest else None)
            suggestions = diverged_advice(self.config)
            self.writer.write("failed", step=step, reason=why, suggestions=suggestions)
            self.run.write_status(
                state=RunState.FAILED, phase="done", reason=why, suggestions=suggestions
            )
        return RunState.FAILED

    def record_failure(self, error: BaseException) -> None:
        """An exception ended training: the run fails with its reason (and, for out of memory,
        the estimator's changes)."""
        from tuiwiz.train.failures import advice, reason

        why, suggestions = reason(error), advice(error, self.config)
        if self.writer is not None:
            step = self.run.status().get("step", 0)
            self.writer.write("failed", step=step, reason=why, suggestions=suggestions)
        self.run.write_status(
            state=RunState.FAILED, phase="done", reason=why, suggestions=suggestions
        )
