"""The dashboard's log panel shows the Trainer's metric dicts as aligned columns of numbers,
parsed as Python literals (never evaluated); other lines pass through unchanged."""

from __future__ import annotations

import json

from tuiwiz.train.rundir import RunDir
from tuiwiz.ui.dashboard.loglines import tidy
from tuiwiz.ui.dashboard.reader import RunReader

STEP_1 = (
    "{'loss': '9.409', 'grad_norm': '2.562', 'learning_rate': '0.001917', 'entropy': '0.03404', "
    "'mean_token_accuracy': '0.1345', 'num_tokens': '2322', 'epoch': '0.1042', "
    "'num_input_tokens_seen': 2322, 'train_runtime': '19.62', 'train_tokens_per_second': '118.3'}"
)
STEP_2 = (
    "{'loss': '0.0115', 'grad_norm': '12.5', 'learning_rate': '2e-05', 'entropy': '2.412', "
    "'mean_token_accuracy': '0.9', 'num_tokens': '104610', 'epoch': '1', "
    "'num_input_tokens_seen': 104610, 'train_runtime': '121.6', 'train_tokens_per_second': '860.2'}"
)


def test_metric_dicts_become_aligned_columns():
    one, two = tidy(STEP_1), tidy(STEP_2)
    assert not one.startswith("{") and "'" not in one
    assert one.startswith("loss") and "lr 1.92e-03" in one and "grad" in one
    assert "tok/s" in one and "num_input_tokens_seen" not in one  # the same as tokens
    for label in ("grad", "lr", "epoch", "acc", "tokens", "tok/s"):
        assert one.index(f" {label} ") == two.index(f" {label} "), label  # aligned


def test_important_numbers_come_first_so_a_narrow_panel_keeps_them():
    assert tidy(STEP_1)[:40].split()[:6] == ["loss", "9.4090", "grad", "2.562", "lr", "1.92e-03"]


def test_evaluation_and_summary_lines():
    line = tidy("{'eval_loss': '9.738', 'eval_runtime': '1.69', 'epoch': 0}")
    assert line.startswith("eval_loss") and "9.7380" in line and "time" in line
    end = tidy("{'train_runtime': '136.9', 'train_loss': '2.311', 'epoch': '2'}")
    assert "train_loss" in end and "2.3110" in end


def test_other_lines_pass_through_untouched():
    for line in (
        "tuiwiz: no CUDA GPU: bf16 is turned off",
        "{not a dict",
        "{'a': __import__('os').system('touch /tmp/tuiwiz-pwned')}",  # never evaluated
        "{}",
        "{'nested': {'deep': 1}}",
        "{" * 5000,
    ):
        assert tidy(line) == line


def test_the_reader_tidies_the_log(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "preset.toml").write_text("")
    (run / "status.json").write_text(json.dumps({"state": "finished"}))
    (run / "train.log").write_text(f"loading\n{STEP_1}\n")
    lines = RunReader(RunDir(run)).poll().log_lines
    assert lines[0] == "loading" and lines[1] == tidy(STEP_1) != STEP_1
