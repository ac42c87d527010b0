"""Rendered examples to token ids and labels, a batch at a time, with numpy.

Fast (Rust) tokenizers tokenize each whole text at once, so the tokens are exactly those of
inference, and a token is trained when its first character lies in a trained segment: found for
every token of the batch with one `searchsorted` over the segments' ends, no per-token Python.
Slow tokenizers have no character offsets: each segment is tokenized on its own (one batched
call for all of them) and its tokens take its label.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuiwiz.data.render import Segment

IGNORE = -100  # the label of a token that carries no loss


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer itself puts BOS in front (and the rendered text does not)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    return tokenizer("a", add_special_tokens=True, verbose=False)["input_ids"][:1] == [bos]


@dataclass
class Encoded:
    """A batch of examples as flat arrays: every example's tokens one after another."""

    ids: np.ndarray  # int64, all tokens
    labels: np.ndarray  # int64, IGNORE where masked
    lengths: np.ndarray  # int64, tokens per example (BOS included, before any truncation)

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.lengths)[:-1])).astype(np.int64)

    def rows(self) -> tuple[list[list[int]], list[list[int]]]:
        cuts = np.cumsum(self.lengths)[:-1]
        ids = [a.tolist() for a in np.split(self.ids, cuts)] if len(self.lengths) else []
        labels = [a.tolist() for a in np.split(self.labels, cuts)] if len(self.lengths) else []
        return ids, labels

    def truncated(self, limit: int) -> Encoded:
        """At most `limit` tokens of each example (its start kept)."""
        position = np.arange(len(self.ids)) - np.repeat(self.starts, self.lengths)
        keep = position < limit
        return Encoded(self.ids[keep], self.labels[keep], np.minimum(self.lengths, limit))

    def trained(self) -> np.ndarray:
        """Per example: whether any of its tokens carries the loss."""
        row = np.repeat(np.arange(len(self.lengths)), self.lengths)
        counts = np.bincount(row, weights=self.labels != IGNORE, minlength=len(self.lengths))
        return counts > 0

    def select(self, rows: np.ndarray) -> Encoded:
        """Only the examples where `rows` (a boolean per example) is true."""
        tokens = np.repeat(rows, self.lengths)
        return Encoded(self.ids[tokens], self.labels[tokens], self.lengths[rows])

    def arrow(self) -> Any:
        """A pyarrow table with input_ids and labels (lists of int32), one row per example."""
        import pyarrow as pa

        offsets = pa.array(np.concatenate(([0], np.cumsum(self.lengths))), pa.int32())
        lists = [
            pa.ListArray.from_arrays(offsets, pa.array(values.astype(np.int32)))
            for values in (self.ids, self.labels)
        ]
        return pa.table({"input_ids": lists[0], "labels": lists[1]})


