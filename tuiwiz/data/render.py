"""Render examples exactly as the model sees them, and tokenize them with the loss mask.

A rendered example is a list of segments (text, trained). The trainer, the wizard's preview and
`tuiwiz data` all use this one rendering, so what a user previews is what trains.

Conversations go through the tokenizer's chat template when it has one. Without one, a plain
instruction template (the Alpaca layout) is used and the end-of-sequence token closes each answer
so that the model learns to stop.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import Any

from tuiwiz.data.formats import Example

DEFAULT_ROLE_PREFIX = {
    "system": "",
    "user": "### Instruction:\n",
    "tool": "### Tool result:\n",
}
DEFAULT_RESPONSE_PREFIX = "### Response:\n"


@dataclass(frozen=True)
class Segment:
    text: str
    trained: bool


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _chat_template_segments(messages: list[dict[str, str]], tokenizer: Any) -> list[Segment] | None:
    """Split a chat-template rendering into prompt and answer parts by rendering prefixes.

    Returns None when the template does not render conversations as growing prefixes (a few
    templates rewrite earlier turns); the caller then falls back to the default template.
    """

    def render(msgs: list[dict[str, str]], generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(
            msgs, tokenize=False, add_generation_prompt=generation_prompt
        )

    full = render(messages, False)
    segments: list[Segment] = []
    done = 0  # characters of `full` already assigned to a segment
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(messages[:i], True) if i else ""
        through = full if i == len(messages) - 1 else render(messages[: i + 1], False)
        if not (full.startswith(through) and through.startswith(before) and len(before) >= done):
            return None
        if len(before) > done:
            segments.append(Segment(full[done : len(before)], False))
        segments.append(Segment(full[len(before) : len(through)], True))
        done = len(through)
    if done < len(full):
        segments.append(Segment(full[done:], False))
    return segments


def _default_segments(messages: list[dict[str, str]], eos: str) -> list[Segment]:
    segments: list[Segment] = []
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "assistant":
            segments.append(Segment(DEFAULT_RESPONSE_PREFIX, False))
            segments.append(Segment(content + eos, True))
            segments.append(Segment("\n\n", False))
        else:
            segments.append(Segment(f"{DEFAULT_ROLE_PREFIX.get(role, '')}{content}\n\n", False))
    while segments and not segments[-1].trained:
        segments.pop()  # nothing after the last answer is trained or needed
    return segments


def render(example: Example, tokenizer: Any, train_on_prompt: bool = False) -> list[Segment]:
    """The example's text in segments; `trained` marks the tokens that carry the loss."""
    return renderer_for(tokenizer).render(example, train_on_prompt)


PLACEHOLDER = re.compile("\ufdd0(\\d+)\ufdd1")
MARKS = ("\ufdd0", "\ufdd1")  # noncharacters (never in text) that delimit a placeholder


def _placeholder(i: int) -> str:
    return f"{MARKS[0]}{i}{MARKS[1]}"


@dataclass(frozen=True)
class Plan:
    """A conversation shape's rendering: per segment, its text as literal parts and content
    indexes (alternating: text, index, text, ...), and whether it is trained."""

    segments: tuple[tuple[tuple[str | int, ...], bool], ...]

    def apply(self, contents: list[str]) -> list[Segment]:
        return [
            Segment("".join(p if isinstance(p, str) else contents[p] for p in parts), trained)
            for parts, trained in self.segments
        ]


def _plan(roles: tuple[str, ...], tokenizer: Any) -> Plan | None:
    """Render a shape once with placeholder contents; None when the rendering cannot be reused
    (the template does not render it as growing prefixes, or changed a placeholder)."""
    messages = [{"role": r, "content": _placeholder(i)} for i, r in enumerate(roles)]
    try:
        segments = _chat_template_segments(messages, tokenizer)
    except Exception:  # noqa: BLE001 - e.g. the template refuses the shape: per example it says why
        return None
    if segments is None:
        return None
    planned = []
    for segment in segments:
        pieces = PLACEHOLDER.split(segment.text)
        parts = tuple(int(p) if i % 2 else p for i, p in enumerate(pieces))
        if any(mark in p for p in pieces[::2] for mark in MARKS):
            return None  # a placeholder was cut or changed: the template reads it
        planned.append((parts, segment.trained))
    return Plan(tuple(planned))


