"""A dataset seen as the model will see it: detected format, rendered examples, token lengths.

Used by `tuiwiz data` and the wizard's dataset step. Statistics come from a sample of at most
`SAMPLE` rows so that a preview of a large dataset stays quick; the report says when it sampled.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field
from typing import Any

from tuiwiz.data import formats, readers, render
from tuiwiz.data.prepare import percentile

SAMPLE = 2000


@dataclass
class Preview:
    format: str
    why: str  # what the detection found, e.g. "found columns instruction, output"
    rows: int
    examples: list[list[render.Segment]]  # the first few, rendered
    skipped: dict[str, int] = field(default_factory=dict)
    measured: int = 0  # how many examples the statistics are over
    median_tokens: float = 0.0
    p95_tokens: float = 0.0
    max_tokens: int = 0
    truncated_share: float = 0.0  # of the measured examples, longer than max_seq_length


def preview(data: dict[str, Any], tokenizer: Any, count: int = 3) -> Preview:
    rows = readers.read_rows(data["path"], data["split"], data["subset"])
    if data["max_samples"]:
        rows = rows[: data["max_samples"]]
    if data["format"] == "auto":
        fmt, why = formats.detect(rows, data["columns"], data["path"])
    else:
        fmt, why = data["format"], "set in the preset"
    normalized = formats.normalize(rows, fmt, data["columns"], data["path"])
    examples = normalized.examples
    shown = [render.render(e, tokenizer, data["train_on_prompt"]) for e in examples[:count]]
    sample = examples if len(examples) <= SAMPLE else random.Random(0).sample(examples, SAMPLE)
    rendered = [render.render(e, tokenizer, data["train_on_prompt"]) for e in sample]
    ids, _ = render.tokenize_batch(rendered, tokenizer)
    lengths = [len(x) for x in ids]
    limit = data["max_seq_length"]
    return Preview(
        format=fmt,
        why=why,
        rows=len(rows),
        examples=shown,
        skipped=normalized.skipped,
        measured=len(lengths),
        median_tokens=float(statistics.median(lengths)),
        p95_tokens=percentile(lengths, 0.95),
        max_tokens=max(lengths),
        truncated_share=sum(n > limit for n in lengths) / len(lengths),
    )
