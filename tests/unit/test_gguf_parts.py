"""The pure parts of the GGUF export: the Llama Q/K convention, Llama 3.1's rotary factors, the
byte-level alphabet, the vocabulary checks, the architecture checks, the chat-layout translation
for Ollama (against chat templates of the supported families), the Modelfile, llama-quantize and
the free-space check. llama.cpp itself checks the files: test_gguf_families and e2e/test_gguf."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from tuiwiz.after import gguf_export, modelfile, quantize
from tuiwiz.after.gguf_vocab import byte_level_alphabet, vocab_from_tokenizer
from tuiwiz.errors import TuiwizError

# --- the Llama Q/K convention -------------------------------------------------------------------


def rotate_halves(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """transformers' rotary embedding: dimension i pairs with i + d/2 (rotate_half)."""
    half = x.shape[-1] // 2
    cos, sin = torch.cos(angles).repeat(2), torch.sin(angles).repeat(2)
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def rotate_pairs(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """llama.cpp's (and Meta's original) rotary embedding: dimension 2i pairs with 2i + 1."""
    even, odd = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = even * torch.cos(angles) - odd * torch.sin(angles)
    out[..., 1::2] = even * torch.sin(angles) + odd * torch.cos(angles)
    return out


def test_permuted_q_rows_give_llama_cpp_the_same_attention_scores():
    heads, dim, hidden = 3, 8, 16
    torch.manual_seed(0)
    wq, wk = torch.randn(heads * dim, hidden), torch.randn(heads * dim, hidden)
    x, y = torch.randn(hidden), torch.randn(hidden)
    angles_x = 1.7 * 10000 ** (-torch.arange(0, dim, 2) / dim)  # position 1.7, as a stand-in
    angles_y = 4.0 * 10000 ** (-torch.arange(0, dim, 2) / dim)
    pq = torch.from_numpy(gguf_export.permute_rows(wq.numpy(), heads))
    pk = torch.from_numpy(gguf_export.permute_rows(wk.numpy(), heads))
    for h in range(heads):
        rows = slice(h * dim, (h + 1) * dim)
        theirs = rotate_halves(wq[rows] @ x, angles_x) @ rotate_halves(wk[rows] @ y, angles_y)
        ours = rotate_pairs(pq[rows] @ x, angles_x) @ rotate_pairs(pk[rows] @ y, angles_y)
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-4)
        # Without the permutation the scores differ: the test can tell.
        unpermuted = rotate_pairs(wq[rows] @ x, angles_x) @ rotate_pairs(wk[rows] @ y, angles_y)
        assert unpermuted.item() != pytest.approx(theirs.item(), rel=1e-2)


def test_llama3_rope_factors_match_transformers():
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    config = LlamaConfig(
        hidden_size=4096, num_attention_heads=32, rope_theta=500000.0, rope_scaling=scaling
    )
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    plain = 1.0 / 500000.0 ** (torch.arange(0, 128, 2, dtype=torch.float64) / 128)
    factors = gguf_export.llama3_rope_factors(config.to_dict())
    assert factors.shape == (64,)
    # llama.cpp divides each frequency by its factor.
    np.testing.assert_allclose(plain.numpy() / factors, scaled.double().numpy(), rtol=1e-5)
    assert factors.min() == 1.0 and factors.max() == 8.0


