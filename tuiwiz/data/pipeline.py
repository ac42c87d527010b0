"""Tokenize a dataset's examples on every core: `datasets.map(num_proc=...)` over the Arrow file
of examples, each batch rendered, tokenized, masked and truncated by `TokenizeJob`.

Each process also appends the untruncated length of every example it tokenized to its own
file (`lengths-PID.i32`): the lengths give the statistics of the report, and their files' sizes
are the progress (a thread of the calling process reads them).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tuiwiz.data import encode, examples, progress, render
from tuiwiz.errors import DataError, describe_error

BATCH = 1000  # examples per map call (and per tokenizer call)
MAX_AUTO_PROCESSES = 8  # "auto" never starts more: beyond it, the disk and the merge dominate
# Below this many examples per process, starting processes costs more than they save (measured:
# BENCHMARKS.md, "Data preparation").
MIN_EXAMPLES_PER_PROCESS = 5000
LENGTHS = "lengths-*.i32"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset or Slurm)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def processes(setting: int | str, examples: int) -> int:
    """How many processes tokenize `examples` for a [data] num_proc setting."""
    if setting == "auto":
        by_size = examples // MIN_EXAMPLES_PER_PROCESS
        return max(1, min(available_cores(), MAX_AUTO_PROCESSES, by_size))
    return max(1, min(int(setting), examples))


class TokenizeJob:
    """One map batch: stored examples -> input_ids and labels (int32 lists), truncated, with the
    examples that keep no trained token dropped. Picklable: it runs in worker processes."""

    def __init__(self, tokenizer: Any, kind: str, data: dict[str, Any], folder: Path | None):
        self.renderer = render.Renderer(tokenizer)
        self.encoder = encode.Encoder(tokenizer)
        self.kind, self.path = kind, data["path"]
        self.limit, self.train_on_prompt = data["max_seq_length"], data["train_on_prompt"]
        self.folder = str(folder) if folder is not None else None
        self.lengths: list[np.ndarray] = []  # without a folder: kept here (one process only)

    def __call__(self, batch: Any) -> Any:
        columns = {name: batch.column(name).to_pylist() for name in batch.column_names}
        rendered = [self._render(e) for e in examples.from_columns(columns, self.kind)]
        encoded = self.encoder.encode(rendered)
        self._record(encoded.lengths)
        kept = encoded.truncated(self.limit)
        return kept.select(kept.trained()).arrow()

    def _render(self, example: Any) -> list[render.Segment]:
        try:
            return self.renderer.render(example, self.train_on_prompt)
        except Exception as e:  # noqa: BLE001 - the template's own exceptions (raise_exception)
            raise DataError(
                f"{self.path}: the model's chat template cannot render an example "
                f"({describe_error(e)}); fix or remove it"
            ) from None

    def _record(self, lengths: np.ndarray) -> None:
        if self.folder is None:
            self.lengths.append(lengths.copy())
            return
        with open(os.path.join(self.folder, f"lengths-{os.getpid()}.i32"), "ab") as f:
            f.write(lengths.astype(np.int32).tobytes())


@dataclass
class Tokenized:
    dataset: Any  # datasets.Dataset: input_ids, labels
    lengths: np.ndarray  # untruncated tokens of every example, kept or dropped
    files: list[Path]  # the Arrow files behind `dataset` (empty when it is in memory)


def tokenize(
    source: examples.Examples,
    tokenizer: Any,
    data: dict[str, Any],
    num_proc: int,
    folder: Path | None,
    on_progress: Callable[[progress.Progress], None] | None = None,
) -> Tokenized:
    """Tokenize every example with `num_proc` processes into Arrow files in `folder` (or
    memory, when there is no folder: then in this process)."""
    import datasets

    job = TokenizeJob(tokenizer, source.kind, data, folder)
    if folder is None:
        num_proc = 1
    meter = progress.Meter("tokenizing", on_progress, total=len(source))
    meter.update(0)
    watcher = _Watcher(folder, meter) if folder is not None else None
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # progress is tuiwiz's own (train.log, status.json)
    try:
        if watcher is not None:
            watcher.start()
        with _environment_kept():
            mapped = _map(source, job, num_proc, folder)
    finally:
        if watcher is not None:
            watcher.stop()
        if bars:
            datasets.enable_progress_bars()
    lengths = _lengths(folder) if folder is not None else np.concatenate(job.lengths or [[]])
    meter.update(len(lengths), final=True)
    files = [Path(f["filename"]) for f in mapped.cache_files]
    return Tokenized(mapped.with_format(None), lengths.astype(np.int64), files)


def _map(source: examples.Examples, job: TokenizeJob, num_proc: int, folder: Path | None) -> Any:
    return source.dataset.with_format("arrow").map(
        job,
        batched=True,
        batch_size=BATCH,
        num_proc=num_proc if num_proc > 1 else None,
        remove_columns=source.dataset.column_names,
        cache_file_name=str(folder / "tokens.arrow") if folder is not None else None,
        keep_in_memory=folder is None,
        load_from_cache_file=False,
        new_fingerprint=f"tuiwiz-{os.getpid()}-{id(job)}",  # not a hash of the tokenizer
    )


@contextlib.contextmanager
def _environment_kept() -> Iterator[None]:
    """datasets' map(num_proc > 1) sets TOKENIZERS_PARALLELISM=false in the process's
    environment for its forked workers, then replaces `os.environ` with a copy taken before:
    afterwards `os.environ` and the real environment disagree, and whatever holds the original
    mapping (rich's consoles) no longer sees changes. Put both back as they were."""
    environ, parallelism = os.environ, os.environ.get("TOKENIZERS_PARALLELISM")
    try:
        yield
    finally:
        os.environ = environ  # noqa: B003 - the original object, not a new environment
        if parallelism is None:
            environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            environ["TOKENIZERS_PARALLELISM"] = parallelism


def _lengths(folder: Path) -> np.ndarray:
    parts = [np.fromfile(f, dtype=np.int32) for f in sorted(folder.glob(LENGTHS))]
    return np.concatenate(parts) if parts else np.zeros(0, np.int32)


def _done(folder: Path) -> int:
    total = 0
    for f in folder.glob(LENGTHS):
        with contextlib.suppress(OSError):  # being written: counted on the next look
            total += f.stat().st_size // 4
    return total


class _Watcher(threading.Thread):
    """Reports how many examples the processes have tokenized, from their lengths files."""

    def __init__(self, folder: Path, meter: progress.Meter, every: float = 1.0) -> None:
        super().__init__(name="tuiwiz-data-progress", daemon=True)
        self.folder, self.meter, self.every = folder, meter, every
        self._halt = threading.Event()

    def run(self) -> None:
        # It sleeps first: datasets forks its worker processes right after it starts, and a
        # fork must not catch this thread in the middle of writing (holding a lock).
        while not self._halt.wait(self.every):
            self.meter.update(_done(self.folder))

    def stop(self) -> None:
        self._halt.set()
        self.join()
