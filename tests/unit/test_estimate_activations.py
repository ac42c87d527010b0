"""The activation model (tuiwiz.estimate.activations) against the tensors PyTorch really keeps
for backward, measured on the CPU with torch.autograd.graph.saved_tensors_hooks.

The model is built the way the trainer builds it (tuiwiz.train.builders.load_model, trl's fused
LM head and its bf16 cast of the adapters), run forward once, and every tensor saved for backward
that is still alive at the end of the forward pass is counted once (parameters excluded). The
walk runs with device="cpu": the CPU's dropout mask has the input's dtype where CUDA's is bool,
and peft casts adapter inputs on the CPU even under autocast (it asks CUDA's autocast state).
"""

from __future__ import annotations

import json
import weakref
from pathlib import Path

import pytest

from tuiwiz import config as cfg
from tuiwiz.estimate import activations, layers, peak
from tuiwiz.estimate.setup import from_config
from tuiwiz.inspect.lora import plan as lora_plan
from tuiwiz.inspect.model import summarize

LLAMA = {
    "model_type": "llama",
    "vocab_size": 128,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
QWEN2 = {**LLAMA, "model_type": "qwen2", "tie_word_embeddings": True}
GPT2 = {
    "model_type": "gpt2",
    "vocab_size": 128,
    "n_embd": 64,
    "n_layer": 3,
    "n_head": 4,
    "n_positions": 128,
    "bos_token_id": 0,
    "eos_token_id": 0,
    # on the CPU, sdpa with attention dropout falls back to the math kernel (an S x S
    # matrix); CUDA's kernels draw the dropout in-kernel, so the CUDA model has no such term
    "attn_pdrop": 0.0,
}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = {}
    for name, raw in {"llama": LLAMA, "qwen2": QWEN2, "gpt2": GPT2}.items():
        folder = tmp_path_factory.mktemp(name)
        torch.manual_seed(0)
        config = AutoConfig.for_model(**raw)
        AutoModelForCausalLM.from_config(config).to(torch.bfloat16).save_pretrained(folder)
        (folder / "config.json").write_text(json.dumps(raw))  # the fast path's input, as given
        out[name] = folder
    return out


def measure_saved(model, batch: int, seq: int, vocab: int, autocast: bool, padded: bool) -> int:
    """Bytes of the tensors saved for backward and alive after one forward pass."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    params |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    saved: list = []

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved.append((weakref.ref(t), storage.data_ptr(), storage.nbytes()))
        return t

    torch.manual_seed(0)
    ids = torch.randint(0, vocab, (batch, seq))
    mask = torch.ones_like(ids)
    if padded:
        mask[-1, seq // 2 :] = 0
    context = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), context:
        out = model(input_ids=ids, attention_mask=mask, labels=ids, fused_lm_head=True)
    # Dedupe by address among the tensors still alive only: a freed tensor's address can be
    # reused by a later one, and keying everything by address would merge the two.
    alive_storages = {ptr: nbytes for ref, ptr, nbytes in saved if ref() is not None}
    alive = sum(alive_storages.values())
    del out
    return alive


def build_like_the_trainer(path: Path, config: dict):
    import torch
    from trl.trainer.utils import add_fused_lm_head

    from tuiwiz.train import builders

    model = builders.load_model(str(path), config)
    # what SFTTrainer.__init__ does to the model (trl 1.16)
    add_fused_lm_head(model.get_base_model(), outputs=("log_probs", "entropy", "is_top1"))
    if config["quantization"]["load_in_4bit"] or config["quantization"]["load_in_8bit"]:
        for name, p in model.named_parameters():
            if p.requires_grad and "lora_magnitude_vector" not in name:
                p.data = p.data.to(torch.bfloat16)
    model.train()
    return model


def predicted_saved(path: Path, config: dict, autocast: bool, padded: bool) -> int:
    summary = summarize(str(path))
    setup = from_config(config, device="cpu")
    setup = type(setup)(
        **{**setup.__dict__, "autocast_bytes": 2 if autocast else None, "padding": padded}
    )
    lora = lora_plan(summary, config["lora"])
    plan = layers.plan_layers(summary)
    acts = activations.walk(setup, plan, layers.adapted_per_layer(plan, lora), False)
    tokens = setup.tokens
    layer_bytes = sum(sum(c.values()) for c in acts.per_layer) * tokens
    head = peak.head_buffers(
        setup, plan, summary.facts["vocab_size"], acts.head_input_bytes, 4, False
    )
    positions = setup.seq * (setup.batch if setup.one_row else 1)  # as tuiwiz.estimate.core
    rope = 2 * positions * (plan.q_dim // plan.heads) * setup.residual_bytes if plan.rope else 0
    copies = lora.lora_params * 2 if autocast and setup.adapter_bytes != 2 else 0
    return (
        layer_bytes + acts.final_norm * tokens + sum(acts.per_layer_fixed) + head[0] + rope + copies
    )


CASES = [
    # model, quantization, attention, autocast, dropout, targets, padded, dora
    ("llama", "4bit", "sdpa", False, 0.05, "all-linear", False, False),
    ("llama", "4bit", "sdpa", False, 0.0, "all-linear", False, False),
    ("llama", "4bit", "sdpa", True, 0.05, "all-linear", False, False),
    ("llama", "4bit", "eager", False, 0.05, "all-linear", False, False),
    ("llama", "4bit", "eager", True, 0.1, "all-linear", False, False),
    ("llama", "4bit", "sdpa", False, 0.05, ["q_proj", "v_proj"], False, False),
    ("llama", "4bit", "sdpa", False, 0.05, "all-linear", True, False),
    ("llama", "none", "sdpa", False, 0.05, "all-linear", False, False),
    ("llama", "4bit", "sdpa", False, 0.05, "all-linear", False, True),
    ("llama", "4bit", "sdpa", True, 0.05, "all-linear", False, True),
    ("qwen2", "4bit", "sdpa", False, 0.1, "all-linear", False, False),
    ("gpt2", "4bit", "sdpa", False, 0.05, "all-linear", False, False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_walk_matches_the_saved_tensors(model_dirs, case):
    name, quant, attn, autocast, dropout, targets, padded, dora = case
    raw = {
        "model": {"name_or_path": str(model_dirs[name]), "attn_implementation": attn},
        "quantization": {"load_in_4bit": quant == "4bit"},
        "lora": {"r": 8, "target_modules": targets, "lora_dropout": dropout, "use_dora": dora},
        "data": {"path": "unused.jsonl", "max_seq_length": 48},
        "training": {"per_device_train_batch_size": 2, "gradient_checkpointing": False},
    }
    config = cfg.validate(raw)
    model = build_like_the_trainer(model_dirs[name], config)
    measured = measure_saved(model, 2, 48, 128, autocast, padded)
    predicted = predicted_saved(model_dirs[name], config, autocast, padded)
    # DoRA keeps a few per-layer vectors (norms, scales) the walk leaves out
    assert predicted == pytest.approx(measured, rel=0.02 if dora else 0.002)


def measure_saved_one_row(model, batch: int, seq: int, vocab: int) -> int:
    """Like measure_saved, for a padding-free batch: `batch` examples of `seq` tokens joined
    in one row, the position ids restarting at each (TRL's DataCollatorForLanguageModeling)."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    params |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    saved: list = []

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved.append((weakref.ref(t), storage.data_ptr(), storage.nbytes()))
        return t

    torch.manual_seed(0)
    ids = torch.randint(0, vocab, (1, batch * seq))
    positions = torch.arange(seq).repeat(batch)[None]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(
            input_ids=ids, position_ids=positions, labels=ids, fused_lm_head=True, use_cache=False
        )
    alive = sum({ptr: n for ref, ptr, n in saved if ref() is not None}.values())
    del out
    return alive


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_walk_matches_padding_free_batches(model_dirs, attn):
    raw = {
        "model": {"name_or_path": str(model_dirs["llama"]), "attn_implementation": attn},
        "lora": {"r": 8, "lora_dropout": 0.05},
        "data": {"path": "unused.jsonl", "max_seq_length": 48},
        "training": {
            "per_device_train_batch_size": 2,
            "gradient_checkpointing": False,
            "padding_free": True,
        },
    }
    config = cfg.validate(raw)
    model = build_like_the_trainer(model_dirs["llama"], config)
    measured = measure_saved_one_row(model, 2, 48, 128)
    predicted = predicted_saved(model_dirs["llama"], config, False, False)
    assert predicted == pytest.approx(measured, rel=0.002)


def test_walk_matches_bf16_unquantized_weights(model_dirs):
    raw = {
        "model": {"name_or_path": str(model_dirs["llama"])},
        "quantization": {"upcast_unquantized": False},
        "lora": {"r": 8, "lora_dropout": 0.05},
        "data": {"path": "unused.jsonl", "max_seq_length": 48},
        "training": {"per_device_train_batch_size": 2, "gradient_checkpointing": False},
    }
    config = cfg.validate(raw)
    model = build_like_the_trainer(model_dirs["llama"], config)
    measured = measure_saved(model, 2, 48, 128, False, False)
    predicted = predicted_saved(model_dirs["llama"], config, False, False)
    assert predicted == pytest.approx(measured, rel=0.002)