def test_byte_level_alphabet_is_the_tokenizers_librarys():
    from tokenizers import pre_tokenizers

    alphabet = byte_level_alphabet()
    assert set(alphabet.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    text = "".join(chr(c) for c in [*range(1, 0x800), 0xFFFD, 0x1F642])  # every UTF-8 byte seen
    (encoded, _), *_ = byte_level.pre_tokenize_str(text)
    assert encoded == "".join(alphabet[b] for b in text.encode())


# --- the vocabulary ----------------------------------------------------------------------------


@pytest.fixture
def char_tokenizer():
    from tuiwiz.demo import build as demo

    return demo.build_tokenizer()


def test_the_character_level_tokenizer_becomes_a_byte_level_bpe_without_merges(char_tokenizer):
    import gguf

    vocab = vocab_from_tokenizer(char_tokenizer, len(char_tokenizer))
    assert (vocab.model, vocab.pre) == ("gpt2", "default")
    ids = char_tokenizer.get_vocab()
    assert vocab.tokens[ids[" "]] == "\u0120" and vocab.tokens[ids["\n"]] == "\u010a"
    assert vocab.tokens[ids["A"]] == "A"
    assert vocab.types[ids["<|user|>"]] == gguf.TokenType.CONTROL
    assert vocab.types[ids["<|unk|>"]] == gguf.TokenType.UNKNOWN
    # The one merge joins two special tokens: never two plain symbols side by side.
    assert vocab.merges == ["<|pad|> <|pad|>"]
    assert vocab.special == {"bos": 1, "eos": 2, "unk": 3, "pad": 0}
    assert not vocab.add_bos and vocab.chat_template
    assert "drops characters outside" in vocab.caveat


def test_a_word_level_tokenizer_that_is_not_per_character_is_refused():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"hello": 0, "world": 1, "[UNK]": 2}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    with pytest.raises(TuiwizError, match="not character-level"):
        vocab_from_tokenizer(tokenizer, 3)


def test_a_byte_level_bpe_with_an_unknown_split_is_refused():
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE({"a": 0, "b": 1}, []))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r"\w+"), "isolated"), pre_tokenizers.ByteLevel(False, False)]
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend)
    with pytest.raises(TuiwizError, match="pre-tokenizers known: gpt-2, llama-bpe, qwen2"):
        vocab_from_tokenizer(tokenizer, 2)


def test_a_sentencepiece_tokenizer_prefixing_only_the_start_is_refused():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE({"<unk>": 0, "\u2581a": 1}, [], byte_fallback=True))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first", split=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend)
    with pytest.raises(TuiwizError, match="after every special token"):
        vocab_from_tokenizer(tokenizer, 2)


# --- architectures -----------------------------------------------------------------------------


def reference_config(name: str) -> dict:
    import json

    folder = Path(__file__).resolve().parent.parent / "fixtures" / "reference-configs" / name
    return json.loads((folder / "config.json").read_text())


@pytest.mark.parametrize(
    "name, arch",
    [("qwen2.5-0.5b", "QWEN2"), ("smollm2-135m", "LLAMA"), ("tinyllama-1.1b-chat-v1.0", "LLAMA")],
)
def test_the_reference_models_are_supported(name, arch):
    assert gguf_export.architecture(reference_config(name)).gguf_name == arch


def test_an_unsupported_architecture_gets_one_line_naming_the_supported_ones():
    with pytest.raises(TuiwizError) as e:
        gguf_export.architecture({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})
    message = str(e.value)
    assert "\n" not in message and "GPT2LMHeadModel" in message
    assert "Llama" in message and "Mistral" in message and "Qwen3" in message


def test_an_unknown_rotary_scaling_is_refused():
    cfg = {"architectures": ["LlamaForCausalLM"], "rope_scaling": {"rope_type": "longrope"}}
    with pytest.raises(TuiwizError, match="rotary scaling 'longrope'"):
        gguf_export.architecture(cfg)


