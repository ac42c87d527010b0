"""Pilot helpers shared by the wizard's tests (tests/ui is on sys.path under pytest)."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.widgets import Static

from tuiwiz.ui.widgets.field_row import FieldRow


async def wait_for(pilot, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await pilot.pause(0.05)


async def lookups_done(pilot) -> None:
    """Wait until every slow lookup started so far (model, data, memory) has finished."""
    app = pilot.app
    await pilot.pause(0.5)  # debounced lookups start 0.4 s after the last change
    await wait_for(
        pilot, lambda: all(i.done for i in app.lookups._items.values()), "background lookups"
    )
    await pilot.pause()


async def type_text(pilot, text: str) -> None:
    """Clear the focused input and type `text` key by key."""
    await pilot.press("ctrl+u", "end", "ctrl+u")
    await pilot.press(*text)


async def focus_field(pilot, key: str) -> None:
    row = pilot.app.screen.query_one("#f-" + key.replace(".", "-"), FieldRow)
    row.control.focus()
    await pilot.pause()


def text_of(pilot, selector: str) -> str:
    return str(pilot.app.screen.query_one(selector, Static).render())
