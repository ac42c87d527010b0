"""Training speed options and the `[training] speed` shortcut.

The options, each a preset key of its own (see tuiwiz.explain):

- `[training] padding_free`: batches without padding (TRL): the examples of a batch are joined
  into one row, position ids restart at each example and the attention is kept within each
  example. With flash_attention_2 the kernel skips the padding entirely; with sdpa transformers
  builds a block-diagonal mask from the position ids.
- `[data] packing`: several examples per max_seq_length row (TRL's best-fit packing, padding-free).
- `[training] use_liger_kernel`: Liger's Triton kernels for the norms, SwiGLU MLP and rotary
  embeddings (CUDA only, the `liger-kernel` package). TRL keeps its own fused LM head and turns
  Liger's fused cross-entropy off, so only one of the two patches the model's loss.
- `[training] train_sampling_strategy = "group_by_length"`: batches of similar lengths.
- `[model] attn_implementation = "flash_attention_2"` (CUDA and the `flash-attn` package).
- `[training] activation_offloading`: saved activations in CPU RAM (TRL, CUDA only).

`speed = "fast"` stands for the fastest set of these known to give the same result on the machine
the run trains on: padding-free batches everywhere, Liger kernels where CUDA and liger-kernel are
there, flash_attention_2 where CUDA and flash-attn are. It fills in only the options a preset
leaves unset; `resolve` replaces the shortcut by what it stands for there, so a run's preset.toml
says exactly what ran. Explicit options that cannot work on the machine are refused before the
run starts (`problems`). Standard library only: the wizard imports this at startup.
"""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass
from typing import Any

SPEEDS = ("default", "fast")
DEFAULT = "default"
# The training options tuiwiz sets from the shortcut (and only those): a preset that sets one
# itself keeps its value.
FAST_KEYS = ("padding_free", "use_liger_kernel")


@dataclass(frozen=True)
class Machine:
    """What the speed options need, as found on the machine a run trains on."""

    cuda: bool
    liger: bool  # the liger-kernel package is importable
    flash_attn: bool  # the flash-attn package is importable

    @property
    def liger_works(self) -> bool:
        return self.cuda and self.liger

    @property
    def flash_attn_works(self) -> bool:
        return self.cuda and self.flash_attn


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _cuda() -> bool:
    """A CUDA GPU: torch's word when torch is already imported (the training process), else
    NVML's (TUIWIZ_FAKE_NVML in tests), which costs no torch import."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.cuda.is_available())
    from tuiwiz.gpu import read_gpus

    return read_gpus().available


def this_machine(cuda: bool | None = None) -> Machine:
    return Machine(
        cuda=_cuda() if cuda is None else cuda,
        liger=_importable("liger_kernel"),
        flash_attn=_importable("flash_attn"),
    )


def speed_of(config: dict[str, Any]) -> str:
    return str(config["training"].get("speed", DEFAULT))


def resolve(config: dict[str, Any], machine: Machine) -> dict[str, Any]:
    """The configuration with `speed = "fast"` turned into the options it stands for on
    `machine`, where the preset leaves them unset. The `speed` key stays, as the record of the
    choice; resolving a resolved configuration changes nothing."""
    if speed_of(config) != "fast":
        return config
    out = copy.deepcopy(config)
    training, model = out["training"], out["model"]
    training.setdefault("padding_free", True)
    training.setdefault("use_liger_kernel", machine.liger_works)
    if model["attn_implementation"] == "sdpa" and machine.flash_attn_works:
        model["attn_implementation"] = "flash_attention_2"
    return out


def resolve_in_place(config: dict[str, Any], machine: Machine) -> None:
    """`resolve`, written into `config` itself: the training process records the resolved
    configuration as the run's preset.toml, so it must be the object it goes on to use."""
    resolved = resolve(config, machine)
    if resolved is config:
        return
    for section in ("training", "model"):
        config[section].clear()
        config[section].update(resolved[section])


def fast_notes(config: dict[str, Any], machine: Machine) -> list[str]:
    """For a resolved `speed = "fast"`: what it left off on `machine`, and why."""
    if speed_of(config) != "fast":
        return []
    notes = []
    if not config["training"].get("use_liger_kernel") and not machine.liger_works:
        why = "no CUDA GPU" if not machine.cuda else "liger-kernel is not installed"
        notes.append(f"Liger kernels off: {why}")
    if config["model"]["attn_implementation"] == "sdpa" and not machine.flash_attn_works:
        why = "no CUDA GPU" if not machine.cuda else "flash-attn is not installed"
        notes.append(f"flash_attention_2 off: {why}")
    return notes


def summary(config: dict[str, Any], machine: Machine) -> str:
    """`speed = fast: padding-free batches, sdpa (Liger kernels off: no CUDA GPU; ...)`."""
    line = f"speed = {speed_of(config)}: {describe(config)}"
    notes = fast_notes(config, machine)
    return line + (f" ({'; '.join(notes)})" if notes else "")


def describe(config: dict[str, Any]) -> str:
    """The speed options in effect, in one line: `padding-free batches, Liger kernels, sdpa`."""
    t, data = config["training"], config["data"]
    parts = []
    if data.get("packing"):
        parts.append("packing")
    elif t.get("padding_free"):
        parts.append("padding-free batches")
    else:
        parts.append("padded batches")
    if t.get("use_liger_kernel"):
        parts.append("Liger kernels")
    if str(t.get("train_sampling_strategy", "random")) == "group_by_length":
        parts.append("length-grouped batches")
    if t.get("activation_offloading"):
        parts.append("activations offloaded to CPU RAM")
    parts.append(str(config["model"]["attn_implementation"]))
    return ", ".join(parts)


def problems(config: dict[str, Any], machine: Machine) -> list[str]:
    """Options the preset asks for that cannot work on `machine`, one line each with the fix."""
    t, model = config["training"], config["model"]
    out = []
    if t.get("use_liger_kernel"):
        if not machine.cuda:
            out.append(
                "[training] use_liger_kernel needs a CUDA GPU (Liger's kernels are Triton GPU "
                'kernels); set it to false, or use speed = "fast", which turns it on only where '
                "it works"
            )
        elif not machine.liger:
            out.append(
                "[training] use_liger_kernel needs the liger-kernel package: "
                "pip install 'tuiwiz[fast]'"
            )
    attn = str(model["attn_implementation"])
    if attn.startswith("flash_attention") and not machine.cuda:
        out.append(f"[model] attn_implementation = {attn} needs a CUDA GPU; use sdpa")
    elif attn == "flash_attention_2" and not machine.flash_attn:
        out.append(
            "[model] attn_implementation = flash_attention_2 needs the flash-attn package "
            "(pip install flash-attn --no-build-isolation); or use sdpa"
        )
    if t.get("activation_offloading") and not machine.cuda:
        out.append(
            "[training] activation_offloading needs a CUDA GPU (it moves saved activations from "
            "GPU memory to CPU RAM; on the CPU they are in RAM already); set it to false"
        )
    return out
