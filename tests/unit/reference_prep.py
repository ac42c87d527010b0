"""The slow reference of data preparation: tuiwiz's earlier rendering and masking, kept verbatim
in spirit (each conversation rendered through the chat template once per prefix, each token's
label found by a Python loop over its offsets) so that the fast path can be checked against it.
"""

from __future__ import annotations

from typing import Any

from tuiwiz.data.formats import Example
from tuiwiz.data.render import DEFAULT_RESPONSE_PREFIX, DEFAULT_ROLE_PREFIX, Segment


def _chat_template_segments(messages: list[dict[str, str]], tokenizer: Any) -> list[Segment] | None:
    def render(msgs: list[dict[str, str]], generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(
            msgs, tokenize=False, add_generation_prompt=generation_prompt
        )

    full = render(messages, False)
    segments: list[Segment] = []
    done = 0
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
        segments.pop()
    return segments


def render(example: Example, tokenizer: Any, train_on_prompt: bool = False) -> list[Segment]:
    eos = tokenizer.eos_token or ""
    if example.messages is not None:
        segments = None
        if getattr(tokenizer, "chat_template", None):
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


def _adds_bos(tokenizer: Any) -> bool:
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    return tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [bos]


def _labels(ids: list[int], offsets: list[tuple[int, int]], segments: list[Segment]) -> list[int]:
    bounds = []
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


def tokenize(
    rendered: list[list[Segment]], tokenizer: Any
) -> tuple[list[list[int]], list[list[int]]]:
    texts = ["".join(s.text for s in segments) for segments in rendered]
    bos_id = tokenizer.bos_token_id if _adds_bos(tokenizer) else None

    def bos_for(text: str) -> list[int]:
        return [bos_id] if bos_id is not None and not text.startswith(tokenizer.bos_token) else []

    all_ids: list[list[int]] = []
    all_labels: list[list[int]] = []
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        for text, segments, ids, offsets in zip(
            texts, rendered, enc["input_ids"], enc["offset_mapping"]
        ):
            bos = bos_for(text)
            all_ids.append(bos + list(ids))
            all_labels.append([-100] * len(bos) + _labels(ids, offsets, segments))
        return all_ids, all_labels
    for text, segments in zip(texts, rendered):
        bos = bos_for(text)
        ids, labels = list(bos), [-100] * len(bos)
        for s in segments:
            part = tokenizer(s.text, add_special_tokens=False)["input_ids"]
            ids += part
            labels += part if s.trained else [-100] * len(part)
        all_ids.append(ids)
        all_labels.append(labels)
    return all_ids, all_labels


def prepare(
    examples: list[Example], tokenizer: Any, limit: int, train_on_prompt: bool = False
) -> tuple[list[list[int]], list[list[int]], list[int]]:
    """(input_ids, labels) of the examples kept (truncated to `limit`, those without a trained
    token dropped), and every example's untruncated length."""
    rendered = [render(e, tokenizer, train_on_prompt) for e in examples]
    ids, labels = tokenize(rendered, tokenizer)
    lengths = [len(x) for x in ids]
    keep = [i for i, lab in enumerate(labels) if any(x != -100 for x in lab[:limit])]
    return [ids[i][:limit] for i in keep], [labels[i][:limit] for i in keep], lengths
