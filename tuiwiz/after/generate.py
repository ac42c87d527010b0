"""Answers from a finished run, streamed: the fine-tuned model and, with its adapter switched off,
the base model, from one load. UI-free: `tuiwiz chat` and the TUI's Try it screen (from a worker
thread) both call `load_for_chat(run)` and `ChatModel.stream(prompt, settings, adapter=...)`.

Prompts are rendered exactly as training rendered its examples (tuiwiz.data.render): through the
tokenizer's chat template when it has one, else the plain `### Instruction:` layout; runs trained
on prompt/completion pairs or plain text get the prompt as it is.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from tuiwiz.errors import TuiwizError, describe_error

Messages = list[dict[str, str]]
RAW_FORMATS = ("prompt_completion", "text")  # trained without a chat layout


class GenerationError(TuiwizError):
    """Generation failed (out of memory, a broken model): not the user's input."""

    exit_code = 1


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy: the same prompt always gets the same answer
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None  # for sampling; None = a different answer each time

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


SETTING_HELP = {
    "max_new_tokens": "the longest answer, in tokens",
    "temperature": "sampling randomness; 0 = greedy (most likely token)",
    "top_p": "sample from the top tokens holding this probability",
    "repetition_penalty": "above 1 discourages repeating; 1 = off",
    "seed": "seed for sampling, to repeat an answer; none = random",
}


def _check(name: str, value: Any) -> str | None:
    if name == "max_new_tokens" and not 1 <= value <= 1_000_000:
        return "must be at least 1"
    if name == "temperature" and not 0 <= value <= 100:
        return "must be 0 (greedy) or more"
    if name == "top_p" and not 0 < value <= 1:
        return "must be above 0 and at most 1"
    if name == "repetition_penalty" and not value > 0:
        return "must be above 0"
    return None


def update(settings: GenerationSettings, name: str, text: str) -> GenerationSettings:
    """`settings` with `name` set from the text `text`; ValueError says what is wrong."""
    from tuiwiz.config import did_you_mean

    name = name.strip().lower().replace("-", "_")
    if name not in SETTING_HELP:
        hint = did_you_mean(name, list(SETTING_HELP))
        raise ValueError(f"no setting '{name}'{hint}; settings: {', '.join(SETTING_HELP)}")
    text = text.strip()
    kind = {f.name: f.type for f in fields(GenerationSettings)}[name]
    try:
        if name == "seed":
            value: Any = None if text.lower() in ("none", "random", "") else int(text)
        elif "int" in str(kind):
            value = int(text)
        else:
            value = float(text)
    except ValueError:
        raise ValueError(f"{name}: '{text}' is not a number") from None
    if value is not None and (problem := _check(name, value)):
        raise ValueError(f"{name} {problem}")
    return replace(settings, **{name: value})


def describe(settings: GenerationSettings) -> str:
    """One line: the settings that apply (top_p does not when decoding greedily)."""
    parts = [f"max_new_tokens={settings.max_new_tokens}"]
    if settings.greedy:
        parts.append("temperature=0 (greedy)")
    else:
        parts += [f"temperature={settings.temperature:g}", f"top_p={settings.top_p:g}"]
        parts.append(f"seed={settings.seed if settings.seed is not None else 'random'}")
    if settings.repetition_penalty != 1.0:
        parts.append(f"repetition_penalty={settings.repetition_penalty:g}")
    return " ".join(parts)


def unescape(text: str) -> str:
    r"""`\n` and `\t` typed on one line become a line break and a tab; `\\` a backslash."""
    import re

    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], text)


def as_messages(prompt: str | Messages, system: str | None = None) -> Messages:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def render_prompt(messages: Messages, tokenizer: Any, raw: bool = False) -> str:
    """The text the model continues: the conversation up to the assistant's turn, rendered the
    way training rendered its examples."""
    from tuiwiz.data import render
    from tuiwiz.data.formats import Example

    if raw:
        return "\n\n".join(m["content"] for m in messages)
    # An empty answer makes the renderer place the assistant's turn: what precedes it is the
    # prompt, generation prompt included.
    example = Example(messages=[*messages, {"role": "assistant", "content": ""}])
    return render.prompt_text(example, tokenizer)


