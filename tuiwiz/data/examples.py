"""A dataset's usable examples in an Arrow file: read once, streamed row by row, never a list
of a million Python dicts in memory.

`load` reads the rows (readers.RowReader), normalizes them (formats.Normalizer) and writes the
examples in batches to an Arrow file in a private working folder (in tuiwiz's cache folder, or
the system's temporary folder when that is read-only); the tokenization then memory-maps it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import tempfile
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiwiz.data import formats, progress, readers
from tuiwiz.data.formats import Example
from tuiwiz.errors import DataError
from tuiwiz.paths import cache_dir

BATCH = 8192  # examples per Arrow record batch
WORK_PREFIX = ".work-"


def _schema(kind: str) -> Any:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    if kind == "messages":
        return pa.schema([("messages", pa.list_(message))])
    if kind == "prompt_completion":
        return pa.schema([("prompt", pa.string()), ("completion", pa.string())])
    return pa.schema([("text", pa.string())])


def kind_of(fmt: str) -> str:
    """The columns a format's examples are stored in: messages, prompt_completion or text."""
    return fmt if fmt in ("prompt_completion", "text") else "messages"


def to_columns(examples: list[Example], kind: str) -> dict[str, list[Any]]:
    if kind == "messages":
        return {"messages": [e.messages for e in examples]}
    if kind == "prompt_completion":
        prompts, completions = [e.prompt for e in examples], [e.completion for e in examples]
        return {"prompt": prompts, "completion": completions}
    return {"text": [e.text for e in examples]}


def from_columns(columns: dict[str, list[Any]], kind: str) -> list[Example]:
    """Examples from a batch of stored columns (the inverse of to_columns)."""
    if kind == "messages":
        return [Example(messages=m) for m in columns["messages"]]
    if kind == "prompt_completion":
        return [Example(prompt=p, completion=c) for p, c in zip(*columns.values())]
    return [Example(text=t) for t in columns["text"]]


@dataclass
class Examples:
    """A dataset's examples (Arrow-backed), with what reading them found."""

    format: str
    rows: int  # rows read (max_samples applied)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    dataset: Any = None  # datasets.Dataset with the columns of `kind_of(format)`
    workdir: Path | None = None  # where its file lives, removed by close()

    @property
    def kind(self) -> str:
        return kind_of(self.format)

    def __len__(self) -> int:
        return len(self.dataset)

    def usable(self) -> bool:
        """Whether the examples can still be read (close() not called)."""
        return self.dataset is not None and (self.workdir is None or self.workdir.is_dir())

    def iter_examples(self) -> Iterator[Example]:
        for start in range(0, len(self.dataset), BATCH):
            batch = self.dataset[start : start + BATCH]
            yield from from_columns(batch, self.kind)

    def close(self) -> None:
        self.dataset = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class Rows:
    """A dataset's rows, opened: the format known and the columns checked (from the first
    rows), every row still to come through `rows`."""

    reader: readers.RowReader
    normalizer: formats.Normalizer
    why: str  # how the format was found
    rows: Iterator[dict[str, Any]]

    def examples(self) -> Iterator[Example]:
        """The usable examples (the others counted in normalizer.skipped); at the end, a
        DataError if there were none."""
        for row in self.rows:
            if (example := self.normalizer.convert(row)) is not None:
                yield example
        self.normalizer.finish()


def open_rows(data: dict[str, Any]) -> Rows:
    """Open a [data] section's rows (max_samples applied); DataError when they cannot be used."""
    reader = readers.RowReader(data["path"], data["split"], data["subset"])
    rows: Iterator[dict[str, Any]] = iter(reader)
    if data["max_samples"]:
        rows = itertools.islice(rows, data["max_samples"])
    head = list(itertools.islice(rows, formats.Normalizer.HEAD))
    if not head:
        raise DataError(f"{data['path']}: the dataset is empty (no rows)")
    fmt, why = data["format"], "set in the preset"
    if fmt == "auto":
        fmt, why = formats.detect(head, data["columns"], data["path"])
    normalizer = formats.Normalizer(fmt, data["columns"], data["path"])
    normalizer.start(head)
    return Rows(reader, normalizer, why, itertools.chain(head, rows))


def stream(data: dict[str, Any]) -> Iterator[Example]:
    """A [data] section's usable examples, one at a time, stored nowhere."""
    return open_rows(data).examples()


