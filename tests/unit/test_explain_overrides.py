"""Where tuiwiz overrides Hugging Face's behaviour, its explanation must say so: each row below
ties an override in tuiwiz.train.builders (training_arguments, model_dtype) to a phrase of the
key's explanation, and checks that the builders still make that override. Change either the
behaviour or the text alone, and this fails."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from tuiwiz import config
from tuiwiz.explain import EXPLANATIONS, explain, section_note

torch = pytest.importorskip("torch")


def resolved(**sections) -> dict:
    raw = {"model": {"name_or_path": "m"}, "data": {"path": "d.jsonl"}}
    for section, keys in sections.items():
        raw.setdefault(section, {}).update(keys)
    return config.validate(raw)


@pytest.fixture(scope="module")
def builders():
    from tuiwiz.train import builders

    return builders


def sft(builders, cfg: dict, tmp: Path, has_validation: bool = False, notices=None):
    return builders.training_arguments(
        cfg, tmp, has_validation, notice=(notices.append if notices is not None else print)
    )


# --- the overrides ------------------------------------------------------------------------------


def bf16_forced_false_unless_set(builders, tmp: Path, monkeypatch) -> None:
    from trl import SFTConfig

    assert SFTConfig(output_dir=str(tmp), use_cpu=True).bf16 is True  # TRL's own default
    monkeypatch.setattr(builders, "device_kind", lambda: "cuda")
    args = sft(builders, resolved(), tmp)
    assert args.bf16 is False  # TRL would have turned it on


def precision_off_on_the_cpu(builders, tmp: Path, monkeypatch) -> None:
    monkeypatch.setattr(builders, "device_kind", lambda: "cpu")
    notices: list[str] = []
    args = sft(builders, resolved(training={"bf16": True, "tf32": True}), tmp, notices=notices)
    assert args.bf16 is False and not args.tf32
    assert any("bf16 is turned off" in n for n in notices)


def evaluation_turned_on_with_a_validation_split(builders, tmp: Path, monkeypatch) -> None:
    monkeypatch.setattr(builders, "device_kind", lambda: "cpu")
    args = sft(builders, resolved(training={"save_steps": 30}), tmp, has_validation=True)
    assert str(getattr(args.eval_strategy, "value", args.eval_strategy)) == "steps"
    assert args.eval_steps == 30
    args = sft(builders, resolved(training={"save_steps": 30}), tmp, has_validation=False)
    assert str(getattr(args.eval_strategy, "value", args.eval_strategy)) == "no"


def rotation_is_tuiwiz_own(builders, tmp: Path, monkeypatch) -> None:
    monkeypatch.setattr(builders, "device_kind", lambda: "cpu")
    args = sft(builders, resolved(training={"save_total_limit": 2}), tmp)
    assert args.save_total_limit is None  # not the Trainer's rotation: tuiwiz's, see the text


def compute_dtype_picked_by_tuiwiz(builders, tmp: Path, monkeypatch) -> None:
    quantized = resolved(quantization={"bnb_4bit_compute_dtype": "float16"})
    assert builders.model_dtype(quantized) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    plain = resolved(quantization={"load_in_4bit": False})
    assert builders.model_dtype(plain) == torch.float32


def checkpointing_on_by_default(builders, tmp: Path, monkeypatch) -> None:
    monkeypatch.setattr(builders, "device_kind", lambda: "cpu")
    args = sft(builders, resolved(), tmp)
    on = getattr(args, "activation_checkpointing", None) or args.gradient_checkpointing
    assert on is True


OVERRIDES: list[tuple[str, str, Callable]] = [
    (
        "training.bf16",
        "tuiwiz sets it false unless the preset sets it",
        bf16_forced_false_unless_set,
    ),
    ("training.bf16", "tuiwiz turns bf16, fp16 and tf32 off", precision_off_on_the_cpu),
    (
        "training.eval_strategy",
        "tuiwiz turns evaluation on itself (steps, every save_steps)",
        evaluation_turned_on_with_a_validation_split,
    ),
    ("training.eval_steps", "unset means save_steps", evaluation_turned_on_with_a_validation_split),
    ("training.save_total_limit", "tuiwiz rotates checkpoints itself", rotation_is_tuiwiz_own),
    ("training.save_total_limit", "it keeps the best checkpoint as well", rotation_is_tuiwiz_own),
    (
        "model.torch_dtype",
        "bnb_4bit_compute_dtype when loading in 4-bit",
        compute_dtype_picked_by_tuiwiz,
    ),
    ("model.torch_dtype", "float32 on the CPU", compute_dtype_picked_by_tuiwiz),
    ("training.gradient_checkpointing", "true (tuiwiz", checkpointing_on_by_default),
]


@pytest.mark.parametrize(
    ("key", "phrase", "check"), OVERRIDES, ids=[f"{k}:{p[:24]}" for k, p, _ in OVERRIDES]
)
def test_each_override_is_explained_and_still_made(
    builders, tmp_path, monkeypatch, key, phrase, check
):
    entry = EXPLANATIONS[key]
    assert phrase in f"{entry.body} {entry.default}", (key, phrase)
    check(builders, tmp_path, monkeypatch)


def test_the_fixed_sft_settings_are_named_in_the_training_section_note(
    builders, tmp_path, monkeypatch
):
    """Every SFTConfig option training_arguments sets itself is named as not settable."""
    import inspect

    from tuiwiz.training_fields import MANAGED_KEYS

    note = section_note("[training]")
    assert note is not None
    source = inspect.getsource(builders.training_arguments)
    call = source[source.index("return SFTConfig(") :]
    fixed = [line.split("=")[0].strip() for line in call.splitlines()[1:] if "=" in line]
    assert {"output_dir", "max_length", "packing", "disable_tqdm"} <= set(fixed)
    for name in [*fixed, *MANAGED_KEYS]:
        assert name in note.body, name
    assert "[data] max_seq_length" in note.body and "[data] packing" in note.body


def test_sft_only_fields_are_refused_as_the_note_says():
    from transformers import TrainingArguments
    from trl import SFTConfig

    sft_only = {f.name for f in dataclasses.fields(SFTConfig)} - {
        f.name for f in dataclasses.fields(TrainingArguments)
    }
    assert "dataset_text_field" in sft_only
    note = section_note("training")
    assert note is not None and "dataset_text_field" in note.body
    with pytest.raises(config.ConfigError, match="unknown key"):
        resolved(training={"dataset_text_field": "text"})


def test_facts_of_the_corrected_explanations():
    assert "bitsandbytes warns" not in explain("bnb_4bit_compute_dtype").body
    body = explain("modules_to_save").body
    assert "128,256 x 4,096 x 2 bytes = 1.05 GB" in body
    assert pytest.approx(1.05, abs=0.005) == 128_256 * 4_096 * 2 / 1e9
    assert explain("activation_checkpointing") is explain("gradient_checkpointing")
    assert explain("training.activation_checkpointing").key == "training.gradient_checkpointing"
    for key in ("load_best_model_at_end", "metric_for_best_model", "greater_is_better"):
        assert explain(key).key == f"training.{key}"
    assert explain("lr_scheduler_kwargs").key == "training.lr_scheduler_kwargs"
    assert explain("torch_compile").key == "training.torch_compile"


def test_explain_training_prints_the_section_note(capsys, monkeypatch):
    from tuiwiz.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["explain", "training"]) == 0
    out = capsys.readouterr().out
    assert "Training settings ([training])" in out and "training.learning_rate" in out
    assert "max_length (use [data] max_seq_length)" in " ".join(out.split())
