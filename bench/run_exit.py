"""How long `tuiwiz run` takes to return once its run has finished: from the run's `finished`
event to the command's exit (the training process winds its libraries down on its own).

    .venv/bin/python bench/run_exit.py            # 5 runs of the demo preset, 2 steps each
    .venv/bin/python bench/run_exit.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(workdir: Path) -> float:
    run = workdir / "run"
    env = {
        **os.environ,
        "TUIWIZ_DATA_DIR": str(workdir / "data"),
        "HF_HUB_OFFLINE": "1",
    }
    subprocess.run(
        [sys.executable, "-m", "tuiwiz", "run", "demo", "--output-dir", str(run)]
        + ["--set", "training.max_steps=2", "--set", "data.validation_split=0"],
        env=env,
        capture_output=True,
        check=True,
    )
    returned = time.time()
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    finished = next(e["time"] for e in reversed(events) if e["event"] == "finished")
    return returned - finished


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    seconds = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            seconds.append(one(Path(folder)))
    print("| runs | median (s) | min (s) | max (s) |")
    print("|---:|---:|---:|---:|")
    print(
        f"| {len(seconds)} | {statistics.median(seconds):.2f} | {min(seconds):.2f} "
        f"| {max(seconds):.2f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
