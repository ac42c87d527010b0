"""From a [data] section and a tokenizer to tokenized train / validation datasets, cached.

The cache key covers the data's content, the tokenizer (vocabulary and chat template) and every
[data] setting that changes the tokens, so a second run on the same data tokenizes nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuiwiz.data import formats, readers, render
from tuiwiz.paths import cache_dir

CACHE_VERSION = 1  # bump when rendering or tokenization changes
BATCH = 1000


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


def load_examples(data: dict[str, Any]) -> tuple[formats.Normalized, int]:
    """Read and normalize a [data] section's rows; returns them and the number of rows read."""
    rows = readers.read_rows(data["path"], data["split"], data["subset"])
    if data["max_samples"]:
        rows = rows[: data["max_samples"]]
    return formats.normalize(rows, data["format"], data["columns"], data["path"]), len(rows)


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


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return float(ordered[index])


def tokenize_examples(
    examples: list[formats.Example], tokenizer: Any, data: dict[str, Any]
) -> tuple[dict[str, list[list[int]]], list[int]]:
    """Batched tokenization with truncation; returns columns and the untruncated lengths."""
    ids_out: list[list[int]] = []
    labels_out: list[list[int]] = []
    lengths: list[int] = []
    limit = data["max_seq_length"]
    for start in range(0, len(examples), BATCH):
        batch = examples[start : start + BATCH]
        rendered = [render.render(e, tokenizer, data["train_on_prompt"]) for e in batch]
        ids, labels = render.tokenize_batch(rendered, tokenizer)
        for one_ids, one_labels in zip(ids, labels):
            lengths.append(len(one_ids))
            ids_out.append(one_ids[:limit])
            labels_out.append(one_labels[:limit])
    return {"input_ids": ids_out, "labels": labels_out}, lengths


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
    examples: tuple[formats.Normalized, int] | None = None,
    log=print,
):
    """Tokenized (train, validation or None, DataReport) for a [data] section, from cache if any.

    `examples` are the already-loaded rows (from `load_examples`), to avoid reading twice.
    """
    import datasets

    folder = _cache_folder(data, tokenizer)
    if (folder / "report.json").is_file():
        report = DataReport(**json.loads((folder / "report.json").read_text()))
        dataset = datasets.load_from_disk(str(folder / "dataset"))
        report.cached = True
        log(f"data: {report.examples} examples from the tokenization cache ({folder})")
    else:
        normalized, rows = examples or load_examples(data)
        log(f"data: tokenizing {len(normalized.examples)} examples")
        columns, lengths = tokenize_examples(normalized.examples, tokenizer, data)
        keep = [i for i, labels in enumerate(columns["labels"]) if any(x != -100 for x in labels)]
        report = DataReport(
            format=normalized.format,
            rows=rows,
            examples=len(keep),
            skipped=normalized.skipped,
            truncated=sum(n > data["max_seq_length"] for n in lengths),
            dropped_fully_masked=len(lengths) - len(keep),
            median_tokens=float(statistics.median(lengths)),
            p95_tokens=percentile(lengths, 0.95),
            max_tokens=max(lengths),
        )
        if not keep:
            from tuiwiz.errors import DataError

            raise DataError(
                f"{data['path']}: every example loses its whole answer to truncation at "
                f"max_seq_length={data['max_seq_length']}; raise [data] max_seq_length"
            )
        dataset = datasets.Dataset.from_dict(
            {name: [values[i] for i in keep] for name, values in columns.items()}
        )
        try:
            _store(folder, dataset, report)
            dataset = datasets.load_from_disk(str(folder / "dataset"))  # file-backed, mmapped
        except OSError as e:  # the cache is a convenience: train without it
            log(f"data: not cached ({e.strerror or e}); the next run tokenizes again")
    validation = None
    if data["validation_split"] > 0 and len(dataset) > 1:
        parts = dataset.train_test_split(test_size=data["validation_split"], seed=seed)
        dataset, validation = parts["train"], parts["test"]
    report.train_examples = len(dataset)
    report.validation_examples = len(validation) if validation is not None else 0
    return dataset, validation, report


def _store(folder: Path, dataset: Any, report: DataReport) -> None:
    """Write the cache entry aside and rename it into place, so a crash leaves no half entry."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".staging-"))
    try:
        dataset.save_to_disk(str(staging / "dataset"))
        (staging / "report.json").write_text(json.dumps(asdict(report), indent=2))
        try:
            staging.rename(folder)
        except OSError:  # another process stored the same entry first: theirs is as good
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
