"""A model's architecture as plain data: the facts of its config and every parameter tensor.

`ArchSummary` is what `tuiwiz inspect`, the LoRA parameter counts and the VRAM estimate read. It is
built from the meta-device model (exact for any architecture transformers knows, see
`from_meta_model`) or, for a few common families, straight from config.json without importing
torch (tuiwiz.inspect.families). It round-trips through JSON so that it can be cached.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

SUMMARY_VERSION = 1  # bump when the summary's content or meaning changes (invalidates the cache)

# Module kinds. "linear" and "conv1d" are the layers LoRA adapts as linear layers.
LINEAR_KINDS = ("linear", "conv1d")


@dataclass(frozen=True)
class Param:
    """One parameter of a module: its local name ("weight"), shape, and the full name of the
    tensor it shares storage with when it is tied (counted once, like `model.parameters()`)."""

    name: str
    shape: tuple[int, ...]
    tied_to: str | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class ModuleInfo:
    """A module that owns parameters, or a linear / embedding layer (whose params may be tied)."""

    name: str  # full dotted name, e.g. model.layers.0.self_attn.q_proj
    kind: str  # linear, conv1d, embedding, norm or other
    class_name: str
    params: tuple[Param, ...]
    in_features: int = 0  # linear/conv1d: input width; embedding: number of embeddings
    out_features: int = 0  # linear/conv1d: output width; embedding: embedding dimension
    # bitsandbytes would replace this layer (exactly nn.Linear or Conv1D, not skipped by
    # transformers' get_keys_to_not_convert / _keep_in_fp32_modules).
    quantizable: bool = False

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def has_bias(self) -> bool:
        return any(p.name == "bias" for p in self.params)

    def own_numel(self) -> int:
        """Parameters stored by this module (tied copies excluded)."""
        return sum(p.numel for p in self.params if p.tied_to is None)


@dataclass
class ArchSummary:
    facts: dict[str, Any]  # model_type, layers, hidden_size, heads, kv_heads, head_dim, ...
    modules: list[ModuleInfo]
    input_embedding: str | None = None  # module names
    output_embedding: str | None = None
    source: str = "meta"  # "meta" (built on the meta device), "config" (families), or "cache"
    _by_name: dict[str, ModuleInfo] = field(default_factory=dict, repr=False, compare=False)

    def module(self, name: str) -> ModuleInfo:
        if not self._by_name:
            self._by_name = {m.name: m for m in self.modules}
        return self._by_name[name]

    @property
    def total_params(self) -> int:
        return sum(m.own_numel() for m in self.modules)

    def linear_layers(self) -> list[ModuleInfo]:
        return [m for m in self.modules if m.kind in LINEAR_KINDS]

    def adaptable_linears(self) -> list[ModuleInfo]:
        """The linear layers offered as LoRA targets: all but the output layer (as peft's
        "all-linear" leaves it out)."""
        return [m for m in self.linear_layers() if m.name != self.output_embedding]

    def linear_modules(self) -> OrderedDict[str, dict[str, int]]:
        """Short name -> {"count", "params"} for every adaptable linear layer."""
        found: OrderedDict[str, dict[str, int]] = OrderedDict()
        for m in self.adaptable_linears():
            entry = found.setdefault(m.short_name, {"count": 0, "params": 0})
            entry["count"] += 1
            entry["params"] += sum(p.numel for p in m.params)
        return found

    @property
    def tied_embeddings(self) -> bool:
        if not self.output_embedding:
            return False
        out = self.module(self.output_embedding)
        return any(p.tied_to is not None for p in out.params if p.name == "weight")

    # --- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "version": SUMMARY_VERSION,
            "facts": self.facts,
            "input_embedding": self.input_embedding,
            "output_embedding": self.output_embedding,
            "modules": [
                [
                    m.name,
                    m.kind,
                    m.class_name,
                    [[p.name, list(p.shape), p.tied_to] for p in m.params],
                    m.in_features,
                    m.out_features,
                    m.quantizable,
                ]
                for m in self.modules
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "cache") -> ArchSummary:
        if data.get("version") != SUMMARY_VERSION:
            raise ValueError("summary version mismatch")
        modules = [
            ModuleInfo(
                name,
                kind,
                class_name,
                tuple(Param(p, tuple(shape), tied) for p, shape, tied in params),
                in_f,
                out_f,
                quant,
            )
            for name, kind, class_name, params, in_f, out_f, quant in data["modules"]
        ]
        return cls(
            data["facts"], modules, data["input_embedding"], data["output_embedding"], source
        )


def _first(config: Any, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def facts_from_config(config: Any) -> dict[str, Any]:
    """Architecture facts from a transformers config, under tuiwiz's names (the aliases cover
    GPT-2 style names; transformers' attribute_map resolves most of them already)."""
    hidden = _first(config, "hidden_size", "n_embd", "d_model")
    heads = _first(config, "num_attention_heads", "n_head", "num_heads")
    kv_heads = _first(config, "num_key_value_heads", "num_kv_heads")
    if kv_heads is None and getattr(config, "multi_query", False):
        kv_heads = 1  # Falcon / GPT-BigCode multi-query attention
    head_dim = _first(config, "head_dim")
    if head_dim is None and hidden and heads:
        head_dim = hidden // heads
    intermediate = _first(config, "intermediate_size", "n_inner", "ffn_hidden_size")
    if intermediate is None and hidden:
        intermediate = 4 * hidden  # GPT-2: n_inner=None means 4 * n_embd
    dtype = _first(config, "dtype", "torch_dtype")
    experts = _first(config, "num_local_experts", "num_experts", "n_routed_experts")
    return {
        "model_type": config.model_type,
        "architecture": (getattr(config, "architectures", None) or [None])[0],
        "layers": _first(config, "num_hidden_layers", "n_layer", "num_layers"),
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "heads": heads,
        "kv_heads": kv_heads or heads,
        "head_dim": head_dim,
        "vocab_size": _first(config, "vocab_size"),
        "context_length": _first(
            config, "max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"
        ),
        "hidden_act": _first(config, "hidden_act", "activation_function"),
        "dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,
        "experts": experts or 0,
        # dropout on the residual branches (GPT-2's resid_pdrop): active in training, it keeps a
        # mask per layer for the backward pass
        # rotary position embeddings: no parameters, but cos/sin tables kept for backward
        "rope": any(hasattr(config, k) for k in ("rope_parameters", "rope_theta", "rotary_dim"))
        and not hasattr(config, "n_positions"),
        "resid_dropout": float(
            _first(config, "resid_pdrop", "hidden_dropout", "resid_dropout") or 0
        ),
    }


