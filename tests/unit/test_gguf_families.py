"""Each supported family's GGUF file, checked by llama.cpp itself (llama-cpp-python): a tiny model
with random weights and a tokenizer trained here in each family's style (Llama 3, Qwen2, Qwen3,
SmolLM, GPT-2 and SentencePiece-style Llama 2 / Mistral), converted in float32; llama.cpp must
split texts into the same token ids as transformers and compute the same logits.

Random weights make every tensor matter: a wrong Q/K permutation or rotary scaling moves the
logits by about 0.1, a hundred times the tolerance.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tuiwiz.after import gguf_export
from tuiwiz.after.gguf_vocab import LLAMA3_REGEX, QWEN2_REGEX

INSTALL = ".venv/bin/pip install -e '.[gguf-test]'"
SPECIALS = ["<|begin|>", "<|end|>", "<|im_start|>", "<|im_end|>"]
TEXTS = [
    "Hello world",
    "  leading  and trailing spaces ",
    "numbers 12345 and 3.14159, 1000000",
    "tabs\tand\nnew\n\nlines\r\n",
    "unicode: café naïve 日本語 🙂 Ωmega",
    "I'm sure we'll go, they'VE said",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
    "x",
]


@pytest.fixture(scope="module")
def llama_cpp():
    return pytest.importorskip(
        "llama_cpp",
        reason=f"llama-cpp-python is not installed: {INSTALL} (it compiles llama.cpp, ~10 min)",
    )


def corpus() -> list[str]:
    rng = random.Random(7)
    syllables = ["ka", "lo", "mi", "tre", "sun", "ba", "rel", "o", "an", "the", "ing", "er"]
    lines = []
    for _ in range(400):
        words = ["".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(8)]
        words[rng.randrange(8)] = rng.choice(["I'm", "we'll", "don't", "café", "日本語", "🙂"])
        words[rng.randrange(8)] = str(rng.randint(0, 99999))
        lines.append(" ".join(words).capitalize() + rng.choice([".", ",", "!", "?\n", ":\t"]))
    return lines


def byte_level_tokenizer(pre, ignore_merges: bool = False, normalizer=None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=SPECIALS,
        show_progress=False,
    )
    backend.train_from_iterator(corpus(), trainer)
    backend.post_processor = processors.TemplateProcessing(
        single="<|begin|> $A", special_tokens=[("<|begin|>", 0)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|begin|>", eos_token="<|end|>"
    )


def sentencepiece_tokenizer():
    """Llama 2's layout: a BPE with byte fallback, <0x00>..<0xFF> right after <unk> <s> </s>,
    and SentencePiece's visible space put in front by the normalizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    backend.normalizer = normalizers.Sequence(
        [normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False
    )
    backend.train_from_iterator(corpus(), trainer)
    data = json.loads(backend.to_str())
    trained = sorted(data["model"]["vocab"], key=data["model"]["vocab"].get)
    ordered = trained[:3] + [f"<0x{b:02X}>" for b in range(256)] + trained[3:]
    data["model"]["vocab"] = {token: i for i, token in enumerate(dict.fromkeys(ordered))}
    for added in data["added_tokens"]:
        added["id"] = data["model"]["vocab"][added["content"]]
    backend = Tokenizer.from_str(json.dumps(data))
    backend.decoder = decoders.Sequence(
        [
            decoders.Replace("\u2581", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def tiny_model(kind: str, n_vocab: int, **settings):
    import transformers

    config_class, model_class = {
        "llama": ("LlamaConfig", "LlamaForCausalLM"),
        "mistral": ("MistralConfig", "MistralForCausalLM"),
        "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
        "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
    }[kind]
    config = getattr(transformers, config_class)(
        **{
            "vocab_size": n_vocab,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-5,
            **settings,
        }
    )
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(config).eval()
    with torch.no_grad():  # every weight, norms and biases too, away from its neutral value
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


def llama3_split():
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def qwen2_split():
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_REGEX), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def family(name: str):
    """(tokenizer, model, expected tokenizer.ggml.pre) of one family."""
    from tokenizers import normalizers, pre_tokenizers

    if name == "llama3":
        tokenizer = byte_level_tokenizer(llama3_split(), ignore_merges=True)
        return tokenizer, tiny_model("llama", len(tokenizer)), "llama-bpe"
    if name == "llama3.1":  # frequency-dependent rotary scaling, tied embeddings
        tokenizer = byte_level_tokenizer(llama3_split(), ignore_merges=True)
        scaling = {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        }
        model = tiny_model(
            "llama",
            len(tokenizer),
            rope_scaling=scaling,
            rope_theta=500000.0,
            tie_word_embeddings=True,
        )
        return tokenizer, model, "llama-bpe"
    if name == "qwen2":  # Q/K/V biases, tied embeddings, NFC normalizer
        tokenizer = byte_level_tokenizer(qwen2_split(), normalizer=normalizers.NFC())
        return tokenizer, tiny_model("qwen2", len(tokenizer), tie_word_embeddings=True), "qwen2"
    if name == "qwen3":  # Q/K norms, a head size that is not hidden / heads
        tokenizer = byte_level_tokenizer(qwen2_split(), normalizer=normalizers.NFC())
        return tokenizer, tiny_model("qwen3", len(tokenizer), head_dim=32), "qwen2"
    if name == "smollm":
        split = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
        tokenizer = byte_level_tokenizer(split)
        return tokenizer, tiny_model("llama", len(tokenizer), tie_word_embeddings=True), "smollm"
    if name == "gpt2":
        tokenizer = byte_level_tokenizer(
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        )
        return tokenizer, tiny_model("llama", len(tokenizer)), "gpt-2"
    tokenizer = sentencepiece_tokenizer()  # Llama 2, Mistral
    return tokenizer, tiny_model("mistral", len(tokenizer)), None


@pytest.mark.parametrize(
    "name", ["llama3", "llama3.1", "qwen2", "qwen3", "smollm", "gpt2", "sentencepiece"]
)
def test_llama_cpp_reads_the_family_as_transformers_does(name, llama_cpp, tmp_path: Path):
    tokenizer, model, pre = family(name)
    plan = gguf_export.plan_model(model.config.to_dict(), model, tokenizer, "f32", name)
    assert plan.vocab.pre == pre
    path = tmp_path / "model.gguf"
    gguf_export.write(plan, model.state_dict(), path)
    llm = llama_cpp.Llama(str(path), n_ctx=512, logits_all=True, verbose=False, n_threads=2)
    for text in TEXTS:
        ours = llm.tokenize(text.encode(), add_bos=True, special=True)
        assert ours == tokenizer(text)["input_ids"], text
    ids = tokenizer(" ".join(TEXTS))["input_ids"]
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0].numpy()
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)])
    assert np.abs(logits - expected).max() < 0.005
