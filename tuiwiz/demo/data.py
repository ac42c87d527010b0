"""The demo's task and its data: upper-casing a made-up word ("Uppercase:\n\nkavomi" -> "KAVOMI"),
a training set and held-out words never seen in training, generated deterministically and
shipped inside the package (tuiwiz/demo_data/; `python -m tuiwiz.demo` writes them again)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The demo task. Kept short: the tokenizer is character-level, so every
# character of the instruction costs a position in every training sequence.
DEMO_INSTRUCTION = "Uppercase:"

# Dataset generation.
DATASET_SEED = 20240601

DATASET_TRAIN_ROWS = 800

DATASET_HELDOUT_ROWS = 24

_VOWELS = "aeiouy"

_CONSONANTS = "bcdfghjklmnpqrstvwxz"


def demo_data_dir() -> Path:
    from tuiwiz.packaged import folder

    return folder("demo_data")


def demo_dataset_path() -> Path:
    """The bundled alpaca-format training set (JSON lines)."""
    return demo_data_dir() / "train.jsonl"


def demo_heldout_path() -> Path:
    """Held-out prompts whose inputs never occur in the training set."""
    return demo_data_dir() / "heldout.jsonl"


def alpaca_user_content(instruction: str, input: str = "") -> str:
    """The convention shared with the trainer: instruction, blank line, input."""
    return instruction if not input else instruction + "\n\n" + input


def alpaca_messages(
    instruction: str, input: str = "", output: str | None = None
) -> list[dict[str, str]]:
    """Chat messages for an alpaca row; without output only the user turn."""
    messages = [{"role": "user", "content": alpaca_user_content(instruction, input)}]
    if output is not None:
        messages.append({"role": "assistant", "content": output})
    return messages


def pseudo_word(rng: random.Random, min_syllables: int = 2, max_syllables: int = 3) -> str:
    """A pronounceable made-up word; made-up so the split cannot leak via real words."""
    parts: list[str] = []
    for _ in range(rng.randint(min_syllables, max_syllables)):
        parts.append(rng.choice(_CONSONANTS) + rng.choice(_VOWELS))
        if rng.random() < 0.3:
            parts.append(rng.choice(_CONSONANTS))
    return "".join(parts)


def _unique_words(rng: random.Random, count: int, exclude: Iterable[str] = ()) -> list[str]:
    seen = set(exclude)
    words: list[str] = []
    while len(words) < count:
        word = pseudo_word(rng)
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def demo_rows(
    train_rows: int = DATASET_TRAIN_ROWS, heldout_rows: int = DATASET_HELDOUT_ROWS
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The demo task's train and held-out rows; deterministic, disjoint inputs."""
    rng = random.Random(DATASET_SEED)
    words = _unique_words(rng, train_rows + heldout_rows)
    rows = [{"instruction": DEMO_INSTRUCTION, "input": w, "output": w.upper()} for w in words]
    return rows[:train_rows], rows[train_rows:]


def write_demo_dataset(path: Path | str | None = None) -> tuple[Path, Path]:
    """Write train.jsonl and heldout.jsonl into the directory `path` (default: demo_data/)."""
    directory = Path(path) if path is not None else demo_data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    train, heldout = demo_rows()
    train_path = directory / "train.jsonl"
    heldout_path = directory / "heldout.jsonl"
    for target, rows in ((train_path, train), (heldout_path, heldout)):
        target.write_text("".join(json.dumps(r, ensure_ascii=True) + "\n" for r in rows))
    return train_path, heldout_path


def load_jsonl(path: Path | str) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
