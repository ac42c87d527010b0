"""Read dataset rows from local files (jsonl, json, csv, parquet, txt) or the Hugging Face Hub.

Errors name the file and, for JSON lines, the line number; they never show a traceback.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import json
import re
from collections.abc import Iterator
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
    """All rows of a dataset, as dicts (for small datasets: big ones stream through RowReader)."""
    rows = list(RowReader(ref, split, subset))
    if not rows:
        raise DataError(f"{ref}: the dataset is empty (no rows)")
    return rows


class RowReader:
    """The rows of a dataset, one dict at a time, so that a million rows never sit in memory
    together. `fraction` says how much of the dataset has been read (for progress)."""

    def __init__(self, ref: str, split: str = "train", subset: str = "") -> None:
        self.ref, self.split, self.subset = ref, split, subset
        self.fraction = 0.0
        self._done_bytes = 0  # of the local files finished
        self._total_bytes = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not is_local(self.ref):
            yield from self._hub()
            self.fraction = 1.0
            return
        path = Path(self.ref).expanduser()
        if not path.exists():
            raise DataError(f"{self.ref}: no such file or directory (check [data] path)")
        files = local_files(path)
        self._total_bytes = sum(_size(f) for f in files) or 1
        for file in files:
            yield from self._file(file)
            self._done_bytes += _size(file)
        self.fraction = 1.0

    def _at(self, position: int) -> None:
        """Progress within the current file: `position` bytes read of it."""
        self.fraction = min(1.0, (self._done_bytes + position) / self._total_bytes)

    def _file(self, file: Path) -> Iterator[dict[str, Any]]:
        kind = EXTENSIONS[file.suffix.lower()]
        if kind == "parquet":
            yield from self._parquet(file)
            return
        try:
            if _is_blank(file):
                raise DataError(f"{file}: the file is empty")
            if kind == "json":  # one JSON document: parsed whole (prefer JSON Lines for big sets)
                yield from _parse_json(file, _decoded(file))
            elif kind == "csv":
                yield from self._csv(file)
            else:
                yield from self._lines(file, kind)
        except OSError as e:
            raise DataError(f"{file}: cannot read ({e.strerror})") from None

    def _lines(self, file: Path, kind: str) -> Iterator[dict[str, Any]]:
        """JSON Lines and text, read in blocks of whole lines (a line number stays exact)."""
        number = 0  # lines before the current block
        position = 0
        for block in _line_blocks(file):
            position += len(block)
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError as e:
                line = number + block[: e.start].count(b"\n") + 1
                raise DataError(
                    f"{file}:{line}: not UTF-8 text ({e.reason}); re-save the file as UTF-8"
                ) from None
            if kind == "txt":
                # str.splitlines' line breaks, as text editors see them (\r, \u2028, ...)
                yield from ({"text": part} for part in text.splitlines() if part.strip())
            else:
                lines = text.split("\n")
                if lines[-1] == "":
                    lines.pop()  # the block ended with a newline
                for i, line in enumerate(lines, start=number + 1):
                    if line and not line.isspace():
                        yield _json_line(file, i, line)
            number += block.count(b"\n")
            self._at(position)

    def _csv(self, file: Path) -> Iterator[dict[str, Any]]:
        with file.open("rb") as binary:
            text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
            reader = csv.DictReader(text)
            try:
                for number, row in enumerate(reader, start=1):
                    if number % 4096 == 0:
                        self._at(binary.tell())
                    # Fields beyond the header land under the key None: they have no column name.
                    yield {k: v for k, v in row.items() if isinstance(k, str)}
            except csv.Error as e:
                raise DataError(f"{file}: malformed CSV ({e})") from None
            except UnicodeDecodeError as e:
                _decoded(file)  # raises the error that names the line
                raise DataError(
                    f"{file}: not UTF-8 text ({e.reason}); re-save the file as UTF-8"
                ) from None
            if reader.fieldnames is None:
                raise DataError(f"{file}: CSV has no header row")

    def _parquet(self, file: Path) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(file)
            total = parquet.metadata.num_rows or 1
            batches = parquet.iter_batches(batch_size=8192)
        except Exception as e:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{file}: cannot read parquet ({e})") from None
        done = 0
        while True:
            try:
                batch = next(batches, None)
                rows = batch.to_pylist() if batch is not None else None
            except Exception as e:
                raise DataError(f"{file}: cannot read parquet ({e})") from None
            if rows is None:
                return
            yield from rows
            done += len(rows)
            self._at(int(_size(file) * done / total))

    def _hub(self) -> Iterator[dict[str, Any]]:
        import datasets

        try:
            ds = datasets.load_dataset(self.ref, self.subset or None, split=self.split)
        except Exception as e:  # network, missing dataset, missing split: all end the same way
            first = first_line(e)
            raise DataError(
                f"{self.ref}: cannot load from the Hugging Face Hub ({first}); "
                "check the id and your network, or give a local file"
            ) from None
        total = len(ds) or 1
        for start in range(0, len(ds), 8192):
            yield from ds.select(range(start, min(start + 8192, len(ds)))).to_list()
            self.fraction = min(1.0, (start + 8192) / total)


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


BOM = b"\xef\xbb\xbf"


BLOCK = 1 << 20  # bytes read at a time


def _line_blocks(file: Path) -> Iterator[bytes]:
    """The file's bytes in blocks that end at a newline (the last one: at the end of the file),
    without a UTF-8 byte order mark at the start."""
    with file.open("rb") as f:
        pending: list[bytes] = []  # the start of a line longer than a block
        first = True
        while chunk := f.read(BLOCK):
            if first and chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
            first = False
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                pending.append(chunk)
                continue
            yield b"".join([*pending, chunk[:cut]])
            pending = [chunk[cut:]]
        if rest := b"".join(pending):
            yield rest


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0


def _is_blank(file: Path) -> bool:
    """Whether the file holds only whitespace (read until the first other character)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    with file.open("rb") as f:
        while block := f.read(1 << 16):
            try:
                if decoder.decode(block).strip():
                    return False
            except UnicodeDecodeError:
                return False  # not blank: the parser names the broken line
        return True


def _decoded(file: Path) -> str:
    """The whole file as text, or the DataError that names its first line that is not UTF-8."""
    data = file.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"{file}:{line}: not UTF-8 text ({e.reason}); re-save the file as UTF-8"
        ) from None


def _json_line(file: Path, number: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{file}:{number}: malformed JSON ({e.msg} at column {e.colno}); "
            "each line must be one JSON object"
        ) from None
    if not isinstance(row, dict):
        raise DataError(f"{file}:{number}: expected a JSON object, got {type(row).__name__}")
    return row


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
