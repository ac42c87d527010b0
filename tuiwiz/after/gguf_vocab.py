"""A Hugging Face tokenizer as llama.cpp's GGUF vocabulary: the token list, their kinds, the merges
or scores, the special tokens, and which of llama.cpp's tokenizers reproduces it.

llama.cpp has a handful of tokenizers of its own (`tokenizer.ggml.model`): "gpt2" is byte-level
BPE (GPT-2, Llama 3, Qwen, SmolLM), "llama" is SentencePiece-style BPE with byte fallback (Llama 2,
Mistral, TinyLlama). A byte-level BPE also needs `tokenizer.ggml.pre`, the name of the regular
expression that splits text into words before the merges; the names are llama.cpp's
(src/llama-vocab.cpp), recognised here from the tokenizer.json itself, so a tokenizer whose
splitting llama.cpp does not know is refused instead of silently tokenized another way.

The demo model's tokenizer is character-level (a WordLevel model over single characters).
llama.cpp has no WordLevel tokenizer, but a byte-level BPE whose tokens are exactly those
characters (in GPT-2's byte-to-character alphabet) and that has no merges to apply splits every
text into the same characters, so it gives the same ids. One difference remains: a character
outside the vocabulary becomes `<|unk|>` in transformers and is dropped by llama.cpp (its BPE
has no unknown token).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tuiwiz.errors import TuiwizError

Json = dict[str, Any]

# The word-splitting expressions of the tokenizer.json files llama.cpp knows, by llama.cpp's name.
_CONTRACTIONS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
LLAMA3_REGEX = (
    _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
QWEN2_REGEX = (
    _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
TEKKEN_REGEX = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# (the pre-tokenizer steps, in order; whether the BPE model ignores merges) -> llama.cpp's name.
# llama.cpp's name also fixes ignore_merges, so it is part of the signature.
_SPLIT = ("Split", "Isolated", False)
_BYTE_LEVEL_ONLY = ("ByteLevel", False, False)  # add_prefix_space, use_regex
_BYTE_LEVEL_GPT2 = ("ByteLevel", False, True)
PRE_TOKENIZERS: dict[tuple[tuple[Any, ...], bool], str] = {
    (((*_SPLIT, LLAMA3_REGEX), _BYTE_LEVEL_ONLY), True): "llama-bpe",  # Llama 3
    (((*_SPLIT, QWEN2_REGEX), _BYTE_LEVEL_ONLY), False): "qwen2",  # Qwen2, Qwen2.5, Qwen3
    (((*_SPLIT, TEKKEN_REGEX), _BYTE_LEVEL_ONLY), True): "tekken",  # Mistral Nemo
    ((("Digits", True), _BYTE_LEVEL_GPT2), False): "smollm",  # SmolLM, SmolLM2
    ((_BYTE_LEVEL_GPT2,), False): "gpt-2",
}
# Normalizers llama.cpp does without: NFC changes nothing in text that is already NFC.
HARMLESS_NORMALIZERS = (None, "NFC")
SPM_SPACE = "\u2581"
ANY_CHAR = (
    r"[\s\S]",
    ".",
)  # a character-level tokenizer's split: every character a word  # SentencePiece's visible space


@dataclass
class Vocab:
    """What GGUF's tokenizer.* keys say."""

    model: str  # tokenizer.ggml.model
    pre: str | None  # tokenizer.ggml.pre (byte-level BPE only)
    tokens: list[str]
    types: list[int]  # gguf.TokenType per token
    merges: list[str] = field(default_factory=list)
    scores: list[float] | None = None
    special: dict[str, int] = field(default_factory=dict)  # bos, eos, unk, pad -> id
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool | None = None
    chat_template: str | None = None
    caveat: str = ""  # a known difference from transformers, said to the user

    def metadata_bytes(self) -> int:
        """An upper bound of the bytes these keys take in the file (8-byte lengths, 4-byte
        values, plus room for the key names)."""
        text = sum(len(t.encode()) + 8 for t in self.tokens + self.merges)
        numbers = 4 * len(self.tokens) * (2 if self.scores is not None else 1)
        return text + numbers + len((self.chat_template or "").encode()) + 4096