def test_tensor_plan_types_and_permutations():
    import gguf

    cfg = {"num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2}
    shapes = {
        "model.embed_tokens.weight": (100, 64),
        "model.layers.0.self_attn.q_proj.weight": (64, 64),
        "model.layers.0.self_attn.k_proj.weight": (32, 64),
        "model.layers.0.self_attn.k_proj.bias": (32,),
        "model.layers.0.mlp.down_proj.weight": (64, 40),  # 40: not a multiple of 32
        "model.layers.0.input_layernorm.weight": (64,),
        "model.rotary_emb.inv_freq": (8,),
        "lm_head.weight": (100, 64),
    }
    arch = gguf_export.ARCHITECTURES["LlamaForCausalLM"]
    plans = {p.name: p for p in gguf_export.plan_tensors(shapes, cfg, arch, "q8_0")}
    q8, f16, f32 = (getattr(gguf.GGMLQuantizationType, n) for n in ("Q8_0", "F16", "F32"))
    q = plans["blk.0.attn_q.weight"]
    assert q.qtype == q8 and q.permute_heads == 4
    assert plans["blk.0.attn_k.weight"].permute_heads == 2
    assert plans["blk.0.attn_k.bias"].qtype == f32 and plans["blk.0.attn_k.bias"].permute_heads == 2
    assert plans["blk.0.ffn_down.weight"].qtype == f16
    assert plans["blk.0.attn_norm.weight"].qtype == f32
    assert plans["token_embd.weight"].nbytes == 100 * 64 // 32 * 34
    assert "output.weight" in plans and len(plans) == 7  # inv_freq is recomputed by llama.cpp
    tied = gguf_export.plan_tensors(shapes, {**cfg, "tie_word_embeddings": True}, arch, "f16")
    assert "output.weight" not in {p.name for p in tied}
    qwen = gguf_export.ARCHITECTURES["Qwen2ForCausalLM"]
    assert all(p.permute_heads == 0 for p in gguf_export.plan_tensors(shapes, cfg, qwen, "f16"))
    with pytest.raises(TuiwizError, match="has no place in llama.cpp's llama"):
        gguf_export.plan_tensors({"model.vision_tower.weight": (4, 4)}, cfg, arch, "f16")


# --- the chat layout for Ollama ----------------------------------------------------------------

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)
QWEN25 = (  # Qwen2.5's, without tools: a default system prompt when there is none
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content']"
    " + '<|im_end|>\n' }}{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba "
    "Cloud. You are a helpful assistant.<|im_end|>\n' }}{%- endif %}{%- for message in messages %}"
    "{%- if message.role != 'system' %}{{- '<|im_start|>' + message.role + '\n' + message.content"
    " + '<|im_end|>\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\n' }}{%- endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
LLAMA31 = (  # Llama 3.1's date block, which opens every conversation
    "{{- bos_token }}{%- if messages[0]['role'] == 'system' %}{%- set system_message = "
    "messages[0]['content']|trim %}{%- set messages = messages[1:] %}{%- else %}{%- set "
    "system_message = '' %}{%- endif %}{{- '<|start_header_id|>system<|end_header_id|>\n\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\n' }}{{- 'Today Date: 26 Jul 2024\n\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)
ZEPHYR = (  # TinyLlama-chat's
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\n' + "
    "message['content'] + eos_token }}{% elif message['role'] == 'system' %}{{ '<|system|>\n' + "
    "message['content'] + eos_token }}{% elif message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}{% endif %}{% if loop.last and "
    "add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}{% endfor %}"
)
MISTRAL = (  # v0.1: no system messages
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}"
)
MISTRAL_V3 = (  # the system prompt goes into the last user message
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}"
    "{%- endif %}{{- bos_token }}{%- for message in loop_messages %}{%- if message['role'] == "
    "'user' %}{%- if loop.last and system_message is defined %}{{- '[INST] ' + system_message + "
    "'\n\n' + message['content'] + '[/INST]' }}{%- else %}{{- '[INST] ' + message['content'] + "
    "'[/INST]' }}{%- endif %}{%- elif message['role'] == 'assistant' %}{{- ' ' + "
    "message['content'] + eos_token}}{%- endif %}{%- endfor %}"
)


def tokenizer_with(template: str | None, bos: str = "<|bos|>", eos: str = "<|end|>"):
    from tuiwiz.demo import build as demo

    tokenizer = demo.build_tokenizer()
    tokenizer.chat_template = template
    tokenizer.bos_token, tokenizer.eos_token = bos, eos
    return tokenizer


def check_layout(template: str, **tokens) -> modelfile.ChatLayout | None:
    tokenizer = tokenizer_with(template, **tokens)
    render = modelfile.chat_template_render(tokenizer)
    layout = modelfile.derive_layout(render)
    if layout is not None:  # what it renders is what the chat template renders
        for probe in modelfile.PROBES + (modelfile.SYSTEM_PROBES if layout.system else []):
            assert layout.render(probe) == render(probe, True)
    return layout


