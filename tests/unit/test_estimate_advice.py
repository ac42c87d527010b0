"""Fit and advice (tuiwiz.estimate.advice) and the `tuiwiz estimate` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tuiwiz import config as cfg
from tuiwiz.cli import main
from tuiwiz.estimate import estimate, suggest

REFERENCE = Path(__file__).resolve().parent.parent / "fixtures" / "reference-configs"
NVML = Path(__file__).resolve().parent.parent / "fixtures" / "nvml"
GiB = 1 << 30

PRESET = """\
schema_version = 1
name = "tinyllama-test"
[model]
name_or_path = "{model}"
[lora]
target_modules = {targets}
[data]
path = "train.jsonl"
max_seq_length = 2048
[training]
per_device_train_batch_size = 8
gradient_accumulation_steps = 2
gradient_checkpointing = false
bf16 = true
optim = "adamw_torch"
"""


def big_run() -> dict:
    """TinyLlama, batch 8 x 2048 without checkpointing: far more than a 24 GB card."""
    return cfg.validate(
        {
            "model": {"name_or_path": str(REFERENCE / "tinyllama-1.1b-chat-v1.0")},
            "data": {"path": "x.jsonl", "max_seq_length": 2048},
            "training": {
                "per_device_train_batch_size": 8,
                "gradient_accumulation_steps": 2,
                "gradient_checkpointing": False,
                "bf16": True,
                "optim": "adamw_torch",
            },
        }
    )


def write_preset(tmp_path: Path, targets: str = '"all-linear"') -> Path:
    path = tmp_path / "p.toml"
    model = REFERENCE / "tinyllama-1.1b-chat-v1.0"
    path.write_text(PRESET.format(model=model, targets=targets))
    return path


def test_every_suggestion_is_machine_applicable_and_its_total_is_right():
    config, free = big_run(), 22 * GiB
    suggestions = suggest(config, free)
    assert suggestions
    for s in suggestions:
        changed = cfg.validate(cfg.apply_overrides(config, s.overrides))
        assert estimate(changed).total == s.total_bytes
        assert s.fits == (s.total_bytes <= free)
        assert s.saves_bytes == estimate(config).total - s.total_bytes > 0


def test_batch_suggestion_is_the_largest_that_fits_and_keeps_the_effective_batch():
    config, free = big_run(), 22 * GiB
    (batch,) = [s for s in suggest(config, free) if "per-device batch" in s.title]
    new = cfg.validate(cfg.apply_overrides(config, batch.overrides))["training"]
    assert new["per_device_train_batch_size"] * new["gradient_accumulation_steps"] == 16
    assert batch.fits
    bigger = {2: 4, 1: 2}.get(new["per_device_train_batch_size"])
    if bigger:
        over = cfg.apply_overrides(
            config,
            [
                f"training.per_device_train_batch_size={bigger}",
                f"training.gradient_accumulation_steps={16 // bigger}",
            ],
        )
        assert estimate(cfg.validate(over)).total > free


def test_advice_for_an_activation_bound_run():
    config = cfg.apply_overrides(big_run(), ['model.attn_implementation="eager"'])
    titles = " | ".join(s.title for s in suggest(cfg.validate(config), 22 * GiB))
    for kind in (
        "per-device batch",
        "gradient checkpointing",
        "max_seq_length",
        "sdpa attention",
        "adapters on q_proj",
    ):
        assert kind in titles, kind


def test_advice_for_a_weight_bound_run(tmp_path):
    """A 7B model in 16 bits with a fully trained lm_head: 4-bit and an 8-bit optimizer help;
    4-bit is not offered for activation-bound runs, where the float32 residual stream of a
    k-bit model would cost more than the weights save."""
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 4096,
                "intermediate_size": 11008,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "vocab_size": 32000,
            }
        )
    )
    config = cfg.validate(
        {
            "model": {"name_or_path": str(tmp_path)},
            "quantization": {"load_in_4bit": False},
            "lora": {"modules_to_save": ["lm_head"]},
            "data": {"path": "x.jsonl", "max_seq_length": 256},
            "training": {"per_device_train_batch_size": 1, "optim": "adamw_torch"},
        }
    )
    suggestions = suggest(config, 14 * GiB)
    titles = " | ".join(s.title for s in suggestions)
    assert "4-bit" in titles and "paged_adamw_8bit" in titles
    (four,) = [s for s in suggestions if "4-bit" in s.title]
    assert four.fits and four.saves_bytes > 8 * GiB


def test_when_nothing_alone_fits_the_changes_are_combined():
    suggestions = suggest(big_run(), 3 * GiB)
    combined = [s for s in suggestions if s.title.startswith("together")]
    assert combined and len(combined[0].overrides) > 2
    single_best = min(s.total_bytes for s in suggestions if not s.title.startswith("together"))
    assert combined[0].total_bytes < single_best


def test_no_advice_when_it_fits_comfortably_or_there_is_no_gpu():
    assert suggest(big_run(), 500 * GiB) == []
    assert suggest(big_run(), None) == []


def estimate_json(capsys, *argv: str) -> dict:
    assert main(["estimate", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_report_against_a_24gb_card(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "two_gpus_busy.json"))
    data = estimate_json(capsys, str(write_preset(tmp_path)), "--gpu", "1")
    assert isinstance(data["params"]["total"], int) and data["params"]["trainable"] > 0
    assert data["memory"]["total_bytes"] == sum(data["memory"]["components"].values())
    assert [(g["index"], g["name"]) for g in data["gpus"]] == [
        (0, "NVIDIA A100-SXM4-40GB"),
        (1, "NVIDIA GeForce RTX 4090"),
    ]
    assert data["gpus"][1]["total_bytes"] == 25757220864
    assert data["fits"] is False and data["gpu"] == 1
    assert data["headroom_bytes"] == data["gpus"][1]["free_bytes"] - data["memory"]["total_bytes"]
    assert any(s["fits"] for s in data["suggestions"])


def test_overrides_on_the_command_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))
    preset = str(write_preset(tmp_path))
    plain = estimate_json(capsys, preset)
    smaller = estimate_json(capsys, preset, "--set", "training.gradient_checkpointing=true")
    assert smaller["memory"]["total_bytes"] < plain["memory"]["total_bytes"]
    assert smaller["fits"] is True and smaller["suggestions"] == []


def test_without_a_gpu_fits_is_null(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    data = estimate_json(capsys, str(write_preset(tmp_path)))
    assert data["fits"] is None and data["gpus"] == [] and data["suggestions"] == []
    assert data["gpu_error"].startswith("no NVIDIA GPU")


def test_table_output(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "two_gpus_busy.json"))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["estimate", str(write_preset(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "weights_quantized" in out and "activations" in out and "does not fit" in out
    assert "--set training.gradient_checkpointing=true" in out


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tuiwiz: error: ") and err.count("\n") == 1
    return err


def test_target_modules_the_model_lacks(capsys, tmp_path):
    err = one_line_error(capsys, ["estimate", str(write_preset(tmp_path, '["q_proj", "qkv"]'))])
    assert "the model has no qkv" in err


def test_no_such_gpu(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))
    err = one_line_error(capsys, ["estimate", str(write_preset(tmp_path)), "--gpu", "3"])
    assert "--gpu 3: no such visible GPU (visible: 0)" in err


def test_missing_model(capsys, tmp_path):
    path = write_preset(tmp_path)
    err = one_line_error(
        capsys, ["estimate", str(path), "--set", f"model.name_or_path={tmp_path / 'missing'}"]
    )
    assert "no such model directory" in err


def test_bad_target_in_a_real_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tuiwiz", "estimate", str(write_preset(tmp_path, '["wq"]'))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "the model has no wq" in result.stderr


def test_estimate_before_choosing_data(capsys, tmp_path, monkeypatch):
    """The estimate reads only the model's config.json: a preset without [data] path estimates,
    as does a --set on one, while `tuiwiz data` (like `tuiwiz run`) still asks for the data."""
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))
    path = tmp_path / "model-only.toml"
    path.write_text(f'[model]\nname_or_path = "{REFERENCE / "tinyllama-1.1b-chat-v1.0"}"\n')
    data = estimate_json(capsys, str(path))
    assert data["memory"]["total_bytes"] > 0 and data["fits"] is True
    data = estimate_json(capsys, str(path), "--set", "data.max_seq_length=4096")
    assert data["assumptions"]["sequence_length"] == 4096
    err = one_line_error(capsys, ["data", str(path)])
    assert "[data] path is required" in err
