"""Exact LoRA parameter counts (tuiwiz.inspect.lora) against peft itself.

peft works on meta-device models: get_peft_model then get_nb_trainable_parameters() is what
print_trainable_parameters() reports. Every case below must match it to the parameter.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuiwiz.errors import ModelError
from tuiwiz.inspect.arch import from_meta_model
from tuiwiz.inspect.families import summarize_config
from tuiwiz.inspect.lora import plan


def _configs():
    from transformers import GPT2Config, LlamaConfig, Qwen2Config, Qwen3Config

    small = dict(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2)
    return {
        # GPT-2: Conv1D layers, biases everywhere, LayerNorm biases, tied embeddings
        "gpt2": GPT2Config(
            vocab_size=96,
            n_embd=64,
            n_layer=2,
            n_head=4,
            n_positions=32,
            bos_token_id=0,
            eos_token_id=0,
        ),
        # Qwen2: q/k/v biases, grouped-query attention, tied embeddings
        "qwen2_tied_gqa": Qwen2Config(
            **small, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True
        ),
        # Llama with every bias on, multi-query attention, untied embeddings
        "llama_bias_mqa": LlamaConfig(
            **small,
            num_attention_heads=4,
            num_key_value_heads=1,
            attention_bias=True,
            mlp_bias=True,
        ),
        # Llama tied, GQA, head_dim not hidden/heads
        "llama_tied_headdim": LlamaConfig(
            **small,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=24,
            tie_word_embeddings=True,
        ),
        # Qwen3: q_norm / k_norm
        "qwen3": Qwen3Config(**small, num_attention_heads=4, num_key_value_heads=2, head_dim=16),
    }


@pytest.fixture(scope="module")
def models():
    import torch
    from transformers import AutoModelForCausalLM

    out = {}
    for name, config in _configs().items():
        with torch.device("meta"):
            out[name] = (AutoModelForCausalLM.from_config(config), config)
    return out


def peft_counts(model, lora: dict) -> tuple[int, int]:
    import copy

    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora["r"],
        lora_alpha=2 * lora["r"],
        target_modules=lora["target_modules"],
        bias=lora.get("bias", "none"),
        use_dora=lora.get("use_dora", False),
        modules_to_save=lora.get("modules_to_save") or None,
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(copy.deepcopy(model), config)
    return peft_model.get_nb_trainable_parameters()


ATTN = {"gpt2": ["c_attn"], "default": ["q_proj", "v_proj"]}
EMBED = {"gpt2": "wte", "default": "embed_tokens"}
MLP = {"gpt2": ["c_fc", "c_proj"], "default": ["gate_proj", "down_proj"]}

CASES = [
    {"target_modules": "all-linear"},
    {"target_modules": "attn"},
    {"target_modules": "mlp"},
    {"target_modules": "all-linear", "use_dora": True},
    {"target_modules": "attn", "use_dora": True, "r": 3},
    {"target_modules": "all-linear", "bias": "all"},
    {"target_modules": "all-linear", "bias": "lora_only"},
    {"target_modules": "all-linear", "modules_to_save": ["lm_head"]},
    {"target_modules": "attn", "modules_to_save": ["embed", "lm_head"], "bias": "all"},
    {"target_modules": "embed+attn", "use_dora": True},
    {"target_modules": "embed+attn", "r": 7},
]


def resolve(case: dict, model_name: str) -> dict:
    key = "gpt2" if model_name == "gpt2" else "default"
    targets = case["target_modules"]
    if targets == "attn":
        targets = ATTN[key]
    elif targets == "mlp":
        targets = MLP[key]
    elif targets == "embed+attn":
        targets = [EMBED[key], *ATTN[key]]
    saved = [EMBED[key] if m == "embed" else m for m in case.get("modules_to_save", [])]
    return {**case, "r": case.get("r", 8), "target_modules": targets, "modules_to_save": saved}


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("model_name", list(_configs()))
def test_counts_equal_peft(models, model_name, case):
    model, config = models[model_name]
    lora = resolve(case, model_name)
    ours = plan(from_meta_model(model, config), lora)
    assert (ours.trainable, ours.total) == peft_counts(model, lora)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    r=st.integers(1, 64),
    targets=st.sets(
        st.sampled_from(
            [
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
                "embed_tokens",
            ]
        ),
        min_size=1,
    ),
    dora=st.booleans(),
)
def test_any_rank_and_target_set_matches_peft(models, r, targets, dora):
    model, config = models["qwen2_tied_gqa"]
    lora = {"r": r, "target_modules": sorted(targets), "use_dora": dora}
    ours = plan(from_meta_model(model, config), lora)
    assert (ours.trainable, ours.total) == peft_counts(model, lora)


def test_fast_path_summary_gives_the_same_counts(models):
    model, config = models["llama_bias_mqa"]
    raw = {
        k: v
        for k, v in config.to_dict().items()
        if k
        in {
            "model_type",
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "attention_bias",
            "mlp_bias",
            "tie_word_embeddings",
        }
    }
    fast = summarize_config(raw)
    assert fast is not None
    lora = {"r": 16, "target_modules": "all-linear", "use_dora": True, "bias": "all"}
    ours = plan(fast, lora)
    assert (ours.trainable, ours.total) == peft_counts(model, lora)


def test_by_target_breakdown_adds_up(models):
    model, config = models["gpt2"]
    ours = plan(from_meta_model(model, config), {"r": 4, "target_modules": "all-linear"})
    assert set(ours.by_target) == {"c_attn", "c_proj", "c_fc"}
    assert ours.by_target["c_proj"]["count"] == 4  # attention and MLP both have a c_proj
    assert sum(e["params"] for e in ours.by_target.values()) == ours.trainable


@pytest.mark.parametrize(
    ("lora", "message"),
    [
        ({"target_modules": ["q_proj", "nope"]}, "the model has no nope"),
        ({"target_modules": ["input_layernorm"]}, "input_layernorm cannot take a LoRA adapter"),
        ({"target_modules": "all-linear", "modules_to_save": ["absent"]}, "no module named absent"),
        ({"target_modules": "q_proj"}, 'must be a list of names or "all-linear"'),
    ],
)
def test_targets_the_model_lacks_are_one_clear_error(models, lora, message):
    model, config = models["llama_bias_mqa"]
    with pytest.raises(ModelError, match=message):
        plan(from_meta_model(model, config), {"r": 8, **lora})
