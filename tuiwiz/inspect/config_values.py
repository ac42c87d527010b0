"""Sanity of the numbers in a model's config.json, checked once where the file is read.

Everything tuiwiz knows about a model's size comes from a few integers of its config.json. A
value that no model can have (a negative vocabulary, a float layer count, a string) makes
transformers fail with a traceback, or worse, a huge value gives an answer nobody can use (a
vocabulary of 10^12 tokens) or a loop that runs for minutes (10^7 layers). These checks turn
each into one line that names the file and the key.

The upper bounds sit far above any released model (largest so far: vocabularies of ~262k
tokens, hidden sizes of ~25k, ~130 layers), so they only ever catch a mistake. A null is left
alone: the model's config class fills in its default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuiwiz.errors import ModelError

# key -> the largest value accepted, with what the key is in words (for the message).
LIMITS: dict[str, tuple[int, str]] = {
    "vocab_size": (10_000_000, "vocabulary size"),
    "hidden_size": (1 << 18, "hidden size"),
    "n_embd": (1 << 18, "hidden size"),
    "d_model": (1 << 18, "hidden size"),
    "intermediate_size": (1 << 21, "MLP width"),
    "n_inner": (1 << 21, "MLP width"),
    "ffn_hidden_size": (1 << 21, "MLP width"),
    "num_hidden_layers": (10_000, "number of layers"),
    "n_layer": (10_000, "number of layers"),
    "num_layers": (10_000, "number of layers"),
    "num_attention_heads": (16_384, "number of attention heads"),
    "n_head": (16_384, "number of attention heads"),
    "num_heads": (16_384, "number of attention heads"),
    "num_key_value_heads": (16_384, "number of key/value heads"),
    "head_dim": (1 << 16, "width of an attention head"),
    "max_position_embeddings": (1 << 31, "context length"),
    "n_positions": (1 << 31, "context length"),
}
# Configs of multimodal models keep the language model's numbers in a nested table.
NESTED = ("text_config", "language_config", "llm_config")


def _problem(value: Any, limit: int) -> str | None:
    """Why `value` cannot be this kind of count, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number"
    if value < 1:
        return "must be at least 1"
    if value > limit:
        return f"must be at most {limit:,} (far above any real model)"
    return None


def check_config_values(raw: dict[str, Any], path: Path) -> None:
    """Raise ModelError, naming the file and the key, for a size no model can have."""
    tables: list[tuple[str, dict[str, Any]]] = [("", raw)]
    tables += [(f"{name}.", raw[name]) for name in NESTED if isinstance(raw.get(name), dict)]
    for prefix, table in tables:
        for key, (limit, meaning) in LIMITS.items():
            if key not in table or (reason := _problem(table[key], limit)) is None:
                continue
            raise ModelError(
                f"{path}: {prefix}{key} = {table[key]!r} is not a possible {meaning} "
                f"({reason}); fix config.json, or use the model's original one"
            )
