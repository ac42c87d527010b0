"""Data at scale: rows streamed (never all in memory), processes chosen for the data, progress
reported (train.log, status.json, the terminal), the cache kept sound, the preview sampled."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

import pytest

from tuiwiz import config
from tuiwiz.data import examples, pipeline, prepare, progress, readers
from tuiwiz.data.preview import preview


def data_section(path: Path, **keys) -> dict:
    raw = {"model": {"name_or_path": "m"}, "data": {"path": str(path), **keys}}
    return config.validate(raw)["data"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


ALPACA = [
    {"instruction": f"Repeat {i}", "input": "", "output": "y" * (i % 30 + 1)} for i in range(60)
]


# --- reading -----------------------------------------------------------------------------------


def test_rows_stream_from_every_kind_of_file(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": f"row {i}"} for i in range(20_000)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet", row_group_size=3000)
    reader = readers.RowReader(str(tmp_path / "d.parquet"))
    stream = iter(reader)
    assert next(stream) == {"text": "row 0"} and reader.fraction < 0.5  # not read whole
    assert sum(1 for _ in stream) == 19_999 and reader.fraction == 1.0
    # A quoted CSV field may hold a line break; a JSON string may hold U+2028 (a line separator
    # to str.splitlines, not to JSON Lines).
    (tmp_path / "d.csv").write_text('text,other\n"two\nlines",x\n')
    assert readers.read_rows(str(tmp_path / "d.csv")) == [{"text": "two\nlines", "other": "x"}]
    write_jsonl(tmp_path / "d.jsonl", [{"text": "a\u2028b"}, {"text": "c"}])
    assert readers.read_rows(str(tmp_path / "d.jsonl")) == [{"text": "a\u2028b"}, {"text": "c"}]


def test_examples_live_in_an_arrow_file_removed_when_done(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(tmp_path / "cache"))
    rows = [*ALPACA, {"instruction": "", "output": "skipped"}]
    loaded = examples.load(data_section(write_jsonl(tmp_path / "d.jsonl", rows)))
    assert (loaded.format, loaded.rows, len(loaded)) == ("alpaca", 61, 60)
    assert sum(loaded.skipped.values()) == 1
    assert loaded.dataset.cache_files  # memory-mapped from disk, not Python objects
    first = next(loaded.iter_examples())
    assert first.messages[-1] == {"role": "assistant", "content": "y"}
    assert loaded.workdir is not None and loaded.workdir.is_dir()
    loaded.close()
    assert not loaded.workdir.exists() and not loaded.usable()


def test_working_folders_of_dead_processes_are_swept(tmp_path: Path):
    base = tmp_path / "tokenized"
    host = socket.gethostname()
    dead = base / f"{examples.WORK_PREFIX}999999999@{host}-abc"  # beyond any pid_max
    alive = base / f"{examples.WORK_PREFIX}{os.getpid()}@{host}-def"
    elsewhere = base / f"{examples.WORK_PREFIX}999999999@another-host-ghi"
    for folder in (dead, alive, elsewhere):
        folder.mkdir(parents=True)
    examples.sweep_workdirs(base)
    assert not dead.exists() and alive.exists() and elsewhere.exists()


# --- how many processes --------------------------------------------------------------------------


def test_processes_follow_the_cores_and_the_size(monkeypatch):
    monkeypatch.setattr(pipeline, "available_cores", lambda: 16)
    small = pipeline.MIN_EXAMPLES_PER_PROCESS - 1
    assert pipeline.processes("auto", small) == 1  # starting processes would cost more
    assert pipeline.processes("auto", 3 * pipeline.MIN_EXAMPLES_PER_PROCESS) == 3
    assert pipeline.processes("auto", 10**6) == pipeline.MAX_AUTO_PROCESSES
    assert pipeline.processes(4, 10**6) == 4 and pipeline.processes(4, 2) == 2
    monkeypatch.setattr(pipeline, "available_cores", lambda: 2)
    assert pipeline.processes("auto", 10**6) == 2


@pytest.mark.parametrize("value", [0, -1, "all", 1.5, True])
def test_num_proc_is_checked(value):
    from tuiwiz.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[data\] num_proc"):
        data_section(Path("d.jsonl"), num_proc=value)


# --- progress ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_meter_reports_rate_and_time_left_at_most_every_interval():
    clock, seen = Clock(), []
    meter = progress.Meter("tokenizing", seen.append, total=1000, every=2.0, clock=clock)
    meter.update(0)
    clock.now += 1
    meter.update(100)  # too soon: not reported
    clock.now += 1.5
    meter.update(250)
    meter.update(1000, final=True)
    assert [p.done for p in seen] == [0, 250, 1000]
    middle = seen[1]
    assert middle.rows_per_second == 100 and middle.eta_seconds == pytest.approx(7.5)
    assert middle.line() == "tokenizing 250 / 1,000 examples (25%), 100/s, 0m08s left"
    assert seen[-1].fraction == 1 and seen[-1].eta_seconds == 0
    reading = progress.Progress("reading", 340_000, None, 120_500.4, 130.0, 0.34)
    assert reading.line() == "reading 340,000 rows (34%), 120,500/s, 2m10s left"


def test_terminal_hears_only_of_slow_work():
    """The launcher's reading lines: nothing for a dataset read within `every` seconds (the
    demo's), then a line every `every` seconds and the last one."""
    clock, said = Clock(), []
    slow = progress.Throttled(said.append, every=5.0, clock=clock, only_if_slow=True)

    def at(seconds: float, fraction: float) -> progress.Progress:
        clock.now = 100.0 + seconds
        return progress.Progress("reading", int(fraction * 100), None, 1.0, None, fraction)

    slow(at(2, 0.5))
    slow(at(4, 1.0))
    assert said == []  # a quick read says nothing, not even that it ended
    clock.now = 100.0
    slow = progress.Throttled(said.append, every=5.0, clock=clock, only_if_slow=True)
    for seconds, fraction in ((2, 0.1), (6, 0.4), (8, 0.5), (12, 0.9), (13, 1.0)):
        slow(at(seconds, fraction))
    assert [p.fraction for p in said] == [0.4, 0.9, 1.0]


