"""From a [data] section and a tokenizer to tokenized train / validation datasets, cached.

The cache key covers the data's content, the tokenizer (vocabulary and chat template) and every
[data] setting that changes the tokens, so a second run on the same data tokenizes nothing.
The rows are read once into an Arrow file (tuiwiz.data.examples) and tokenized by several
processes (tuiwiz.data.pipeline); a cache entry is the Arrow files they wrote and report.json.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tuiwiz.data import examples as data_examples
from tuiwiz.data import pipeline, readers
from tuiwiz.data.progress import Progress, Throttled
from tuiwiz.errors import DataError
from tuiwiz.paths import cache_dir

# Bump when rendering, tokenization or the cache layout changes. 2: int32 Arrow shards.
CACHE_VERSION = 2
LOG_EVERY = 10.0  # seconds between progress lines in train.log


@dataclass
class DataReport:
    format: str
    rows: int
    examples: int
    skipped: dict[str, int] = field(default_factory=dict)
    truncated: int = 0
    dropped_fully_masked: int = 0
    median_tokens: float = 0.0
    p95_tokens: float = 0.0
    max_tokens: int = 0
    train_examples: int = 0
    validation_examples: int = 0
    cached: bool = False


def load_examples(
    data: dict[str, Any], progress: Callable[[Progress], None] | None = None
) -> data_examples.Examples:
    """Read and normalize a [data] section's rows (DataError when they cannot be used), into
    an Arrow file: pass the result to `prepare(examples=...)` to avoid reading twice."""
    return data_examples.load(data, progress)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    h.update(str(getattr(tokenizer, "chat_template", "")).encode())
    h.update(f"{tokenizer.bos_token}|{tokenizer.eos_token}|{type(tokenizer).__name__}".encode())
    return h.hexdigest()


def cache_key(data: dict[str, Any], tokenizer: Any) -> str:
    settings = {
        k: data[k]
        for k in (
            "format",
            "columns",
            "max_seq_length",
            "train_on_prompt",
            "max_samples",
            "split",
            "subset",
        )
    }
    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}".encode())
    h.update(readers.fingerprint(data["path"], data["split"], data["subset"]).encode())
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    return h.hexdigest()[:32]


def _cache_folder(data: dict[str, Any], tokenizer: Any) -> Path:
    return cache_dir() / "tokenized" / cache_key(data, tokenizer)


def cache_problem() -> str | None:
    """Why tokenized data cannot be cached (a read-only cache directory), or None."""
    folder = cache_dir() / "tokenized"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return (
            f"the tokenization cache {folder} cannot be written ({e.strerror or e}): training "
            "without it, so the next run tokenizes again (set TUIWIZ_CACHE_DIR to cache)"
        )
    return None


def is_cached(data: dict[str, Any], tokenizer: Any) -> bool:
    return (_cache_folder(data, tokenizer) / "report.json").is_file()


def prepare(
    data: dict[str, Any],
    tokenizer: Any,
    seed: int = 42,
    examples: data_examples.Examples | None = None,
    log: Callable[[str], None] = print,
    progress: Callable[[Progress], None] | None = None,
):
    """Tokenized (train, validation or None, DataReport) for a [data] section, from cache if any.

    `examples` are the already-read rows (from `load_examples`), to avoid reading twice.
    `log` gets a line every LOG_EVERY seconds while it works (train.log); `progress` a
    Progress at most every two seconds (e.g. progress.StatusProgress(run) for status.json).
    """
    report_progress = _Reporter(log, progress)
    folder = _cache_folder(data, tokenizer)
    cached = _cached(folder, log)
    if cached is not None:
        dataset, report = cached
        log(f"data: {report.examples} examples from the tokenization cache ({folder})")
        if progress is not None:  # done: overwrites what an earlier attempt left in a status
            progress(Progress("tokenizing", report.examples, report.examples, 0.0, 0.0, 1.0))
    else:
        if examples is None or not examples.usable():
            examples = load_examples(data, report_progress)
        dataset, report = _tokenize(data, tokenizer, examples, folder, log, report_progress)
    validation = None
    if data["validation_split"] > 0 and len(dataset) > 1:
        dataset, validation = split(dataset, data["validation_split"], seed, data["path"])
    report.train_examples = len(dataset)
    report.validation_examples = len(validation) if validation is not None else 0
    return dataset, validation, report


def split(dataset: Any, fraction: float, seed: int, path: str) -> tuple[Any, Any]:
    """(train, validation): `fraction` of the examples held out at random, `seed` deciding
    which (as datasets' train_test_split draws them; the indices stay in memory, so nothing is
    written next to the cached files)."""
    n = len(dataset)
    held_out = math.ceil(fraction * n)
    if held_out >= n:
        raise DataError(
            f"{path}: validation_split = {fraction} of {n} examples leaves none to train on; "
            "lower [data] validation_split"
        )
    order = np.random.default_rng(seed).permutation(n)
    train = dataset.select(order[held_out:], keep_in_memory=True)
    return train, dataset.select(order[:held_out], keep_in_memory=True)


class _Reporter:
    """Progress to the caller's callback (every two seconds) and to the log (less often)."""

    def __init__(self, log: Callable[[str], None], progress: Callable[[Progress], None] | None):
        self.progress = progress
        self.log_line = Throttled(lambda p: log(f"data: {p.line()}"), LOG_EVERY, quiet_start=True)

    def __call__(self, progress: Progress) -> None:
        if self.progress is not None:
            self.progress(progress)
        self.log_line(progress)


