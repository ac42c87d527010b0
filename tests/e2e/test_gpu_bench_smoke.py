"""The GPU benches' scripts run end to end on the CPU with a tiny model (--smoke): the device
time they are written for is too scarce to find a broken script there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent.parent


def bench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT
    )


def test_throughput_bench_smoke(tmp_path: Path):
    out = tmp_path / "throughput.json"
    result = bench(
        "bench/gpu_throughput.py",
        "--smoke",
        "--systems",
        "plain",
        "tuiwiz-fast",
        "unsloth",
        "--json",
        str(out),
        "--work",
        str(tmp_path / "work"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["gpu"] == "cpu" and "transformers" in data["versions"]
    assert 50 <= data["data"]["median_tokens"] <= 400
    rows = {r["system"]: r for r in data["rows"]}
    for system in ("plain", "tuiwiz-fast"):
        row = rows[system]
        assert row["model"] == "smoke" and row["tokens_per_second"] > 0, row
        assert row["tokens"] > 0 and row["seconds"] > 0
    assert "padding_free=True" in rows["tuiwiz-fast"]["settings"]
    assert rows["unsloth"]["note"].startswith("not run: no Unsloth environment")
    assert "x plain" in result.stdout


def test_memory_bench_smoke_and_long_points(tmp_path: Path):
    out = tmp_path / "memory.json"
    result = bench(
        "bench/gpu_memory.py", "--smoke", "--long", "offload+bf16:32768", "--json", str(out)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    points = json.loads(out.read_text())
    assert [p["settings"] for p in points] == ["default", "bf16", "fast"]
    assert points[-1]["options"]["padding_free"] is True  # what fast resolved to, recorded
    assert all(p["estimate"] > 0 for p in points)
    bad = bench("bench/gpu_memory.py", "--dry-run", "--long", "turbo:4096")
    assert bad.returncode != 0 and "unknown settings 'turbo'" in bad.stderr
