"""bench/gpu_memory.py's CPU dry path: the grid and its estimates, no CUDA."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "bench" / "gpu_memory.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("gpu_memory_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_dry_run_prints_the_grid_with_empty_measurements(tmp_path, capsys):
    bench = load_bench()
    out = tmp_path / "points.json"
    assert (
        bench.main(["--dry-run", "--models", "smollm2-135m", "qwen2.5-0.5b", "--json", str(out)])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:8] == ["model", "B", "S", "ckpt", "targets", "attn", "bf16", "est"]
    assert len(lines) == 1 + 2 * len(bench.VARIATIONS)
    points = json.loads(out.read_text())
    assert all(p["estimate"] > p["estimate_allocated"] > 0 for p in points)
    assert all(p["allocated"] is None and p["nvml"] is None for p in points)
    by_key = {(p["model"], p["batch"], p["seq"], p["checkpointing"]): p["estimate"] for p in points}
    # the grid varies one factor at a time, and the estimates move the right way
    assert by_key[("smollm2-135m", 8, 1024, True)] > by_key[("smollm2-135m", 4, 1024, True)]
    assert by_key[("smollm2-135m", 4, 1024, False)] > by_key[("smollm2-135m", 4, 1024, True)]


def test_dry_run_needs_no_torch():
    code = "\n".join(
        [
            "import runpy, sys",
            "sys.argv = ['gpu_memory.py', '--dry-run', '--models', 'smollm2-135m']",
            "try:",
            f"    runpy.run_path({str(BENCH)!r}, run_name='__main__')",
            "except SystemExit:",
            "    pass",
            "print('torch' in sys.modules)",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_todays_estimate_holds_against_every_point_measured_on_the_gpu():
    """The estimate of each of the points measured on an H200 (bench/results/gpu_memory-h200.json,
    NVML's peak for the whole process) recomputed with today's code: within 10% of what the GPU
    measured. A change to a term that breaks the agreement fails here, on the CPU."""
    bench = load_bench()
    measured = json.loads((ROOT / "bench" / "results" / "gpu_memory-h200.json").read_text())
    fields = {f for f in bench.Point.__dataclass_fields__}
    points = [bench.Point(**{k: v for k, v in m.items() if k in fields}) for m in measured]
    points = [p for p in points if p.nvml]
    assert len(points) == 30
    bench.add_estimates(points)
    errors = {
        (p.model, p.batch, p.seq, p.checkpointing, p.targets, p.attn, p.bf16): p.estimate / p.nvml
        - 1
        for p in points
    }
    off = {point: f"{error:+.1%}" for point, error in errors.items() if abs(error) > 0.10}
    assert not off, off
