"""The speed options: `[training] speed` resolved per machine, the options validated, refused
where they cannot run, and passed to TRL's SFTConfig by tuiwiz.train.builders."""

from __future__ import annotations

import copy

import pytest

from tuiwiz import config as cfg
from tuiwiz import speed
from tuiwiz.errors import ConfigError

CPU = speed.Machine(cuda=False, liger=True, flash_attn=True)
CUDA_BARE = speed.Machine(cuda=True, liger=False, flash_attn=False)
CUDA_FULL = speed.Machine(cuda=True, liger=True, flash_attn=True)


def resolved(**sections) -> dict:
    raw = {"model": {"name_or_path": "m"}, "data": {"path": "d.jsonl"}}
    for section, keys in sections.items():
        raw.setdefault(section, {}).update(keys)
    return cfg.validate(raw)


def fast(**training) -> dict:
    return resolved(training={"speed": "fast", **training})


@pytest.mark.parametrize(
    ("machine", "liger", "attn"),
    [
        (CPU, False, "sdpa"),  # liger-kernel and flash-attn installed, but no CUDA GPU
        (CUDA_BARE, False, "sdpa"),
        (CUDA_FULL, True, "flash_attention_2"),
    ],
)
def test_fast_is_what_works_on_the_machine(machine, liger, attn):
    out = speed.resolve(fast(), machine)
    assert out["training"]["padding_free"] is True
    assert out["training"]["use_liger_kernel"] is liger
    assert out["model"]["attn_implementation"] == attn
    assert out["training"]["speed"] == "fast"  # kept: the record of the choice
    assert speed.problems(out, machine) == []


def test_fast_fills_only_what_the_preset_leaves_unset():
    config = resolved(
        model={"attn_implementation": "eager"},
        training={"speed": "fast", "padding_free": False, "use_liger_kernel": False},
    )
    out = speed.resolve(config, CUDA_FULL)
    assert out["training"]["padding_free"] is False
    assert out["training"]["use_liger_kernel"] is False
    assert out["model"]["attn_implementation"] == "eager"


def test_resolving_twice_or_default_changes_nothing():
    once = speed.resolve(fast(), CUDA_FULL)
    assert speed.resolve(once, CPU) == once  # a run's preset.toml replays as it ran
    plain = resolved()
    assert speed.resolve(plain, CUDA_FULL) is plain
    assert "padding_free" not in plain["training"]


def test_resolve_in_place_changes_the_object_the_run_records():
    config = fast()
    original = copy.deepcopy(config)
    speed.resolve_in_place(config, CPU)
    assert config["training"]["padding_free"] is True and "padding_free" not in original["training"]
    untouched = resolved()
    before = copy.deepcopy(untouched)
    speed.resolve_in_place(untouched, CUDA_FULL)
    assert untouched == before


def test_summary_says_what_fast_left_off_and_why():
    line = speed.summary(speed.resolve(fast(), CPU), CPU)
    assert line == (
        "speed = fast: padding-free batches, sdpa (Liger kernels off: no CUDA GPU; "
        "flash_attention_2 off: no CUDA GPU)"
    )
    line = speed.summary(speed.resolve(fast(), CUDA_BARE), CUDA_BARE)
    assert "liger-kernel is not installed" in line and "flash-attn is not installed" in line
    line = speed.summary(speed.resolve(fast(), CUDA_FULL), CUDA_FULL)
    assert line == "speed = fast: padding-free batches, Liger kernels, flash_attention_2"


@pytest.mark.parametrize(
    ("sections", "machine", "phrase"),
    [
        ({"training": {"use_liger_kernel": True}}, CPU, "use_liger_kernel needs a CUDA GPU"),
        ({"training": {"use_liger_kernel": True}}, CUDA_BARE, "pip install 'tuiwiz[fast]'"),
        ({"model": {"attn_implementation": "flash_attention_2"}}, CPU, "needs a CUDA GPU"),
        ({"model": {"attn_implementation": "flash_attention_2"}}, CUDA_BARE, "flash-attn"),
        ({"training": {"activation_offloading": True}}, CPU, "activation_offloading needs a CUDA"),
    ],
)
def test_options_the_machine_cannot_run_are_refused(sections, machine, phrase):
    (problem,) = speed.problems(resolved(**sections), machine)
    assert phrase in problem and "\n" not in problem


def test_the_options_are_validated_like_any_key():
    assert fast()["training"]["speed"] == "fast"
    with pytest.raises(ConfigError, match="speed = 'turbo' is not one of 'default', 'fast'"):
        resolved(training={"speed": "turbo"})
    with pytest.raises(ConfigError, match="padding_free expects bool"):
        resolved(training={"padding_free": "yes"})
    with pytest.raises(ConfigError, match="upcast_unquantized must be true/false"):
        resolved(quantization={"upcast_unquantized": 1})
    assert resolved(training={"activation_offloading": True})["training"]["activation_offloading"]
    sampled = resolved(training={"train_sampling_strategy": "group_by_length"})
    assert sampled["training"]["train_sampling_strategy"] == "group_by_length"
    assert resolved()["quantization"]["upcast_unquantized"] is True
    with pytest.raises(ConfigError, match="did you mean 'padding_free'"):
        resolved(training={"padding_fre": True})


def test_speed_is_written_only_when_set():
    from tuiwiz import presets

    assert "speed =" not in presets.to_toml(resolved())
    assert 'speed = "fast"  # ' in presets.to_toml(fast())


# --- the builders ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def builders():
    pytest.importorskip("trl")
    from tuiwiz.train import builders

    return builders


def test_padding_free_reaches_sft_config_and_lifts_max_length(builders, tmp_path, monkeypatch):
    monkeypatch.setattr(builders, "device_kind", lambda: "cpu")
    args = builders.training_arguments(resolved(training={"padding_free": True}), tmp_path, False)
    # tuiwiz cut the examples when it tokenized them; TRL refuses padding_free with a max_length
    assert args.padding_free is True and args.max_length is None
    packed = resolved(data={"packing": True}, training={"padding_free": True})
    assert builders.training_arguments(packed, tmp_path, False).max_length == 1024
    plain = builders.training_arguments(resolved(), tmp_path, False)
    assert plain.padding_free is False and plain.max_length == 1024
    grouped = resolved(training={"train_sampling_strategy": "group_by_length"})
    args = builders.training_arguments(grouped, tmp_path, False)
    assert args.train_sampling_strategy == "group_by_length"


def test_fast_on_the_cpu_is_resolved_into_the_run_config(builders, tmp_path, monkeypatch):
    monkeypatch.setattr(builders, "device_kind", lambda: "cpu")
    config, notices = fast(), []
    args = builders.training_arguments(config, tmp_path, False, notice=notices.append)
    assert args.padding_free is True and args.use_liger_kernel is False
    assert not hasattr(args, "speed")
    assert config["training"]["padding_free"] is True  # what preset.toml will record
    assert config["training"]["use_liger_kernel"] is False
    assert any(n.startswith("speed = fast: padding-free batches") for n in notices)


@pytest.mark.parametrize(
    "sections",
    [
        {"training": {"use_liger_kernel": True}},
        {"training": {"activation_offloading": True}},
        {"model": {"attn_implementation": "flash_attention_2"}},
    ],
)
def test_what_cannot_run_here_is_refused_before_anything_is_built(
    builders, tmp_path, monkeypatch, sections
):
    monkeypatch.setattr(builders, "device_kind", lambda: "cpu")
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        builders.training_arguments(resolved(**sections), tmp_path, False)
