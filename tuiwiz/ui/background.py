"""Slow lookups the wizard needs (model facts, dataset preview), done off the event loop.

Each result is cached by what it was computed from, so Back / Next never recompute, and a
change of model or dataset simply asks again. Errors are kept as one-line messages to show.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class Lookup:
    key: tuple
    value: Any = None
    error: str | None = None
    done: bool = False


def model_key(draft) -> tuple:
    return (
        draft.get("model.name_or_path"),
        draft.get("model.revision"),
        bool(draft.get("model.trust_remote_code")),
    )


def data_key(draft) -> tuple:
    data = tuple(
        repr(draft.get(f"data.{k}"))
        for k in ("path", "format", "split", "subset", "columns", "max_seq_length", "max_samples")
    )
    return (*model_key(draft), *data, draft.get("data.train_on_prompt"))


def load_model_overview(key: tuple):
    from tuiwiz.inspect.overview import overview

    name, revision, trust = key
    return overview(name, revision, trust)


# How far each pending dataset preview has read (a line to show), by its lookup key.
_preview_progress: dict[tuple, str] = {}


def preview_progress(key: tuple) -> str | None:
    """What the preview of `key` is doing, while it runs (None before its first report)."""
    return _preview_progress.get(key)


def load_preview(key: tuple, draft_data: dict[str, Any], model: dict[str, Any]):
    """Dataset preview with the model's own tokenizer (chat template included)."""
    from tuiwiz.bundled import resolve_data, resolve_model
    from tuiwiz.data.preview import SAMPLE, NoTokenizer, preview, tokenizer_for
    from tuiwiz.errors import DataError

    if not draft_data.get("path"):  # a preset opened before its data was chosen
        raise DataError("no dataset yet: give a file, a folder or a Hub dataset id above")

    def report(progress) -> None:
        done = progress.fraction >= 1
        tail = f"; measuring token lengths on a sample of up to {SAMPLE:,}" if done else ""
        _preview_progress[key] = f"{progress.counts()}{tail}"

    path = resolve_model(model["name_or_path"])
    data = {**draft_data, "path": resolve_data(draft_data["path"])}
    try:
        try:
            tokenizer = tokenizer_for(path, {"model": model})
        except NoTokenizer as e:  # the format and rows still show; the lengths say what they need
            return preview(data, None, token_problem=str(e), progress=report)
        return preview(data, tokenizer, progress=report)
    finally:
        _preview_progress.pop(key, None)


class LookupCache:
    """The latest lookup of each kind; a new key replaces the old result."""

    def __init__(self) -> None:
        self._items: dict[str, Lookup] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, key: tuple) -> Lookup | None:
        with self._lock:
            item = self._items.get(kind)
            return item if item is not None and item.key == key else None

    def start(self, kind: str, key: tuple) -> Lookup:
        with self._lock:
            item = Lookup(key)
            self._items[kind] = item
            return item