def test_chatml():
    layout = check_layout(CHATML)
    assert layout.system and layout.head == ""
    assert (layout.user_head, layout.user_tail) == ("<|im_start|>user\n", "<|im_end|>\n")
    assert layout.generation == "<|im_start|>assistant\n"
    assert modelfile.stop_words(layout, "<|im_end|>") == ["<|im_end|>"]


def test_qwen25s_default_system_prompt_opens_conversations_without_one():
    layout = check_layout(QWEN25)
    assert "You are Qwen, created by Alibaba Cloud" in layout.head
    assert layout.system_head == "<|im_start|>system\n"
    assert layout.render([{"role": "user", "content": "hi"}]).startswith(layout.head)


def test_llama3_and_the_bos_llama_cpp_adds_itself():
    layout = check_layout(LLAMA3, bos="<|begin_of_text|>", eos="<|eot_id|>")
    assert layout.head == "<|begin_of_text|>"
    assert layout.assistant_tail == "<|eot_id|>"
    without = layout.without_prefix("<|begin_of_text|>")
    assert without.head == "" and not without.system_head.startswith("<|begin_of_text|>")
    assert modelfile.stop_words(layout, "<|end_of_text|>") == ["<|eot_id|>", "<|end_of_text|>"]


def test_llama31s_date_block():
    layout = check_layout(LLAMA31, bos="<|begin_of_text|>", eos="<|eot_id|>")
    assert layout.system and "Today Date: 26 Jul 2024\n\n<|eot_id|>" in layout.head
    assert layout.system_head.endswith("Today Date: 26 Jul 2024\n\n")


def test_zephyr():
    layout = check_layout(ZEPHYR, bos="<s>", eos="</s>")
    assert layout.system and layout.generation == "<|assistant|>"


def test_mistral_without_system_messages():
    layout = check_layout(MISTRAL, bos="<s>", eos="</s>")
    assert not layout.system
    assert (layout.user_head, layout.user_tail, layout.assistant_tail) == (
        "[INST] ",
        " [/INST]",
        "</s>",
    )


def test_mistral_v3_puts_the_system_prompt_in_the_last_turn_which_has_no_per_message_form():
    layout = check_layout(MISTRAL_V3, bos="<s>", eos="</s>")
    assert layout is not None and not layout.system


def test_the_demo_template_as_ollama_renders_it():
    from tuiwiz.demo import build as demo

    layout = check_layout(demo.CHAT_TEMPLATE)
    assert modelfile.ollama_template(layout) == (
        '{{ if or (not .Messages) (ne (index .Messages 0).Role "system") }}<|bos|>{{ end }}'
        '{{ range .Messages }}{{ if eq .Role "system" }}<|bos|><|system|>{{ .Content }}<|end|>'
        '{{ else if eq .Role "user" }}<|user|>{{ .Content }}<|end|>'
        '{{ else if eq .Role "assistant" }}<|assistant|>{{ .Content }}<|end|>{{ end }}{{ end }}'
        "<|assistant|>"
    )


def test_tuiwizs_own_layout_for_models_without_a_chat_template():
    tokenizer = tokenizer_with(None)
    render = modelfile.tuiwiz_render(tokenizer)
    layout = modelfile.derive_layout(render)
    assert layout is not None and layout.system
    assert layout.user_head == "### Instruction:\n"
    assert layout.user_tail + layout.generation == "\n\n### Response:\n"
    prompt = render([{"role": "user", "content": "Uppercase:\n\nabc"}], True)
    assert layout.render([{"role": "user", "content": "Uppercase:\n\nabc"}]) == prompt
    assert modelfile.stop_words(layout, "<|end|>") == ["<|end|>"]


def test_template_text_that_looks_like_an_action_is_escaped():
    layout = modelfile.ChatLayout("{{x", "", "", "", "", "", "", "", False)
    assert modelfile.ollama_template(layout).count('{{ "{{" }}') == 1


