"""Read dataset rows from local files (jsonl, json, csv, parquet, txt) or the Hugging Face Hub.

Errors name the file and, for JSON lines, the line number; they never show a traceback.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from tuiwiz.errors import DataError, first_line

EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "txt",
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def local_files(path: Path) -> list[Path]:
    """The data files behind a local path: the file itself, or a directory's supported files."""
    if not path.exists():
        raise DataError(f"{path}: no such file or directory (check [data] path)")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in EXTENSIONS)
        if not files:
            kinds = ", ".join(EXTENSIONS)
            raise DataError(f"{path}: directory has no data files ({kinds})")
        return files
    if path.suffix.lower() not in EXTENSIONS:
        raise DataError(
            f"{path}: unknown file type '{path.suffix}'; use one of {', '.join(EXTENSIONS)}"
        )
    return [path]


def is_local(ref: str) -> bool:
    return Path(ref).expanduser().exists() or not HUB_ID.match(ref)


def read_rows(ref: str, split: str = "train", subset: str = "") -> list[dict[str, Any]]:
    """All rows of a dataset, as dicts."""
    if is_local(ref):
        path = Path(ref).expanduser()
        if not path.exists():
            raise DataError(f"{ref}: no such file or directory (check [data] path)")
        rows: list[dict[str, Any]] = []
        for file in local_files(path):
            rows.extend(_read_file(file))
        if not rows:
            raise DataError(f"{ref}: the dataset is empty (no rows)")
        return rows
    return _read_hub(ref, split, subset)


def fingerprint(ref: str, split: str = "train", subset: str = "") -> str:
    """A content hash of a local dataset (or the Hub id, split and subset): the tokenization
    cache's key, and what a run records to notice later that its data changed."""
    if not is_local(ref):
        return hashlib.sha256(f"hub:{ref}:{subset}:{split}".encode()).hexdigest()
    files = local_files(Path(ref).expanduser())
    # Hashed once per process for the same files unchanged (a big file takes seconds).
    stats = tuple((str(f.absolute()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _content_hash(stats)


@functools.lru_cache(maxsize=16)
def _content_hash(stats: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in stats:
        file = Path(name)
        h.update(file.name.encode())
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _read_file(file: Path) -> list[dict[str, Any]]:
    kind = EXTENSIONS[file.suffix.lower()]
    try:
        if kind == "parquet":
            return _read_parquet(file)
        text = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = file.read_bytes()[: e.start].count(b"\n") + 1
        raise DataError(
            f"{file}:{line}: not UTF-8 text ({e.reason}); re-save the file as UTF-8"
        ) from None
    except OSError as e:
        raise DataError(f"{file}: cannot read ({e.strerror})") from None
    if not text.strip():
        raise DataError(f"{file}: the file is empty")
    return {"jsonl": _parse_jsonl, "json": _parse_json, "csv": _parse_csv, "txt": _parse_txt}[kind](
        file, text
    )


def _parse_jsonl(file: Path, text: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{file}:{number}: malformed JSON ({e.msg} at column {e.colno}); "
                "each line must be one JSON object"
            ) from None
        if not isinstance(row, dict):
            raise DataError(f"{file}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def _parse_json(file: Path, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{file}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno})"
        ) from None
    if isinstance(data, dict):
        # {"train": [...]} or {"data": [...]}: a single list of rows inside an object.
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{file}: expected a JSON list of objects (one object per example)")
    return data


def _parse_csv(file: Path, text: str) -> list[dict[str, Any]]:
    try:
        reader = csv.DictReader(text.splitlines())
        # Fields beyond the header land under the key None: they have no column name to use.
        rows = [{k: v for k, v in row.items() if isinstance(k, str)} for row in reader]
    except csv.Error as e:
        raise DataError(f"{file}: malformed CSV ({e})") from None
    if reader.fieldnames is None:
        raise DataError(f"{file}: CSV has no header row")
    return rows


def _parse_txt(file: Path, text: str) -> list[dict[str, Any]]:
    return [{"text": line} for line in text.splitlines() if line.strip()]


def _read_parquet(file: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(file).to_pylist()
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{file}: cannot read parquet ({e})") from None


def _read_hub(ref: str, split: str, subset: str) -> list[dict[str, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(ref, subset or None, split=split)
    except Exception as e:  # network, missing dataset, missing split: all end the same way
        first = first_line(e)
        raise DataError(
            f"{ref}: cannot load from the Hugging Face Hub ({first}); "
            "check the id and your network, or give a local file"
        ) from None
    return ds.to_list()