def module_kind(module: Any) -> str:
    import torch
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, Conv1D):
        return "conv1d"
    if isinstance(module, torch.nn.Linear):
        return "linear"
    if isinstance(module, torch.nn.Embedding):
        return "embedding"
    if "norm" in type(module).__name__.lower():
        return "norm"
    return "other"


def from_meta_model(model: Any, config: Any) -> ArchSummary:
    """Summarize a model built on the meta device: every parameter, each counted once."""
    import torch
    from transformers.pytorch_utils import Conv1D

    from tuiwiz.compat import transformers_internal

    # transformers' private helpers: checked, so a release without them is one clear line.
    get_keys_to_not_convert = transformers_internal(
        "transformers.quantizers.base", "get_keys_to_not_convert"
    )
    should_convert_module = transformers_internal(
        "transformers.quantizers.quantizers_utils", "should_convert_module"
    )
    # What bitsandbytes would leave unquantized: the same call transformers makes in
    # Bnb4BitHfQuantizer._process_model_before_weight_loading (source: quantizers/base.py).
    skip = list(get_keys_to_not_convert(model)) + list(
        getattr(model, "_keep_in_fp32_modules", None) or []
    )
    output = model.get_output_embeddings()
    input_ = model.get_input_embeddings()
    names = {id(m): n for n, m in model.named_modules()}
    first_owner: dict[int, str] = {}
    modules: list[ModuleInfo] = []
    for name, module in model.named_modules():
        kind = module_kind(module)
        params = []
        for local, p in module.named_parameters(recurse=False):
            full = f"{name}.{local}" if name else local
            tied = first_owner.setdefault(id(p), full)
            params.append(Param(local, tuple(p.shape), None if tied == full else tied))
        if not params and kind not in ("linear", "conv1d", "embedding"):
            continue
        in_f = out_f = 0
        if kind == "conv1d":
            in_f, out_f = module.weight.shape  # Conv1D stores (in, out)
        elif kind == "linear":
            in_f, out_f = module.in_features, module.out_features
        elif kind == "embedding":
            in_f, out_f = module.num_embeddings, module.embedding_dim
        quantizable = (type(module) is torch.nn.Linear or isinstance(module, Conv1D)) and bool(
            should_convert_module(name, skip)
        )
        modules.append(
            ModuleInfo(name, kind, type(module).__name__, tuple(params), in_f, out_f, quantizable)
        )
    facts = facts_from_config(config)
    facts["architecture"] = type(model).__name__  # what AutoModelForCausalLM really builds
    return ArchSummary(
        facts,
        modules,
        input_embedding=names.get(id(input_)) if input_ is not None else None,
        output_embedding=names.get(id(output)) if output is not None else None,
        source="meta",
    )
