"""The data a run trained on: recorded when it starts, checked by every later command that reads
that data again (resume, eval), so that changed data is never used in silence."""

from __future__ import annotations

from typing import Any

from tuiwiz.data import readers
from tuiwiz.errors import DataError


def fingerprint(data: dict[str, Any]) -> str:
    """The sha256 of a [data] section's content (its path already resolved to a file or folder;
    for a Hub dataset, of its id, subset and split)."""
    return readers.fingerprint(data["path"], data["split"], data["subset"])


def check_unchanged(recorded: Any, data: dict[str, Any], run: str, doing: str) -> None:
    """Raise DataError when the data is not what the run recorded (`doing` says what would
    have used it). A run that recorded nothing (an older tuiwiz) is said so, once."""
    if not isinstance(recorded, str):
        from tuiwiz.notices import notice_once

        notice_once(
            f"run {run} recorded no fingerprint of its data (started by an older tuiwiz): "
            f"cannot check that {data['path']} is what it trained on"
        )
        return
    now = fingerprint(data)
    if now != recorded:
        raise DataError(
            f"{data['path']}: the data changed since run {run} started (sha256 {recorded[:12]} "
            f"then, {now[:12]} now); {doing} would use other data. Put the original back, or "
            "start a new run on the new data"
        )
