"""Exact LoRA parameter counts, computed from an ArchSummary's shapes (no peft import).

The numbers equal what peft's `print_trainable_parameters()` / `get_nb_trainable_parameters()`
report after `get_peft_model` (peft 0.21); tests/unit/test_inspect_lora.py checks them against
peft itself on meta-device models. The matching rules mirror peft's source, cited per function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tuiwiz.errors import ModelError
from tuiwiz.inspect.arch import ArchSummary, ModuleInfo


@dataclass(frozen=True)
class LoraPlan:
    """Which modules get adapters, which are trained in full, and the resulting counts."""

    adapted: list[ModuleInfo]  # layers that get lora_A / lora_B
    saved: list[ModuleInfo]  # modules_to_save: trained copies of whole modules
    lora_params: int  # lora_A + lora_B (+ lora_B bias) over all adapted layers
    dora_params: int  # DoRA magnitude vectors
    bias_params: int  # base-model biases made trainable by bias="all" / "lora_only"
    saved_params: int  # parameters of the modules_to_save copies
    base_params: int  # the base model's parameters (each tensor once)
    by_target: dict[str, dict[str, int]] = field(default_factory=dict)  # short name -> counts
    # (name, shape) of each trainable tensor: what gradients and optimizer states are kept for
    tensors: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def trainable(self) -> int:
        return self.lora_params + self.dora_params + self.bias_params + self.saved_params

    @property
    def total(self) -> int:
        """All parameters of the PEFT model, as peft counts them (copies and adapters added)."""
        return self.base_params + self.lora_params + self.dora_params + self.saved_params


def _suffix_match(key: str, targets: list[str]) -> bool:
    # source: peft/tuners/tuners_utils.py check_target_module_exists (list form)
    return key in targets or any(key.endswith(f".{t}") for t in targets)


def _in_saved(key: str, modules_to_save: list[str]) -> bool:
    # source: check_target_module_exists: adapters never go inside modules_to_save
    return any(re.match(rf"(^|.*\.){re.escape(m)}($|\..*)", key) for m in modules_to_save)


def select_targets(
    summary: ArchSummary, target_modules: list[str] | str, modules_to_save: list[str] | None = None
) -> list[ModuleInfo]:
    """The layers peft adapts for `target_modules`; ModelError when a name matches nothing."""
    saved = modules_to_save or []
    if isinstance(target_modules, str):
        if target_modules.lower() != "all-linear":
            raise ModelError(
                f'[lora] target_modules must be a list of names or "all-linear", '
                f"got {target_modules!r}"
            )
        # source: peft/tuners/tuners_utils.py _maybe_include_all_linear_layers: every
        # nn.Linear / Conv1D except the output embedding
        chosen = summary.adaptable_linears()
        return [m for m in chosen if not _in_saved(m.name, saved)]
    chosen = [
        m
        for m in summary.modules
        if _suffix_match(m.name, target_modules) and not _in_saved(m.name, saved)
    ]
    available = list(summary.linear_modules())
    missing = [t for t in target_modules if not any(_suffix_match(m.name, [t]) for m in chosen)]
    if missing:
        raise ModelError(
            f"[lora] target_modules: the model has no {', '.join(missing)}; its linear modules "
            f'are {", ".join(available)} (or use "all-linear")'
        )
    unsupported = sorted(
        {m.short_name for m in chosen if m.kind not in ("linear", "conv1d", "embedding")}
    )
    if unsupported:
        raise ModelError(
            f"[lora] target_modules: {', '.join(unsupported)} cannot take a LoRA adapter (only "
            f"linear and embedding layers can); its linear modules are {', '.join(available)}"
        )
    return chosen


def _saved_modules(summary: ArchSummary, names: list[str]) -> list[ModuleInfo]:
    # source: peft/utils/other.py _set_trainable: key.endswith(name), plain string suffix
    if not names:
        return []
    found = [m for m in summary.modules if any(m.name.endswith(n) for n in names)]
    missing = [n for n in names if not any(m.name.endswith(n) for m in found)]
    if missing:
        raise ModelError(
            f"[lora] modules_to_save: the model has no module named {', '.join(missing)}"
        )
    # Nested matches are wrapped once, at the outermost module.
    return [m for m in found if not any(m.name.startswith(o.name + ".") for o in found)]


def plan(summary: ArchSummary, lora: dict[str, Any]) -> LoraPlan:
    """Count a [lora] section's parameters on a model: r, target_modules, bias, use_dora,
    modules_to_save (tuiwiz's keys, peft's meaning)."""
    r = int(lora["r"])
    saved_names = list(lora.get("modules_to_save") or [])
    adapted = select_targets(summary, lora["target_modules"], saved_names)
    saved = _saved_modules(summary, saved_names)
    tensors: list[tuple[str, tuple[int, ...]]] = []
    lora_params = dora_params = 0
    by_target: dict[str, dict[str, int]] = {}
    for m in adapted:
        # source: peft/tuners/lora/layer.py LoraLayer.update_layer: lora_A (r x in) and
        # lora_B (out x r); Embedding.update_layer: lora_embedding_A (r x num_embeddings),
        # lora_embedding_B (embedding_dim x r). Conv1D's in/out come from its (in, out) weight.
        a, b = r * m.in_features, m.out_features * r
        tensors += [
            (f"{m.name}.lora_A", (r, m.in_features)),
            (f"{m.name}.lora_B", (m.out_features, r)),
        ]
        count = a + b
        lora_params += count
        if lora.get("use_dora"):
            # source: peft/tuners/lora/dora.py: one magnitude per output feature
            # (DoraLinearLayer) or per embedding dimension (DoraEmbeddingLayer)
            tensors.append((f"{m.name}.lora_magnitude_vector", (m.out_features,)))
            dora_params += m.out_features
            count += m.out_features
        entry = by_target.setdefault(m.short_name, {"count": 0, "params": 0})
        entry["count"] += 1
        entry["params"] += count
    saved_params = 0
    saved_ids: set[str] = set()
    for m in saved:
        for inner in summary.modules:
            if inner.name == m.name or inner.name.startswith(m.name + "."):
                for p in inner.params:
                    saved_params += p.numel
                    saved_ids.add(f"{inner.name}.{p.name}")
                    tensors.append((f"{inner.name}.{p.name} (modules_to_save)", p.shape))
    bias_params = 0
    bias = lora.get("bias", "none")
    if bias != "none":
        # source: peft/tuners/tuners_utils.py _mark_only_adapters_as_trainable
        holders = adapted if bias == "lora_only" else summary.modules
        for m in holders:
            for p in m.params:
                full = f"{m.name}.{p.name}"
                if p.name == "bias" and p.tied_to is None and full not in saved_ids:
                    bias_params += p.numel
                    tensors.append((full, p.shape))
    return LoraPlan(
        adapted,
        saved,
        lora_params,
        dora_params,
        bias_params,
        saved_params,
        summary.total_params,
        by_target,
        tuple(tensors),
    )
