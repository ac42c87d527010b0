"""Dataset formats: detect them and turn each row into a normalized example.

An example is either a conversation (a list of {"role", "content"} messages, which the model's chat
template renders), a prompt/completion pair of plain strings, or a plain text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tuiwiz.errors import DataError

# The columns each format reads, by their canonical names ([data] columns maps them to yours).
REQUIRED = {
    "alpaca": ("instruction", "output"),
    "messages": ("messages",),
    "sharegpt": ("conversations",),
    "prompt_completion": ("prompt", "completion"),
    "text": ("text",),
}
OPTIONAL = {"alpaca": ("input", "system")}
# Detection order: the most specific format first.
DETECTION_ORDER = ("messages", "sharegpt", "alpaca", "prompt_completion", "text")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "model": "assistant",
    "bot": "assistant",
}


@dataclass
class Example:
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    completion: str | None = None
    text: str | None = None


@dataclass
class Normalized:
    format: str
    examples: list[Example]
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count


def _column(canonical: str, columns: dict[str, str]) -> str:
    return columns.get(canonical, canonical)


def _found(seen: set[str]) -> str:
    return ", ".join(sorted(map(str, seen))) or "none"


def _check_mapped_columns(columns: dict[str, str], wanted: list[str], seen: set[str], source: str):
    """A mapping whose column the data lacks is the thing to fix: say so, naming it."""
    for canonical in wanted:
        mapped = columns.get(canonical)
        if mapped is not None and mapped not in seen:
            raise DataError(
                f'{source}: the mapped column "{mapped}" (for {canonical}) is missing; columns '
                f"found: {_found(seen)}; fix [data] columns = {{{canonical} = "
                f'"{mapped}"}} to name one of them'
            )


def detect(rows: list[dict[str, Any]], columns: dict[str, str], source: str) -> tuple[str, str]:
    """Return (format, why) from the columns of the first rows."""
    seen: set[str] = set()
    for row in rows[:20]:
        seen.update(row)
    for fmt in DETECTION_ORDER:
        needed = [_column(c, columns) for c in REQUIRED[fmt]]
        if all(c in seen for c in needed):
            return fmt, f"found column{'s' if len(needed) > 1 else ''} {', '.join(needed)}"
    _check_mapped_columns(columns, list(columns), seen, source)
    found = _found(seen)
    raise DataError(
        f"{source}: cannot tell the dataset format from its columns ({found}); expected "
        "instruction/output (alpaca), messages, conversations (sharegpt), prompt/completion or "
        'text. Set [data] format, and map your columns with [data] columns = {output = "answer"}'
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _messages(value: Any, sharegpt: bool) -> list[dict[str, str]] | str:
    """Normalized messages, or the reason the value cannot be used."""
    if not isinstance(value, list) or not value:
        return "empty or not a list of messages"
    out = []
    for m in value:
        if not isinstance(m, dict):
            return "a message is not an object"
        role = m.get("from") if sharegpt else m.get("role")
        content = m.get("value") if sharegpt else m.get("content")
        role = SHAREGPT_ROLES.get(role) if sharegpt else role
        if role not in ("system", "user", "assistant", "tool") or not isinstance(content, str):
            return "a message has an unknown role or non-text content"
        out.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in out):
        return "no assistant message to learn from"
    return out


CANONICAL = frozenset(c for names in (*REQUIRED.values(), *OPTIONAL.values()) for c in names)


def _names(columns: dict[str, str]) -> dict[str, str]:
    """Each canonical column's name in the data ([data] columns applied)."""
    return {c: _column(c, columns) for c in CANONICAL}


def to_example(row: dict[str, Any], fmt: str, columns: dict[str, str]) -> Example | str:
    """One row as an Example, or the reason it must be skipped."""
    return _convert(row, fmt, _names(columns))