def test_modelfile_text():
    parts = modelfile.ModelfileParts(
        template='"""T"""',
        stops=["<|end|>"],
        system='"""Be brief."""',
        context_length=256,
        notes=["a note"],
    )
    text = modelfile.modelfile_text("My Run", "0.1.0", "model.gguf", parts)
    assert "FROM ./model.gguf\n" in text and 'TEMPLATE """T"""' in text
    assert 'SYSTEM """Be brief."""' in text and 'PARAMETER stop "<|end|>"' in text
    assert "PARAMETER num_ctx 256" in text and "# a note" in text
    assert "ollama create my-run -f Modelfile" in text
    assert modelfile.quoted('say """hi"""') is None


# --- llama-quantize and the free space ---------------------------------------------------------


def fake_tool(folder: Path, script: str) -> None:
    path = folder / quantize.TOOL
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_k_quants_without_llama_quantize_say_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TuiwizError, match="llama-quantize on PATH: build llama.cpp"):
        quantize.tool()


def test_llama_quantize_gets_its_arguments_and_a_failure_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    fake_tool(tmp_path, 'echo "$@" > "$2.args"; cp "$1" "$2"\n')
    source, target = tmp_path / "in.gguf", tmp_path / "out.gguf"
    source.write_bytes(b"GGUF")
    quantize.run(source, target, "q4_k_m", lambda message: None)
    assert (tmp_path / "out.gguf.args").read_text().split() == [str(source), str(target), "Q4_K_M"]
    fake_tool(tmp_path, 'echo "loading"; echo "unsupported tensor type" >&2; exit 1\n')
    target.unlink()
    with pytest.raises(TuiwizError, match="^llama-quantize failed: unsupported tensor type$"):
        quantize.run(source, target, "q4_k_m", lambda message: None)


def test_too_little_disk_space_is_refused_before_writing(monkeypatch, tmp_path):
    monkeypatch.setattr(gguf_export, "free_bytes", lambda folder: 10 * 10**6)
    with pytest.raises(TuiwizError, match=r"needs 50\.0 MB, 10\.0 MB is free"):
        gguf_export.check_space(tmp_path, 50 * 10**6, "the f16 GGUF file")
    monkeypatch.setattr(gguf_export, "free_bytes", lambda folder: 10**12)
    gguf_export.check_space(tmp_path, 50 * 10**6, "the f16 GGUF file")


def test_the_k_quant_size_bound_covers_q6_k():
    assert quantize.upper_bound_bytes(10**9, "q4_k_m") >= 10**9 * 6.5625 / 8
    assert gguf_export.human_bytes(1_500_000_000) == "1.5 GB"


GO_RENDER = """package main

import ("encoding/json"; "fmt"; "os"; "strings"; "text/template")

type Message struct{ Role, Content string }
type Case struct { Template string; Messages []Message; Expected string }

func main() {
	var cases []Case
	data, _ := os.ReadFile(os.Args[1])
	if err := json.Unmarshal(data, &cases); err != nil { panic(err) }
	for i, c := range cases {
		var b strings.Builder
		t, err := template.New("t").Parse(c.Template)
		if err == nil { err = t.Execute(&b, struct{ Messages []Message }{c.Messages}) }
		if err != nil || b.String() != c.Expected {
			fmt.Printf("case %d: %v %q\\n", i, err, b.String())
		}
	}
}
"""


