"""`tuiwiz compare`: runs side by side from their run directories (hand-written ones here, the
format the training process writes; tests/e2e/test_import_run.py compares a real run)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tuiwiz.cli import main
from tuiwiz.compare import compare, compare_dirs, metric_rows, short_differences
from tuiwiz.errors import TuiwizError
from tuiwiz.train.registry import register
from tuiwiz.train.rundir import RunDir


def test_only_the_keys_that_differ_are_listed(make_run):
    a = make_run("a", overrides={"training.learning_rate": 2e-4, "lora.r": 16})
    b = make_run("b", overrides={"training.learning_rate": 1e-4, "lora.r": 16})
    c = make_run("c", overrides={"training.learning_rate": 0.0002, "lora.r": 8})
    comparison = compare_dirs([a, b, c])
    assert comparison.differing == ["name", "lora.r", "training.learning_rate"]
    assert comparison.values("training.learning_rate") == [2e-4, 1e-4, 2e-4]
    assert short_differences(comparison, comparison.runs[1]) == "r=16 learning_rate=0.0001"
    # 2e-4 and 0.0002 are the same number: with a and c alone only lora.r (and name) differ.
    assert compare_dirs([a, c]).differing == ["name", "lora.r"]


def test_a_key_only_some_runs_have_differs(make_run):
    a = make_run("a")
    b = make_run("b", overrides={"training.weight_decay": 0.01, "training.eval_steps": 5})
    comparison = compare_dirs([a, b])
    assert "training.eval_steps" in comparison.differing
    assert comparison.to_json()["runs"][0]["settings"]["training.eval_steps"] is None


def test_losses_with_their_steps(make_run):
    a = make_run("a", losses=(2.0, 0.9, 1.1, 1.0), evals={10: 1.3, 15: 1.1, 20: 1.2}, base=2.4)
    b = make_run("b", losses=(3.0, 2.0), every=2, base=None)
    comparison = compare_dirs([a, b])
    run_a, run_b = comparison.runs
    assert (run_a.final_train.value, run_a.final_train.step) == (1.0, 20)
    assert (run_a.best_train.value, run_a.best_train.step) == (0.9, 10)
    assert (run_a.final_eval.value, run_a.final_eval.step) == (1.2, 20)
    assert (run_a.best_eval.value, run_a.best_eval.step) == (1.1, 15)
    assert run_a.base_eval_loss == 2.4
    assert run_b.final_eval is None and run_b.base_eval_loss is None
    assert (run_b.step, run_b.max_steps) == (4, 4)
    rows = {row.label: row for row in metric_rows(comparison)}
    assert rows["best train loss"].cells == ["0.9000 @10", "2.0000 @4"]
    assert rows["best train loss"].best == 0
    assert rows["final eval loss"].cells == ["1.2000 @20", "—"]
    assert rows["final eval loss"].best is None  # one run has no evaluation: nothing to beat


def test_speed_wall_time_and_memory(make_run):
    # tokens/s: 1000, 2000, 3000, 4000 -> median 2500; 20 steps x 2 s + 1 s to the end event.
    cpu = make_run("cpu", seconds_per_step=2.0)
    gpu = make_run("gpu", gpu=True, rate=10.0)
    comparison = compare_dirs([cpu, gpu])
    on_cpu, on_gpu = comparison.runs
    assert on_cpu.tokens_per_second == 2500.0 and on_gpu.tokens_per_second == 25.0
    assert on_cpu.wall_seconds == 41.0
    assert (on_cpu.peak_memory, on_cpu.peak_memory_source) == (104 << 20, "rss_bytes")
    assert (on_gpu.peak_memory, on_gpu.peak_memory_source) == (
        (1 << 30) + 4,
        "gpu_max_memory_allocated",
    )
    rows = {row.label: row for row in metric_rows(comparison)}
    assert rows["peak memory"].cells == ["104.0 MiB RSS", "1.0 GiB GPU"]
    assert rows["tokens/s (median)"].best == 0
    assert rows["wall time"].cells[0] == "0m41s"


def test_wall_time_leaves_out_the_pause_between_a_stop_and_a_resume(make_run):
    path = make_run("resumed", state="finished")
    run = RunDir(path)
    events = [json.loads(line) for line in run.events.read_text().splitlines()]
    t0 = events[0]["time"]
    # Stopped at step 10 (t0 + 20); resumed an hour later and trained the rest in 20 s.
    head = [e for e in events if e["step"] <= 10 and e["event"] != "finished"]
    head.append({"event": "stopped", "time": t0 + 21, "step": 10})
    tail = [{"event": "started", "time": t0 + 3600, "step": 10, "max_steps": 20}]
    for e in events:
        if e["event"] == "step" and e["step"] > 10:
            tail.append({**e, "time": t0 + 3600 + (e["step"] - 10) * 2})
    tail.append({"event": "finished", "time": t0 + 3621, "step": 20})
    run.events.write_text("".join(json.dumps(e) + "\n" for e in head + tail))
    summary = compare_dirs([path, make_run("other")]).runs[0]
    assert summary.wall_seconds == 21 + 21
    assert [p.step for p in summary.train] == [5, 10, 15, 20]


def test_damaged_event_lines_are_skipped(make_run):
    path = make_run("damaged")
    with RunDir(path).events.open("a") as f:
        f.write('not json\n{"event": "step", "step": "x", "loss": "y"}\n{"event": "step", "ti')
    summary = compare_dirs([path, make_run("other")]).runs[0]
    assert [p.value for p in summary.train] == [2.0, 1.5, 1.0, 0.8]


def test_runs_are_found_by_id_and_prefix(make_run):
    for name in ("alpha-1", "beta-1"):
        register(RunDir(make_run(name)), name, time.time())
    comparison = compare(["alpha", "beta-1"])
    assert [r.id for r in comparison.runs] == ["alpha-1", "beta-1"]


def test_bad_runs_end_in_one_line(make_run, tmp_path: Path):
    a = make_run("a")
    with pytest.raises(TuiwizError, match="at least two runs"):
        compare([str(a)])
    with pytest.raises(TuiwizError, match="no run 'nope'"):
        compare([str(a), "nope"])
    with pytest.raises(TuiwizError, match="are the same run"):
        compare([str(a), str(a) + "/"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TuiwizError, match="not a tuiwiz run directory"):
        compare([str(a), str(tmp_path / "empty")])
    broken = make_run("broken")
    RunDir(broken).preset.write_text("[model\n")
    with pytest.raises(TuiwizError, match="run broken: cannot read its preset: .*TOML syntax"):
        compare([str(a), str(broken)])


def test_cli_table_and_json(make_run, capsys):
    a = make_run("a", overrides={"training.learning_rate": 2e-4}, evals={20: 1.0})
    b = make_run("b", overrides={"training.learning_rate": 1e-4}, gpu=True)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["a", "b"]
    assert any(line.split() == ["training.learning_rate", "0.0002", "0.0001"] for line in lines)
    assert any(line.split()[:4] == ["final", "eval", "loss", "1.0000"] for line in lines)
    assert "RSS = the training process's resident memory" in " ".join(out.split())
    assert main(["compare", str(a), str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["differing_keys"] == ["name", "training.learning_rate"]
    first = data["runs"][0]
    assert first["final_eval_loss"] == {"value": 1.0, "step": 20}
    assert first["best_train_loss"] == {"value": 0.8, "step": 20}
    assert first["peak_memory_source"] == "rss_bytes"
    assert data["runs"][1]["peak_memory_source"] == "gpu_max_memory_allocated"
    assert first["wall_seconds"] == 41.0 and first["state"] == "finished"


def test_cli_errors_exit_2(make_run, capsys):
    assert main(["compare", str(make_run("a")), "missing-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tuiwiz: error: no run 'missing-run'")


def test_comparing_needs_neither_the_ui_nor_torch(make_run):
    import subprocess
    import sys

    a, b = make_run("a"), make_run("b")
    code = (
        "import sys\nfrom tuiwiz.compare import compare_dirs, metric_rows\n"
        f"metric_rows(compare_dirs([__import__('pathlib').Path({str(a)!r}), "
        f"__import__('pathlib').Path({str(b)!r})]))\n"
        "import tuiwiz.commands.compare\n"
        "print(' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not {"textual", "torch", "transformers"} & set(out.stdout.split())
