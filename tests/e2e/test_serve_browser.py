"""`tuiwiz serve` in a real browser: Debian's chromium, headless, driven by Playwright.

The screen is read as text from the page's terminal (xterm.js's buffer), not from pixels. Skipped
only where chromium or playwright is missing; CI installs both (.ci/run).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from serve_browser import Screen, Server, chromium, missing

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(missing() is not None, reason=f"no browser test: {missing()}"),
    pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, demo_model: Path, demo_run) -> dict[str, str]:
    """A data directory whose run list holds one finished demo run (conftest's shared one,
    registered here too)."""
    from tuiwiz.train import registry
    from tuiwiz.train.rundir import RunDir

    env = {
        "TUIWIZ_CACHE_DIR": str(demo_model.parent),
        "TUIWIZ_DATA_DIR": str(tmp_path_factory.mktemp("serve-data")),
        "HF_HUB_OFFLINE": "1",
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUIWIZ_DATA_DIR", env["TUIWIZ_DATA_DIR"])
        registry.register(RunDir(demo_run.path), "demo", time.time())
    return {**env, "RUN": str(demo_run.path)}


def test_the_wizard_and_a_finished_run_in_a_browser(world, tmp_path):
    server = Server(cwd=tmp_path, env=world)
    try:
        with chromium() as browser:
            # Without the token: refused, and no app process starts.
            page = browser.new_page()
            response = page.goto(server.base + "/")
            assert response.status == 401 and "needs its token" in page.content()
            response = page.goto(server.base + "/?token=not-the-token")
            assert response.status == 403
            page.close()
            assert server.app_processes() == []

            # The printed URL: the wizard's first screen; the token leaves the address bar.
            screen = Screen.open(browser, server.url)
            assert "token" not in screen.page.url
            screen.wait_for("What would you like to do?", "demo")
            # The page gives the terminal the keyboard; in a browser the footer names F-keys.
            footer = screen.wait_for("f3 Next").split("\n")[-1]
            assert "f10 Quit" in footer and "^n" not in footer  # the browser-safe keys

            # To Review with keys: the demo preset (below New run and Import a config), then F6.
            screen.press("ArrowDown", "ArrowDown", "Enter")
            screen.wait_for("Model (id or dir)")
            screen.press("F6")
            screen.wait_for("Review", "f9 Launch", "Breakdown:")
            screen.wait_for("F9 launches the run")  # the hints name the F-keys too

            # Back to Start (F4: go to any step), then the finished run's dashboard.
            screen.press("F4")
            screen.wait_for("Start", "Review", "Training")
            screen.press("Home", "Enter")
            screen.wait_for("What would you like to do?")
            screen.press("End", "Enter")
            dashboard = screen.wait_for("finished", "train.log", "loss", "? Help")
            assert "demo-run" in dashboard

            # The mouse: a click on the footer's help key opens the dashboard's help.
            screen.click_text("Help")
            screen.wait_for("stop training (asks first")
            # A lone Escape reaches the app once the key after it has not come (escape delay).
            screen.press("Escape")
            screen.wait_gone("stop training (asks first")

            # Try it: base and fine-tuned answers, side by side, in the browser too.
            screen.press("t")
            screen.wait_for("Try it: demo-run", "Ready.")
            screen.page.keyboard.type("hello")
            screen.press("Enter")
            screen.wait_for("Answers to: hello", "Ready.")

            # Leaving the app ends the session; the page says so (and offers a new one).
            screen.press("Escape")
            screen.wait_gone("Try it: demo-run")
            screen.press("q")
            screen.page.wait_for_selector("body.-closed")
            assert screen.page.get_by_text("This session has ended.").is_visible()
    finally:
        rest = server.stop()
    assert "session 1 opened (1 of 4 in use)" in rest  # the refused requests opened none
    assert "session 1 closed: the app quit" in rest
    assert server.output.count(server.url.split("token=")[1]) == 1
