"""The fast data path (templates rendered once per conversation shape, labels found with numpy,
datasets.map over several processes) gives exactly the input_ids and labels of the slow
reference (tests/unit/reference_prep.py: every prefix rendered, a Python loop per token), on
every format, template and kind of tokenizer."""

from __future__ import annotations

import copy
import json
import os
import subprocess

import pytest
import reference_prep as ref

from tuiwiz import config
from tuiwiz.data import chat_template, encode, formats, pipeline, prepare, render

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Llama 3's layout: every content trimmed, kept in a variable, BOS written by the template.
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
# Mistral's: the system message folded into the first user turn; roles must alternate.
MISTRAL = (
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}"
    "{%- endif %}{{- bos_token }}{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('roles must alternate user/assistant') }}{%- endif %}"
    "{%- if message['role'] == 'user' %}{%- if loop.first and system_message is defined %}"
    "{{- ' [INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}"
    "{%- else %}{{- ' [INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token }}"
    "{%- endif %}{%- endfor %}"
)
# Qwen3's kind: what a content says decides how it renders (not content-opaque).
THINKING = (
    "{%- for message in messages %}{%- if message.content is string %}"
    "{%- set content = message.content %}{%- else %}{%- set content = '' %}{%- endif %}"
    "{%- if message.role == 'assistant' and '</think>' in content %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\n') %}{%- endif %}"
    "{{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)
EMPTY_SKIPPED = (  # an empty content changes the layout: not content-opaque
    "{% for m in messages %}{% if m.content %}{{ m.role }}: {{ m.content }}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)
WHOLE_MESSAGE = "{% for m in messages %}{{ m }}\n{% endfor %}"  # a dict's repr: escapes quotes
LAST_MARKED = (  # earlier turns change as the conversation grows: the default layout instead
    "{% for m in messages %}{{ m.role }}: {{ m.content }}{% if loop.last %} <end>{% endif %}\n"
    "{% endfor %}"
)
GENERATION_TAGS = (
    "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}"
    "</s>{% endgeneration %}{% else %}<{{ m.role }}>{{ m.content }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{% endif %}"
)
TEMPLATES = {
    "chatml": CHATML,
    "llama3": LLAMA3,
    "mistral": MISTRAL,
    "thinking": THINKING,
    "empty-skipped": EMPTY_SKIPPED,
    "whole-message": WHOLE_MESSAGE,
    "last-marked": LAST_MARKED,
    "generation-tags": GENERATION_TAGS,
    "none": None,  # the default ### Instruction / ### Response layout
}
OPAQUE = {
    "chatml": "identity",
    "llama3": "trim",
    "mistral": "identity",
    "last-marked": "identity",  # opaque, but its shapes do not render as growing prefixes
    "generation-tags": "identity",
}

# Contents that catch a wrong mask: spaces a template trims, special tokens and multi-byte
# characters inside the text, empty answers, the placeholder's own noncharacter.
TEXTS = [
    "Say hi",
    "  padded  ",
    "line one\nline two\r\n",
    "café 😀 日本語 ğ",
    "contains <|im_end|> and </s> inside",
    "x" * 90,
    "\tTabbed </think> answer",
    "odd \ufdd0 character",
]


def rows_for(fmt: str) -> list[dict]:
    n = len(TEXTS)
    if fmt == "alpaca":
        return [
            {
                "instruction": TEXTS[i],
                "input": TEXTS[(i + 3) % n] if i % 2 else "",
                "output": TEXTS[(i + 1) % n],
                **({"system": "Be brief."} if i % 3 == 0 else {}),
            }
            for i in range(n)
        ]
    if fmt == "messages":
        rows = []
        for i in range(n):
            turns = [
                {"role": "user", "content": TEXTS[i]},
                {"role": "assistant", "content": TEXTS[(i + 1) % n]},
            ]
            if i % 2:  # multi-turn, with a system message and an empty answer
                turns = [
                    {"role": "system", "content": " You answer. "},
                    *turns,
                    {"role": "user", "content": TEXTS[(i + 2) % n]},
                    {"role": "assistant", "content": "" if i % 4 == 1 else TEXTS[(i + 5) % n]},
                ]
            rows.append({"messages": turns})
        return rows
    if fmt == "sharegpt":
        return [
            {
                "conversations": [
                    {"from": "human", "value": TEXTS[i]},
                    {"from": "gpt", "value": TEXTS[(i + 2) % n]},
                ]
            }
            for i in range(n)
        ]
    if fmt == "prompt_completion":
        return [{"prompt": TEXTS[i], "completion": TEXTS[(i + 4) % n]} for i in range(n)]
    return [{"text": TEXTS[i]} for i in range(n)]


FORMATS = ["alpaca", "messages", "sharegpt", "prompt_completion", "text"]


# --- tokenizers, built here (no download) --------------------------------------------------------


def _corpus() -> list[str]:
    return [t for t in TEXTS for _ in range(3)] + ["the quick brown fox jumps " * 4]


def _fast(backend, bos: str | None = None, eos: str = "</s>", **extra):
    from transformers import PreTrainedTokenizerFast

    tokens = {"eos_token": eos, "pad_token": eos, **({"bos_token": bos} if bos else {}), **extra}
    return PreTrainedTokenizerFast(tokenizer_object=backend, **tokens)


SPECIALS = ["<s>", "</s>", "<|im_start|>", "<|im_end|>", "<unk>"]


def byte_level_bpe(trim_offsets: bool, bos_added: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS))
    if bos_added:  # the tokenizer itself writes BOS in front
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
    elif trim_offsets:  # GPT-2's: offsets without the leading space, some zero-width
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
    return _fast(tok, bos="<s>")  # known either way; written in front only when bos_added


def wordpiece_lowercase():
    """BERT-like: lowercased and accent-stripped, spaces belong to no token, unknown words."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="<unk>"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        _corpus(), trainers.WordPieceTrainer(vocab_size=300, special_tokens=SPECIALS)
    )
    return _fast(tok, bos="<s>", unk_token="<unk>")


def metaspace_bpe():
    """SentencePiece-like (Llama 2, Mistral): "▁" for spaces, BOS added by the tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    tok.decoder = decoders.Metaspace(prepend_scheme="first")
    tok.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return _fast(tok, bos="<s>", unk_token="<unk>")


def byt5_slow():
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()


def canine_slow():
    """A slow tokenizer that adds BOS (and whose BOS / EOS are private-use characters)."""
    from transformers import CanineTokenizer

    return CanineTokenizer()


TOKENIZERS = {
    "byte-bpe": lambda: byte_level_bpe(trim_offsets=False, bos_added=False),
    "byte-bpe-trimmed": lambda: byte_level_bpe(trim_offsets=True, bos_added=False),
    "byte-bpe-bos": lambda: byte_level_bpe(trim_offsets=False, bos_added=True),
    "wordpiece": wordpiece_lowercase,
    "metaspace-bos": metaspace_bpe,
    "byt5-slow": byt5_slow,
    "canine-slow": canine_slow,
}


@pytest.fixture(scope="module")
def tokenizers() -> dict:
    return {name: make() for name, make in TOKENIZERS.items()}


def with_template(tokenizer, template: str | None):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = template
    return tok


def examples_of(fmt: str) -> list[formats.Example]:
    return formats.normalize(rows_for(fmt), fmt, {}, "d").examples


def renderable(examples: list[formats.Example], tokenizer) -> list[formats.Example]:
    """The examples the template accepts (Mistral's refuses a system turn mid-conversation)."""
    kept = []
    for e in examples:
        try:
            ref.render(e, tokenizer)
        except Exception:  # noqa: BLE001 - refused by the template: a case of its own below
            continue
        kept.append(e)
    return kept


# --- the tests ---------------------------------------------------------------------------------


def test_content_opaque_templates_are_recognized(tokenizers):
    base = tokenizers["byte-bpe"]
    for name, template in TEMPLATES.items():
        if template is None:
            continue
        transform = chat_template.content_transform(with_template(base, template))
        expected = chat_template.TRANSFORMS.get(OPAQUE.get(name, ""))
        assert transform is expected, name


@pytest.mark.parametrize("template", list(TEMPLATES))
@pytest.mark.parametrize("tokenizer_name", list(TOKENIZERS))
def test_fast_path_equals_the_reference(tokenizers, tokenizer_name, template):
    tok = with_template(tokenizers[tokenizer_name], TEMPLATES[template])
    renderer = render.Renderer(tok)
    encoder = encode.Encoder(tok)
    for fmt in FORMATS:
        examples = renderable(examples_of(fmt), tok)
        # Mistral's refuses some conversations; templates that write bos_token all of them when
        # the tokenizer has none (ByT5).
        assert examples or template == "mistral" or tok.bos_token is None, fmt
        for train_on_prompt in (False, True):
            fast = [renderer.render(e, train_on_prompt) for e in examples]
            slow = [ref.render(e, tok, train_on_prompt) for e in examples]
            assert fast == slow, (fmt, train_on_prompt)
            ids, labels = encoder.encode(fast).rows()
            want_ids, want_labels = ref.tokenize(slow, tok)
            assert ids == want_ids, (fmt, train_on_prompt)
            assert labels == want_labels, (fmt, train_on_prompt)
    if template in OPAQUE and template != "last-marked" and renderer.plans:
        # the fast path was taken: shapes rendered once, from placeholders
        assert any(plan is not None for plan in renderer.plans.values())


def test_the_rust_tokenizer_called_directly_is_set_as_transformers_sets_it(tokenizers):
    """The fast path calls the Rust tokenizer itself: truncation and padding saved in a
    tokenizer.json must not apply (transformers turns them off for such a call), its
    split_special_tokens must (a literal "<|im_start|>" in the data split into pieces), and the
    user's tokenizer is left as it was."""
    base = tokenizers["byte-bpe"]
    examples = examples_of("alpaca") + [formats.Example(prompt="say <|im_start|>", completion="ok")]
    for split in (False, True):
        tok = with_template(base, TEMPLATES["chatml"])
        tok.backend_tokenizer.enable_truncation(max_length=4)
        tok.backend_tokenizer.enable_padding(length=64)
        tok.split_special_tokens = split
        rendered = [ref.render(e, tok) for e in examples]
        ids, labels = encode.Encoder(tok).encode(rendered).rows()
        assert (ids, labels) == ref.tokenize(rendered, tok), split
        assert max(map(len, ids)) > 4
    plain = encode.Encoder(with_template(base, None))
    assert plain.backend.truncation is None and plain.backend.padding is None
    assert base.backend_tokenizer.truncation is None  # the shared tokenizer: not touched


@pytest.mark.parametrize("tokenizer_name", ["byte-bpe-bos", "metaspace-bos", "canine-slow"])
@pytest.mark.parametrize("limit", [1, 2, 7, 30, 4096])
def test_truncation_and_dropping_equal_the_reference(tokenizers, tokenizer_name, limit):
    """Through the map job: cut at max_seq_length (BOS counted), examples left without a
    trained token dropped, every untruncated length recorded."""
    import pyarrow as pa

    from tuiwiz.data import examples as stored

    for template in ("chatml", "none"):
        tok = with_template(tokenizers[tokenizer_name], TEMPLATES[template])
        for fmt in FORMATS:
            examples = examples_of(fmt)
            kind = stored.kind_of(fmt)
            data = {"path": "d", "max_seq_length": limit, "train_on_prompt": False}
            job = pipeline.TokenizeJob(tok, kind, data, folder=None)
            table = job(pa.table(stored.to_columns(examples, kind)))
            want_ids, want_labels, want_lengths = ref.prepare(examples, tok, limit)
            assert table.column("input_ids").to_pylist() == want_ids, (template, fmt)
            assert table.column("labels").to_pylist() == want_labels, (template, fmt)
            assert job.lengths[0].tolist() == want_lengths, (template, fmt)


def test_a_template_that_refuses_an_example_is_a_clear_error(tokenizers):
    from tuiwiz.errors import DataError

    tok = with_template(tokenizers["byte-bpe"], MISTRAL)
    assistant_first = formats.Example(
        messages=[{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]
    )
    job = pipeline.TokenizeJob(
        tok, "messages", {"path": "d.jsonl", "max_seq_length": 9, "train_on_prompt": False}, None
    )
    with pytest.raises(DataError) as info:
        job._render(assistant_first)
    assert "d.jsonl: the model's chat template cannot render an example" in str(info.value)
    assert "roles must alternate" in str(info.value) and "\n" not in str(info.value)


@pytest.fixture(scope="module")
def bench_tokenizer():
    """A byte-level BPE with a ChatML template, as bench/data_prep.py builds it."""
    tok = byte_level_bpe(trim_offsets=False, bos_added=True)
    tok.chat_template = CHATML
    return tok


@pytest.mark.parametrize("num_proc", [1, 2])
def test_prepare_with_processes_equals_the_reference(
    tmp_path, monkeypatch, bench_tokenizer, num_proc
):
    """The whole pipeline: the file read into Arrow, tokenized by `num_proc` processes, the
    report's statistics, the cache entry; the same tokens as the reference, in order."""
    import statistics

    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(tmp_path / "cache"))
    rows = [r for _ in range(40) for r in rows_for("messages")]  # 320 rows
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {"path": str(path), "max_seq_length": 24, "num_proc": num_proc}
    data = config.validate({"model": {"name_or_path": "m"}, "data": raw})["data"]
    lines: list[str] = []
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    environ = os.environ
    train, validation, report = prepare.prepare(data, bench_tokenizer, log=lines.append)
    # datasets' map with processes swaps os.environ for a copy, and leaves the real
    # environment's TOKENIZERS_PARALLELISM false: both are put back.
    assert os.environ is environ and os.environ["TOKENIZERS_PARALLELISM"] == "true"
    assert (
        subprocess.run(
            ["sh", "-c", "echo $TOKENIZERS_PARALLELISM"], capture_output=True, text=True
        ).stdout.strip()
        == "true"
    )
    assert validation is None and not report.cached
    assert any(f"tokenizing 320 examples with {num_proc} process" in line for line in lines)
    examples = formats.normalize(rows, "messages", {}, str(path)).examples
    want_ids, want_labels, lengths = ref.prepare(examples, bench_tokenizer, 24)
    assert train["input_ids"] == want_ids and train["labels"] == want_labels
    assert report.examples == len(want_ids) and report.rows == 320
    assert report.dropped_fully_masked == 320 - len(want_ids) > 0
    assert report.truncated == sum(n > 24 for n in lengths)
    assert report.median_tokens == statistics.median(lengths)
    assert report.max_tokens == max(lengths)
    again, _, cached = prepare.prepare(data, bench_tokenizer, log=lines.append)
    assert cached.cached and again["input_ids"] == want_ids
