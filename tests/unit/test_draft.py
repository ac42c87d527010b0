"""The wizard's draft: typed text becomes typed values, invalid values are flagged with the
engine's reason, and what it resolves to is exactly what `tuiwiz run` validates."""

from __future__ import annotations

import pytest

from tuiwiz import config as cfg
from tuiwiz import presets
from tuiwiz.errors import ConfigError
from tuiwiz.ui.draft import FIELDS, Draft, format_value, parse


def test_typed_numbers_become_numbers():
    d = Draft()
    assert d.set_text("training.learning_rate", "3e-4") is None
    assert d.get("training.learning_rate") == pytest.approx(3e-4)
    assert d.set_text("lora.r", " 8 ") is None
    assert d.get("lora.r") == 8
    assert d.set_text("lora.lora_alpha", "16") is None
    assert d.get("lora.lora_alpha") == 16 and isinstance(d.get("lora.lora_alpha"), int)


@pytest.mark.parametrize(
    ("key", "text", "reason"),
    [
        ("lora.r", "eight", "must be a whole number"),
        ("lora.r", "0", "must be > 0"),
        ("training.learning_rate", "-1", "must be > 0"),
        ("training.per_device_train_batch_size", "2.5", "must be a whole number"),
        ("lora.lora_dropout", "1.5", "must be"),
        ("data.columns", "output", "role=column"),
        ("preset.name", "", None),
    ],
)
def test_invalid_text_is_flagged_with_the_reason(key, text, reason):
    d = Draft()
    before = d.get(key)
    got = d.set_text(key, text)
    if reason is None:
        assert got is None
        return
    assert got is not None and reason in got
    assert d.invalid[key] == got
    assert d.get(key) == before  # the last valid value stays in the draft
    assert key in (d.problem() or "")
    with pytest.raises(ConfigError):
        d.resolved()


def test_fixing_the_value_clears_the_flag():
    d = Draft()
    d.set_text("lora.r", "x")
    assert d.set_text("lora.r", "4") is None
    assert not d.invalid and d.problem() is None


def test_virtual_keys_map_onto_real_ones():
    d = Draft()
    d.set("quantization.mode", "8-bit")
    r = d.resolved()["quantization"]
    assert (r["load_in_4bit"], r["load_in_8bit"]) == (False, True)
    d.set("quantization.mode", "none")
    assert d.get("quantization.mode") == "none"
    d.set("training.precision", "fp16")
    t = d.resolved()["training"]
    assert (t["fp16"], t["bf16"]) == (True, False)
    assert d.get("training.precision") == "fp16"


def test_columns_round_trip():
    spec = FIELDS["data.columns"]
    mapping = parse(spec, "instruction = question, output=answer")
    assert mapping == {"instruction": "question", "output": "answer"}
    assert parse(spec, format_value(mapping)) == mapping
    assert parse(spec, "") == {}


def test_every_field_has_an_explanation_and_a_valid_default():
    from tuiwiz.explain import explain
    from tuiwiz.ui.widgets.field_row import EXPLAIN_AS

    d = Draft()
    for key, spec in FIELDS.items():
        explain(EXPLAIN_AS.get(key, key))  # raises KeyError when missing
        if spec.kind == "choice":
            assert d.get(key) in spec.choices, key


def test_shipped_preset_round_trips_through_the_draft():
    resolved, _ = presets.load("qwen2.5-1.5b-alpaca-8gb")
    assert Draft(resolved).resolved() == cfg.validate(resolved, "x")


def test_suggestion_overrides_apply():
    d = Draft()
    d.set_text("training.per_device_train_batch_size", "0")
    d.apply_overrides(["training.per_device_train_batch_size=2", "data.max_seq_length=128"])
    assert d.problem() is None
    assert d.get("training.per_device_train_batch_size") == 2
    assert d.get("data.max_seq_length") == 128


def test_new_draft_is_launchable():
    assert Draft().problem() is None
