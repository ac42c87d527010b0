"""What the dataset's token lengths say about memory: batches are never longer than its longest
example (without packing), and a shorter max_seq_length cuts a known share of its examples.

The lengths come from the Dataset step's statistics (tuiwiz.data.preview), measured on at most
a sample of the examples. A longest example taken from a sample could be shorter than the
dataset's own, and an estimate built on it too small: it is used only when every example was
measured. Shares (how many examples a max_seq_length cuts) are fine from a sample and say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TokenLengths:
    lengths: tuple[int, ...]  # untruncated token lengths of the measured examples
    examples: int  # the dataset's usable examples (rows left after skipping bad ones)

    @classmethod
    def from_preview(cls, preview: Any) -> TokenLengths | None:
        """From a tuiwiz.data.preview.Preview; None when it has no token lengths."""
        lengths = tuple(getattr(preview, "lengths", ()) or ())
        if not lengths:
            return None
        return cls(lengths, preview.rows - sum(preview.skipped.values()))

    @property
    def complete(self) -> bool:
        """Whether every example was measured (so the longest is the dataset's longest)."""
        return len(self.lengths) >= self.examples

    @property
    def longest(self) -> int:
        return max(self.lengths)

    def share_longer(self, limit: int) -> float:
        """The share of the measured examples longer than `limit` tokens (cut by it)."""
        return sum(n > limit for n in self.lengths) / len(self.lengths)

    def cut_phrase(self, limit: int) -> str:
        """`cuts 12% of the examples` (`of a sample of 2,000`), for a max_seq_length of `limit`."""
        share = self.share_longer(limit)
        sample = "" if self.complete else f" (of a sample of {len(self.lengths):,})"
        if share == 0:
            return f"cuts none of the examples{sample}"
        percent = f"{100 * share:.1f}" if share < 0.1 else f"{100 * share:.0f}"
        return f"cuts {percent}% of the examples{sample}"

    def note(self, data: dict[str, Any]) -> str:
        """What the lengths did to the estimate, in one line."""
        limit = int(data["max_seq_length"])
        if data.get("packing"):
            return "packing fills every row to max_seq_length: the data's lengths do not lower it"
        if not self.complete:
            return (
                f"token lengths measured on a sample of {len(self.lengths):,} of "
                f"{self.examples:,} examples: the dataset's longest example is not known, so the "
                f"estimate keeps max_seq_length {limit}"
            )
        if self.longest < limit:
            return (
                f"the dataset's longest example is {self.longest:,} tokens: no batch is longer, "
                f"so the estimate uses {self.longest:,}, not max_seq_length {limit}"
            )
        return f"max_seq_length {limit} {self.cut_phrase(limit)} of the dataset"


def longest_example(lengths: TokenLengths | None) -> int | None:
    """The dataset's longest example when it is known for certain, else None."""
    return lengths.longest if lengths is not None and lengths.complete else None