def byte_level_alphabet() -> dict[int, str]:
    """GPT-2's map from bytes to printable characters, which byte-level BPE vocabularies use:
    printable Latin-1 bytes stand for themselves, the others are shifted past U+0100."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


def _steps(pre_tokenizer: dict[str, Any] | None) -> tuple[tuple[Any, ...], ...] | None:
    """The pre-tokenizer as a comparable tuple of steps; None for a step we do not model."""
    if not pre_tokenizer:
        return ()
    parts = (
        pre_tokenizer["pretokenizers"] if pre_tokenizer["type"] == "Sequence" else [pre_tokenizer]
    )
    steps: list[tuple[Any, ...]] = []
    for part in parts:
        kind = part.get("type")
        if kind == "Split":
            pattern = part.get("pattern", {})
            if "Regex" not in pattern:
                return None
            steps.append(("Split", part.get("behavior"), part.get("invert"), pattern["Regex"]))
        elif kind == "ByteLevel":
            steps.append(
                ("ByteLevel", bool(part.get("add_prefix_space")), part.get("use_regex", True))
            )
        elif kind == "Digits":
            steps.append(("Digits", bool(part.get("individual_digits"))))
        else:
            return None
    return tuple(steps)


def _token_table(tokenizer: Any, n_vocab: int) -> tuple[list[str | None], dict[int, Any]]:
    """Each id's token text (None for ids the tokenizer leaves unused), and the added tokens."""
    texts: list[str | None] = [None] * n_vocab
    for text, i in tokenizer.get_vocab().items():
        if i >= n_vocab:
            raise TuiwizError(
                f"the tokenizer has token id {i} but the model only {n_vocab} embeddings; "
                "cannot write a GGUF file for it"
            )
        texts[i] = text
    return texts, dict(tokenizer.added_tokens_decoder)


def _kinds(texts: list[str | None], added: dict[int, Any], normal) -> list[int]:
    import gguf

    kinds = []
    for i, text in enumerate(texts):
        if text is None:
            kinds.append(gguf.TokenType.UNUSED)
        elif i in added:
            special = getattr(added[i], "special", False)
            kinds.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            kinds.append(normal(text))
    return kinds


def _fill(texts: list[str | None]) -> list[str]:
    """Unused ids need a unique placeholder (llama.cpp maps every token text to one id)."""
    return [t if t is not None else f"[PAD{i}]" for i, t in enumerate(texts)]


def _char_level(model: Json, data: Json, tokenizer: Any, n_vocab: int) -> Vocab:
    import gguf

    steps = _steps(data.get("pre_tokenizer"))
    per_character = steps in tuple(
        (("Split", "Isolated", False, any_char),) for any_char in ANY_CHAR
    )
    texts, added = _token_table(tokenizer, n_vocab)
    plain = [t for i, t in enumerate(texts) if t is not None and i not in added]
    if not per_character or data.get("normalizer") or any(len(t) != 1 for t in plain):
        raise TuiwizError(
            "the tokenizer is a WordLevel model that is not character-level; llama.cpp has no "
            "tokenizer that reproduces it"
        )
    alphabet = byte_level_alphabet()
    encoded: list[str | None] = []
    merges: list[str] = []
    for i, text in enumerate(texts):
        if text is None or i in added:
            encoded.append(text)
            continue
        pieces = [alphabet[b] for b in text.encode()]
        # A character of several UTF-8 bytes is rebuilt from its bytes by merges.
        for k in range(1, len(pieces)):
            merges.append(f"{''.join(pieces[:k])} {pieces[k]}")
        encoded.append("".join(pieces))
    if not merges:
        # GGUF cannot store an empty list and llama.cpp requires the key: one merge of two
        # special tokens, which never stand side by side as plain symbols, so it never applies.
        first = next(t for i, t in enumerate(texts) if i in added)
        merges = [f"{first} {first}"]
    return Vocab(
        model="gpt2",
        pre="default",
        tokens=_fill(encoded),
        types=_kinds(texts, added, lambda text: gguf.TokenType.NORMAL),
        merges=merges,
        caveat="llama.cpp drops characters outside the tokenizer's alphabet (transformers "
        "reads each as the unknown token)",
    )