def prompt_ids(text: str, tokenizer: Any) -> list[int]:
    """Token ids of a rendered prompt, with BOS exactly where training put it."""
    from tuiwiz.data import render

    ids, _ = render.tokenize_batch([[render.Segment(text, False)]], tokenizer)
    return ids[0]


def _stop_criteria(events: list[threading.Event]):
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            import torch

            stop = any(event.is_set() for event in events)
            return torch.full(
                (input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device
            )

    return StoppingCriteriaList([Cancelled()])


class ChatModel:
    """A run's fine-tuned model; `adapter=False` answers as the base model. One generation at a
    time (the adapter switch is the model's state): a second caller waits for the first."""

    def __init__(self, model: Any, tokenizer: Any, name: str = "", raw: bool = False) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.raw = raw
        self._lock = threading.Lock()

    def render(self, prompt: str | Messages, system: str | None = None) -> str:
        return render_prompt(as_messages(prompt, system), self.tokenizer, self.raw)

    def _eos_ids(self) -> list[int]:
        configured = self.model.generation_config.eos_token_id
        ids = configured if isinstance(configured, list) else [configured]
        ids = [i for i in ids if i is not None]
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def generation_config(self, settings: GenerationSettings):
        config = copy.deepcopy(self.model.generation_config)
        config.max_new_tokens = settings.max_new_tokens
        config.max_length = None
        config.do_sample = not settings.greedy
        if settings.greedy:  # clear the model's sampling defaults: they do not apply
            config.temperature = config.top_p = config.top_k = None
        else:
            config.temperature, config.top_p = settings.temperature, settings.top_p
        config.repetition_penalty = (
            settings.repetition_penalty if settings.repetition_penalty != 1.0 else None
        )
        config.eos_token_id = self._eos_ids()
        config.pad_token_id = self.tokenizer.pad_token_id
        return config

    def stream(
        self,
        prompt: str | Messages,
        settings: GenerationSettings | None = None,
        adapter: bool = True,
        stop: threading.Event | None = None,
        system: str | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as it is generated. Setting `stop` (or closing the iterator)
        ends the generation after the current token. Failures raise GenerationError."""
        import torch
        from transformers import TextIteratorStreamer

        settings = settings or GenerationSettings()
        ids = prompt_ids(self.render(prompt, system), self.tokenizer)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([ids], device=device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        closed = threading.Event()
        criteria = _stop_criteria([e for e in (stop, closed) if e is not None])
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                switch = nullcontext() if adapter else self.model.disable_adapter()
                with self._lock, switch, torch.inference_mode():
                    if settings.seed is not None and not settings.greedy:
                        torch.manual_seed(settings.seed)
                    self.model.generate(
                        input_ids=input_ids,
                        attention_mask=torch.ones_like(input_ids),
                        generation_config=self.generation_config(settings),
                        streamer=streamer,
                        stopping_criteria=criteria,
                    )
            except BaseException as e:  # reported to the reader, who may be another thread
                failure.append(e)
                streamer.end()

        thread = threading.Thread(target=generate, name="tuiwiz-generate", daemon=True)
        thread.start()
        try:
            for text in streamer:
                if text:
                    yield text
        finally:
            closed.set()
            thread.join()
        if failure:
            error = failure[0]
            raise GenerationError(f"generation failed: {describe_error(error)}") from error

    def reply(
        self, prompt: str | Messages, settings: GenerationSettings | None = None, **kw
    ) -> str:
        return "".join(self.stream(prompt, settings, **kw)).strip()


def trained_format(run_path: Path) -> str | None:
    """The data format the run trained on, from its `started` event (None for older runs)."""
    from tuiwiz.train.events import read_events

    for event in read_events(run_path / "events.jsonl"):
        if event["event"] == "started" and event.get("data_format"):
            return str(event["data_format"])
    return None


def load_for_chat(
    run: Any, progress: Callable[[str], None] | None = None, raw: bool | None = None
) -> ChatModel:
    """Load a finished run (directory, id, id prefix or RunDir) for chatting. `raw` None: as the
    run trained (raw for prompt/completion and text data, the chat layout otherwise)."""
    from tuiwiz.after.loading import finished_run, load_tuned

    fr = finished_run(run)
    if raw is None:
        fmt = trained_format(fr.run.path) or fr.config["data"]["format"]
        raw = fmt in RAW_FORMATS
    model, tokenizer = load_tuned(fr, progress)
    return ChatModel(model, tokenizer, name=fr.name, raw=raw)
