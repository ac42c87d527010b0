"""The Ollama Modelfile of a GGUF export: the file, the chat layout the model was trained with as
an Ollama (Go text/template) TEMPLATE, the end-of-turn stops, and the training data's system prompt.

Ollama cannot run a Jinja chat template, so the layout is translated. Rather than parse Jinja, the
template is rendered for probe conversations with marker contents, and the text around each marker
gives what comes before and after a system, user and assistant message, what precedes the first
message (BOS, a default system prompt) and the generation prompt. The layout found must reproduce
every probe conversation exactly, or there is no TEMPLATE (and the export says so): a template that
rewrites earlier turns (Mistral's system prompt inside the last user turn, for one) has no
per-message form. The same goes for tuiwiz's own layout for models without a chat template.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from tuiwiz.errors import first_line

Messages = list[dict[str, str]]
Render = Callable[[Messages, bool], str]  # (messages, add the generation prompt) -> text

# Marker contents: plain letters, which no template trims or escapes.
SYSTEM, USER, ASSISTANT, USER2, ASSISTANT2, USER3 = (
    "tuiwizProbeSystem",
    "tuiwizProbeUser",
    "tuiwizProbeAssistant",
    "tuiwizProbeUserTwo",
    "tuiwizProbeAssistantTwo",
    "tuiwizProbeUserThree",
)


def _m(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


PROBES: list[Messages] = [
    [_m("user", USER)],
    [_m("user", USER), _m("assistant", ASSISTANT), _m("user", USER2)],
    [
        _m("user", USER),
        _m("assistant", ASSISTANT),
        _m("user", USER2),
        _m("assistant", ASSISTANT2),
        _m("user", USER3),
    ],
]
SYSTEM_PROBES: list[Messages] = [
    [_m("system", SYSTEM), _m("user", USER)],
    [_m("system", SYSTEM), _m("user", USER), _m("assistant", ASSISTANT), _m("user", USER2)],
]


@dataclass(frozen=True)
class ChatLayout:
    """A conversation as text, message by message (a system message only ever comes first)."""

    head: str  # before the first message when that is not a system message
    system_head: str
    system_tail: str
    user_head: str
    user_tail: str
    assistant_head: str
    assistant_tail: str
    generation: str  # after the last message: the assistant's turn opens
    system: bool  # whether system messages have a place

    def render(self, messages: Messages) -> str:
        """The prompt for `messages`, exactly as the Go template of `ollama_template` renders."""
        out = [] if messages and messages[0]["role"] == "system" else [self.head]
        for m in messages:
            role = m["role"]
            if role == "system" and self.system:
                out += [self.system_head, m["content"], self.system_tail]
            elif role == "user":
                out += [self.user_head, m["content"], self.user_tail]
            elif role == "assistant":
                out += [self.assistant_head, m["content"], self.assistant_tail]
        return "".join(out + [self.generation])

    def without_prefix(self, prefix: str) -> ChatLayout:
        """The layout with `prefix` (BOS, which llama.cpp's tokenizer adds itself) dropped from
        the start of a conversation."""
        return replace(
            self,
            head=self.head.removeprefix(prefix),
            system_head=self.system_head.removeprefix(prefix),
        )


def _around(text: str, marker: str) -> tuple[str, str] | None:
    if text.count(marker) != 1:
        return None
    before, after = text.split(marker)
    return before, after


def _between(text: str, first: str, second: str) -> str | None:
    a, b = text.find(first), text.find(second)
    if a < 0 or b < a:
        return None
    return text[a + len(first) : b]


def derive_layout(render: Render) -> ChatLayout | None:
    """The per-message layout of a renderer, or None when there is none that reproduces it."""
    for derive in (_from_endings, _from_prompts):
        try:
            layout = derive(render)
        except Exception:  # a template that cannot render a plain conversation
            layout = None
        if layout is not None and _reproduces(layout, render, PROBES):
            return _with_system(layout, render)
    return None


def _from_endings(render: Render) -> ChatLayout | None:
    """Where a message ends, from conversations that end with it: the split a template's author
    meant (ChatML's `<|im_end|>\n` closes every message)."""
    lone = _around(render([_m("user", USER)], False), USER)
    answered = _around(render([_m("user", USER), _m("assistant", ASSISTANT)], False), ASSISTANT)
    prompt = _around(render([_m("user", USER)], True), USER)
    two = render(PROBES[1], True)
    if lone is None or answered is None or prompt is None:
        return None
    user_tail, assistant_tail = lone[1], answered[1]
    user_to_assistant = _between(two, USER, ASSISTANT)
    assistant_to_user = _between(two, ASSISTANT, USER2)
    if user_to_assistant is None or assistant_to_user is None:
        return None
    if not (
        user_to_assistant.startswith(user_tail)
        and prompt[1].startswith(user_tail)
        and assistant_to_user.startswith(assistant_tail)
    ):
        return None
    user_head = assistant_to_user[len(assistant_tail) :]
    if not prompt[0].endswith(user_head):
        return None
    return ChatLayout(
        head=prompt[0][: len(prompt[0]) - len(user_head)],
        system_head="",
        system_tail="",
        user_head=user_head,
        user_tail=user_tail,
        assistant_head=user_to_assistant[len(user_tail) :],
        assistant_tail=assistant_tail,
        generation=prompt[1][len(user_tail) :],
        system=False,
    )


def _from_prompts(render: Render) -> ChatLayout | None:
    """The split from prompts alone (for renderers that drop what ends the last message): a user
    message opens with what precedes every user message, and ends with what follows every one."""
    prompt = _around(render([_m("user", USER)], True), USER)
    two = render(PROBES[1], True)
    user_to_assistant = _between(two, USER, ASSISTANT)
    assistant_to_user = _between(two, ASSISTANT, USER2)
    if prompt is None or user_to_assistant is None or assistant_to_user is None:
        return None
    user_head = _common_suffix(prompt[0], assistant_to_user)
    user_tail = _common_prefix(prompt[1], user_to_assistant)
    return ChatLayout(
        head=prompt[0][: len(prompt[0]) - len(user_head)],
        system_head="",
        system_tail="",
        user_head=user_head,
        user_tail=user_tail,
        assistant_head=user_to_assistant[len(user_tail) :],
        assistant_tail=assistant_to_user[: len(assistant_to_user) - len(user_head)],
        generation=prompt[1][len(user_tail) :],
        system=False,
    )


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _common_suffix(a: str, b: str) -> str:
    return _common_prefix(a[::-1], b[::-1])[::-1]


def _with_system(layout: ChatLayout, render: Render) -> ChatLayout:
    """The layout with its system part, when the template's system messages have one."""
    try:
        text = render(SYSTEM_PROBES[0], True)
    except Exception:  # the template refuses system messages
        return layout
    found = _around(text, SYSTEM)
    junction = _between(text, SYSTEM, USER)
    if found is None or junction is None or not junction.endswith(layout.user_head):
        return layout
    with_system = replace(
        layout,
        system_head=found[0],
        system_tail=junction[: len(junction) - len(layout.user_head)],
        system=True,
    )
    return with_system if _reproduces(with_system, render, SYSTEM_PROBES) else layout


def _reproduces(layout: ChatLayout, render: Render, probes: list[Messages]) -> bool:
    try:
        return all(layout.render(p) == render(p, True) for p in probes)
    except Exception:
        return False


def _literal(text: str) -> str:
    """Text for a Go template: `{{` would open an action, so it is written as one."""
    return text.replace("{{", '{{ "{{" }}')


def ollama_template(layout: ChatLayout) -> str:
    """The layout as an Ollama TEMPLATE (Go text/template over .Messages; Ollama puts the
    Modelfile's SYSTEM first in .Messages when a request has no system message)."""
    lit = _literal
    branches = []
    if layout.system:
        branches.append(
            f'if eq .Role "system" }}}}{lit(layout.system_head)}{{{{ .Content }}}}'
            f"{lit(layout.system_tail)}"
        )
    branches.append(
        f'if eq .Role "user" }}}}{lit(layout.user_head)}{{{{ .Content }}}}{lit(layout.user_tail)}'
    )
    branches.append(
        f'if eq .Role "assistant" }}}}{lit(layout.assistant_head)}{{{{ .Content }}}}'
        f"{lit(layout.assistant_tail)}"
    )
    body = "{{ " + "{{ else ".join(branches) + "{{ end }}"
    head = (
        f'{{{{ if or (not .Messages) (ne (index .Messages 0).Role "system") }}}}'
        f"{lit(layout.head)}{{{{ end }}}}"
        if layout.head
        else ""
    )
    return f"{head}{{{{ range .Messages }}}}{body}{{{{ end }}}}{lit(layout.generation)}"


RAW_TEMPLATE = "{{ range $i, $m := .Messages }}{{ if $i }}\n\n{{ end }}{{ $m.Content }}{{ end }}"


def chat_template_render(tokenizer: Any) -> Render:
    def render(messages: Messages, generation: bool) -> str:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation
        )

    return render


def tuiwiz_render(tokenizer: Any) -> Render:
    """tuiwiz's own rendering (tuiwiz.data.render): the chat template, or the instruction layout
    for a model without one. With the generation prompt: all but the answer of an empty last
    assistant turn."""
    from tuiwiz.data import render as data_render
    from tuiwiz.data.formats import Example

    def render(messages: Messages, generation: bool) -> str:
        if not generation:
            segments = data_render.render(Example(messages=messages), tokenizer)
            return "".join(s.text for s in segments)
        segments = data_render.render(Example(messages=[*messages, _m("assistant", "")]), tokenizer)
        last = max(i for i, s in enumerate(segments) if s.trained)
        return "".join(s.text for s in segments[:last])

    return render


def stop_words(layout: ChatLayout | None, eos: str | None) -> list[str]:
    """What ends the model's turn: the special tokens closing an assistant message, and EOS."""
    stops = []
    if layout is not None:
        stops += re.findall(r"<[^<>\s]+>|\[/?[A-Z_]+\]", layout.assistant_tail)
    if eos:
        stops.append(eos)
    return list(dict.fromkeys(s for s in stops if s.strip()))


def quoted(text: str) -> str | None:
    """A Modelfile triple-quoted string, or None when the text cannot be one."""
    return None if '"""' in text or text.endswith('"') else f'"""{text}"""'


@dataclass(frozen=True)
class ModelfileParts:
    template: str | None  # None: no translation (said in `notes`)
    stops: list[str]
    system: str | None
    context_length: int
    notes: list[str]


def ollama_name(name: str) -> str:
    """A name `ollama create` accepts."""
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.") or "model"


def modelfile_text(name: str, version: str, gguf_file: str, parts: ModelfileParts) -> str:
    ollama = ollama_name(name)
    lines = [
        f"# Ollama Modelfile for {name}, written by tuiwiz {version}.",
        f"#   ollama create {ollama} -f Modelfile",
        f"#   ollama run {ollama}",
        *(f"# {note}" for note in parts.notes),
        f"FROM ./{gguf_file}",
        "",
    ]
    if parts.template is not None:
        lines += ["# The chat layout the model was trained with.", f"TEMPLATE {parts.template}", ""]
    if parts.system is not None:
        lines += ["# The system prompt of the training data.", f"SYSTEM {parts.system}", ""]
    lines += [f'PARAMETER stop "{stop}"' for stop in parts.stops]
    lines += [
        "# Greedy decoding, as `tuiwiz chat` answers by default; raise it for varied answers.",
        "PARAMETER temperature 0",
        f"PARAMETER num_ctx {min(parts.context_length, 4096)}",
        "",
    ]
    return "\n".join(lines)


def training_system_prompt(fr: Any) -> tuple[str | None, str | None]:
    """(the system prompt every training conversation starts with, or None; a note when the data
    could not tell)."""
    from tuiwiz.data import examples

    try:
        prompts = {
            ex.messages[0]["content"]
            if ex.messages and ex.messages[0]["role"] == "system"
            else None
            for ex in examples.stream(fr.data())
        }
    except Exception as e:  # a moved or unreadable dataset must not stop the export
        reason = first_line(e)
        return None, f"the training data could not be read ({reason}): add its SYSTEM if it had one"
    if prompts == {None} or not prompts:
        return None, None
    if len(prompts) == 1:
        return prompts.pop(), None
    return None, (
        f"the training data has {len(prompts - {None})} different system prompts: "
        "give one with /set system in ollama run"
    )


def parts_for_run(fr: Any, tokenizer: Any, vocab: Any, context_length: int) -> ModelfileParts:
    from tuiwiz.after.generate import RAW_FORMATS, trained_format

    notes: list[str] = []
    system, note = training_system_prompt(fr)
    if note:
        notes.append(note)
    raw = (trained_format(fr.run.path) or fr.config["data"]["format"]) in RAW_FORMATS
    layout = None
    if raw:
        template: str | None = quoted(RAW_TEMPLATE)
    else:
        layout = derive_layout(tuiwiz_render(tokenizer))
        if layout is not None and vocab.add_bos and tokenizer.bos_token:
            layout = layout.without_prefix(tokenizer.bos_token)  # llama.cpp adds it itself
        if layout is not None and system is not None and not layout.system:
            layout = None
        template = quoted(ollama_template(layout)) if layout is not None else None
        if template is None:
            notes.append(
                "no TEMPLATE: the chat template has no message-by-message form Ollama can "
                "express; Ollama needs one added by hand (llama.cpp and LM Studio use the one "
                "inside the GGUF file)"
            )
    if system is not None and quoted(system) is None:
        notes.append('the training data\'s system prompt contains """; add SYSTEM by hand')
        system_text = None
    else:
        system_text = quoted(system) if system is not None else None
    stops = [s for s in stop_words(layout, tokenizer.eos_token) if '"' not in s]
    return ModelfileParts(template, stops, system_text, context_length, notes)


def write_for_run(fr: Any, folder: Any, plan: Any) -> list[str]:
    """Write `folder/Modelfile` for the GGUF file of `plan`; returns what the user should know."""
    from transformers import AutoTokenizer

    from tuiwiz import __version__
    from tuiwiz.after.gguf_export import GGUF_FILE
    from tuiwiz.fileio import write_atomic

    tokenizer = AutoTokenizer.from_pretrained(str(fr.adapter))
    parts = parts_for_run(fr, tokenizer, plan.vocab, int(plan.cfg["max_position_embeddings"]))
    parts = replace(parts, notes=[*plan.caveats, *parts.notes])
    write_atomic(folder / "Modelfile", modelfile_text(fr.name, __version__, GGUF_FILE, parts))
    return parts.notes