def _tokenize(
    data: dict[str, Any],
    tokenizer: Any,
    examples: data_examples.Examples,
    folder: Path,
    log: Callable[[str], None],
    report_progress: Callable[[Progress], None],
) -> tuple[Any, DataReport]:
    """Tokenize, report, and store the result in the cache (or keep it aside, uncached)."""
    num_proc = pipeline.processes(data.get("num_proc", "auto"), len(examples))
    log(
        f"data: tokenizing {len(examples):,} examples with {num_proc} "
        f"process{'es' if num_proc > 1 else ''}"
    )
    workdir = data_examples.make_workdir()
    try:
        tokenized = pipeline.tokenize(examples, tokenizer, data, num_proc, workdir, report_progress)
    except BaseException:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        examples.close()  # its Arrow file is not needed any more
    lengths = tokenized.lengths
    dataset = tokenized.dataset
    index = min(len(lengths) - 1, max(0, round(0.95 * (len(lengths) - 1))))
    report = DataReport(
        format=examples.format,
        rows=examples.rows,
        examples=len(dataset),
        skipped=examples.skipped,
        truncated=int((lengths > data["max_seq_length"]).sum()),
        dropped_fully_masked=len(lengths) - len(dataset),
        median_tokens=float(np.median(lengths)),
        p95_tokens=float(np.partition(lengths, index)[index]),
        max_tokens=int(lengths.max()),
    )
    if not len(dataset):
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        raise DataError(
            f"{data['path']}: every example loses its whole answer to truncation at "
            f"max_seq_length={data['max_seq_length']}; raise [data] max_seq_length"
        )
    in_cache = workdir is not None and workdir.parent == folder.parent
    problem = None if in_cache else "the cache folder cannot be written"
    if problem:
        log(f"data: not cached ({problem}); the next run tokenizes again")
    try:
        if problem is None:
            _store(folder, tokenized.files, report)
            dataset = _open(folder)  # file-backed, memory-mapped
    except OSError as e:  # the cache is a convenience: train without it
        problem = str(e.strerror or e)
        log(f"data: not cached ({problem}); the next run tokenizes again")
    if problem is None:
        shutil.rmtree(workdir, ignore_errors=True)
    elif workdir is not None:  # the files serve this process's training, and no longer
        atexit.register(shutil.rmtree, workdir, True)
    return dataset, report


def _cached(folder: Path, log: Callable[[str], None]) -> tuple[Any, DataReport] | None:
    """A cache entry's dataset and report; None when there is none. A damaged entry (files
    missing or unreadable) is said, removed, and tokenized again."""
    if not (folder / "report.json").is_file():
        return None
    try:
        report = DataReport(**json.loads((folder / "report.json").read_text()))
        dataset = _open(folder)
        if len(dataset) != report.examples:
            raise ValueError(f"{len(dataset)} examples, {report.examples} in its report")
    except Exception as e:  # noqa: BLE001 - whatever is wrong with it, tokenizing again mends it
        log(f"data: the tokenization cache {folder} is damaged ({e}); tokenizing again")
        shutil.rmtree(folder, ignore_errors=True)
        return None
    report.cached = True
    return dataset, report


def _open(folder: Path) -> Any:
    """A cache entry's dataset: its Arrow files, memory-mapped, in order."""
    import datasets

    # Only tuiwiz's own files: the trainer's datasets.map writes its cache files beside them.
    shards = sorted((folder / "shards").glob("tokens-*.arrow"))
    if not shards:
        raise FileNotFoundError(f"no tokens-*.arrow in {folder / 'shards'}")
    parts = [datasets.Dataset.from_file(str(f)) for f in shards]
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def _store(folder: Path, files: list[Path], report: DataReport) -> None:
    """Move the tokenized files into a cache entry, aside first and renamed into place, so a
    crash leaves no half entry."""
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".staging-"))
    try:
        (staging / "shards").mkdir()
        for i, file in enumerate(files):
            os.replace(file, staging / "shards" / f"tokens-{i:05d}.arrow")
        (staging / "report.json").write_text(json.dumps(asdict(report), indent=2))
        try:
            staging.rename(folder)
        except OSError:  # another process stored the same entry first: theirs is as good
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