def _convert(row: dict[str, Any], fmt: str, names: dict[str, str]) -> Example | str:
    get = row.get
    if fmt in ("messages", "sharegpt"):
        messages = _messages(get(names[REQUIRED[fmt][0]]), sharegpt=fmt == "sharegpt")
        return messages if isinstance(messages, str) else Example(messages=messages)
    if fmt == "alpaca":
        instruction, output = _text(get(names["instruction"])), _text(get(names["output"]))
        extra, system = get(names["input"]), get(names["system"])
        if not instruction or output is None or not output.strip():
            return "empty or non-text instruction/output"
        if extra is not None and not isinstance(extra, str):
            return "non-text input"
        user = f"{instruction}\n\n{extra}" if extra else instruction
        messages = (
            [{"role": "system", "content": system}] if isinstance(system, str) and system else []
        )
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
        return Example(messages=messages)
    if fmt == "prompt_completion":
        prompt, completion = _text(get(names["prompt"])), _text(get(names["completion"]))
        if prompt is None or not completion:
            return "empty or non-text prompt/completion"
        return Example(prompt=prompt, completion=completion)
    text = _text(get(names["text"]))
    return Example(text=text) if text and text.strip() else "empty or non-text text"


# JSON can spell a lone UTF-16 surrogate ("\\ud800"): not a character, so no tokenizer takes it.
BROKEN_TEXT = "text with a broken character (a lone surrogate, as from a string cut mid-emoji)"


def _is_text(example: Example) -> bool:
    """Whether every string of the example is real text (encodable as UTF-8)."""
    parts = [m["content"] for m in example.messages or []]
    parts += [example.prompt or "", example.completion or "", example.text or ""]
    try:
        for part in parts:
            part.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Normalizer:
    """Rows to examples, one at a time: the format is detected and the columns are checked
    from the first rows (`start`), then each row converts or is counted as skipped."""

    HEAD = 20  # rows the detection and the column checks look at

    def __init__(self, fmt: str, columns: dict[str, str], source: str) -> None:
        self.format, self.columns, self.source = fmt, columns, source
        self.skipped: dict[str, int] = {}
        self.examples = 0
        self._names = _names(columns)

    def start(self, head: list[dict[str, Any]]) -> None:
        """Detect the format (when auto) and check the columns, from the first rows."""
        if self.format == "auto":
            self.format, _ = detect(head, self.columns, self.source)
        fmt, columns = self.format, self.columns
        seen: set[str] = set().union(*(row.keys() for row in head[: self.HEAD]))
        _check_mapped_columns(columns, [*REQUIRED[fmt], *OPTIONAL.get(fmt, ())], seen, self.source)
        missing = [c for c in REQUIRED[fmt] if _column(c, columns) not in seen]  # all unmapped
        if missing:
            raise DataError(
                f"{self.source}: format '{fmt}' needs column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}, found {_found(seen)}; "
                f'map yours with [data] columns = {{{missing[0]} = "your_column"}}'
            )

    def convert(self, row: dict[str, Any]) -> Example | None:
        """The row's example, or None when it is skipped (and counted by reason)."""
        example = _convert(row, self.format, self._names)
        if not isinstance(example, str) and not _is_text(example):
            example = BROKEN_TEXT
        if isinstance(example, str):
            self.skipped[example] = self.skipped.get(example, 0) + 1
            return None
        self.examples += 1
        return example

    @property
    def rows(self) -> int:
        """Rows converted so far, used or skipped."""
        return self.examples + sum(self.skipped.values())

    def finish(self) -> None:
        """Raise when no row was usable."""
        if not self.examples:
            reasons = "; ".join(f"{n} {why}" for why, n in self.skipped.items())
            raise DataError(f"{self.source}: no usable rows for format '{self.format}' ({reasons})")


def normalize(
    rows: list[dict[str, Any]], fmt: str, columns: dict[str, str], source: str
) -> Normalized:
    """Turn rows into examples; rows that cannot be used are skipped and counted by reason."""
    normalizer = Normalizer(fmt, columns, source)
    normalizer.start(rows[: Normalizer.HEAD])
    examples = [e for e in map(normalizer.convert, rows) if e is not None]
    normalizer.finish()
    return Normalized(normalizer.format, examples, normalizer.skipped)
