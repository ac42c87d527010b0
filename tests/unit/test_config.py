"""The run configuration: defaults, types, ranges, names, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiwiz import config
from tuiwiz.errors import ConfigError

MINIMAL = {"model": {"name_or_path": "m"}, "data": {"path": "d.jsonl"}}


def with_(section: str, **keys):
    raw = {s: dict(t) for s, t in MINIMAL.items()}
    raw.setdefault(section, {}).update(keys)
    return raw


def test_minimal_preset_is_filled_with_defaults():
    resolved = config.validate(MINIMAL)
    assert resolved["quantization"]["load_in_4bit"] is True
    assert resolved["quantization"]["bnb_4bit_quant_type"] == "nf4"
    assert resolved["lora"]["target_modules"] == "all-linear"
    assert resolved["training"]["learning_rate"] == 2e-4
    assert resolved["data"]["format"] == "auto"
    assert resolved["model"]["trust_remote_code"] is False


def test_training_accepts_any_training_arguments_field():
    resolved = config.validate(
        with_("training", neftune_noise_alpha=5.0, lr_scheduler_type="linear")
    )
    assert resolved["training"]["neftune_noise_alpha"] == 5.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (with_("lora", rr=8), "unknown key [lora] rr (did you mean 'r'?)"),
        (with_("training", learnig_rate=1e-4), "(did you mean 'learning_rate'?)"),
        ({**MINIMAL, "trainig": {}}, "unknown key 'trainig' (did you mean 'training'?)"),
        (with_("lora", r="16"), "[lora] r must be an integer, got '16'"),
        (with_("lora", r=0), "[lora] r must be > 0, got 0"),
        (with_("lora", r=True), "[lora] r must be an integer, got True"),
        (with_("lora", lora_dropout=1.0), "[lora] lora_dropout must be in [0, 1), got 1.0"),
        (with_("lora", lora_dropout=-0.1), "must be in [0, 1)"),
        (with_("lora", target_modules=[]), "must be a non-empty list of module names"),
        (with_("lora", target_modules="all"), '"all-linear"'),
        (with_("training", learning_rate=0), "[training] learning_rate must be > 0, got 0"),
        (with_("training", learning_rate=-1e-4), "must be > 0"),
        (with_("training", learning_rate="fast"), "[training] learning_rate expects"),
        (
            with_("training", per_device_train_batch_size=0),
            "per_device_train_batch_size must be > 0",
        ),
        (with_("training", gradient_accumulation_steps=-2), "must be > 0"),
        (with_("training", bf16=1), "[training] bf16 expects bool"),
        (with_("training", fp16=True, bf16=True), "fp16 and bf16 are both true"),
        (with_("training", output_dir="x"), "cannot be set in a preset"),
        (with_("training", hub_token="hf_x"), "tokens are never stored in presets"),
        (with_("quantization", load_in_8bit=True), "load_in_4bit and load_in_8bit are both true"),
        (
            with_("quantization", bnb_4bit_quant_type="nf5"),
            "is not one of 'nf4', 'fp4' (did you mean 'nf4'?)",
        ),
        (with_("data", format="chat"), "[data] format = 'chat' is not one of"),
        (with_("data", max_seq_length=0), "max_seq_length must be > 0"),
        (with_("data", columns={"output": 3}), "must map column names"),
        ({"data": {"path": "d"}}, "[model] name_or_path is required"),
        ({**MINIMAL, "schema_version": 2}, "schema_version 2 is not supported"),
        ({**MINIMAL, "lora": 3}, "'lora' must be a table"),
    ],
)
def test_bad_values_get_one_line_errors(raw, message):
    with pytest.raises(ConfigError) as info:
        config.validate(raw, source="p.toml")
    text = str(info.value)
    assert message in text
    assert text.startswith("p.toml")
    assert "\n" not in text


def test_overrides_parse_toml_values_and_bare_words():
    raw = config.apply_overrides(
        MINIMAL,
        [
            "training.learning_rate=1e-4",
            'lora.target_modules=["q_proj", "v_proj"]',
            "training.lr_scheduler_type=cosine",
            "training.gradient_checkpointing=false",
            "model.name_or_path=Qwen/Qwen2.5-0.5B",
        ],
    )
    assert raw["training"]["learning_rate"] == 1e-4
    assert raw["lora"]["target_modules"] == ["q_proj", "v_proj"]
    assert raw["training"]["lr_scheduler_type"] == "cosine"
    assert raw["training"]["gradient_checkpointing"] is False
    assert raw["model"]["name_or_path"] == "Qwen/Qwen2.5-0.5B"
    assert MINIMAL["model"]["name_or_path"] == "m"  # the original is not modified


@pytest.mark.parametrize("text", ["learning_rate=1", "training.lr", "trainin.lr=1"])
def test_malformed_overrides(text):
    with pytest.raises(ConfigError, match="--set"):
        config.apply_overrides(MINIMAL, [text])


def test_effective_batch_size():
    resolved = config.validate(
        with_("training", per_device_train_batch_size=4, gradient_accumulation_steps=4)
    )
    assert config.effective_batch_size(resolved) == 16
    assert config.effective_batch_size(resolved, world_size=2) == 32


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize(
    "section, key",
    [("training", "learning_rate"), ("training", "max_grad_norm"), ("lora", "lora_alpha")],
)
def test_numbers_must_be_finite(section: str, key: str, value: float):
    with pytest.raises(ConfigError, match="must be a finite number") as info:
        config.validate(with_(section, **{key: value}), source="p.toml")
    assert "\n" not in str(info.value)


def test_activation_checkpointing_is_the_same_setting_as_gradient_checkpointing():
    """transformers 5's new name, in a preset, turns tuiwiz's checkpointing off (it is read as
    gradient_checkpointing, whose default is on), and both names at odds are refused."""
    resolved = config.validate(
        with_(
            "training",
            activation_checkpointing=False,
            activation_checkpointing_kwargs={"use_reentrant": True},
        )
    )
    assert resolved["training"]["gradient_checkpointing"] is False
    assert resolved["training"]["gradient_checkpointing_kwargs"] == {"use_reentrant": True}
    assert "activation_checkpointing" not in resolved["training"]
    with pytest.raises(ConfigError, match="are the same setting"):
        config.validate(
            with_("training", activation_checkpointing=False, gradient_checkpointing=True)
        )


def test_checkpointing_off_reaches_the_trainer_and_the_model(demo_model):
    from tuiwiz import presets
    from tuiwiz.train import builders

    resolved = presets.load("demo", ["training.activation_checkpointing=false"])[0]
    args = builders.training_arguments(resolved, Path("/tmp/unused"), False, notice=lambda m: None)
    assert not args.activation_checkpointing
    model = builders.load_model(str(demo_model), resolved)
    assert not model.base_model.model.is_activation_checkpointing
    resolved = presets.load("demo", ["training.gradient_checkpointing=true"])[0]
    model = builders.load_model(str(demo_model), resolved)
    assert model.base_model.model.is_activation_checkpointing


# --- the estimate needs no data; --set errors name the --set flag --------------------------------


def test_data_path_is_optional_only_when_asked():
    no_data = {"model": {"name_or_path": "m"}}
    with pytest.raises(ConfigError, match=r"p.toml: \[data\] path is required"):
        config.validate(no_data, source="p.toml")
    resolved = config.validate(no_data, source="p.toml", require_data=False)
    assert resolved["data"]["path"] is None
    assert resolved["data"]["max_seq_length"] == 1024  # the rest is resolved as usual


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("training.learning_rate=-1", "--set training.learning_rate=-1: [training] learning_rate"),
        ("training.learning_rate=nan", "--set training.learning_rate=nan"),
        ("training.lr=1e-4", "--set training.lr=1e-4: unknown key [training] lr"),
        ("lora.r=0", "--set lora.r=0: [lora] r must be > 0"),
        ("lora.rank=8", "--set lora.rank=8: unknown key [lora] rank (did you mean 'r'?)"),
        ("data.format=chat", "--set data.format=chat: [data] format = 'chat' is not one of"),
        ("training.output_dir=x", "--set training.output_dir=x: [training] output_dir cannot"),
    ],
)
def test_an_error_in_a_set_value_names_the_set_flag(override, needle):
    raw = config.apply_overrides(MINIMAL, [override])
    with pytest.raises(ConfigError) as info:
        config.validate(raw, source="demo.toml", origins=config.override_origins([override]))
    text = str(info.value)
    assert text.startswith(needle), text
    assert "demo.toml" not in text  # the preset file is not to blame


def test_an_error_in_the_file_still_names_the_file():
    raw = config.apply_overrides(with_("lora", r=0), ["training.learning_rate=1e-4"])
    origins = config.override_origins(["training.learning_rate=1e-4"])
    with pytest.raises(ConfigError, match=r"^demo.toml: \[lora\] r must be > 0"):
        config.validate(raw, source="demo.toml", origins=origins)


def test_a_rule_between_two_keys_names_the_set_flag_it_involves():
    override = "training.fp16=true"
    raw = config.apply_overrides(with_("training", bf16=True), [override])
    with pytest.raises(ConfigError, match=r"^--set training.fp16=true: .*fp16 and bf16"):
        config.validate(raw, source="demo.toml", origins=config.override_origins([override]))
