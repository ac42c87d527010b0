"""The step-0 base evaluation changes nothing about training: the same losses and adapter, bit for
bit, with and without it (the reliability tests run without a validation split, so they would not
notice a disturbed random generator). Real 4-bit training of the demo model, in this process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiwiz.train.events import EventWriter, read_events
from tuiwiz.train.rundir import RunDir

pytestmark = pytest.mark.e2e

OVERRIDES = [
    "training.max_steps=4",
    "training.logging_steps=1",
    "training.save_steps=1000",
    "training.eval_steps=1000",
    "lora.lora_dropout=0.1",  # dropout draws random numbers at every step
]


def train(folder: Path, base_eval: bool) -> tuple[list[dict], dict]:
    from transformers import set_seed
    from trl import SFTTrainer

    from tuiwiz import bundled, presets
    from tuiwiz.data import prepare
    from tuiwiz.train import builders
    from tuiwiz.train.callbacks import BaseEvalCallback, EventsCallback

    config, _ = presets.load("demo", OVERRIDES)
    model_path = bundled.resolve_model(config["model"]["name_or_path"])
    tokenizer = builders.load_tokenizer(model_path, config)
    data = {**config["data"], "path": bundled.resolve_data(config["data"]["path"])}
    train_ds, eval_ds, _ = prepare.prepare(data, tokenizer, seed=42, log=lambda m: None)
    folder.mkdir()
    run = RunDir(folder)
    args = builders.training_arguments(config, run.checkpoints, True, notice=lambda m: None)
    set_seed(args.seed)  # as the worker does, before the adapters are built
    model = builders.load_model(model_path, config)
    events = EventsCallback(run, EventWriter(run.events), started={})
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        callbacks=[events],
    )
    if base_eval:
        trainer.add_callback(BaseEvalCallback(trainer, events))
    trainer.train()
    adapter = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    return read_events(run.events), adapter


def test_the_base_evaluation_does_not_change_training(tmp_path: Path, demo_model):
    with_events, with_adapter = train(tmp_path / "with", base_eval=True)
    without_events, without_adapter = train(tmp_path / "without", base_eval=False)
    base = [e for e in with_events if e["event"] == "eval" and e.get("base")]
    assert len(base) == 1 and base[0]["step"] == 0
    assert not any(e.get("base") for e in without_events)

    def losses(events):
        return [(e["step"], e["loss"]) for e in events if e["event"] == "step"]

    assert len(losses(with_events)) == 4
    assert losses(with_events) == losses(without_events)  # bit for bit
    assert with_adapter.keys() == without_adapter.keys()
    assert all((with_adapter[k] == without_adapter[k]).all() for k in with_adapter)