def test_go_renders_the_ollama_templates_as_the_layouts_do(tmp_path):
    """Ollama's templates are Go text/template: with Go installed, Go itself renders them."""
    import json
    import shutil
    import subprocess

    from tuiwiz.demo import build as demo

    if shutil.which("go") is None:
        pytest.skip("Go is not installed (apt-get install golang-go): Go's own rendering unchecked")
    conversations = [
        *modelfile.PROBES,
        *modelfile.SYSTEM_PROBES,
        [],
        [{"role": "user", "content": 'a {{ b }} "q"\n\\ end'}],
    ]
    cases = []
    for template, tokens in [
        (demo.CHAT_TEMPLATE, {}),
        (QWEN25, {}),
        (LLAMA31, {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>"}),
        (MISTRAL, {"bos": "<s>", "eos": "</s>"}),
    ]:
        layout = check_layout(template, **tokens)
        for conversation in conversations:
            messages = [{"Role": m["role"], "Content": m["content"]} for m in conversation]
            expected = layout.render(conversation)
            cases.append(
                {
                    "Template": modelfile.ollama_template(layout),
                    "Messages": messages,
                    "Expected": expected,
                }
            )
    raw = [{"Role": "system", "Content": "S"}, {"Role": "user", "Content": "U"}]
    cases.append({"Template": modelfile.RAW_TEMPLATE, "Messages": raw, "Expected": "S\n\nU"})
    (tmp_path / "main.go").write_text(GO_RENDER)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    done = subprocess.run(
        ["go", "run", "main.go", "cases.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "GO111MODULE": "off", "GOCACHE": str(tmp_path / "cache")},
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


# --- the Modelfile of a run ----------------------------------------------------------------


class FakeRun:
    """What parts_for_run reads of a finished run: its data and how it trained."""

    def __init__(self, tmp_path: Path, rows: list[dict], fmt: str) -> None:
        import json

        self.file = tmp_path / "data.jsonl"
        self.file.write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.config = {"data": {"format": fmt}}
        self.run = type("RunDir", (), {"path": tmp_path})()

    def data(self) -> dict:
        return {"path": str(self.file), "split": "train", "subset": "", "max_samples": 0,
                "format": self.config["data"]["format"], "columns": {}}  # fmt: skip


def alpaca(system: str | None, n: int = 3) -> list[dict]:
    rows = [{"instruction": f"Say {i}", "output": str(i)} for i in range(n)]
    return [{**r, "system": system} for r in rows] if system else rows


def test_the_training_datas_system_prompt_becomes_system(tmp_path):
    tokenizer = tokenizer_with(CHATML, eos="<|im_end|>")
    vocab = vocab_from_tokenizer(tokenizer, len(tokenizer))
    fr = FakeRun(tmp_path, alpaca("Answer in one word."), "alpaca")
    parts = modelfile.parts_for_run(fr, tokenizer, vocab, 32768)
    assert parts.system == '"""Answer in one word."""' and parts.notes == []
    assert parts.template and '{{ if eq .Role "system" }}<|im_start|>system\n' in parts.template
    assert parts.stops == ["<|im_end|>"]
    text = modelfile.modelfile_text("r", "0", "model.gguf", parts)
    assert "PARAMETER num_ctx 4096" in text


def test_several_system_prompts_are_named_not_chosen(tmp_path):
    tokenizer = tokenizer_with(CHATML, eos="<|im_end|>")
    vocab = vocab_from_tokenizer(tokenizer, len(tokenizer))
    rows = alpaca("Be brief.") + alpaca("Be verbose.") + alpaca(None)
    parts = modelfile.parts_for_run(FakeRun(tmp_path, rows, "alpaca"), tokenizer, vocab, 256)
    assert parts.system is None
    assert parts.notes == [
        "the training data has 2 different system prompts: give one with /set system in ollama run"
    ]


def test_a_system_prompt_the_template_cannot_place_means_no_template(tmp_path):
    tokenizer = tokenizer_with(MISTRAL, bos="<s>", eos="</s>")
    vocab = vocab_from_tokenizer(tokenizer, len(tokenizer))
    parts = modelfile.parts_for_run(
        FakeRun(tmp_path, alpaca("Be brief."), "alpaca"), tokenizer, vocab, 256
    )
    assert parts.template is None and "no TEMPLATE" in parts.notes[0]


def test_prompt_completion_runs_get_the_prompt_as_it_is(tmp_path):
    tokenizer = tokenizer_with(None)
    vocab = vocab_from_tokenizer(tokenizer, len(tokenizer))
    rows = [{"prompt": "2+2=", "completion": "4"}]
    parts = modelfile.parts_for_run(
        FakeRun(tmp_path, rows, "prompt_completion"), tokenizer, vocab, 256
    )
    assert parts.template == f'"""{modelfile.RAW_TEMPLATE}"""' and parts.system is None


def test_unreadable_training_data_is_a_note_not_a_failure(tmp_path):
    fr = FakeRun(tmp_path, alpaca(None), "alpaca")
    fr.file.unlink()
    system, note = modelfile.training_system_prompt(fr)
    assert system is None and note.startswith("the training data could not be read")
