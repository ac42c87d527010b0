"""The estimate's individual terms: bitsandbytes storage formulas, optimizer states, the
assumptions read off a preset, and properties any memory model must have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuiwiz import config as cfg
from tuiwiz.estimate import estimate
from tuiwiz.estimate.optimizers import optimizer_bytes
from tuiwiz.estimate.setup import from_config
from tuiwiz.estimate.weights import alloc, linear_4bit_bytes
from tuiwiz.inspect.model import summarize

REFERENCE = Path(__file__).resolve().parent.parent / "fixtures" / "reference-configs"
GiB = 1 << 30


def preset(model: str = "tinyllama-1.1b-chat-v1.0", **sections) -> dict:
    raw = {"model": {"name_or_path": str(REFERENCE / model)}, "data": {"path": "x.jsonl"}}
    for key, value in sections.items():
        section, name = key.split("__")
        raw.setdefault(section, {})[name] = value
    return cfg.validate(raw)


def test_4bit_storage_of_a_4096_square_weight():
    n = 4096 * 4096
    blocks = n // 64  # one absmax per 64 weights
    # packed nibbles + uint8 absmax + float32 absmax of the absmax (blocks of 256) + the
    # 256-entry float32 map + offset + the 16-entry nf4 table
    assert linear_4bit_bytes(n, True, "cpu") == n // 2 + blocks + blocks // 256 * 4 + 1024 + 4 + 64
    # without double quantization every block keeps a float32 absmax
    assert linear_4bit_bytes(n, False, "cpu") == n // 2 + blocks * 4 + 64
    # double quant saves 3 bytes per 64 weights, ~0.37 bits/param (the QLoRA paper's figure)
    saved_bits = 8 * (linear_4bit_bytes(n, False, "cpu") - linear_4bit_bytes(n, True, "cpu")) / n
    assert saved_bits == pytest.approx(0.373, abs=0.005)


def test_cuda_rounds_every_tensor_to_512_bytes():
    assert alloc(4, "cuda") == 512 and alloc(513, "cuda") == 1024 and alloc(4, "cpu") == 4


@pytest.mark.parametrize(
    ("optim", "bytes_per_param"),
    [
        ("adamw_torch", 8),
        ("adamw_torch_fused", 8),
        ("sgd", 0),
        ("adagrad", 4),
        ("adamw_8bit", 2 + 2 * 4 / 256),
        ("lion_8bit", 1 + 4 / 256),
        ("paged_adamw_32bit", 0),
    ],
)
def test_optimizer_state_per_parameter(optim, bytes_per_param):
    shape = (16, 8192)  # 131072 elements: 8-bit, and paged (>= 1e5) for paged optimizers
    result = optimizer_bytes(optim, [(shape, 4)], "cuda")
    assert result.states - (2 * 1024 if "8bit" in optim else 0) - (
        512 if optim.endswith("fused") else 0
    ) == pytest.approx(bytes_per_param * 16 * 8192)


def test_paged_states_leave_the_allocator():
    big = optimizer_bytes("paged_adamw_8bit", [((16, 8192), 2)], "cuda")
    assert big.paged == 2 * 16 * 8192 and big.states == 2 * 2048 + 2 * 1024
    small = optimizer_bytes("paged_adamw_8bit", [((16, 4096), 2)], "cuda")  # < 1e5: not paged
    assert small.paged == 0


def test_small_tensors_keep_32_bit_state_in_8_bit_optimizers():
    assert optimizer_bytes("adamw_8bit", [((16, 255), 2)], "cpu").states == 2 * 16 * 255 * 4


def test_adafactor_factors_matrices():
    result = optimizer_bytes("adafactor", [((16, 4096), 4), ((4096,), 4)], "cpu")
    assert result.states == (16 + 4096) * 4 + 4096 * 4


def test_torch_adamw_states_follow_the_parameter_dtype():
    # two states of the parameter's dtype, and on the CPU the float32 step counter
    assert optimizer_bytes("adamw_torch", [((100,), 2)], "cpu").states == 2 * 100 * 2 + 4
    assert optimizer_bytes("adamw_torch", [((100,), 2)], "cuda").states == 2 * 512  # rounded


def test_unknown_optimizer_is_assumed_adamw_and_said_so():
    result = optimizer_bytes("galore_adamw", [((100,), 4)], "cpu")
    assert result.states == 800 + 4 and "not modeled" in result.note


def test_setup_follows_the_trainer():
    setup = from_config(preset(training__bf16=True, training__per_device_train_batch_size=3))
    assert (setup.batch, setup.seq, setup.quant, setup.autocast_bytes) == (3, 1024, "4bit", 2)
    assert setup.residual_bytes == 4  # prepare_model_for_kbit_training upcasts the norms
    assert setup.adapter_bytes == 2  # trl casts QLoRA adapters to bf16
    assert from_config(preset(training__bf16=True), device="cpu").autocast_bytes is None
    plain = from_config(preset(quantization__load_in_4bit=False))
    assert (plain.quant, plain.residual_bytes, plain.adapter_bytes) == ("none", 2, 4)


def test_json_has_the_documented_keys():
    data = estimate(preset()).to_json()
    assert isinstance(data["params"]["total"], int) and isinstance(data["params"]["trainable"], int)
    assert data["memory"]["total_bytes"] == sum(data["memory"]["components"].values())
    for name in data["memory"]["components"]:
        assert data["memory"]["explanations"][name]["source"]


def test_unquantized_parts_are_float32_after_kbit_preparation():
    est = estimate(preset())
    summary = est.summary
    embed = summary.module("model.embed_tokens").own_numel()
    head = summary.module("lm_head").own_numel()
    norms = sum(m.own_numel() for m in summary.modules if m.kind == "norm")
    assert est.component("weights_unquantized") == pytest.approx(
        4 * (embed + head + norms), rel=1e-4
    )


def test_tinyllama_qlora_in_a_plausible_range():
    """TinyLlama-1.1B QLoRA, batch 4 x 1024, checkpointing, bf16: about 0.5 GiB of 4-bit
    weights, 0.5 GiB of float32 embeddings and head, a few GiB in all."""
    est = estimate(preset(training__bf16=True))
    assert est.component("weights_quantized") == pytest.approx(0.47 * GiB, rel=0.03)
    assert 2.5 * GiB < est.total < 6 * GiB


def test_70b_layout(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 8192,
                "intermediate_size": 28672,
                "num_hidden_layers": 80,
                "num_attention_heads": 64,
                "num_key_value_heads": 8,
                "vocab_size": 128256,
            }
        )
    )
    summary = summarize(str(tmp_path))
    assert summary.total_params == 70_553_706_496  # Llama-3-70B
    raw = {
        "model": {"name_or_path": str(tmp_path)},
        "data": {"path": "x.jsonl"},
        "training": {"per_device_train_batch_size": 1},
    }
    est = estimate(cfg.validate(raw), summary)
    linear = summary.total_params - 2 * 128256 * 8192 - (2 * 80 + 1) * 8192  # no embeddings, norms
    # 4 bits per weight + a uint8 absmax per 64 + a float32 per 64 * 256 (double quantization)
    per_param = 0.5 + 1 / 64 + 4 / (64 * 256)
    assert est.component("weights_quantized") == pytest.approx(linear * per_param, rel=1e-3)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 6),
    seq=st.sampled_from([128, 512, 2048]),
    checkpointing=st.booleans(),
    attn=st.sampled_from(["sdpa", "eager", "flash_attention_2"]),
    bf16=st.booleans(),
)
def test_more_tokens_never_need_less_memory(batch, seq, checkpointing, attn, bf16):
    def total(b: int, s: int, ckpt: bool) -> int:
        return estimate(
            preset(
                "smollm2-135m",
                training__per_device_train_batch_size=b,
                data__max_seq_length=s,
                training__gradient_checkpointing=ckpt,
                model__attn_implementation=attn,
                training__bf16=bf16,
            )
        ).total

    base = total(batch, seq, checkpointing)
    assert total(batch + 1, seq, checkpointing) > base
    assert total(batch, seq * 2, checkpointing) > base
    assert total(batch, seq, True) <= total(batch, seq, False)


def test_4bit_below_8bit_below_16bit():
    four = estimate(preset()).component("weights_quantized")
    eight = estimate(preset(quantization__load_in_4bit=False, quantization__load_in_8bit=True))
    sixteen = estimate(preset(quantization__load_in_4bit=False))
    assert four < eight.component("weights_quantized") < sixteen.component("weights_unquantized")


def test_evaluation_can_set_the_peak():
    """With a validation split, evaluation runs per_device_eval_batch_size sequences (default
    8) through the model without autograd: with checkpointing and a training batch of 1 it is
    the peak, and the gradients are gone by then."""
    base = dict(training__per_device_train_batch_size=1, data__max_seq_length=2048)
    trained = estimate(preset(**base))
    evaluated = estimate(preset(**base, data__validation_split=0.1))
    assert trained.phase != "evaluation forward"
    assert evaluated.phase == "evaluation forward" and evaluated.total > trained.total
    assert evaluated.component("gradients") == 0 and evaluated.component("activations") == 0
    small_eval = estimate(
        preset(**base, data__validation_split=0.1, training__per_device_eval_batch_size=1)
    )
    assert small_eval.phase == trained.phase and small_eval.total == trained.total
