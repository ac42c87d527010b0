"""Render examples exactly as the model sees them, and tokenize them with the loss mask.

A rendered example is a list of segments (text, trained). The trainer, the wizard's preview and
`tuiwiz data` all use this one rendering, so what a user previews is what trains.

Conversations go through the tokenizer's chat template when it has one. Without one, a plain
instruction template (the Alpaca layout) is used and the end-of-sequence token closes each answer
so that the model learns to stop.
"""

from __future__ import annotations

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
    eos = tokenizer.eos_token or ""
    if example.messages is not None:
        segments = None
        if has_chat_template(tokenizer):
            segments = _chat_template_segments(example.messages, tokenizer)
        if segments is None:
            segments = _default_segments(example.messages, eos)
    elif example.prompt is not None:
        segments = [Segment(example.prompt, False), Segment((example.completion or "") + eos, True)]
    else:
        segments = [Segment((example.text or "") + eos, True)]
    if train_on_prompt:
        segments = [Segment(s.text, True) for s in segments]
    return [s for s in segments if s.text]


def prompt_text(example: Example, tokenizer: Any) -> str:
    """The text a model is given to answer this example (everything before the first answer)."""
    segments = render(example, tokenizer)
    out = []
    for segment in segments:
        if segment.trained:
            break
        out.append(segment.text)
    return "".join(out)


def _adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer itself puts BOS in front (and the rendered text does not)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    return tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [bos]


def tokenize_batch(
    rendered: list[list[Segment]], tokenizer: Any
) -> tuple[list[list[int]], list[list[int]]]:
    """Tokenize rendered examples in one batch call; returns input_ids and labels (-100 masked).

    The whole text is tokenized at once (so tokens are exactly those of inference), and each
    token is trained when its first character lies in a trained segment.
    """
    texts = ["".join(s.text for s in segments) for segments in rendered]
    bos_id = tokenizer.bos_token_id if _adds_bos(tokenizer) else None

    def bos_for(text: str) -> list[int]:
        # A chat template usually writes BOS itself; otherwise add it as the tokenizer would.
        return [bos_id] if bos_id is not None and not text.startswith(tokenizer.bos_token) else []

    all_ids: list[list[int]] = []
    all_labels: list[list[int]] = []
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        for text, segments, ids, offsets in zip(
            texts, rendered, enc["input_ids"], enc["offset_mapping"]
        ):
            bos = bos_for(text)
            labels = _labels(ids, offsets, segments)
            all_ids.append(bos + list(ids))
            all_labels.append([-100] * len(bos) + labels)
        return all_ids, all_labels
    for text, segments in zip(texts, rendered):  # slow tokenizers have no offsets
        bos = bos_for(text)
        ids, labels = list(bos), [-100] * len(bos)
        for s in segments:
            part = tokenizer(s.text, add_special_tokens=False)["input_ids"]
            ids += part
            labels += part if s.trained else [-100] * len(part)
        all_ids.append(ids)
        all_labels.append(labels)
    return all_ids, all_labels


def truncation_point(segments: list[Segment], tokenizer: Any, limit: int) -> int | None:
    """The character of the rendered text where training cuts it at `limit` tokens (the start
    of the first token it drops), or None when it fits. Counts tokens as tokenize_batch does,
    so the cut shown is the cut trained."""
    text = "".join(s.text for s in segments)
    adds_bos = _adds_bos(tokenizer) and not text.startswith(tokenizer.bos_token)
    keep = limit - (1 if adds_bos else 0)
    if keep <= 0:
        return 0
    if getattr(tokenizer, "is_fast", False):
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
            "offset_mapping"
        ]
        return offsets[keep][0] if len(offsets) > keep else None
    count = start = 0  # slow tokenizers: per segment, as tokenize_batch counts them
    for segment in segments:
        n = len(tokenizer(segment.text, add_special_tokens=False)["input_ids"])
        if count + n > keep:
            lo, hi = 0, len(segment.text)  # the longest prefix that keeps within the limit
            while lo < hi:
                mid = (lo + hi + 1) // 2
                ids = tokenizer(segment.text[:mid], add_special_tokens=False)["input_ids"]
                lo, hi = (mid, hi) if count + len(ids) <= keep else (lo, mid - 1)
            return start + lo
        count, start = count + n, start + len(segment.text)
    return None


def _labels(ids: list[int], offsets: list[tuple[int, int]], segments: list[Segment]) -> list[int]:
    """Each token's label: its id when its first character is in a trained segment, else -100.

    One pass over tokens and segments together (both are in text order).
    """
    bounds = []  # (end character, trained) of each segment
    end = 0
    for segment in segments:
        end += len(segment.text)
        bounds.append((end, segment.trained))
    labels = []
    i = 0
    for token, (start, _) in zip(ids, offsets):
        while i < len(bounds) - 1 and start >= bounds[i][0]:
            i += 1
        labels.append(token if bounds and bounds[i][1] else -100)
    return labels