def test_status_progress_round_trips_and_is_shown_only_while_preparing(tmp_path: Path):
    from tuiwiz.train.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_status(state="running", phase="preparing")
    sink = progress.StatusProgress(run, every=0.0)
    sample = progress.Progress("tokenizing", 340_000, 1_000_000, 5210.0, 127.0, 0.34)
    sink(sample)
    status = run.status()
    assert progress.from_status(status) == sample
    line = "preparing data: tokenizing 340,000 / 1,000,000 examples (34%), 5,210/s, 2m07s left"
    assert progress.status_line(status) == line
    assert progress.status_line({**status, "phase": "training"}) is None
    for damaged in ({"done": "many"}, [], {**sample.as_status(), "phase": "dancing"}):
        assert progress.from_status({"prepare": damaged}) is None
    shown, clock = [], Clock()
    watcher = progress.PrepareWatcher(run.status, shown.append, every=2.0, clock=clock)
    watcher.poll()
    watcher.poll()  # the same line, and too soon anyway
    clock.now += 3
    watcher.poll()  # not changed: not shown again
    assert shown == [line]


def test_tuiwiz_run_shows_the_data_preparation_while_a_run_prepares(tmp_path: Path, capsys):
    """`tuiwiz run` (plain output) prints the preparation's line from status.json while the run
    has no step yet, then follows its events as before."""
    import subprocess
    import sys

    from tuiwiz.commands.follow import _follow_plain
    from tuiwiz.train.jobs import Job
    from tuiwiz.train.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.events.write_text("")
    sample = progress.Progress("tokenizing", 340_000, 1_000_000, 5210.0, 127.0, 0.34)
    run.write_status(state="running", phase="preparing", prepare=sample.as_status())
    # The "training process": ends the run a moment later.
    ends = (
        "import json, time; time.sleep(0.6); "
        f"open({str(run.events)!r}, 'a').write(json.dumps("
        "{'event': 'started', 'max_steps': 1, 'time': 0}) + chr(10))"
    )
    job = Job(run, subprocess.Popen([sys.executable, "-c", ends]))
    _follow_plain(job)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "preparing data: tokenizing 340,000 / 1,000,000 examples (34%), 5,210/s, 2m07s left"
    )
    assert out[1].startswith("training: 1 steps")


def test_prepare_reports_progress_and_logs_it(tmp_path: Path, monkeypatch, demo_tokenizer):
    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(tmp_path / "cache"))
    data = data_section(write_jsonl(tmp_path / "d.jsonl", ALPACA), max_seq_length=64)
    seen: list[progress.Progress] = []
    lines: list[str] = []
    _, _, report = prepare.prepare(data, demo_tokenizer, log=lines.append, progress=seen.append)
    assert [p.phase for p in seen][0] == "reading" and seen[-1].phase == "tokenizing"
    last = [p for p in seen if p.phase == "reading"][-1]
    assert (last.done, last.fraction) == (60, 1.0)
    assert (seen[-1].done, seen[-1].total, seen[-1].fraction) == (60, 60, 1.0)
    assert lines[-1].startswith("data: tokenizing 60 / 60 examples (100%)")
    # A cached run has nothing to do: it says so at once (a status left by an earlier attempt
    # must not show stale progress).
    seen.clear()
    _, _, again = prepare.prepare(data, demo_tokenizer, log=lines.append, progress=seen.append)
    assert again.cached and [(p.done, p.fraction) for p in seen] == [(60, 1.0)]


