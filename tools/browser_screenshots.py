"""Screenshots of `tuiwiz serve` in headless Chromium (`make screenshots`): the wizard's Review
step on the demo preset, then the dashboard of the demo run it launches (F9), while it trains.

Nothing is mocked: the real server, the real app in a real browser, real training on this
machine. Needs Debian's `chromium` and the `playwright` Python package.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from serve_browser import Screen, Server, chromium, missing  # noqa: E402


def main() -> int:
    problem = missing()
    if problem:
        print(f"browser screenshots: {problem}", file=sys.stderr)
        return 2
    from tuiwiz.demo import ensure_demo_model

    ensure_demo_model(lambda m: print(f"browser screenshots: {m}", flush=True))
    OUT.mkdir(exist_ok=True)
    server = Server("--preset", "demo")
    try:
        with chromium() as browser:
            screen = Screen.open(browser, server.url)
            screen.wait_for("f9 Launch", "Breakdown:", "F9 launches the run")
            save(screen, "browser-1-wizard.png")
            screen.press("F9")
            screen.wait_for("train.log", "running", timeout=300)
            wait_for_steps(screen, 10)
            screen.page.wait_for_timeout(1500)  # one more RAM / GPU sample drawn
            save(screen, "browser-2-dashboard.png")
            screen.wait_for("finished", timeout=600)
            screen.press("q")
            screen.page.wait_for_selector("body.-closed")  # "This session has ended."
    finally:
        print(server.stop(), end="")
    return 0


def wait_for_steps(screen: Screen, steps: int) -> None:
    """Until the run panel's `step N / M` shows at least `steps`."""
    import re

    def step() -> int:
        found = re.search(r"step\s+(\d+) /", screen.text())
        return int(found.group(1)) if found else 0

    for _ in range(6000):
        if step() >= steps:
            return
        screen.page.wait_for_timeout(100)
    raise SystemExit(f"browser screenshots: the run never reached step {steps}")


def save(screen: Screen, name: str) -> None:
    screen.page.screenshot(path=str(OUT / name))
    print(f"screenshots/{name}", flush=True)


if __name__ == "__main__":
    # Runs and saved presets go to a scratch place: screenshots must not touch the user's own.
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.setdefault("TUIWIZ_DATA_DIR", str(Path(scratch) / "data"))
        os.chdir(scratch)
        sys.exit(main())
