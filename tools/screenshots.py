"""Drive the real app and save an SVG of every screen into screenshots/ (`make screenshots`).

The wizard's steps on the demo preset, the help, and the dashboard of a real demo run (trained
on this machine, on the CPU or a GPU) while it trains and once it has finished; then a second
demo run with a lower learning rate compared with the first, and the import of a real axolotl
example config. Nothing is mocked: GPU readings are this machine's, so on a machine without a
GPU the dashboard says so.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
SIZE = (100, 32)
STEPS = ["start", "model", "dataset", "targets", "quantlora", "training", "review"]
PEER_CONFIG = ROOT / "tests" / "fixtures" / "peer-configs" / "axolotl" / "qlora-1b.yml"


async def wait_for(pilot, condition, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: gave up waiting for {what}")
        await pilot.pause(0.1)


async def settle(pilot) -> None:
    from textual.widgets import Input

    app = pilot.app
    await pilot.pause(0.6)
    await wait_for(pilot, lambda: all(i.done for i in app.lookups._items.values()), "lookups")
    for widget in app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause(0.2)


def save(app, name: str) -> None:
    app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
    print(f"screenshots/{name}.svg", flush=True)


async def main() -> int:
    from tuiwiz import presets
    from tuiwiz.demo import ensure_demo_model
    from tuiwiz.ui.app import TuiwizApp
    from tuiwiz.ui.dashboard import DashboardScreen
    from tuiwiz.ui.draft import Draft

    ensure_demo_model(lambda m: print(f"screenshots: {m}", flush=True))
    OUT.mkdir(exist_ok=True)
    resolved, _ = presets.load("demo")
    for i, step in enumerate(STEPS, 1):
        app = TuiwizApp(Draft(resolved), start=step)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            save(app, f"{i}-{step}")
            if step == "training":
                await pilot.press("f1")
                save(app, "help")
    app = TuiwizApp(Draft(resolved), start="review")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        board = app.screen
        await wait_for(pilot, lambda: len(board.view.train) >= 10, "ten logged steps")
        await pilot.pause(1.5)  # one more GPU / RAM sample drawn
        save(app, "8-dashboard-training")
        await wait_for(pilot, lambda: board.state == "finished", "the finished state")
        await pilot.pause(1.5)
        save(app, "9-dashboard-finished")
        await pilot.press("q")
    await compare_and_import(resolved)
    return 0


async def compare_and_import(resolved: dict) -> None:
    from tuiwiz import presets
    from tuiwiz.train import jobs
    from tuiwiz.ui.app import TuiwizApp
    from tuiwiz.ui.draft import Draft

    slower = presets.load("demo", ["training.learning_rate=5e-4"])[0]
    print("screenshots: training a second demo run to compare", flush=True)
    jobs.start(Path("runs") / "demo-lr-5e-4", config=slower).wait()
    app = TuiwizApp(Draft(resolved))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        await pilot.press("end", "space", "up", "space", "c")  # mark both runs, compare
        await wait_for(pilot, lambda: getattr(app.screen, "loaded", False), "the comparison")
        await pilot.pause(0.2)
        save(app, "10-compare")
    app = TuiwizApp(Draft(resolved))
    async with app.run_test(size=SIZE) as pilot:
        from textual.widgets import Input

        await pilot.press("down", "enter")  # Import a config
        dialog = app.screen
        dialog.query_one(Input).value = str(PEER_CONFIG)
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog.imported is not None, "the import")
        dialog.query_one(Input).value = f"tests/fixtures/peer-configs/axolotl/{PEER_CONFIG.name}"
        dialog.query_one(Input).cursor_blink = False
        await pilot.pause(0.2)
        save(app, "11-import")


if __name__ == "__main__":
    # Runs and saved presets go to a scratch place: screenshots must not touch the user's own.
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.setdefault("TUIWIZ_DATA_DIR", str(Path(scratch) / "data"))
        os.chdir(scratch)
        sys.exit(asyncio.run(main()))
