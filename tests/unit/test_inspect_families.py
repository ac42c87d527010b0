"""The config-only fast path (tuiwiz.inspect.families) against transformers' real module tree.

For random configs of each family the summary must equal, module by module and shape by shape,
the one built from the meta-device model; a config the fast path does not fully understand must
be refused (None), never guessed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuiwiz.inspect.arch import from_meta_model
from tuiwiz.inspect.families import FAMILIES, NEUTRAL_KEYS, summarize_config

REFERENCE = Path(__file__).resolve().parent.parent / "fixtures" / "reference-configs"
FACT_KEYS = (
    "layers",
    "hidden_size",
    "intermediate_size",
    "heads",
    "kv_heads",
    "head_dim",
    "vocab_size",
    "context_length",
    "model_type",
    "architecture",
)


def meta_summary(raw: dict):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**raw)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return from_meta_model(model, config)


def assert_same(fast, exact) -> None:
    assert fast is not None
    assert fast.modules == exact.modules
    assert fast.total_params == exact.total_params
    assert (fast.input_embedding, fast.output_embedding) == (
        exact.input_embedding,
        exact.output_embedding,
    )
    assert {k: fast.facts[k] for k in FACT_KEYS} == {k: exact.facts[k] for k in FACT_KEYS}


@st.composite
def family_configs(draw):
    family = draw(st.sampled_from(sorted(FAMILIES)))
    heads = draw(st.sampled_from([2, 4, 6, 8]))
    kv = draw(st.sampled_from([d for d in (1, 2, 3, 4, 6, 8) if heads % d == 0]))
    head_dim = draw(st.sampled_from([8, 16, 24]))
    raw = {
        "model_type": family,
        "hidden_size": heads * draw(st.sampled_from([8, 16])),
        "intermediate_size": draw(st.integers(8, 96)),
        "num_hidden_layers": draw(st.integers(1, 3)),
        "num_attention_heads": heads,
        "vocab_size": draw(st.integers(16, 300)),
    }
    optional = {
        "num_key_value_heads": kv,
        "head_dim": head_dim,
        "tie_word_embeddings": draw(st.booleans()),
        "max_position_embeddings": 64,
        "rope_theta": 10000.0,
    }
    if "attention_bias" in FAMILIES[family].structural:
        optional["attention_bias"] = draw(st.booleans())
    if "mlp_bias" in FAMILIES[family].structural:
        optional["mlp_bias"] = draw(st.booleans())
    # leave some keys out so the defaults are exercised too
    for key in draw(st.sets(st.sampled_from(sorted(optional)))):
        raw[key] = optional[key]
    return raw


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family_configs())
def test_fast_path_equals_the_meta_model(raw):
    assert_same(summarize_config(raw), meta_summary(raw))


@pytest.mark.parametrize("name", ["smollm2-135m", "qwen2.5-0.5b", "tinyllama-1.1b-chat-v1.0"])
def test_reference_configs(name):
    raw = json.loads((REFERENCE / name / "config.json").read_text())
    assert_same(summarize_config(raw), meta_summary(raw))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_defaults_are_transformers_defaults(family):
    from transformers import AutoConfig

    config = AutoConfig.for_model(family)
    for key, value in FAMILIES[family].defaults.items():
        assert getattr(config, key, None) == value or (
            value is None and key in ("num_key_value_heads", "head_dim")
        ), key


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_modeling_code_reads_only_modeled_config_fields(family, monkeypatch):
    """Record the config fields the modeling code reads while building the model: each must be
    a structural key the fast path models, or one it knows to be neutral. A transformers
    release that starts reading a new field fails here."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(
        family,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=4,
        vocab_size=64,
    )
    cls = type(config)
    fields = set(cls.__dict__.get("__annotations__", {}))  # the family's own config fields
    assert {"hidden_size", "vocab_size", "num_hidden_layers"} <= fields
    read: set[str] = set()
    original = cls.__getattribute__

    def spy(self, name):
        if name in fields:
            read.add(name)
        return original(self, name)

    monkeypatch.setattr(cls, "__getattribute__", spy)
    with torch.device("meta"):
        AutoModelForCausalLM.from_config(config)
    monkeypatch.undo()
    assert {"hidden_size", "num_attention_heads"} <= read  # the spy saw the modeling code
    known = FAMILIES[family].structural | NEUTRAL_KEYS
    assert read - known == set()


@pytest.mark.parametrize(
    "change",
    [
        {"unknown_structural_key": 3},  # not understood: exact path
        {"auto_map": {"AutoModelForCausalLM": "x.Y"}},  # remote code
        {"num_attention_heads": 5},  # 64 % 5: LlamaConfig rejects it
        {"pad_token_id": 1000},  # outside the vocabulary: nn.Embedding rejects it
        {"hidden_size": "64"},
        {"model_type": "gpt2"},  # a family the fast path does not cover
    ],
)
def test_refuses_what_it_does_not_understand(change):
    raw = {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 100,
        **change,
    }
    assert summarize_config(raw) is None


def test_qwen3_null_head_dim_takes_the_exact_path():
    raw = {
        "model_type": "qwen3",
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "vocab_size": 100,
        "head_dim": None,
    }
    assert summarize_config(raw) is None
