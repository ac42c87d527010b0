"""The demo model: a tiny Llama-architecture model with a character-level tokenizer, built and
briefly pre-trained on first use (deterministically, well under a minute on a CPU), then kept in
the cache. Pre-training teaches the chat format and a few string tasks but *not* the demo task,
which a real 4-bit QLoRA run then learns in seconds to a minute on two CPU cores.

Nothing is downloaded: the demo works on a laptop without network access. torch, transformers
and tokenizers are imported inside the functions that need them: the TUI imports this module.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiwiz.demo.data import alpaca_messages, pseudo_word

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

# Bump when the recipe changes (tokenizer, architecture, tasks, hyperparameters):
# a cached build with another version (or other steps/seed) is rebuilt.
DEMO_VERSION = "tuiwiz-demo-1"

DEMO_MODEL_DIRNAME = "demo-model-v1"

DEMO_MARKER_FILE = "tuiwiz_demo.json"

# Special tokens. The end-of-turn marker doubles as eos so that greedy
# generation stops right after the assistant's answer.
PAD_TOKEN = "<|pad|>"

BOS_TOKEN = "<|bos|>"

END_TOKEN = "<|end|>"

UNK_TOKEN = "<|unk|>"

USER_TOKEN = "<|user|>"

ASSISTANT_TOKEN = "<|assistant|>"

SYSTEM_TOKEN = "<|system|>"

SPECIAL_TOKENS: tuple[str, ...] = (
    PAD_TOKEN,
    BOS_TOKEN,
    END_TOKEN,
    UNK_TOKEN,
    USER_TOKEN,
    ASSISTANT_TOKEN,
    SYSTEM_TOKEN,
)

# Printable ASCII plus newline and tab; anything else maps to <|unk|>.
CHARACTERS: tuple[str, ...] = tuple(chr(i) for i in range(32, 127)) + ("\n", "\t")

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>' }}"
    "{% else %}{{ raise_exception('Unsupported role: ' + message['role']) }}"
    "{% endif %}"
    "{{ message['content'] }}{{ '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)

# Tiny Llama. Every Linear dimension is a multiple of 64 because bitsandbytes
# quantises 4-bit weights in blocks of 64.
MODEL_HIDDEN_SIZE = 128

MODEL_LAYERS = 2

MODEL_HEADS = 4

MODEL_KV_HEADS = 2

MODEL_INTERMEDIATE_SIZE = 256

MODEL_MAX_POSITIONS = 256

# Pre-training recipe (part of DEMO_VERSION: change one, bump the other).
PRETRAIN_SEED = 1234

PRETRAIN_STEPS = 800

PRETRAIN_BATCH_SIZE = 32

PRETRAIN_LR = 2e-3

# Copying must emerge first (an "induction head"); mixing in other tasks from the
# start delays that a lot, so the first part of pre-training is copy-only.
PRETRAIN_COPY_ONLY_FRACTION = 0.5

PRETRAIN_WARMUP_STEPS = 30

ProgressFn = Callable[[str], None]


def cache_root() -> Path:
    """Root of tuiwiz's cache: $TUIWIZ_CACHE_DIR, else $XDG_CACHE_HOME/tuiwiz, else ~/.cache."""
    from tuiwiz.paths import cache_dir  # one definition of the cache location for all of tuiwiz

    return cache_dir()


def demo_model_dir() -> Path:
    """Where the demo model lives (it may not be built yet; see ensure_demo_model)."""
    return cache_root() / DEMO_MODEL_DIRNAME


def render_prompt(tokenizer: PreTrainedTokenizerBase, instruction: str, input: str = "") -> str:
    """Prompt text: the user turn plus the assistant marker (generation prompt)."""
    return tokenizer.apply_chat_template(
        alpaca_messages(instruction, input), tokenize=False, add_generation_prompt=True
    )


def render_full(
    tokenizer: PreTrainedTokenizerBase, instruction: str, input: str, output: str
) -> str:
    """Full text: user and assistant turns; starts with render_prompt()."""
    return tokenizer.apply_chat_template(
        alpaca_messages(instruction, input, output), tokenize=False
    )


