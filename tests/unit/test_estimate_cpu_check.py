"""The estimate's weight, LoRA, gradient and optimizer terms against the real tensor bytes of a
4-bit QLoRA model on the CPU, after one optimizer step.

1. The bundled demo model, trained for one step by the real trainer path (tuiwiz's builders,
   trl's SFTTrainer with paged_adamw_8bit), measured from a callback right after the step.
2. A random-weight model of SmolLM2-135M's architecture (from the reference config.json), built
   by tuiwiz's builders, with trl's bf16 cast of the adapters, one AdamW step. A forward and
   backward pass through 30 layers of 4-bit weights takes tens of seconds on two shared CPU
   cores, so the gradients come from a loss that touches every trainable tensor instead: they
   have the dtype and shape that autograd gives any parameter's gradient, which is all that
   their bytes depend on (the demo model above runs the real forward and backward).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiwiz import config as cfg
from tuiwiz.estimate import estimate

TERMS = (
    "weights_quantized",
    "weights_unquantized",
    "lora_adapters",
    "gradients",
    "optimizer_states",
)


def real_bytes(model, optimizer) -> dict[str, int]:
    """Bytes of every tensor, each storage counted once, grouped like the estimate's terms."""
    import torch

    seen: set[int] = set()

    def nbytes(t) -> int:
        if t is None or not torch.is_tensor(t) or t.untyped_storage().data_ptr() in seen:
            return 0
        seen.add(t.untyped_storage().data_ptr())
        return t.untyped_storage().nbytes()

    out = dict.fromkeys(TERMS, 0)
    for name, p in model.named_parameters():
        if type(p).__name__ == "Params4bit":
            qs = p.quant_state
            tensors = [p.data, qs.absmax, qs.code, qs.offset]
            if qs.state2 is not None:
                tensors += [qs.state2.absmax, qs.state2.code]
            out["weights_quantized"] += sum(nbytes(t) for t in tensors)
        elif ".lora_" in name:
            out["lora_adapters"] += nbytes(p.data)
        else:
            out["weights_unquantized"] += nbytes(p.data)
        out["gradients"] += nbytes(p.grad)
    for state in optimizer.state.values():
        out["optimizer_states"] += sum(nbytes(v) for v in state.values())
    return out


def assert_terms_match(config: dict, real: dict[str, int]) -> None:
    est = estimate(config, device="cpu")
    predicted = {t: est.component(t) for t in TERMS}
    assert all(real[t] > 0 for t in TERMS), real
    for term in TERMS:
        assert predicted[term] == pytest.approx(real[term], rel=0.02), (term, predicted, real)


def test_demo_model_one_step_of_the_real_trainer(demo_model, demo_tokenizer, tmp_path):
    from transformers import TrainerCallback
    from trl import SFTTrainer

    from tuiwiz.bundled import DEMO_DATA
    from tuiwiz.data import prepare
    from tuiwiz.train import builders

    config = cfg.validate(
        {
            "model": {"name_or_path": str(demo_model)},
            "lora": {"r": 16, "target_modules": "all-linear"},
            "data": {"path": DEMO_DATA, "max_seq_length": 64, "max_samples": 16},
            "training": {
                "max_steps": 1,
                "per_device_train_batch_size": 2,
                "gradient_accumulation_steps": 1,
                "gradient_checkpointing": False,
                "optim": "paged_adamw_8bit",
                "logging_steps": 1,
                "save_steps": 100,
                "report_to": "none",
            },
        }
    )
    config["data"]["path"] = str(__import__("tuiwiz.bundled").bundled.resolve_data(DEMO_DATA))
    train, _, _ = prepare.prepare(config["data"], demo_tokenizer, log=lambda *_: None)
    snapshot: dict[str, int] = {}

    class Snapshot(TrainerCallback):
        def on_optimizer_step(self, args, state, control, model=None, optimizer=None, **kw):
            snapshot.update(real_bytes(model, optimizer))

    trainer = SFTTrainer(
        model=builders.load_model(str(demo_model), config),
        args=builders.training_arguments(config, tmp_path / "out", False, notice=lambda m: None),
        train_dataset=train,
        processing_class=demo_tokenizer,
        callbacks=[Snapshot()],
    )
    trainer.train()
    assert snapshot, "the optimizer step did not run"
    assert_terms_match(config, snapshot)


def test_smollm2_architecture_random_weights(tmp_path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, Trainer, TrainingArguments

    from tuiwiz.train import builders

    reference = (
        Path(__file__).resolve().parent.parent
        / "fixtures"
        / "reference-configs"
        / "smollm2-135m"
        / "config.json"
    )
    hf_config = AutoConfig.from_pretrained(reference.parent)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(hf_config, dtype=torch.bfloat16).save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(reference.read_text())
    config = cfg.validate(
        {
            "model": {"name_or_path": str(tmp_path)},
            "lora": {"r": 8, "target_modules": "all-linear"},
            "data": {"path": "unused.jsonl", "max_seq_length": 8},
            "training": {
                "per_device_train_batch_size": 1,
                "gradient_checkpointing": False,
                "optim": "adamw_torch",
            },
        }
    )
    model = builders.load_model(str(tmp_path), config)
    for name, p in model.named_parameters():  # what trl's SFTTrainer does for QLoRA
        if p.requires_grad and "lora_magnitude_vector" not in name:
            p.data = p.data.to(torch.bfloat16)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), optim="adamw_torch", use_cpu=True)
    optim_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    optimizer = optim_cls([p for p in model.parameters() if p.requires_grad], **kwargs)
    assert len(optimizer.param_groups[0]["params"]) == 30 * 7 * 2  # lora_A and lora_B
    trainable = [p for p in model.parameters() if p.requires_grad]
    sum((p.float() ** 2).sum() for p in trainable).backward()
    optimizer.step()
    assert_terms_match(config, real_bytes(model, optimizer))
