"""Correctness before speed: padding-free and packed batches train on exactly what padded
batches train on. The demo model is built as training builds it (4-bit nf4 QLoRA through
tuiwiz.train.builders), the examples are the demo data as tuiwiz tokenizes them (prompt masked),
and each batch goes through TRL's own SFTTrainer: its collator (padded, padding-free), its
best-fit packing, its compute_loss and the fused LM head's per-token log-probabilities.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiwiz import config as cfg

pytestmark = pytest.mark.e2e

EXAMPLES = 12  # of different lengths, with their prompts masked
TOLERANCE = 1e-4


def configured(demo_model: Path, **changes) -> dict:
    raw = {
        "model": {"name_or_path": str(demo_model)},
        # no dropout: its random masks would differ between layouts (shapes draw differently)
        "lora": {"lora_dropout": 0.0},
        "data": {"path": "tuiwiz:demo-data", "max_seq_length": 256, "max_samples": EXAMPLES},
        "training": {"per_device_train_batch_size": EXAMPLES, "gradient_checkpointing": False},
    }
    for key, value in changes.items():
        section, name = key.split("__")
        raw.setdefault(section, {})[name] = value
    return cfg.validate(raw)


@pytest.fixture(scope="module")
def examples(demo_model, demo_tokenizer, tmp_path_factory):
    """The demo's first examples, tokenized and masked by tuiwiz's own data preparation."""
    from tuiwiz import bundled
    from tuiwiz.data import prepare

    config = configured(demo_model)
    data = {**config["data"], "path": bundled.resolve_data(config["data"]["path"])}
    dataset, _, _ = prepare.prepare(data, demo_tokenizer, log=lambda m: None)
    assert len({len(ids) for ids in dataset["input_ids"]}) > 3  # lengths vary: real padding
    return dataset


def one_batch(demo_model, demo_tokenizer, dataset, tmp_path: Path, **changes):
    """The SFTTrainer of a variant, its one batch of every example, and the model."""
    from transformers import set_seed
    from trl import SFTTrainer

    from tuiwiz.train import builders

    config = configured(demo_model, **changes)
    args = builders.training_arguments(config, tmp_path, False, notice=lambda m: None)
    set_seed(0)  # the same adapter initialization for every variant
    model = builders.load_model(str(demo_model), config)
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=demo_tokenizer
    )
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    assert len(rows) <= EXAMPLES
    batch = trainer.data_collator(rows)
    return trainer, batch


def per_example(batch, log_probs) -> list[tuple[int, float]]:
    """(answer tokens, summed log-probability) of every example in a batch, whatever its
    layout: one example per row (padded), or several per row split by the position ids."""
    import torch

    labels = batch["labels"]
    counted = torch.zeros_like(labels, dtype=torch.bool)
    counted[:, :-1] = labels[:, 1:] != -100  # the loss predicts token i + 1 from position i
    out = []
    for row in range(labels.shape[0]):
        if "position_ids" in batch:
            starts = (batch["position_ids"][row] == 0).nonzero().flatten().tolist()
            bounds = [*starts, labels.shape[1]]
        else:
            bounds = [0, labels.shape[1]]
        for a, b in zip(bounds, bounds[1:]):
            mask = counted[row, a : b - 1]  # the last position predicts the next example
            out.append((int(mask.sum()), float(log_probs[row, a : b - 1][mask].sum())))
    return sorted(p for p in out if p[0] > 0)


def measure(demo_model, demo_tokenizer, dataset, tmp_path, **changes):
    import torch

    trainer, batch = one_batch(demo_model, demo_tokenizer, dataset, tmp_path, **changes)
    model = trainer.model
    model.train()
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    loss = loss.detach()
    grads = torch.cat([p.grad.float().flatten() for p in model.parameters() if p.requires_grad])
    with torch.no_grad():
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        out = model(**inputs, labels=batch["labels"], fused_lm_head=True, use_cache=False)
    return float(loss), per_example(batch, out.log_probs.float()), grads, batch


@pytest.fixture(scope="module")
def padded(demo_model, demo_tokenizer, examples, tmp_path_factory):
    return measure(demo_model, demo_tokenizer, examples, tmp_path_factory.mktemp("padded"))


@pytest.mark.parametrize(
    "variant",
    [{"training__padding_free": True}, {"data__packing": True}],
    ids=["padding_free", "packing"],
)
def test_same_loss_and_mask_as_padded_batches(
    demo_model, demo_tokenizer, examples, padded, variant, tmp_path
):
    import torch

    loss, sums, grads, batch = measure(demo_model, demo_tokenizer, examples, tmp_path, **variant)
    ref_loss, ref_sums, ref_grads, ref_batch = padded
    # the layouts differ: padded rows against one joined row (padding-free) or packed rows
    assert "attention_mask" in ref_batch and "attention_mask" not in batch
    assert batch["input_ids"].shape[0] < ref_batch["input_ids"].shape[0]
    # the loss mask is intact: the same answer tokens of the same examples, none across the
    # joins (each example's last position is not trained on the next example's first token)
    assert [n for n, _ in sums] == [n for n, _ in ref_sums]
    expected = sum(sum(x != -100 for x in labels[1:]) for labels in examples["labels"])
    assert sum(n for n, _ in sums) == expected
    assert loss == pytest.approx(ref_loss, abs=TOLERANCE)
    for (_, s), (_, ref) in zip(sums, ref_sums):
        assert s == pytest.approx(ref, abs=TOLERANCE * max(1.0, abs(ref)))
    # the same gradients, up to the bfloat16 the adapters are trained in
    cosine = torch.nn.functional.cosine_similarity(grads, ref_grads, dim=0)
    assert float(cosine) > 0.9999


def test_bf16_unquantized_weights_train_the_same_model(
    demo_model, demo_tokenizer, examples, padded, tmp_path
):
    """upcast_unquantized = false: embeddings, LM head and norms stay in bfloat16; the loss is
    that of the float32 upcast up to bfloat16 rounding of the residual stream."""
    import torch

    trainer, _ = one_batch(
        demo_model, demo_tokenizer, examples, tmp_path, quantization__upcast_unquantized=False
    )
    embed = trainer.model.get_input_embeddings().weight
    assert embed.dtype == torch.bfloat16 and not embed.requires_grad
    loss, sums, _, _ = measure(
        demo_model, demo_tokenizer, examples, tmp_path, quantization__upcast_unquantized=False
    )
    ref_loss, ref_sums, _, _ = padded
    assert [n for n, _ in sums] == [n for n, _ in ref_sums]
    assert loss == pytest.approx(ref_loss, rel=1e-3)