def encode_example(
    tokenizer: PreTrainedTokenizerBase, instruction: str, input: str, output: str
) -> tuple[list[int], list[int]]:
    """input_ids and labels with the prompt masked (-100), exactly as the trainer does."""
    prompt = render_prompt(tokenizer, instruction, input)
    full = render_full(tokenizer, instruction, input, output)
    if not full.startswith(prompt):  # the masking below relies on it
        raise ValueError("chat template: full text does not start with the prompt")
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    full_ids = tokenizer.encode(full, add_special_tokens=False)
    labels = [-100] * len(prompt_ids) + full_ids[len(prompt_ids) :]
    return full_ids, labels


def build_tokenizer() -> PreTrainedTokenizerBase:
    """Character-level tokenizer: one token per ASCII character, plus the markers."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    # [\s\S] rather than "." so newlines are isolated too.
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=END_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        extra_special_tokens=[USER_TOKEN, ASSISTANT_TOKEN, SYSTEM_TOKEN],
        model_max_length=MODEL_MAX_POSITIONS,
        padding_side="right",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _random_case(rng: random.Random, word: str) -> str:
    """Mixed casing so every upper- and lower-case letter embedding gets trained."""
    style = rng.random()
    if style < 0.35:
        return word
    if style < 0.55:
        return word.capitalize()
    if style < 0.75:
        return word.upper()
    return "".join(c.upper() if rng.random() < 0.5 else c for c in word)


# Pre-training tasks: (instruction, transform). None of them upper-cases a
# lower-case word, so the base model cannot do the demo task.
_COPY_TASK: tuple[str, Callable[[str], str]] = ("Repeat:", lambda w: w)

# Lowercasing teaches the pairing of upper- and lower-case letters (which real
# models know), so the demo only has to learn the direction of the mapping.
_PRETRAIN_TASKS: tuple[tuple[str, Callable[[str], str]], ...] = (
    _COPY_TASK,
    ("Lowercase:", str.lower),
    ("Lowercase:", str.lower),
    ("First letter:", lambda w: w[:1]),
    ("Last letter:", lambda w: w[-1:]),
)


def _random_letters(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))


def _pretrain_example(rng: random.Random, copy_only: bool = False) -> tuple[str, str, str]:
    """(instruction, input, output) for one pre-training example."""
    instruction, transform = _COPY_TASK if copy_only else rng.choice(_PRETRAIN_TASKS)
    # Mostly word-like inputs (like the demo's), some arbitrary letter strings.
    raw = pseudo_word(rng, 1, 3) if rng.random() < 0.7 else _random_letters(rng)
    word = _random_case(rng, raw)
    return instruction, word, transform(word)


def _collate(
    batch: Sequence[tuple[list[int], list[int]]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (ids, labs) in enumerate(batch):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(labs)] = torch.tensor(labs)
        attention[i, : len(ids)] = 1
    return input_ids, labels, attention


def _model_config(tokenizer: PreTrainedTokenizerBase) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=MODEL_HIDDEN_SIZE,
        intermediate_size=MODEL_INTERMEDIATE_SIZE,
        num_hidden_layers=MODEL_LAYERS,
        num_attention_heads=MODEL_HEADS,
        num_key_value_heads=MODEL_KV_HEADS,
        max_position_embeddings=MODEL_MAX_POSITIONS,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.02,
        rms_norm_eps=1e-5,
    )


def build_demo_model(
    target: Path | str,
    *,
    pretrain_steps: int = PRETRAIN_STEPS,
    seed: int = PRETRAIN_SEED,
    progress: ProgressFn | None = None,
) -> Path:
    """Build tokenizer + briefly pre-trained tiny model into `target`, atomically.

    Everything is written to a temporary sibling directory that is renamed into
    place at the end, so a concurrent builder or an interrupted build never
    leaves a half-written model where loaders look for it. The result depends
    only on the recipe and seed (same weights on the same torch build and thread
    count; other CPUs may differ in the last bits).
    """
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    target = Path(target)
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)

    tokenizer = build_tokenizer()
    # Fork the global RNG: deterministic build without disturbing the caller's RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(_model_config(tokenizer))
        model.train()
        _pretrain(model, tokenizer, steps=pretrain_steps, seed=seed, say=say)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=32,
    )

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary directory
        with _quiet_progress_bars():
            model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        recipe = _recipe(pretrain_steps, seed)
        marker = {
            **recipe,
            "build_seconds": round(time.monotonic() - started, 2),
            "torch_version": torch.__version__,
        }
        (tmp / DEMO_MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
        _replace_dir(tmp, target, recipe)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"demo model ready in {time.monotonic() - started:.1f}s")
    return target


def _recipe(pretrain_steps: int = PRETRAIN_STEPS, seed: int = PRETRAIN_SEED) -> dict[str, Any]:
    """What identifies a build; a directory whose marker differs is rebuilt."""
    return {"version": DEMO_VERSION, "pretrain_steps": pretrain_steps, "seed": seed}


def _same_recipe(marker: dict[str, Any], recipe: dict[str, Any]) -> bool:
    return all(marker.get(key) == value for key, value in recipe.items())


def _read_marker(path: Path) -> dict[str, Any]:
    try:
        marker = json.loads((path / DEMO_MARKER_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _replace_dir(src: Path, target: Path, recipe: dict[str, Any]) -> None:
    """Move a finished build into place; an outdated build there is moved aside first."""
    for _ in range(5):
        try:
            os.replace(src, target)  # atomic; fails if target is a non-empty directory
            return
        except OSError:
            if not target.exists():
                continue
            if _is_complete(target) and _same_recipe(_read_marker(target), recipe):
                return  # a concurrent builder got there first with an identical model
            # Outdated or broken: rename it away (atomic), then delete it.
            stale = target.with_name(f".{target.name}.stale-{os.getpid()}-{time.time_ns()}")
            try:
                os.replace(target, stale)
            except OSError:
                continue
            shutil.rmtree(stale, ignore_errors=True)
    raise OSError(f"could not move the demo model into place at {target}")


def _is_complete(directory: Path) -> bool:
    return all(
        (directory / name).is_file()
        for name in ("config.json", "model.safetensors", "tokenizer.json", DEMO_MARKER_FILE)
    )


def _remove_abandoned_builds(target: Path, max_age_s: float = 6 * 3600) -> None:
    """Delete temp/stale dirs left by killed builders (old enough not to be in progress)."""
    if not target.parent.is_dir():
        return
    now = time.time()
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.stale-*"):
        for leftover in target.parent.glob(pattern):
            try:
                if now - leftover.stat().st_mtime > max_age_s:
                    shutil.rmtree(leftover, ignore_errors=True)
            except OSError:
                pass


@contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """transformers draws tqdm bars on stderr while saving/loading; they would garble the TUI."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _pretrain(
    model: Any, tokenizer: PreTrainedTokenizerBase, *, steps: int, seed: int, say: ProgressFn
) -> None:
    """Plain PyTorch loop; loss on the answer only, like the fine-tuning later."""
    import torch

    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PRETRAIN_LR, weight_decay=0.0)
    warmup = max(1, min(PRETRAIN_WARMUP_STEPS, steps // 10))

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        # Linear decay to 10% settles the weights at the end.
        return max(0.1, 1.0 - 0.9 * (step - warmup) / max(1, steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    pad_id = tokenizer.pad_token_id
    copy_only_steps = int(steps * PRETRAIN_COPY_ONLY_FRACTION)
    report_every = max(1, steps // 10)
    for step in range(steps):
        copy_only = step < copy_only_steps
        batch = [
            encode_example(tokenizer, *_pretrain_example(rng, copy_only))
            for _ in range(PRETRAIN_BATCH_SIZE)
        ]
        input_ids, labels, attention = _collate(batch, pad_id)
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % report_every == 0:
            say(f"pre-training demo model: step {step + 1}/{steps}, loss {loss.item():.3f}")


def is_demo_model_built(path: Path | str | None = None) -> bool:
    """True if `path` (default demo_model_dir()) holds a complete build of this recipe."""
    directory = Path(path) if path is not None else demo_model_dir()
    return _is_complete(directory) and _same_recipe(_read_marker(directory), _recipe())


def ensure_demo_model(progress: ProgressFn | None = None) -> Path:
    """Return the demo model directory, building it first if missing or outdated."""
    target = demo_model_dir()
    if is_demo_model_built(target):
        return target
    _remove_abandoned_builds(target)
    if progress is not None:
        progress("building the tiny demo model (once; about a minute on a laptop CPU)")
    return build_demo_model(target, progress=progress)
