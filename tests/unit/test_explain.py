"""Tests for tuiwiz.explain: coverage of the keys, format of the text, lookups, and agreement
with the libraries (transformers, peft, bitsandbytes) and with tuiwiz.config's defaults."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tuiwiz.explain import EXPLANATIONS, Explanation, explain, keys_for

REQUIRED_KEYS = {
    "preset": ["name", "description", "schema_version"],
    "model": [
        "name_or_path",
        "revision",
        "attn_implementation",
        "trust_remote_code",
        "torch_dtype",
    ],
    "quantization": [
        "load_in_4bit",
        "load_in_8bit",
        "bnb_4bit_quant_type",
        "bnb_4bit_use_double_quant",
        "bnb_4bit_compute_dtype",
        "upcast_unquantized",
    ],
    "lora": [
        "r",
        "lora_alpha",
        "lora_dropout",
        "target_modules",
        "bias",
        "use_rslora",
        "use_dora",
        "modules_to_save",
    ],
    "data": [
        "path",
        "format",
        "split",
        "subset",
        "columns",
        "max_seq_length",
        "validation_split",
        "train_on_prompt",
        "packing",
        "max_samples",
        "num_proc",
    ],
    "training": [
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
        "num_train_epochs",
        "max_steps",
        "gradient_checkpointing",
        "learning_rate",
        "lr_scheduler_type",
        "warmup_ratio",
        "warmup_steps",
        "weight_decay",
        "optim",
        "bf16",
        "fp16",
        "tf32",
        "max_grad_norm",
        "eval_strategy",
        "eval_steps",
        "save_strategy",
        "save_steps",
        "save_total_limit",
        "load_best_model_at_end",
        "metric_for_best_model",
        "greater_is_better",
        "lr_scheduler_kwargs",
        "torch_compile",
        "logging_steps",
        "seed",
        "report_to",
        "dataloader_num_workers",
        "neftune_noise_alpha",
        "speed",
        "padding_free",
        "use_liger_kernel",
        "train_sampling_strategy",
        "activation_offloading",
    ],
    "launch": ["nproc_per_node", "nnodes", "node_rank", "master_addr", "master_port", "strategy"],
}
ALL_REQUIRED = [f"{section}.{key}" for section, keys in REQUIRED_KEYS.items() for key in keys]

# warmup_ratio was removed from TrainingArguments in transformers 5.x; its entry stays so that
# `tuiwiz explain warmup_ratio` says where it went (warmup_steps with a fraction below 1).
RETIRED_TRAINING_KEYS = {"warmup_ratio"}


# --- coverage and format ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ALL_REQUIRED)
def test_required_key_present(key: str) -> None:
    assert key in EXPLANATIONS


@pytest.mark.parametrize("key", list(EXPLANATIONS))
def test_entry_is_well_formed(key: str) -> None:
    e = EXPLANATIONS[key]
    assert isinstance(e, Explanation)
    assert e.key == key
    section, name = key.split(".")
    assert section and name == name.strip() and " " not in key
    for field in ("title", "summary", "body", "range", "default"):
        text = getattr(e, field)
        assert isinstance(text, str) and text.strip() == text and text, (key, field)
        # No control characters: the summary becomes a TOML comment, the rest one TUI paragraph.
        assert all(c.isprintable() for c in text), (key, field, text)
    assert len(e.summary) <= 90, (key, len(e.summary))
    assert len(e.title) <= 40
    assert 80 <= len(e.body) <= 800, (key, len(e.body))


def test_explanation_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        EXPLANATIONS["lora.r"].summary = "x"  # type: ignore[misc]


def test_interface_fields() -> None:
    names = [f.name for f in dataclasses.fields(Explanation)]
    assert names == ["key", "title", "summary", "body", "range", "default"]


def test_facts_the_brief_asks_for() -> None:
    # A few numbers and names that must be in the text, not just "somewhere" in a paper.
    assert "4 x 4 x 1 = 16" in explain("gradient_accumulation_steps").body
    assert "0.127" in explain("bnb_4bit_use_double_quant").body
    assert "0.373" in explain("bnb_4bit_use_double_quant").body
    assert "3 GB" in explain("bnb_4bit_use_double_quant").body
    assert "alpha / r" in explain("lora_alpha").body
    assert "alpha / sqrt(r)" in explain("lora_alpha").body
    assert "sqrt(r)" in explain("use_rslora").summary
    assert "max_steps" in explain("num_train_epochs").summary
    assert "masked" in explain("train_on_prompt").summary
    for fmt in ("auto", "alpaca", "messages", "sharegpt", "prompt_completion", "text"):
        assert fmt in explain("data.format").range
    for impl in ("sdpa", "eager", "flash_attention_2"):
        assert impl in explain("attn_implementation").range
    for optim in ("adamw_torch", "adamw_8bit", "paged_adamw_8bit", "adafactor", "sgd"):
        assert optim in explain("optim").body
    assert "security" in explain("trust_remote_code").summary.lower()
    assert "Dettmers et al. 2023" in explain("target_modules").body
    assert "Hu et al. 2021" in explain("lora.r").body
    assert "Kalajdzievski 2023" in explain("use_rslora").body
    assert "Liu et al. 2024" in explain("use_dora").body


# --- lookups ---------------------------------------------------------------------------------


def test_full_key_lookup() -> None:
    assert explain("training.learning_rate") is EXPLANATIONS["training.learning_rate"]


@pytest.mark.parametrize("key", ALL_REQUIRED)
def test_bare_key_lookup_is_unambiguous(key: str) -> None:
    bare = key.split(".", 1)[1]
    assert explain(bare).key == key


def test_bare_keys_are_unique() -> None:
    bare = [k.split(".", 1)[1] for k in EXPLANATIONS]
    assert len(bare) == len(set(bare))


def test_lookup_forgives_case_dashes_and_spaces() -> None:
    assert explain("  Learning-Rate ").key == "training.learning_rate"
    assert explain("LORA.R").key == "lora.r"


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("learnign_rate", "training.learning_rate"),
        ("training.learnign_rate", "training.learning_rate"),
        ("lora.learning_rate", "training.learning_rate"),  # right key, wrong section
        ("lora_rank", "lora.r"),
        ("gradient_accumulation", "training.gradient_accumulation_steps"),
        ("max_seq_len", "data.max_seq_length"),
    ],
)
def test_unknown_key_suggests_close_match(typo: str, expected: str) -> None:
    with pytest.raises(KeyError) as info:
        explain(typo)
    message = str(info.value)
    assert "did you mean" in message
    assert expected in message
    assert typo in message


def test_unknown_key_without_close_match_lists_sections() -> None:
    with pytest.raises(KeyError) as info:
        explain("zzzzzz")
    assert "training" in str(info.value) and "lora" in str(info.value)


def test_non_string_key_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        explain(3)  # type: ignore[arg-type]


def test_keys_for() -> None:
    for section, keys in REQUIRED_KEYS.items():
        listed = keys_for(section)
        assert set(f"{section}.{k}" for k in keys) <= set(listed)
        assert all(k.startswith(section + ".") for k in listed)
    assert keys_for("lora")[0] == "lora.r"  # display order is definition order
    assert sorted(k for s in REQUIRED_KEYS for k in keys_for(s)) == sorted(EXPLANATIONS)


def test_keys_for_unknown_section() -> None:
    with pytest.raises(KeyError, match="did you mean training"):
        keys_for("trainig")


# --- agreement with the libraries ------------------------------------------------------------


def _tokens(text: str) -> set[str]:
    return {t.rstrip(".") for t in re.findall(r"[A-Za-z0-9_.+-]+", text)}


def _mentions(text: str, value: object) -> bool:
    """Whether `text` states `value` (a library default) as one of its words."""
    tokens = _tokens(text)
    if value is None:
        return bool(tokens & {"none", "unset", "off"})
    if isinstance(value, bool):
        return ("true" if value else "false") in tokens
    if isinstance(value, int | float):
        for t in tokens:
            try:
                if float(t) == float(value):
                    return True
            except ValueError:
                pass
        return False
    value = getattr(value, "value", value)  # str enums: OptimizerNames, IntervalStrategy, ...
    return str(value) in tokens


def _first(default: str) -> str:
    return default.split()[0].rstrip(";,")


def _states(token: str, value: object) -> bool:
    """Whether the first word of a `default` is exactly `value` (tuiwiz's own default)."""
    if value is None:
        return token in {"none", "unset"}
    if value in ("", [], {}):
        return token == "empty"
    if isinstance(value, bool):
        return token == ("true" if value else "false")
    if isinstance(value, int | float):
        return float(token) == float(value)
    return token == str(value)


def _training_field_defaults() -> dict[str, object]:
    """TrainingArguments' fields with their defaults, and the SFTConfig fields [training]
    accepts (tuiwiz.training_fields.SFT_FIELDS) with SFTConfig's."""
    from transformers import TrainingArguments
    from trl import SFTConfig

    from tuiwiz.training_fields import SFT_FIELDS

    out = {}
    sft = [f for f in dataclasses.fields(SFTConfig) if f.name in SFT_FIELDS]
    assert {f.name for f in sft} == set(SFT_FIELDS), "an SFT_FIELDS entry is not in SFTConfig"
    for f in [*dataclasses.fields(TrainingArguments), *sft]:
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = dataclasses.MISSING
    return out


def test_training_keys_are_training_arguments_fields() -> None:
    from tuiwiz.config import TUIWIZ_TRAINING_KEYS

    fields = _training_field_defaults()
    for key in keys_for("training"):
        name = key.split(".", 1)[1]
        if name in TUIWIZ_TRAINING_KEYS:
            assert name not in fields, f"{name} is a TrainingArguments field: not tuiwiz's own"
        elif name in RETIRED_TRAINING_KEYS:
            assert name not in fields, f"{name} is a TrainingArguments field again: update explain"
        else:
            assert name in fields, f"{key} is not a field of transformers.TrainingArguments"


def test_training_defaults_match_transformers() -> None:
    from tuiwiz.config import TRAINING_OPTION_DEFAULTS, TUIWIZ_TRAINING_KEYS

    fields = _training_field_defaults()
    resolved = {"gradient_checkpointing": False}  # None in the dataclass, resolved to False
    for key in keys_for("training"):
        name = key.split(".", 1)[1]
        if name in TUIWIZ_TRAINING_KEYS:
            default = TUIWIZ_TRAINING_KEYS[name].default
            assert _states(_first(EXPLANATIONS[key].default), default), key
            continue
        if name in RETIRED_TRAINING_KEYS:
            continue
        if name in TRAINING_OPTION_DEFAULTS:  # what the wizard shows for an unset option
            assert TRAINING_OPTION_DEFAULTS[name] == fields[name], name
        value = resolved.get(name, fields[name])
        assert _mentions(EXPLANATIONS[key].default, value), (key, value)


def test_lora_keys_and_defaults_match_peft() -> None:
    from peft import LoraConfig

    fields = {f.name: f for f in dataclasses.fields(LoraConfig)}
    for key in keys_for("lora"):
        name = key.split(".", 1)[1]
        assert name in fields, f"{key} is not a field of peft.LoraConfig"
        value = fields[name].default
        if value is dataclasses.MISSING:
            value = fields[name].default_factory()  # type: ignore[misc]
        assert _mentions(EXPLANATIONS[key].default, value), (key, value)


def test_quantization_keys_and_defaults_match_bitsandbytes_config() -> None:
    from transformers import BitsAndBytesConfig

    params = inspect.signature(BitsAndBytesConfig.__init__).parameters
    unset = BitsAndBytesConfig()  # defaults as resolved (compute dtype None -> torch.float32)
    for key in keys_for("quantization"):
        name = key.split(".", 1)[1]
        if name == "upcast_unquantized":  # tuiwiz's own: how peft prepares the quantized model
            continue
        assert name in params, f"{key} is not an argument of BitsAndBytesConfig"
        value = getattr(unset, name)
        if not isinstance(value, bool | str):
            value = str(value).removeprefix("torch.")
        assert _mentions(EXPLANATIONS[key].default, value), (key, value)


def test_entries_for_library_settings_name_their_source() -> None:
    # The summary of a retired key must point to its replacement.
    assert "warmup_steps" in explain("warmup_ratio").summary
    assert "activation_checkpointing" in explain("gradient_checkpointing").body


# --- agreement with tuiwiz.config ------------------------------------------------------------


def test_defaults_start_with_tuiwiz_config_defaults() -> None:
    from tuiwiz import config

    for section, keys in config.SCHEMA.items():
        for name, spec in keys.items():
            e = EXPLANATIONS.get(f"{section}.{name}")
            assert e is not None, f"{section}.{name} is in tuiwiz.config but has no explanation"
            assert _states(_first(e.default), spec.default), (e.key, e.default, spec.default)
    for name, spec in config.TOP_LEVEL.items():
        e = EXPLANATIONS[f"preset.{name}"]
        assert _states(_first(e.default), spec.default), (e.key, e.default, spec.default)
    for name, value in config.TRAINING_DEFAULTS.items():
        e = EXPLANATIONS.get(f"training.{name}")
        assert e is not None, f"training.{name} has a tuiwiz default but no explanation"
        assert _states(_first(e.default), value), (e.key, e.default, value)


def test_choices_in_config_are_listed_in_range() -> None:
    from tuiwiz import config

    for section, keys in config.SCHEMA.items():
        for name, spec in keys.items():
            for choice in spec.choices or ():
                assert str(choice) in EXPLANATIONS[f"{section}.{name}"].range, (name, choice)


# --- cheap to import -------------------------------------------------------------------------


def test_import_does_not_pull_heavy_libraries() -> None:
    code = (
        "import json, sys, time\n"
        "t = time.perf_counter()\n"
        "import tuiwiz.explain\n"
        "took = time.perf_counter() - t\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes', 'trl', 'datasets',"
        " 'numpy', 'textual', 'rich') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'took': took}))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    assert result["heavy"] == []
    assert result["took"] < 0.5  # typically ~0.03 s; generous for loaded CI machines


def test_module_level_imports_are_standard_library() -> None:
    import tuiwiz.explain as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    for node in tree.body:  # module level only; lazy imports inside functions are fine
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top == "__future__" or top in sys.stdlib_module_names, name
