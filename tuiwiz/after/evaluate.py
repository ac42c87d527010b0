"""Validation loss and perplexity of the base model and of the fine-tuned adapter, side by side.

The validation split is the run's own: the engine's data path with the run's seed gives the same
split training held out. The loss is the mean negative log-likelihood over every answer token of
the split (the tokens training computes the loss on), so perplexity = exp(loss) is the split's
perplexity. The trainer's `eval` events average per-batch means instead, so they can differ from
these numbers in the last digits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any

from tuiwiz.after.loading import FinishedRun
from tuiwiz.errors import TuiwizError

RESULT_FILE = "eval.json"  # written into the run directory; the model card reads it


@dataclass(frozen=True)
class Score:
    loss: float
    perplexity: float


@dataclass(frozen=True)
class EvalResult:
    run: str
    validation_examples: int
    tokens: int  # answer tokens scored
    base: Score
    tuned: Score

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "loss_change": self.tuned.loss - self.base.loss}


def perplexity(loss: float) -> float:
    """exp(loss), infinite instead of an OverflowError for a hopeless model."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def score(nll_sum: float, tokens: int) -> Score:
    if tokens <= 0:
        raise ValueError("no answer tokens to score")
    loss = nll_sum / tokens
    return Score(loss, perplexity(loss))


def batches(
    examples: Sequence[dict[str, list[int]]], batch_size: int, pad_id: int
) -> Iterator[dict[str, list[list[int]]]]:
    """Right-padded batches of similar length (shortest first); labels are padded with -100.

    Sorting by length only saves padding: the scores are sums over tokens, order-independent.
    """
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    for start in range(0, len(order), batch_size):
        chosen = [examples[i] for i in order[start : start + batch_size]]
        width = max(len(e["input_ids"]) for e in chosen)
        out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
        for e in chosen:
            pad = width - len(e["input_ids"])
            out["input_ids"].append(list(e["input_ids"]) + [pad_id] * pad)
            out["attention_mask"].append([1] * len(e["input_ids"]) + [0] * pad)
            out["labels"].append(list(e["labels"]) + [-100] * pad)
        yield out


def nll(model: Any, examples: Sequence[dict[str, list[int]]], batch_size: int, pad_id: int):
    """(sum of the answer tokens' negative log-likelihoods, number of answer tokens)."""
    import torch
    import torch.nn.functional as F

    from tuiwiz.after.loading import device_of

    device = device_of(model)
    total, count = 0.0, 0
    with torch.inference_mode():
        for batch in batches(examples, batch_size, pad_id):
            tensors = {k: torch.tensor(v, device=device) for k, v in batch.items()}
            labels = tensors.pop("labels")
            logits = model(**tensors).logits
            targets = labels[:, 1:]  # token t is predicted from the tokens before it
            mask = targets != -100
            picked = logits[:, :-1][mask].float()
            total += F.cross_entropy(picked, targets[mask], reduction="sum").item()
            count += int(mask.sum().item())
    return total, count


def check_has_validation(fr: FinishedRun) -> None:
    if fr.config["data"]["validation_split"] <= 0:
        raise TuiwizError(
            f"run {fr.name} has no validation split ([data] validation_split = 0): "
            "there is nothing held out to evaluate on"
        )


def check_data_unchanged(fr: FinishedRun) -> dict[str, Any]:
    """The run's [data], once it is known to be what the run trained on (DataError if not)."""
    from tuiwiz.data import identity

    data = fr.data()
    identity.check_unchanged(fr.run.status().get("data_sha256"), data, fr.name, "scoring it")
    return data


def validation_examples(fr: FinishedRun, tokenizer: Any, log=lambda message: None) -> list:
    """The run's validation split, tokenized as in training (from the engine's cache)."""
    from tuiwiz.data import prepare

    check_has_validation(fr)
    data = check_data_unchanged(fr)
    seed = fr.config["training"]["seed"]
    _, validation, _ = prepare.prepare(data, tokenizer, seed=seed, log=log)
    if validation is None or len(validation) == 0:
        raise TuiwizError(f"run {fr.name}: its validation split is empty")
    return [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in validation]


def evaluate(fr: FinishedRun, progress: Callable[[str], None] = lambda message: None) -> EvalResult:
    """Base and fine-tuned scores on the run's validation split, from one load of the model."""
    from tuiwiz.after.loading import load_tuned

    check_has_validation(fr)  # before the slow load
    check_data_unchanged(fr)
    model, tokenizer = load_tuned(fr, progress)
    examples = validation_examples(fr, tokenizer)
    training = fr.config["training"]
    batch_size = int(training.get("per_device_eval_batch_size", 8))
    scores = {}
    for name, context in (("base", model.disable_adapter()), ("tuned", nullcontext())):
        progress(f"scoring the {name} model on {len(examples)} validation examples")
        with context:
            total, tokens = nll(model, examples, batch_size, tokenizer.pad_token_id)
        scores[name] = score(total, tokens)
    return EvalResult(fr.name, len(examples), tokens, scores["base"], scores["tuned"])


def save(fr: FinishedRun, result: EvalResult) -> None:
    """Keep the result beside the run (the exported model card reports it)."""
    from tuiwiz.fileio import write_json_atomic

    write_json_atomic(fr.run.path / RESULT_FILE, {**result.to_json(), "time": time.time()})


def load_saved(fr: FinishedRun) -> dict[str, Any] | None:
    import json

    try:
        saved = json.loads((fr.run.path / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None