def load(
    data: dict[str, Any], on_progress: Callable[[progress.Progress], None] | None = None
) -> Examples:
    """Read and normalize a [data] section's rows into an Arrow file (DataError when unusable)."""
    opened = open_rows(data)
    kind = kind_of(opened.normalizer.format)
    meter = progress.Meter("reading", on_progress)
    workdir = make_workdir()
    try:
        writer = _Writer(workdir, kind)
        pending: list[Example] = []
        for example in opened.examples():
            pending.append(example)
            if len(pending) == BATCH:
                writer.write(pending)
                pending = []
                meter.update(opened.normalizer.rows, _fraction(opened, data["max_samples"]))
        writer.write(pending)
        dataset = writer.close()
        meter.update(opened.normalizer.rows, final=True)
    except BaseException:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    n = opened.normalizer
    examples = Examples(n.format, opened.normalizer.rows, n.skipped, dataset, workdir)
    if workdir is not None:  # removed when the examples are dropped, or at exit
        weakref.finalize(examples, shutil.rmtree, str(workdir), True)
    return examples


def _fraction(opened: Rows, max_samples: int) -> float:
    """How much of the reading is done: of the bytes, or of max_samples rows."""
    by_bytes = opened.reader.fraction
    return max(by_bytes, opened.normalizer.rows / max_samples) if max_samples else by_bytes


class _Writer:
    """Examples in batches into an Arrow stream file (or memory, without a working folder)."""

    def __init__(self, workdir: Path | None, kind: str) -> None:
        import pyarrow as pa

        self.kind, self.schema = kind, _schema(kind)
        self.path = workdir / "examples.arrow" if workdir is not None else None
        self.batches: list[Any] = []  # in memory only
        self.sink = pa.OSFile(str(self.path), "wb") if self.path else None
        self.stream = pa.ipc.new_stream(self.sink, self.schema) if self.sink else None

    def write(self, examples: list[Example]) -> None:
        import pyarrow as pa

        if not examples:
            return
        if self.kind == "messages":  # built from flat arrays: much faster than from dicts
            batch = pa.RecordBatch.from_arrays([_messages_array(examples)], schema=self.schema)
        else:
            batch = pa.RecordBatch.from_pydict(to_columns(examples, self.kind), schema=self.schema)
        if self.stream is not None:
            self.stream.write_batch(batch)
        else:
            self.batches.append(batch)

    def close(self) -> Any:
        import datasets
        import pyarrow as pa

        if self.stream is not None:
            self.stream.close()
            self.sink.close()
            return datasets.Dataset.from_file(str(self.path))
        table = pa.Table.from_batches(self.batches, schema=self.schema)
        return datasets.Dataset(datasets.table.InMemoryTable(table))


def _messages_array(examples: list[Example]) -> Any:
    """The examples' messages as an Arrow list<struct<role, content>> array."""
    import numpy as np
    import pyarrow as pa

    counts = np.fromiter((len(e.messages) for e in examples), np.int32, len(examples))
    offsets = pa.array(np.concatenate(([0], np.cumsum(counts, dtype=np.int32))), pa.int32())
    roles = pa.array([m["role"] for e in examples for m in e.messages], pa.string())
    contents = pa.array([m["content"] for e in examples for m in e.messages], pa.string())
    structs = pa.StructArray.from_arrays([roles, contents], names=["role", "content"])
    return pa.ListArray.from_arrays(offsets, structs)


def make_workdir() -> Path | None:
    """A private working folder for this process: in the cache folder when it can be written,
    else in the system's temporary folder; None when neither can (work in memory)."""
    base = cache_dir() / "tokenized"
    try:
        base.mkdir(parents=True, exist_ok=True)
        sweep_workdirs(base)
        return Path(tempfile.mkdtemp(dir=base, prefix=f"{WORK_PREFIX}{_owner()}-"))
    except OSError:
        pass
    try:
        return Path(tempfile.mkdtemp(prefix=f"tuiwiz-data-{os.getpid()}-"))
    except OSError:
        return None


def _owner() -> str:
    """pid@host: a cache folder may be shared by machines (a cluster's home directory)."""
    return f"{os.getpid()}@{socket.gethostname()}"


def sweep_workdirs(base: Path) -> None:
    """Remove the working folders that processes of this machine left behind when they were
    killed before cleaning up (their pid is gone)."""
    host = socket.gethostname()
    for entry in base.glob(f"{WORK_PREFIX}*@*"):
        pid_text, _, rest = entry.name[len(WORK_PREFIX) :].partition("@")
        if rest.rsplit("-", 1)[0] != host or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
