"""Drive `tuiwiz serve` in Debian's chromium through Playwright: start the server, read the
terminal's text through the page, press keys, click cells. Used by test_serve_browser.py and
tools/browser_screenshots.py.

Playwright's own browser download cannot work on our machines: it launches the system
`chromium` (apt package `chromium`) with `executable_path`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

URL = re.compile(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]+")
# Without the background-networking flags, chromium's own connections are refused on a closed
# network and slow everything down.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Runs before the page's scripts: textual-serve's client keeps its xterm.js terminal in a closure;
# catch the object when the client stores its `fitAddon` on it, to read the screen as text.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "fitAddon", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "fitAddon", {value, writable: true, configurable: true});
    window.tuiwizTerminal = this.terminal;
  },
});
"""
SCREEN_TEXT = """() => {
  const terminal = window.tuiwizTerminal;
  if (!terminal) return null;
  const buffer = terminal.buffer.active, rows = [];
  for (let y = 0; y < terminal.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
}"""


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    if shutil.which("chromium") is None:
        return "no chromium (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no playwright (pip install playwright)"
    return None


class Server:
    """`tuiwiz serve ARGS` in a subprocess; its output is collected in `lines`."""

    def __init__(self, *args: str, cwd: Path | None = None, env: dict | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tuiwiz", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            found = URL.search(line)
            if found:
                self.url = found.group(0)
                self.base = self.url.split("/?")[0]
                return
        raise AssertionError("tuiwiz serve printed no URL:\n" + "".join(self.lines))

    def stop(self) -> str:
        """Ctrl+C, as a user stops it; returns the rest of its output."""
        self.process.send_signal(2)
        try:
            rest, _ = self.process.communicate(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self.lines.append(rest)
        return rest

    def app_processes(self) -> list[int]:
        """The server's children: one app process per open session (Linux: /proc)."""
        found: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            found += [int(pid) for pid in (task / "children").read_text().split()]
        return found

    @property
    def output(self) -> str:
        return "".join(self.lines)


@contextmanager
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=shutil.which("chromium"),
            args=CHROMIUM_FLAGS,
            viewport={"width": 1100, "height": 700},
        )
        try:
            yield browser
        finally:
            browser.close()


class Screen:
    """The terminal in one page: its text, keys, and clicks on a cell's text."""

    def __init__(self, page) -> None:
        self.page = page

    @classmethod
    def open(cls, browser, url: str) -> Screen:
        page = browser.new_page()
        page.add_init_script(CATCH_TERMINAL)
        page.goto(url)
        return cls(page)

    def text(self) -> str:
        return self.page.evaluate(SCREEN_TEXT) or ""

    def wait_for(self, *texts: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if all(t in screen for t in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed {texts}; it shows:\n{screen}")
            self.page.wait_for_timeout(50)

    def wait_gone(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"the page still shows {text!r}:\n{self.text()}")
            self.page.wait_for_timeout(50)

    def press(self, *keys: str) -> None:
        for key in keys:
            self.page.keyboard.press(key)

    def click_text(self, text: str) -> None:
        """Click the middle of the first cell run on screen that shows `text`."""
        rows = self.text().split("\n")
        cells = [(y, row.find(text)) for y, row in enumerate(rows) if text in row]
        if not cells:
            raise AssertionError(f"no {text!r} on screen")
        y, x = cells[0]
        box = self.page.locator(".xterm-screen").bounding_box()
        cols = self.page.evaluate("() => window.tuiwizTerminal.cols")
        cell_w, cell_h = box["width"] / cols, box["height"] / len(rows)
        self.page.mouse.click(
            box["x"] + (x + len(text) / 2) * cell_w, box["y"] + (y + 0.5) * cell_h
        )
