"""The fast path: the module tree of a few common families computed from config.json alone.

`import transformers` and a modeling module cost several seconds on a small machine, which is too
slow for `tuiwiz inspect` / `tuiwiz estimate` on every keystroke of the wizard. For the Llama-style
families below the parameter shapes follow from a handful of config keys, so they are written out
here, mirroring transformers' modeling code (the `source:` lines name it).

Exactness is kept by refusing rather than guessing: a config with any key this module does not
know, a null where the modeling code would crash, or an architecture transformers would reject
returns None, and the caller builds the real model on the meta device instead. The unit tests
compare this path with the meta-device model for many random configs, and record which config
attributes the modeling code reads, so a transformers upgrade that changes a family fails a test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tuiwiz.inspect.arch import ArchSummary, ModuleInfo, Param

# Keys that never change the module tree of these families: ids, runtime switches, RoPE and
# initialization settings, bookkeeping written by tools. Anything else sends the config to the
# exact (meta-device) path.
NEUTRAL_KEYS = frozenset(
    {
        "_name_or_path",
        "_attn_implementation_autoset",
        "architectures",
        "model_type",
        "transformers_version",
        "torch_dtype",
        "dtype",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "use_cache",
        "initializer_range",
        "rms_norm_eps",
        "hidden_act",
        "max_position_embeddings",
        "rope_theta",
        "rope_scaling",
        "rope_parameters",
        "rope_interleaved",
        "attention_dropout",
        "pretraining_tp",
        "is_llama_config",
        "sliding_window",
        "use_sliding_window",
        "max_window_layers",
        "layer_types",
        "use_mrope",
        "unsloth_fixed",
        "original_max_position_embeddings",
        "output_attentions",
        "output_hidden_states",
        "return_dict",
    }
)


@dataclass(frozen=True)
class Family:
    structural: frozenset[str]  # keys the shapes depend on (modeled below)
    defaults: dict[str, Any]  # the config class's defaults (checked against transformers in tests)
    architecture: str
    attention: Callable[[dict[str, Any]], dict[str, bool]]  # bias per projection
    head_dim: Callable[[dict[str, Any], int, int], int | None]  # (config, hidden, heads)
    context_length: int = 2048  # max_position_embeddings default (a fact only, no parameters)
    qk_norm: bool = False


_COMMON = frozenset(
    {
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "tie_word_embeddings",
    }
)


def _derived_head_dim(c: dict[str, Any], hidden: int, heads: int) -> int | None:
    # source: LlamaConfig.__post_init__ / MistralConfig.__post_init__: None -> hidden // heads
    return c["head_dim"] if c.get("head_dim") is not None else hidden // heads


def _qwen2_head_dim(c: dict[str, Any], hidden: int, heads: int) -> int | None:
    # source: Qwen2Attention: getattr(config, "head_dim", hidden // heads); Qwen2Config has no
    # such field, so only a head_dim written in config.json counts, and a null one would crash.
    if "head_dim" not in c:
        return hidden // heads
    return c["head_dim"]


def _qwen3_head_dim(c: dict[str, Any], hidden: int, heads: int) -> int | None:
    return c.get("head_dim")  # source: Qwen3Config.head_dim defaults to 128, used as is


FAMILIES: dict[str, Family] = {
    # source: transformers/models/llama/{configuration,modeling}_llama.py
    "llama": Family(
        _COMMON | {"attention_bias", "mlp_bias"},
        {
            "vocab_size": 32000,
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": None,
            "head_dim": None,
            "tie_word_embeddings": False,
            "attention_bias": False,
            "mlp_bias": False,
        },
        "LlamaForCausalLM",
        lambda c: (
            dict.fromkeys(("q", "k", "v", "o"), bool(c["attention_bias"]))
            | {"mlp": bool(c["mlp_bias"])}
        ),
        _derived_head_dim,
        context_length=2048,
    ),
    # source: transformers/models/mistral/{configuration,modeling}_mistral.py (no biases)
    "mistral": Family(
        _COMMON,
        {
            "vocab_size": 32000,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": None,
            "tie_word_embeddings": False,
        },
        "MistralForCausalLM",
        lambda c: dict.fromkeys(("q", "k", "v", "o", "mlp"), False),
        _derived_head_dim,
        context_length=4096 * 32,
    ),
    # source: transformers/models/qwen2/modeling_qwen2.py: q/k/v with bias, o_proj without
    "qwen2": Family(
        _COMMON,
        {
            "vocab_size": 151936,
            "hidden_size": 4096,
            "intermediate_size": 22016,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "tie_word_embeddings": False,
        },
        "Qwen2ForCausalLM",
        lambda c: {"q": True, "k": True, "v": True, "o": False, "mlp": False},
        _qwen2_head_dim,
        context_length=32768,
    ),
    # source: transformers/models/qwen3/modeling_qwen3.py: q_norm / k_norm over head_dim
    "qwen3": Family(
        _COMMON | {"attention_bias"},
        {
            "vocab_size": 151936,
            "hidden_size": 4096,
            "intermediate_size": 22016,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "head_dim": 128,
            "tie_word_embeddings": False,
            "attention_bias": False,
        },
        "Qwen3ForCausalLM",
        lambda c: dict.fromkeys(("q", "k", "v", "o"), bool(c["attention_bias"])) | {"mlp": False},
        _qwen3_head_dim,
        context_length=32768,
        qk_norm=True,
    ),
}


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _linear(name: str, n_in: int, n_out: int, bias: bool, quantizable: bool = True) -> ModuleInfo:
    params = (Param("weight", (n_out, n_in)),) + ((Param("bias", (n_out,)),) if bias else ())
    return ModuleInfo(name, "linear", "Linear", params, n_in, n_out, quantizable)


def _norm(name: str, class_name: str, width: int) -> ModuleInfo:
    return ModuleInfo(name, "norm", class_name, (Param("weight", (width,)),))


def summarize_config(raw: dict[str, Any]) -> ArchSummary | None:
    """The summary of a supported family's config.json, or None to use the exact path."""
    family = FAMILIES.get(raw.get("model_type", ""))
    if family is None or "auto_map" in raw:
        return None
    if any(k not in family.structural and k not in NEUTRAL_KEYS for k in raw):
        return None
    c = {**family.defaults, **raw}
    hidden, heads, layers = c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"]
    kv = c["num_key_value_heads"] if c["num_key_value_heads"] is not None else heads
    if not all(_positive_int(x) for x in (hidden, heads, layers, kv, c["vocab_size"])):
        return None
    if not _positive_int(c["intermediate_size"]):
        return None
    pad = c.get("pad_token_id")  # nn.Embedding rejects a padding_idx outside the vocabulary
    if pad is not None and not (isinstance(pad, int) and -c["vocab_size"] <= pad < c["vocab_size"]):
        return None
    # source: PreTrainedConfig.validate_architecture (LlamaConfig): hidden % heads must be 0
    if family.architecture == "LlamaForCausalLM" and hidden % heads:
        return None
    head_dim = family.head_dim(c, hidden, heads)
    if not _positive_int(head_dim):
        return None
    bias = family.attention(c)
    tied = c["tie_word_embeddings"]
    if not isinstance(tied, bool):
        return None
    prefix = family.architecture.removesuffix("ForCausalLM")
    norm = f"{prefix}RMSNorm"
    inter = c["intermediate_size"]
    modules = [
        ModuleInfo(
            "model.embed_tokens",
            "embedding",
            "Embedding",
            (Param("weight", (c["vocab_size"], hidden)),),
            c["vocab_size"],
            hidden,
        )
    ]
    for i in range(layers):
        p = f"model.layers.{i}"
        modules += [
            _linear(f"{p}.self_attn.q_proj", hidden, heads * head_dim, bias["q"]),
            _linear(f"{p}.self_attn.k_proj", hidden, kv * head_dim, bias["k"]),
            _linear(f"{p}.self_attn.v_proj", hidden, kv * head_dim, bias["v"]),
            _linear(f"{p}.self_attn.o_proj", heads * head_dim, hidden, bias["o"]),
        ]
        if family.qk_norm:
            modules += [
                _norm(f"{p}.self_attn.q_norm", norm, head_dim),
                _norm(f"{p}.self_attn.k_norm", norm, head_dim),
            ]
        modules += [
            _linear(f"{p}.mlp.gate_proj", hidden, inter, bias["mlp"]),
            _linear(f"{p}.mlp.up_proj", hidden, inter, bias["mlp"]),
            _linear(f"{p}.mlp.down_proj", inter, hidden, bias["mlp"]),
            _norm(f"{p}.input_layernorm", norm, hidden),
            _norm(f"{p}.post_attention_layernorm", norm, hidden),
        ]
    modules.append(_norm("model.norm", norm, hidden))
    # lm_head is never quantized: transformers' get_keys_to_not_convert skips the output layer.
    head = _linear("lm_head", hidden, c["vocab_size"], False, quantizable=False)
    if tied:
        head = ModuleInfo(
            head.name,
            head.kind,
            head.class_name,
            (Param("weight", (c["vocab_size"], hidden), "model.embed_tokens.weight"),),
            hidden,
            c["vocab_size"],
            False,
        )
    modules.append(head)
    dtype = c.get("dtype", c.get("torch_dtype"))
    facts = {
        "model_type": raw["model_type"],
        "architecture": family.architecture,
        "layers": layers,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "heads": heads,
        "kv_heads": kv,
        "head_dim": head_dim,
        "vocab_size": c["vocab_size"],
        "context_length": c.get("max_position_embeddings", family.context_length),
        "hidden_act": c.get("hidden_act", "silu"),
        "dtype": dtype,
        "experts": 0,
        "resid_dropout": 0.0,
        "rope": True,
    }
    return ArchSummary(facts, modules, "model.embed_tokens", "lm_head", source="config")
