"""What a preset's model and data names refer to: a bundled name (`tuiwiz:...`), a Hugging Face
Hub id, or a local path.

A relative local path means nothing once a run has started: commands run later from another
directory (`tuiwiz eval`, `tuiwiz resume`) would read other files. So every local path is made
absolute once, when a configuration is loaded: relative to the preset file for the paths a preset
file holds, relative to the working directory for `--set` values and what the wizard was given.
A run's preset.toml then holds absolute paths and Hub ids only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

# A Hub id: owner/name (datasets); a model id may also be a bare legacy name such as gpt2.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
BUNDLED_PREFIX = "tuiwiz:"
# (section, key, kind) of every reference in a configuration.
REFERENCES = (("model", "name_or_path", "model"), ("data", "path", "data"))


def _explicitly_local(ref: str) -> bool:
    return ref.startswith(("./", "../", "/", "~")) or ref in (".", "..")


def looks_local(ref: str, kind: str) -> bool:
    """Whether `ref` can only be a local path, whatever exists on disk."""
    if not ref or ref.startswith(BUNDLED_PREFIX):
        return False
    if _explicitly_local(ref):
        return True
    if kind == "model":
        # As transformers reads it: a path with several slashes is no Hub id.
        return ref.count("/") > 1
    return not HUB_ID.match(ref)


def is_local_path(ref: str, kind: str, base: Path | None = None) -> bool:
    """Whether `ref` names a local path (rather than a bundled name or a Hub id), judged from
    `base` (default: the working directory): a path there, or a name that can only be a path."""
    if not ref or ref.startswith(BUNDLED_PREFIX):
        return False
    return looks_local(ref, kind) or (Path(base or ".") / Path(ref).expanduser()).exists()


def resolve(ref: str, kind: str, base: Path) -> str:
    """`ref` with a local path made absolute (relative to `base`); other references unchanged."""
    if not isinstance(ref, str) or not is_local_path(ref, kind, base):
        return ref
    return os.path.abspath(base / Path(ref).expanduser())


def resolve_config(config: dict[str, Any], base: Path, keys: set[str] | None = None) -> None:
    """Make the local paths of a validated configuration absolute, in place. `keys` limits it to
    some "section.key" names (the others were resolved from another base)."""
    for section, key, kind in REFERENCES:
        if keys is not None and f"{section}.{key}" not in keys:
            continue
        table = config.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str):
            table[key] = resolve(table[key], kind, base)


def relative_paths(config: dict[str, Any]) -> list[str]:
    """ "section.key = value" of the references that are relative local paths (nothing should
    be, in a run's preset.toml)."""
    found = []
    for section, key, kind in REFERENCES:
        ref = (config.get(section) or {}).get(key)
        if isinstance(ref, str) and looks_local(ref, kind) and not Path(ref).is_absolute():
            found.append(f"[{section}] {key} = {ref!r}")
    return found
