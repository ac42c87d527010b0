"""Notices: one-line messages to the person at the terminal, on stderr (stdout stays for data).

`notice_once` says a thing once per process however often it happens: a damaged line in a run's
events is skipped at every read, but worth one sentence.
"""

from __future__ import annotations

import contextlib
import sys

_said: set[str] = set()


def notice(message: str) -> None:
    # No terminal left to tell (a closed or broken stderr) is no reason to fail.
    with contextlib.suppress(OSError, ValueError):
        print(f"tuiwiz: {message}", file=sys.stderr, flush=True)


def notice_once(message: str, key: str | None = None) -> None:
    """`notice(message)` unless a notice with the same key (default: the message) was given."""
    key = message if key is None else key
    if key in _said:
        return
    _said.add(key)
    notice(message)
