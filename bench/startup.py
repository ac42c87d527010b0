"""Time to the wizard's first frame: from starting `tuiwiz` in a terminal to its first screen
being drawn (the step bar's text arriving on the terminal), and `tuiwiz --help` for reference.

    .venv/bin/python bench/startup.py            # 7 runs each, prints a table
    .venv/bin/python bench/startup.py --runs 3

Each run starts a fresh process on a pseudo-terminal of 80x24, as over SSH, and is killed once
the frame is seen. The goal is at most 0.5 s to the first frame.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUIWIZ = [sys.executable, "-m", "tuiwiz"]
FIRST_FRAME_TEXT = b"Start"  # from the step bar "1 Start  2 Model ..."
READY_TEXT = b"New run"  # the start step's list, filled in right after the first frame


def time_first_frame(
    env: dict[str, str], timeout: float = 30.0, text: bytes = FIRST_FRAME_TEXT
) -> float:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    started = time.perf_counter()
    process = subprocess.Popen(
        TUIWIZ, stdin=follower, stdout=follower, stderr=follower, env=env, start_new_session=True
    )
    os.close(follower)
    seen = b""
    try:
        while time.perf_counter() - started < timeout:
            ready, _, _ = select.select([leader], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
                if text in seen:
                    return time.perf_counter() - started
        raise RuntimeError(f"no first frame within {timeout} s; output: {seen[-300:]!r}")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        os.close(leader)


def time_help(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([*TUIWIZ, "--help"], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "TUIWIZ_DATA_DIR": data, "TERM": "xterm-256color"}
        env["PYTHONPATH"] = str(ROOT)
        time_first_frame(env)  # warm the file cache: the runs measure a normal start
        frames = [time_first_frame(env) for _ in range(args.runs)]
        ready = [time_first_frame(env, text=READY_TEXT) for _ in range(args.runs)]
        helps = [time_help(env) for _ in range(args.runs)]
    print(f"{'measure':<32}{'median':>9}{'max':>9}")
    rows = (
        ("tuiwiz: first frame (80x24)", frames),
        ("tuiwiz: start list drawn", ready),
        ("tuiwiz --help", helps),
    )
    for name, values in rows:
        print(f"{name:<32}{statistics.median(values):>8.3f}s{max(values):>8.3f}s")
    print(f"({args.runs} runs each; goal: first frame <= 0.5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
