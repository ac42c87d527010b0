"""Where tuiwiz keeps its caches and data (XDG, overridable by environment variables)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Caches that can be rebuilt: the demo model, tokenized datasets."""
    if env := os.environ.get("TUIWIZ_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "tuiwiz"


def data_dir() -> Path:
    """User data that must not be lost: saved presets, the run registry."""
    if env := os.environ.get("TUIWIZ_DATA_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "tuiwiz"
