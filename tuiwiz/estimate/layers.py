"""The shape of one decoder layer, read off an ArchSummary: which linear layers feed attention and
the MLP, the widths, the norm kind. The activation model (tuiwiz.estimate.activations) walks it.

Decoder layers of causal LMs follow one plan: norm -> q/k/v (or a fused qkv) -> attention -> out
projection -> residual add -> norm -> up (and gate) -> activation -> down -> residual add. The
names differ by family (q_proj / c_attn / query_key_value, down_proj / c_proj / fc2); they are
classified here by their place (attention or MLP block) and their name.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from tuiwiz.inspect.arch import ArchSummary, ModuleInfo
from tuiwiz.inspect.lora import LoraPlan

_LAYER = re.compile(r"^(?P<prefix>.*?\.)(?P<index>\d+)\.(?P<rest>.+)$")
_ATTN = ("attn", "attention")
_MLP = ("mlp", "ffn", "feed_forward", "fc")
_ATTN_OUT = {"o_proj", "out_proj", "c_proj", "dense", "wo", "o", "proj"}
_MLP_OUT = {"down_proj", "c_proj", "fc2", "w2", "dense_4h_to_h", "proj_out", "wo"}
# Activations written as Python expressions save several tensors (transformers/activations.py
# NewGELUActivation: input, tanh output, 0.5*input and 1+tanh); the torch ones save their input.
PYTHON_ACTIVATIONS = {"gelu_new": 4, "gelu_fast": 4, "gelu_accurate": 4, "gelu_python": 2}


@dataclass
class LayerPlan:
    prefix: str  # "model.layers."
    count: int
    hidden: int
    q_dim: int  # heads * head_dim
    kv_dim: int
    heads: int
    kv_heads: int
    inner: int  # MLP width
    gated: bool
    norm_kind: str  # "rms" or "layer"
    norms: int  # hidden-width norms per layer
    qk_norm: bool
    attn_in: list[str] = field(default_factory=list)  # names relative to a layer
    attn_out: list[str] = field(default_factory=list)
    mlp_in: list[str] = field(default_factory=list)
    mlp_out: list[str] = field(default_factory=list)
    widths: dict[str, tuple[int, int]] = field(default_factory=dict)  # rel name -> (in, out)
    activation_saves: int = 1
    rope: bool = True  # rotary position embeddings (cos / sin tables)
    resid_dropout: float = 0.0
    approximate: str = ""  # why the plan is a guess, when it is


def _place(rest: str) -> str:
    parent = rest.rsplit(".", 1)[0] if "." in rest else ""
    if any(k in parent for k in _ATTN):
        return "attn"
    if any(k in parent for k in _MLP):
        return "mlp"
    return ""


def plan_layers(summary: ArchSummary) -> LayerPlan:
    f = summary.facts
    hidden, heads = int(f["hidden_size"]), int(f["heads"])
    kv_heads, head_dim = int(f["kv_heads"] or heads), int(f["head_dim"] or hidden // heads)
    prefixes = Counter()
    for m in summary.modules:
        if (match := _LAYER.match(m.name)) and m.kind in ("linear", "conv1d"):
            prefixes[match["prefix"]] += 1
    plan = LayerPlan(
        prefix="",
        count=int(f["layers"] or 0),
        hidden=hidden,
        q_dim=heads * head_dim,
        kv_dim=kv_heads * head_dim,
        heads=heads,
        kv_heads=kv_heads,
        inner=int(f["intermediate_size"] or 4 * hidden),
        gated=True,
        norm_kind="rms",
        norms=2,
        qk_norm=False,
    )
    act = str(f.get("hidden_act") or "silu")
    plan.activation_saves = PYTHON_ACTIVATIONS.get(act, 1)
    plan.resid_dropout = float(f.get("resid_dropout") or 0.0)
    plan.rope = bool(f.get("rope", True))
    if not prefixes:
        plan.approximate = "no repeated decoder layers found; a Llama-style layer is assumed"
        return plan
    plan.prefix = prefixes.most_common(1)[0][0]
    first = f"{plan.prefix}0."
    layer0: list[ModuleInfo] = [m for m in summary.modules if m.name.startswith(first)]
    norms = [m for m in layer0 if m.kind == "norm"]
    plan.norms = sum(1 for m in norms if m.params and m.params[0].shape == (hidden,)) or 2
    plan.qk_norm = any(m.params and m.params[0].shape == (head_dim,) for m in norms)
    if (
        norms
        and "layernorm" in norms[0].class_name.lower()
        and "rms" not in norms[0].class_name.lower()
    ):
        plan.norm_kind = "layer"
    for m in layer0:
        if m.kind not in ("linear", "conv1d"):
            continue
        rest = m.name[len(first) :]
        plan.widths[rest] = (m.in_features, m.out_features)
        short = m.short_name
        place = _place(rest)
        if place == "attn":
            (plan.attn_out if short in _ATTN_OUT else plan.attn_in).append(rest)
        elif place == "mlp":
            (plan.mlp_out if short in _MLP_OUT else plan.mlp_in).append(rest)
    if not (plan.attn_in and plan.attn_out and plan.mlp_in and plan.mlp_out):
        plan.approximate = "the layer's attention / MLP blocks were not recognized by name"
    if plan.mlp_out:
        plan.inner = plan.widths[plan.mlp_out[0]][0]
    up_width = sum(plan.widths[r][1] for r in plan.mlp_in)
    plan.gated = len(plan.mlp_in) >= 2 or up_width == 2 * plan.inner
    if int(f.get("experts") or 0) > 1:
        plan.approximate = "mixture-of-experts layers are estimated as one dense MLP per token"
    return plan


def adapted_per_layer(plan: LayerPlan, lora: LoraPlan) -> list[set[str]]:
    """For each layer, the names (relative to the layer) of its linear layers with adapters."""
    per_layer: list[set[str]] = [set() for _ in range(plan.count)]
    for m in lora.adapted:
        if plan.prefix and m.name.startswith(plan.prefix):
            index, _, rest = m.name[len(plan.prefix) :].partition(".")
            if index.isdigit() and int(index) < plan.count:
                per_layer[int(index)].add(rest)
    return per_layer
