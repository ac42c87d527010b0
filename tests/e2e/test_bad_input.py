"""Bad input: one line naming the file, key or line; exit 2; no traceback; no run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def run_preset(tmp_path: Path, text: str, *extra: str) -> subprocess.CompletedProcess:
    preset = tmp_path / "p.toml"
    preset.write_text(text)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tuiwiz",
            "run",
            str(preset),
            "--output-dir",
            str(tmp_path / "run"),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )


def assert_clean_error(result: subprocess.CompletedProcess, tmp_path: Path, *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("tuiwiz: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "run").exists()


def preset(
    model: str = "tuiwiz:demo-model", data: str = "tuiwiz:demo-data", extra: str = ""
) -> str:
    return f'[model]\nname_or_path = "{model}"\n[data]\npath = "{data}"\n{extra}'


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('name = "x"\n[lora\n', ("TOML syntax error", "line 2, column")),
        (preset(extra="[lora]\nrank = 8\n"), ("unknown key [lora] rank", "did you mean 'r'")),
        (
            preset(extra='[training]\nper_device_train_batch_size = "4"\n'),
            ("per_device_train_batch_size",),
        ),
        (preset(extra="[training]\nlearning_rate = 0.0\n"), ("learning_rate must be > 0",)),
        (preset(extra="[training]\nper_device_train_batch_size = 0\n"), ("must be > 0",)),
        (preset(extra="[lora]\nr = 0\n"), ("[lora] r must be > 0",)),
        (preset(extra="[lora]\nlora_dropout = 1.5\n"), ("lora_dropout must be in [0, 1)",)),
        (preset(extra="[quantization]\nload_in_8bit = true\n"), ("both true",)),
    ],
    ids=["toml", "unknown-key", "type", "lr", "batch", "r", "dropout", "4-and-8-bit"],
)
def test_preset_errors(tmp_path: Path, text: str, needles: tuple[str, ...]):
    assert_clean_error(run_preset(tmp_path, text), tmp_path, "p.toml", *needles)


def test_missing_preset(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "tuiwiz", "run", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
    )
    assert_clean_error(result, tmp_path, "none.toml", "no such preset file")


# These reach the training process's checks (model, data, targets): slower, so one test each.
def test_model_dir_without_config_json(tmp_path: Path):
    (tmp_path / "model").mkdir()
    result = run_preset(tmp_path, preset(model=str(tmp_path / "model")))
    assert_clean_error(result, tmp_path, "no config.json")


def test_target_modules_the_model_lacks(tmp_path: Path, demo_model):
    result = run_preset(tmp_path, preset(extra='[lora]\ntarget_modules = ["q_proj", "c_attn"]\n'))
    assert_clean_error(result, tmp_path, "has no c_attn", "q_proj, k_proj")


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (None, ("no such file",)),
        ("", ("the file is empty",)),
        (
            '{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n',
            ("d.jsonl:2", "malformed JSON"),
        ),
        (
            '{"question": "a", "answer": "b"}\n',
            ("cannot tell the dataset format", "answer, question"),
        ),
    ],
    ids=["missing", "empty", "malformed-line", "unknown-format"],
)
def test_dataset_errors(tmp_path: Path, demo_model, content, needles):
    data = tmp_path / "d.jsonl"
    if content is not None:
        data.write_text(content)
    assert_clean_error(run_preset(tmp_path, preset(data=str(data))), tmp_path, *needles)


def test_dataset_missing_columns_for_its_format(tmp_path: Path, demo_model):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"instruction": "a", "answer": "b"}) + "\n")
    result = run_preset(tmp_path, preset(data=str(data), extra='format = "alpaca"\n'))
    assert_clean_error(result, tmp_path, "needs column output")


def test_unknown_file_type(tmp_path: Path, demo_model):
    data = tmp_path / "d.xlsx"
    data.write_text("x")
    assert_clean_error(run_preset(tmp_path, preset(data=str(data))), tmp_path, "unknown file type")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--preset", "demo"], "the wizard needs a terminal"),
        (["attach", "no-such-run"], "no run 'no-such-run'"),
    ],
)
def test_screens_without_a_terminal_or_a_run_say_so(args, needle):
    result = subprocess.run(
        [sys.executable, "-m", "tuiwiz", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=os.environ.copy(),
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and needle in result.stderr
    assert "Traceback" not in result.stderr


def test_no_command_without_a_terminal_prints_help():
    result = subprocess.run(
        [sys.executable, "-m", "tuiwiz"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=os.environ.copy(),
        timeout=120,
    )
    assert result.returncode == 0 and "usage: tuiwiz" in result.stdout