class Renderer:
    """Renders examples for one tokenizer. A content-opaque chat template (see
    tuiwiz.data.chat_template) is rendered once per conversation shape (the sequence of roles)
    and reused for every example of that shape; any other template once per example."""

    def __init__(self, tokenizer: Any) -> None:
        from tuiwiz.data.chat_template import content_transform

        self.tokenizer = tokenizer
        self.eos = tokenizer.eos_token or ""
        self.template = has_chat_template(tokenizer)
        self.transform = content_transform(tokenizer) if self.template else None
        self.plans: dict[tuple[str, ...], Plan | None] = {}

    def render(self, example: Example, train_on_prompt: bool = False) -> list[Segment]:
        eos = self.eos
        if example.messages is not None:
            segments = self._conversation(example.messages) if self.template else None
            if segments is None:
                segments = _default_segments(example.messages, eos)
        elif example.prompt is not None:
            answer = (example.completion or "") + eos
            segments = [Segment(example.prompt, False), Segment(answer, True)]
        else:
            segments = [Segment((example.text or "") + eos, True)]
        if train_on_prompt:
            segments = [Segment(s.text, True) for s in segments]
        return [s for s in segments if s.text]

    def _conversation(self, messages: list[dict[str, str]]) -> list[Segment] | None:
        if self.transform is not None:
            roles = tuple(m["role"] for m in messages)
            if roles not in self.plans:
                self.plans[roles] = _plan(roles, self.tokenizer)
            plan = self.plans[roles]
            contents = [m["content"] for m in messages]
            if plan is not None and not any(k in c for c in contents for k in MARKS):
                return plan.apply([self.transform(c) for c in contents])
        return _chat_template_segments(messages, self.tokenizer)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "plans": {}}  # plans are cheap to make again in each process


_renderers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def renderer_for(tokenizer: Any) -> Renderer:
    """The Renderer of a tokenizer, made again when its template or end token changed."""
    signature = (str(getattr(tokenizer, "chat_template", None)), tokenizer.eos_token)
    found = _renderers.get(tokenizer)
    if found is None or found[0] != signature:
        found = (signature, Renderer(tokenizer))
        _renderers[tokenizer] = found
    return found[1]


def prompt_text(example: Example, tokenizer: Any) -> str:
    """The text a model is given to answer this example (everything before the first answer)."""
    segments = render(example, tokenizer)
    out = []
    for segment in segments:
        if segment.trained:
            break
        out.append(segment.text)
    return "".join(out)


def tokenize_batch(
    rendered: list[list[Segment]], tokenizer: Any
) -> tuple[list[list[int]], list[list[int]]]:
    """Tokenize rendered examples in one batch call; returns input_ids and labels (-100 masked).
    See tuiwiz.data.encode for how each token's label is found."""
    from tuiwiz.data.encode import Encoder

    return Encoder(tokenizer).encode(rendered).rows()


def truncation_point(segments: list[Segment], tokenizer: Any, limit: int) -> int | None:
    """The character of the rendered text where training cuts it at `limit` tokens (the start
    of the first token it drops), or None when it fits. Counts tokens as tokenize_batch does,
    so the cut shown is the cut trained."""
    from tuiwiz.data.encode import adds_bos as tokenizer_adds_bos

    text = "".join(s.text for s in segments)
    adds_bos = tokenizer_adds_bos(tokenizer) and not text.startswith(tokenizer.bos_token)
    keep = limit - (1 if adds_bos else 0)
    if keep <= 0:
        return 0
    if getattr(tokenizer, "is_fast", False):
        offsets = tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )["offset_mapping"]
        return offsets[keep][0] if len(offsets) > keep else None
    count = start = 0  # slow tokenizers: per segment, as tokenize_batch counts them
    for segment in segments:
        n = len(tokenizer(segment.text, add_special_tokens=False, verbose=False)["input_ids"])
        if count + n > keep:
            lo, hi = 0, len(segment.text)  # the longest prefix that keeps within the limit
            while lo < hi:
                mid = (lo + hi + 1) // 2
                ids = tokenizer(segment.text[:mid], add_special_tokens=False, verbose=False)[
                    "input_ids"
                ]
                lo, hi = (mid, hi) if count + len(ids) <= keep else (lo, mid - 1)
            return start + lo
        count, start = count + n, start + len(segment.text)
    return None
