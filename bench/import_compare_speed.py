"""Wall time of `tuiwiz import` (a whole process) and of comparing two long runs.

`tuiwiz import` runs as a fresh `python -m tuiwiz` process on the axolotl and LLaMA-Factory
example configs, several times (median and fastest). The comparison reads two hand-written run
directories of 50,000 logged steps each (about 8 MB of events.jsonl apiece, a long run logged
every step) and folds them as `tuiwiz compare` and the compare screen do; the chart row draws
both curves at 120 x 30 cells.

    .venv/bin/python bench/import_compare_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "tests" / "fixtures" / "peer-configs"
STEPS = 50_000


def timed(command: list[str], repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def long_run(folder: Path, name: str, decay: float) -> Path:
    from tuiwiz import config as cfg
    from tuiwiz import presets
    from tuiwiz.train.rundir import RunDir

    path = folder / name
    path.mkdir()
    raw = {"name": name, "model": {"name_or_path": "org/model"}, "data": {"path": "org/data"}}
    raw["training"] = {"learning_rate": decay * 1e-4, "max_steps": STEPS}
    run = RunDir(path)
    run.write_preset(presets.to_toml(cfg.validate(raw)))
    lines = [json.dumps({"event": "started", "time": 0.0, "step": 0, "max_steps": STEPS})]
    for step in range(1, STEPS + 1):
        event = {"event": "step", "time": step * 0.5, "step": step, "max_steps": STEPS,
                 "loss": 2 * (1 - decay * 1e-4) ** step, "tokens_per_second": 1000.0,
                 "rss_bytes": 1 << 30}  # fmt: skip
        lines.append(json.dumps(event))
        if step % 500 == 0:
            lines.append(json.dumps({"event": "eval", "time": step * 0.5, "step": step,
                                     "eval_loss": 2 * (1 - decay * 1e-4) ** step}))  # fmt: skip
    run.events.write_text("\n".join(lines) + "\n")
    run.write_status(state="finished", step=STEPS)
    return path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'what':<52}{'median':>8}{'fastest':>10}")
    for config in (
        PEERS / "axolotl" / "qlora-1b.yml",
        PEERS / "llamafactory" / "llama3_lora_sft.yaml",
    ):
        command = [sys.executable, "-m", "tuiwiz", "import", str(config), "--out", "-"]
        median, fastest = timed(command, args.repeats)
        label = f"tuiwiz import {config.name}"
        print(f"{label:<52}{median:>6.2f} s{fastest:>8.2f} s  ({args.repeats} runs)")
    from tuiwiz.compare import compare_dirs
    from tuiwiz.ui.dashboard.chart import Series, render_series

    with tempfile.TemporaryDirectory() as scratch:
        runs = [long_run(Path(scratch), name, d) for name, d in (("a", 1.0), ("b", 2.0))]
        fold, draw = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            comparison = compare_dirs(runs)
            fold.append(time.perf_counter() - start)
            series = [
                Series([(p.step, p.value) for p in r.train], [], None) for r in comparison.runs
            ]
            start = time.perf_counter()
            render_series(series, 120, 30)
            draw.append(time.perf_counter() - start)
    for label, times in (
        (f"compare 2 runs x {STEPS:,} steps (read and fold)", fold),
        (f"chart of 2 runs x {STEPS:,} points, 120 x 30", draw),
    ):
        median, fastest = statistics.median(times), min(times)
        print(f"{label:<52}{median:>6.2f} s{fastest:>8.2f} s  ({args.repeats} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
