"""`tuiwiz runs` as a table: the run id, which users copy into other commands, is never cut or
wrapped, whatever the terminal's width; the directory gives way instead."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tuiwiz.cli import main
from tuiwiz.train.registry import register
from tuiwiz.train.rundir import RunDir

LONG_NAME = "qwen2.5-14b-chat-48gb-customer-support-v2-20240601-121314"


def make_run(root: Path, name: str) -> str:
    path = root / "some" / "deeply" / "nested" / "folder" / "of" / "runs" / name
    path.mkdir(parents=True)
    (path / "preset.toml").write_text('name = "x"\n')
    status = {"state": "finished", "step": 96, "max_steps": 96, "loss": 0.0123}
    (path / "status.json").write_text(json.dumps({**status, "started_at": time.time()}))
    return register(RunDir(path), name, time.time())


@pytest.mark.parametrize("columns", [60, 80, 100, 200])
def test_the_run_id_is_never_cut(tmp_path, capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    ids = [make_run(tmp_path, LONG_NAME), make_run(tmp_path, "demo-20240601-121314")]
    capsys.readouterr()
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for run_id in ids:
        assert any(line.split() and line.split()[0] == run_id for line in lines), out
    assert all(len(line) <= columns for line in lines), out
    # The directory is all there, folded or on its own line, never cut.
    flat = "".join(line.strip() for line in lines)
    assert str(tmp_path / "some" / "deeply") in flat and "…" not in out
