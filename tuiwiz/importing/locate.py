"""Model and dataset references in an imported config: a Hub id is carried as it is; a local
path is made absolute, found relative to the config file's folder or the current directory.

Both tools resolve a relative path against the directory they were started from, which is often
not the folder of the config file. An imported preset names local paths absolutely, so that it
means the same thing wherever it is run from, and the report says how each path was read.
"""

from __future__ import annotations

import re
from pathlib import Path

from tuiwiz.importing.convert import Conversion

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # org/name, as tuiwiz.data.readers reads it
DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".txt", ".arrow")
REMOTE = ("s3://", "gs://", "gcs://", "az://", "abfs://", "http://", "https://", "hf://")


def locate(conv: Conversion, src: str, ref: str, dotted: str) -> None:
    """Write `ref` at `dotted` (model.name_or_path or data.path), reporting how it was read."""
    if not ref.isprintable():
        conv.placeholder(dotted, src, f"{ref!r} holds control characters: not a path or a Hub id")
        return
    if ref.startswith(REMOTE):
        conv.placeholder(dotted, src, f"{ref} is remote storage, which tuiwiz does not read")
        return
    path = Path(ref).expanduser()
    if path.is_absolute():
        if conv.same(src, dotted, str(path)) and not path.exists():
            conv.check(src, f"{path} does not exist on this machine")
        return
    here = conv.path.parent
    candidates = [("the config file's folder", here / path), ("the current directory", path)]
    for where, candidate in candidates:
        if candidate.exists():
            absolute = str(candidate.resolve())
            conv.translated(src, ref, {dotted: absolute}, f"a local path, relative to {where}")
            return
    is_data = dotted.startswith("data.") and path.suffix.lower() in DATA_SUFFIXES
    if HUB_ID.match(ref) and not is_data and not ref.startswith(("./", "../")):
        conv.same(src, dotted, ref)  # a Hub id, carried as it is
        return
    absolute = str((here / path).resolve())
    if conv.translated(src, ref, {dotted: absolute}, "relative to the config file's folder"):
        conv.check(src, f"{absolute} does not exist on this machine")