def test_no_warning_about_sequences_longer_than_the_model(
    tmp_path: Path, monkeypatch, demo_tokenizer, caplog
):
    """Longer examples are truncated by tuiwiz (and counted): the tokenizer's own warning
    ("Token indices sequence length is longer than ...") would only alarm."""
    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(tmp_path / "cache"))
    rows = [{"text": "x" * (demo_tokenizer.model_max_length * 2)}] * 3
    data = data_section(write_jsonl(tmp_path / "d.jsonl", rows), max_seq_length=32)
    with caplog.at_level(logging.WARNING):
        _, _, report = prepare.prepare(data, demo_tokenizer, log=lambda m: None)
        preview(data, demo_tokenizer)
    assert report.truncated == 3
    assert "Token indices sequence length" not in caplog.text


# --- the cache -----------------------------------------------------------------------------------


def test_a_damaged_cache_entry_is_tokenized_again(tmp_path: Path, monkeypatch, demo_tokenizer):
    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(tmp_path / "cache"))
    data = data_section(write_jsonl(tmp_path / "d.jsonl", ALPACA), validation_split=0.1)
    train, validation, _ = prepare.prepare(data, demo_tokenizer, log=lambda m: None)
    train_ids, validation_ids = list(train["input_ids"]), list(validation["input_ids"])
    folder = prepare._cache_folder(data, demo_tokenizer)
    for shard in (folder / "shards").glob("tokens-*.arrow"):
        shard.write_bytes(b"not arrow")
    lines: list[str] = []
    again, again_validation, report = prepare.prepare(data, demo_tokenizer, log=lines.append)
    assert any("is damaged" in line and "tokenizing again" in line for line in lines)
    assert not report.cached and again["input_ids"] == train_ids
    assert again_validation["input_ids"] == validation_ids  # the same split again
    assert prepare.prepare(data, demo_tokenizer, log=lambda m: None)[2].cached


def test_the_cache_key_ignores_num_proc_but_not_the_cache_version(
    tmp_path: Path, monkeypatch, demo_tokenizer
):
    path = write_jsonl(tmp_path / "d.jsonl", ALPACA)
    one = prepare.cache_key(data_section(path, num_proc=1), demo_tokenizer)
    assert one == prepare.cache_key(data_section(path, num_proc=4), demo_tokenizer)
    monkeypatch.setattr(prepare, "CACHE_VERSION", prepare.CACHE_VERSION + 1)
    assert one != prepare.cache_key(data_section(path), demo_tokenizer)


def test_a_too_large_validation_split_is_a_clear_error(tmp_path, monkeypatch, demo_tokenizer):
    from tuiwiz.errors import DataError

    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(tmp_path / "cache"))
    data = data_section(write_jsonl(tmp_path / "d.jsonl", ALPACA[:2]), validation_split=0.9)
    with pytest.raises(DataError, match="leaves none to train on"):
        prepare.prepare(data, demo_tokenizer, log=lambda m: None)


def test_trl_does_not_prepare_the_data_a_second_time(tmp_path: Path):
    from tuiwiz.train import builders

    raw = {"model": {"name_or_path": "m"}, "data": {"path": "d.jsonl"}}
    args = builders.training_arguments(config.validate(raw), tmp_path, False, notice=print)
    assert args.dataset_kwargs == {"skip_prepare_dataset": True}
    raw["data"]["packing"] = True  # packing is TRL's own pass
    args = builders.training_arguments(config.validate(raw), tmp_path, False, notice=print)
    assert not (args.dataset_kwargs or {}).get("skip_prepare_dataset")


# --- the preview -------------------------------------------------------------------------------


def test_a_big_preview_measures_a_sample_and_says_how_far_it_read(
    tmp_path: Path, monkeypatch, demo_tokenizer
):
    from tuiwiz.data import preview as preview_module

    monkeypatch.setattr(preview_module, "SAMPLE", 50)
    rows = [
        {"instruction": "Repeat", "input": "", "output": "y" * (i % 40 + 1)} for i in range(500)
    ]
    data = data_section(write_jsonl(tmp_path / "d.jsonl", rows), max_seq_length=40)
    seen: list[progress.Progress] = []
    result = preview(data, demo_tokenizer, count=2, progress=seen.append)
    assert (result.rows, result.measured, len(result.examples)) == (500, 50, 2)
    assert seen[-1].phase == "reading" and (seen[-1].done, seen[-1].fraction) == (500, 1.0)
    again = preview(data, demo_tokenizer, count=2)  # seeded: the same sample, the same numbers
    assert (again.median_tokens, again.max_tokens) == (result.median_tokens, result.max_tokens)
