"""A dataset seen as the model will see it: detected format, rendered examples, token lengths.

Used by `tuiwiz data` and the wizard's dataset step. Every row is read (streamed, never held in
memory all together) to count the rows and the skipped ones, but token lengths are measured on a
random sample of at most `SAMPLE` examples so that a preview of a large dataset stays quick;
the report says when it sampled.
Token lengths come only from the model's own tokenizer: without one (a model directory with a
config.json alone) the preview says so instead of counting with a tokenizer that has no
vocabulary.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiwiz.data import formats, render
from tuiwiz.data.progress import Meter, Progress
from tuiwiz.errors import ModelError, first_line

SAMPLE = 2000
# Files that hold a tokenizer's vocabulary (tokenizer_config.json alone holds none).
VOCABULARY_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)


class NoTokenizer(ModelError):
    """The model's tokenizer cannot be had: token lengths cannot be measured."""

    def __init__(self, model: str, reason: str) -> None:
        self.model, self.reason = model, reason
        super().__init__(
            f"token lengths need the model's tokenizer (and so do examples as the model sees "
            f"them): {reason}; add the model's tokenizer files to {model}, or use its Hub id"
        )


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
    lengths: list[int] = field(default_factory=list)  # of the measured examples, untruncated
    # per shown example: the character where max_seq_length cuts it, or None when it fits
    cuts: list[int | None] = field(default_factory=list)
    token_problem: str | None = None  # why there are no examples or token lengths


def _has_no_vocabulary(tokenizer: Any) -> bool:
    """A tokenizer built without its files: text becomes no tokens, or unknown tokens only."""
    ids = tokenizer("Hello world, 123.", add_special_tokens=False)["input_ids"]
    unk = getattr(tokenizer, "unk_token_id", None)
    return not ids or (unk is not None and all(i == unk for i in ids))


def _has_vocabulary_file(folder: Path) -> bool:
    found = any((folder / name).is_file() for name in VOCABULARY_FILES)
    return found or any(folder.glob("*.tiktoken"))


def tokenizer_for(model_path: str, config: dict[str, Any]) -> Any:
    """The model's tokenizer, as training loads it; NoTokenizer when it has none that works."""
    from tuiwiz.train.builders import load_tokenizer

    local = Path(model_path).expanduser()
    if local.is_dir() and not _has_vocabulary_file(local):
        listed = ", ".join(VOCABULARY_FILES[:3])
        raise NoTokenizer(model_path, f"{model_path} has no tokenizer files ({listed}, ...)")
    try:
        tokenizer = load_tokenizer(model_path, config)
    except (OSError, ValueError, TypeError, KeyError) as e:
        reason = first_line(e)
        raise NoTokenizer(
            model_path, f"cannot load the tokenizer of {model_path} ({reason})"
        ) from None
    if _has_no_vocabulary(tokenizer):
        raise NoTokenizer(model_path, f"the tokenizer of {model_path} has no vocabulary")
    return tokenizer


def split_at(
    segments: list[render.Segment], at: int
) -> tuple[list[render.Segment], list[render.Segment]]:
    """Segments before and after character `at` of their joined text."""
    kept: list[render.Segment] = []
    dropped: list[render.Segment] = []
    start = 0
    for s in segments:
        end = start + len(s.text)
        if end <= at:
            kept.append(s)
        elif start >= at:
            dropped.append(s)
        else:
            kept.append(render.Segment(s.text[: at - start], s.trained))
            dropped.append(render.Segment(s.text[at - start :], s.trained))
        start = end
    return kept, dropped


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return float(ordered[index])


@dataclass
class _Read:
    format: str
    why: str
    rows: int
    skipped: dict[str, int]
    first: list[formats.Example]  # the first examples, to show
    sample: list[formats.Example]  # a uniform random sample (seeded), to measure


def _read(
    data: dict[str, Any], count: int, on_progress: Callable[[Progress], None] | None
) -> _Read:
    """Stream every row once: counts, the first `count` examples and a sample of SAMPLE."""
    from tuiwiz.data.examples import open_rows

    opened = open_rows(data)
    normalizer = opened.normalizer
    meter = Meter("reading", on_progress, every=0.5)
    rng = random.Random(0)
    first: list[formats.Example] = []
    sample: list[formats.Example] = []
    for seen, example in enumerate(opened.examples(), start=1):
        if len(first) < count:
            first.append(example)
        if seen <= SAMPLE:  # reservoir sampling: each example kept with chance SAMPLE / seen
            sample.append(example)
        elif (j := rng.randrange(seen)) < SAMPLE:
            sample[j] = example
        if seen % 4096 == 0:
            meter.update(normalizer.rows, opened.reader.fraction)
    meter.update(normalizer.rows, final=True)
    fmt = normalizer.format
    return _Read(fmt, opened.why, normalizer.rows, normalizer.skipped, first, sample)


def preview(
    data: dict[str, Any],
    tokenizer: Any,
    count: int = 3,
    token_problem: str | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> Preview:
    """The preview; with `tokenizer` None only the format and rows (`token_problem` says why).
    `progress` hears how the reading goes (about twice a second)."""
    read = _read(data, count, progress)
    result = Preview(
        format=read.format, why=read.why, rows=read.rows, examples=[], skipped=read.skipped
    )
    if tokenizer is None:
        result.token_problem = token_problem or "no tokenizer"
        return result
    from tuiwiz.data.encode import Encoder

    limit = data["max_seq_length"]
    renderer = render.renderer_for(tokenizer)
    result.examples = [renderer.render(e, data["train_on_prompt"]) for e in read.first]
    result.cuts = [render.truncation_point(s, tokenizer, limit) for s in result.examples]
    rendered = [renderer.render(e, data["train_on_prompt"]) for e in read.sample]
    lengths = Encoder(tokenizer).encode(rendered).lengths.tolist()
    result.measured = len(lengths)
    result.lengths = lengths
    result.median_tokens = float(statistics.median(lengths))
    result.p95_tokens = percentile(lengths, 0.95)
    result.max_tokens = max(lengths)
    result.truncated_share = sum(n > limit for n in lengths) / len(lengths)
    return result
