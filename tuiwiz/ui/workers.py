"""Background work in the UI: the one decorator every thread worker uses, and the one place a
worker's unexpected failure goes.

Workers run with exit_on_error=False (a failed lookup must not close the app), which would let
an unexpected exception vanish with the worker, leaving a screen that waits forever. Here it is
shown as a notification naming the log that holds its traceback.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import work

LOG_NAME = "ui.log"


def ui_log() -> Path:
    from tuiwiz.paths import data_dir

    return data_dir() / LOG_NAME


def report_failure(app: Any, what: str, error: BaseException) -> None:
    """Append the traceback to the UI log and tell the person, in one line (from any thread)."""
    from tuiwiz.errors import describe_error

    log = ui_log()
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as f:
            f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {what}\n")
            f.write("".join(traceback.format_exception(error)))
        where = f" (details: {log})"
    except OSError:
        where = ""
    message = f"{what} failed: {describe_error(error)}{where}"
    try:
        app.call_from_thread(app.notify, message, title="Something went wrong", severity="error")
    except RuntimeError:  # on the app's own thread
        app.notify(message, title="Something went wrong", severity="error")


def in_thread(
    what: str, *, group: str = "default", exclusive: bool = False
) -> Callable[[Callable[..., Any]], Any]:
    """A thread worker of a widget or screen; `what` names it for people ("reading the run")."""

    def decorate(method: Callable[..., Any]) -> Any:
        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except Exception as e:
                report_failure(self.app, what, e)
                raise  # the worker ends in state ERROR, as any failed worker

        return work(thread=True, exclusive=exclusive, group=group, exit_on_error=False)(run)

    return decorate