def _merges(model: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for merge in model.get("merges") or []:
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        pairs.append((left, right))
    return pairs


def _byte_level_bpe(model: Json, data: Json, tokenizer: Any, n_vocab: int) -> Vocab:
    import gguf

    steps = _steps(data.get("pre_tokenizer"))
    normalizer = (data.get("normalizer") or {}).get("type")
    pre = PRE_TOKENIZERS.get((steps, bool(model.get("ignore_merges")))) if steps else None
    if pre is None or normalizer not in HARMLESS_NORMALIZERS:
        known = ", ".join(sorted(set(PRE_TOKENIZERS.values())))
        raise TuiwizError(
            "the tokenizer splits text in a way this export does not know llama.cpp to reproduce "
            f"(byte-level BPE pre-tokenizers known: {known})"
        )
    texts, added = _token_table(tokenizer, n_vocab)
    merges = []
    for left, right in _merges(model):
        if " " in left or " " in right:  # cannot be written in GGUF's "left right" form
            raise TuiwizError("the tokenizer has merges containing spaces; GGUF cannot hold them")
        merges.append(f"{left} {right}")
    return Vocab(
        model="gpt2",
        pre=pre,
        tokens=_fill(texts),
        types=_kinds(texts, added, lambda text: gguf.TokenType.NORMAL),
        merges=merges,
    )


def _space_prefix(data: dict[str, Any]) -> bool | None:
    """Whether a SentencePiece-style tokenizer puts a space before the text; None if it does
    not follow one of the two layouts transformers writes for them."""
    normalizer, pre = data.get("normalizer") or {}, data.get("pre_tokenizer") or {}
    if normalizer.get("type") == "Sequence" and not pre:
        kinds = [(n["type"], n.get("prepend"), n.get("content")) for n in normalizer["normalizers"]]
        if kinds == [("Prepend", SPM_SPACE, None), ("Replace", None, SPM_SPACE)]:
            return True
        if kinds == [("Replace", None, SPM_SPACE)]:
            return False
        return None
    if pre.get("type") == "Metaspace" and not normalizer and pre.get("replacement") == SPM_SPACE:
        # "first" puts the space only at the very start, llama.cpp after special tokens too.
        scheme = pre.get("prepend_scheme", "always")
        if pre.get("split", True) or scheme == "first":
            return None
        return scheme == "always"
    return None


def _sentencepiece_bpe(model: Json, data: Json, tokenizer: Any, n_vocab: int) -> Vocab:
    """llama.cpp's "llama" tokenizer merges the best-scored pair first; a merge's rank is that
    score, so the token a merge makes scores minus its rank."""
    import re

    import gguf

    space_prefix = _space_prefix(data)
    if space_prefix is None:
        raise TuiwizError(
            "the tokenizer is a byte-fallback BPE whose space handling llama.cpp does not "
            "reproduce (it prefixes a space at the start and after every special token)"
        )
    texts, added = _token_table(tokenizer, n_vocab)
    byte_token = re.compile(r"<0x[0-9A-F]{2}>")
    merges = _merges(model)
    rank: dict[str, int] = {}
    for i, (left, right) in enumerate(merges):
        rank.setdefault(left + right, i)

    def score(i: int, text: str | None) -> float:
        if text is None or i in added or len(text) == 1 or byte_token.fullmatch(text):
            return 0.0  # never made by a merge: placeholders, special tokens, characters, bytes
        # A longer token that no merge makes comes last: transformers never makes it.
        return -float(rank.get(text, len(merges)))

    scores = [score(i, t) for i, t in enumerate(texts)]
    unk = model.get("unk_token")

    def kind(text: str) -> int:
        if byte_token.fullmatch(text):
            return gguf.TokenType.BYTE
        return gguf.TokenType.UNKNOWN if text == unk else gguf.TokenType.NORMAL

    return Vocab(
        model="llama",
        pre=None,
        tokens=_fill(texts),
        types=_kinds(texts, added, kind),
        scores=scores,
        add_space_prefix=space_prefix,
    )


def vocab_from_tokenizer(tokenizer: Any, n_vocab: int) -> Vocab:
    """The GGUF vocabulary of a fast (tokenizer.json) tokenizer for a model with `n_vocab`
    embedding rows; TuiwizError when llama.cpp has no tokenizer that reproduces it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TuiwizError(
            "the model's tokenizer has no tokenizer.json (a slow tokenizer); GGUF export "
            "needs the fast one"
        )
    data = json.loads(backend.to_str())
    model = data["model"]
    kind = model.get("type")
    if kind == "WordLevel":
        vocab = _char_level(model, data, tokenizer, n_vocab)
    elif kind == "BPE" and model.get("byte_fallback"):
        vocab = _sentencepiece_bpe(model, data, tokenizer, n_vocab)
    elif kind == "BPE":
        vocab = _byte_level_bpe(model, data, tokenizer, n_vocab)
    else:
        raise TuiwizError(
            f"the tokenizer is a {kind} model; GGUF export supports byte-level BPE, "
            "SentencePiece-style BPE and character-level tokenizers"
        )
    import gguf

    for name in ("bos", "eos", "unk", "pad"):
        token_id = getattr(tokenizer, f"{name}_token_id", None)
        if isinstance(token_id, int) and 0 <= token_id < n_vocab:
            vocab.special[name] = token_id
    if "unk" in vocab.special:
        vocab.types[vocab.special["unk"]] = gguf.TokenType.UNKNOWN
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    vocab.add_bos = "bos" in vocab.special and probe[:1] == [vocab.special["bos"]]
    vocab.add_eos = "eos" in vocab.special and len(probe) > 1 and probe[-1] == vocab.special["eos"]
    template = getattr(tokenizer, "chat_template", None)
    vocab.chat_template = template if isinstance(template, str) and template else None
    return vocab
