"""Optimizer state bytes per optimizer, from the trainable tensors' shapes and dtypes.

Each optimizer allocates its state lazily, on the first step, per parameter tensor. The names are
transformers' `optim` values (source: transformers/trainer_optimizer.py, which maps them onto
torch.optim, bitsandbytes.optim and transformers.optimization.Adafactor).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from tuiwiz.estimate.weights import alloc

# source: bitsandbytes/optim/optimizer.py Optimizer2State/Optimizer1State.init_state: tensors
# with fewer than min_8bit_size elements keep 32-bit state; 8-bit state is blockwise quantized in
# blocks of 256 with one float32 absmax per block and per state.
MIN_8BIT_SIZE = 4096
BNB_BLOCK = 256
# source: Optimizer8bit.get_state_buffer: paged (cudaMallocManaged) only from 1e5 elements
PAGED_MIN = 100_000


@dataclass(frozen=True)
class OptimizerBytes:
    states: int  # in the CUDA caching allocator
    paged: int  # bitsandbytes paged states: unified memory, outside torch's allocator
    step_temporaries: int  # extra buffers while optimizer.step() runs
    name: str
    note: str = ""


# optim name -> (number of states, bits, paged, family)
_BNB = {
    "adamw_bnb_8bit": (2, 8, False),
    "adamw_8bit": (2, 8, False),
    "paged_adamw_8bit": (2, 8, True),
    "paged_adamw_32bit": (2, 32, True),
    "lion_8bit": (1, 8, False),
    "lion_32bit": (1, 32, False),
    "paged_lion_8bit": (1, 8, True),
    "paged_lion_32bit": (1, 32, True),
    "rmsprop_bnb": (1, 32, False),
    "rmsprop_bnb_8bit": (1, 8, False),
    "rmsprop_bnb_32bit": (1, 32, False),
    "ademamix_8bit": (3, 8, False),
    "paged_ademamix_8bit": (3, 8, True),
    "paged_ademamix_32bit": (3, 32, True),
}
_TORCH_ADAM = {
    "adamw_torch",
    "adamw_torch_fused",
    "adamw_torch_npu_fused",
    "adamw_anyprecision",
    "adamw_torch_xla",
    "stable_adamw",
    "ademamix",
}


def _optim_args(text: str) -> dict[str, str]:
    # TrainingArguments.optim_args: "momentum=0.9,nesterov=True"
    out = {}
    for part in text.split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _bnb_state(numel: int, bits: int, paged: bool, device: str) -> tuple[int, int]:
    """(allocator bytes, paged bytes) of one bitsandbytes state buffer of a tensor."""
    if bits == 32 or numel < MIN_8BIT_SIZE:
        buf, extra = numel * 4, 0
    else:
        buf, extra = numel, alloc(-(-numel // BNB_BLOCK) * 4, device)  # uint8 + absmax
    if paged and device == "cuda" and numel >= PAGED_MIN:
        return extra, buf
    return alloc(buf, device) + extra, 0


def optimizer_bytes(
    optim: str, tensors: Iterable[tuple[tuple[int, ...], int]], device: str, optim_args: str = ""
) -> OptimizerBytes:
    """State bytes for `optim` over (shape, dtype bytes) of each trainable tensor."""
    tensors = list(tensors)
    args = _optim_args(optim_args)
    states = paged = temp = 0
    note = ""
    if optim in _BNB:
        count, bits, is_paged = _BNB[optim]
        for shape, _ in tensors:
            for _ in range(count):
                s, p = _bnb_state(math.prod(shape), bits, is_paged, device)
                states, paged = states + s, paged + p
        if bits == 8 and any(math.prod(shape) >= MIN_8BIT_SIZE for shape, _ in tensors):
            # the signed and unsigned 256-entry quantization maps, shared by all tensors
            # (Optimizer8bit.fill_qmap, moved to the device once)
            states += 2 * alloc(256 * 4, device)
        return OptimizerBytes(states, paged, 0, optim)
    if optim == "adafactor":
        # source: transformers/optimization.py Adafactor.step: a factored second moment (row and
        # column means) for tensors of 2+ dims, a full one otherwise; no first moment because
        # the Trainer leaves beta1=None. States take the gradient's dtype.
        for shape, size in tensors:
            if len(shape) >= 2:
                rows, cols = math.prod(shape[:-1]), math.prod(shape[:-2]) * shape[-1]
                states += alloc(rows * size, device) + alloc(cols * size, device)
            else:
                states += alloc(math.prod(shape) * size, device)
        return OptimizerBytes(states, 0, 0, optim)
    if optim in ("sgd", "adagrad", "rmsprop"):
        # source: torch/optim/sgd.py (momentum_buffer only with momentum > 0; the Trainer's
        # default is 0), adagrad.py ("sum"), rmsprop.py (square_avg, + momentum / grad_avg)
        per = {
            "sgd": 1 if float(args.get("momentum", 0)) > 0 else 0,
            "adagrad": 1,
            "rmsprop": 1 + (float(args.get("momentum", 0)) > 0),
        }[optim]
        for shape, size in tensors:
            states += per * alloc(math.prod(shape) * size, device)
        return OptimizerBytes(states, 0, 0, optim)
    if optim in ("adamw_torch_8bit", "adamw_torch_4bit"):
        # torchao low-bit AdamW: 8 or 4 bits per state element and a float32 scale per block
        # of 256 (8-bit) / 128 (4-bit) elements; small tensors keep float32 states.
        bits, block = (8, 256) if optim.endswith("8bit") else (4, 128)
        for shape, size in tensors:
            n = math.prod(shape)
            one = n * size if n < MIN_8BIT_SIZE else -(-n * bits // 8) + -(-n // block) * 4
            states += 2 * alloc(one, device)
        return OptimizerBytes(states, 0, 0, optim, "torchao state layout, approximate")
    if optim not in _TORCH_ADAM:
        note = f"'{optim}' is not modeled; assumed to keep AdamW's two float32 states"
    # source: torch/optim/adamw.py (Adam._init_group): exp_avg and exp_avg_sq like the param
    # (ademamix keeps a third); the step counter is a 0-dim tensor on the parameter's device
    # only for fused / capturable AdamW.
    per = 3 if optim == "ademamix" else 2
    fused = optim.endswith("fused")
    for shape, size in tensors:
        states += per * alloc(math.prod(shape) * size, device)
        # the 0-dim float32 step counter lives on the parameter's device only when fused (or
        # capturable); otherwise on the CPU, which only the CPU check sees
        states += alloc(4, device) if fused or device == "cpu" else 0
    if not fused and device == "cuda":
        # source: torch/optim/adamw.py _multi_tensor_adamw (the default foreach path on CUDA):
        # torch._foreach_sqrt(exp_avg_sqs) makes one full-size temporary per step.
        temp = sum(alloc(math.prod(shape) * size, device) for shape, size in tensors)
    return OptimizerBytes(states, 0, temp, optim, note)