class Encoder:
    """Tokenizes rendered examples for one tokenizer (picklable: it goes to worker processes)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.fast = bool(getattr(tokenizer, "is_fast", False))
        self.backend = _backend(tokenizer) if self.fast else None
        self.bos_id = tokenizer.bos_token_id if adds_bos(tokenizer) else None
        self.bos_token = tokenizer.bos_token or ""

    def encode(self, rendered: list[list[Segment]]) -> Encoded:
        texts = ["".join(s.text for s in segments) for segments in rendered]
        if not texts:
            empty = np.zeros(0, np.int64)
            return Encoded(empty, empty.copy(), empty.copy())
        if self.fast:
            ids, lengths, trained = self._fast(texts, rendered)
        else:
            ids, lengths, trained = self._slow(rendered)
        labels = np.where(trained, ids, IGNORE)
        if self.bos_id is None:
            return Encoded(ids, labels, lengths)
        # A chat template usually writes BOS itself; otherwise add it as the tokenizer would.
        needs = np.fromiter((not t.startswith(self.bos_token) for t in texts), bool, len(texts))
        at = np.concatenate(([0], np.cumsum(lengths)[:-1]))[needs].astype(np.int64)
        ids = np.insert(ids, at, self.bos_id)
        labels = np.insert(labels, at, IGNORE)
        return Encoded(ids, labels, lengths + needs)

    def _tokenize(self, texts: list[str]) -> Any:
        # verbose=False: no "Token indices sequence length is longer than the specified maximum"
        # warning; truncation is tuiwiz's own, counted and reported.
        return self.tokenizer(texts, add_special_tokens=False, verbose=False)

    def _fast(
        self, texts: list[str], rendered: list[list[Segment]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.backend is not None:
            encodings = self.backend.encode_batch(texts, add_special_tokens=False)
        else:
            encodings = self._tokenize(texts).encodings
        lengths = np.fromiter(map(len, encodings), np.int64, len(texts))
        total = int(lengths.sum())
        ids = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), np.int64, total)
        offsets = itertools.chain.from_iterable(e.offsets for e in encodings)
        starts = np.fromiter(itertools.chain.from_iterable(offsets), np.int64, 2 * total)[::2]
        # Every segment's end and flag, in one coordinate for the whole batch: example i's
        # characters start at base[i] (a gap of one keeps examples apart).
        sizes = np.fromiter((len(s) for s in rendered), np.int64, len(rendered))
        text_lengths = np.fromiter(map(len, texts), np.int64, len(texts))
        base = np.concatenate(([0], np.cumsum(text_lengths + 1)[:-1]))
        segment_lengths = np.fromiter(
            (len(s.text) for segments in rendered for s in segments), np.int64, int(sizes.sum())
        )
        cumulative = np.concatenate(([0], np.cumsum(segment_lengths)))
        first = np.concatenate(([0], np.cumsum(sizes)[:-1]))  # each example's first segment
        ends = cumulative[1:] - np.repeat(cumulative[first], sizes) + np.repeat(base, sizes)
        flags = np.fromiter((s.trained for segments in rendered for s in segments), bool, len(ends))
        # A token belongs to the first segment that ends after its first character, and never
        # to an earlier segment than the token before it (the reference's one-pass rule).
        token_base = np.repeat(base, lengths)
        segment = np.searchsorted(ends, starts + token_base, side="right")
        lowest = np.repeat(first, lengths)
        highest = np.repeat(first + sizes - 1, lengths)
        segment = np.maximum.accumulate(np.clip(segment, lowest, highest)) if total else segment
        empty = np.repeat(sizes == 0, lengths)  # an example without segments trains nothing
        trained = np.where(empty, False, flags[np.minimum(segment, max(len(flags) - 1, 0))])
        return ids, lengths, trained

    def _slow(self, rendered: list[list[Segment]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = [s.text for segments in rendered for s in segments]
        flags = [s.trained for segments in rendered for s in segments]
        tokenized = self._tokenize(parts)["input_ids"] if parts else []
        counts = np.fromiter(map(len, tokenized), np.int64, len(parts))
        total = int(counts.sum())
        ids = np.fromiter(itertools.chain.from_iterable(tokenized), np.int64, total)
        trained = np.repeat(np.array(flags, dtype=bool), counts)
        sizes = [len(segments) for segments in rendered]
        per_segment = np.split(counts, np.cumsum(sizes)[:-1]) if rendered else []
        lengths = np.fromiter((int(c.sum()) for c in per_segment), np.int64, len(rendered))
        return ids, lengths, trained


def _backend(tokenizer: Any) -> Any | None:
    """A copy of a fast tokenizer's Rust tokenizer, set as transformers' own call sets it here
    (no truncation, no padding, its special-token splitting). Called directly, it skips the
    per-example dicts of lists transformers builds from each result (a tenth of the time)."""
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not isinstance(backend, Tokenizer):
        return None
    backend = Tokenizer.from_str(backend.to_str())  # the user's tokenizer is left as it is
    backend.no_truncation()
    backend.no_padding()
    backend.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
    return backend
