"""Multi-GPU runs: what each GPU holds when torchrun starts one process per GPU.

The `[launch]` section of a preset says how many processes run (nproc_per_node x nnodes = the
world size) and how they share the model (`strategy`):

- ddp: every GPU holds a full copy of the run (the single-process estimate with the per-device
  batch) plus what DistributedDataParallel adds: its gradient buckets and NCCL's buffers.
- fsdp (full shard; QLoRA with the 4-bit weights stored in a float dtype so that FSDP can shard
  them): every GPU holds 1/world_size of every sharded tensor (weights, adapters, gradients,
  optimizer states), the all-gathered (unsharded) parameters of the units in use, and the
  activations of its own per-device batch.

The estimate is always per GPU. The formulas and their sources are in docs/estimate.md
("Multi-GPU estimates"); each constant below names its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tuiwiz.estimate.setup import RunSetup
from tuiwiz.estimate.weights import alloc, trainable_dtype_bytes
from tuiwiz.inspect.arch import ArchSummary
from tuiwiz.inspect.lora import LoraPlan
from tuiwiz.launch import Launch

MiB = 1 << 20

# DistributedDataParallel's gradient buckets. The Reducer allocates one flat buffer per bucket
# for all trainable parameters when DDP is built, and keeps it for the whole run: all-reduce runs
# on the buckets, then the result is copied back into param.grad. With gradient_as_bucket_view=
# False (the default of torch's DDP and of accelerate's DistributedDataParallelKwargs; the
# Trainer never sets it) param.grad is a separate tensor, so the buckets are a second copy of
# every trainable gradient.
# source: torch/nn/parallel/distributed.py, DistributedDataParallel's docstring on
# gradient_as_bucket_view: "This can reduce peak memory usage, where the saved memory size
# will be equal to the total gradients size"; pytorch PR #41954 (roberta-base, ~1 GB of
# parameters: peak -1 GB with views).
# bucket_cap_mb (TrainingArguments.ddp_bucket_cap_mb, default None -> torch's 25 MiB, first
# bucket 1 MiB: torch.distributed._DEFAULT_FIRST_BUCKET_BYTES) only sets how the copy is split.
DDP_BUCKET_CAP_MB = 25
DDP_FIRST_BUCKET = 1 * MiB

# NCCL's communicator buffers: device memory outside PyTorch's allocator (NVML sees it, torch
# does not). Measured with PyTorch on 4x A100 with NVLink: 544 MiB for a group of two GPUs, 688
# MiB for more (NVIDIA/nccl issue #964). It grows with the channel count and the algorithms
# (H100 NVLink, NVLS; NVIDIA/nccl issues #864 and #986 report 1.6 GB and more), so this is a
# typical value, not a derived one, like the CUDA context. DDP and FSDP both use one
# communicator (the default process group).
NCCL_TWO_GPUS = 544 * MiB
NCCL_MORE_GPUS = 688 * MiB


def used_gpus(gpus: list, nproc: int) -> tuple[list, list, int]:
    """(used, unused, missing) of the visible GPUs: a run uses the first nproc_per_node of them
    (torchrun's LOCAL_RANK i takes visible GPU i); `missing` counts processes without a GPU."""
    return gpus[:nproc], gpus[nproc:], max(0, nproc - len(gpus))


def nccl_bytes(launch: Launch) -> int:
    if not launch.distributed:
        return 0
    return NCCL_TWO_GPUS if launch.world_size == 2 else NCCL_MORE_GPUS


# --- DDP -------------------------------------------------------------------------------------


def ddp_bucket_bytes(
    tensors: list[tuple[tuple[int, ...], int]], device: str, cap_mb: int | float | None = None
) -> int:
    """Bytes of DDP's gradient buckets for the trainable tensors ((shape, dtype bytes), in
    registration order). DDP fills buckets in reverse order (the order gradients become ready),
    one dtype per bucket, closing a bucket once it reaches its cap; each bucket is one
    allocation. source: torch/nn/parallel/distributed.py _compute_bucket_assignment_by_size via
    BucketCapacityConfig (first bucket 1 MiB only with the default cap)."""
    cap = int((cap_mb or DDP_BUCKET_CAP_MB) * MiB)
    limit = DDP_FIRST_BUCKET if cap_mb is None else cap
    open_buckets: dict[int, int] = {}
    total = 0
    for shape, size in reversed(tensors):
        filled = open_buckets.get(size, 0) + math.prod(shape) * size
        if filled >= limit:
            total += alloc(filled, device)
            filled = 0
            limit = cap
        open_buckets[size] = filled
    return total + sum(alloc(b, device) for b in open_buckets.values() if b)


# --- FSDP ------------------------------------------------------------------------------------


# FSDP as tuiwiz/train/builders.py fsdp_settings configures it (after PEFT's FSDP-QLoRA guide):
# FSDP1 (fsdp_config version 1), FULL_SHARD, use_orig_params false, backward_prefetch
# BACKWARD_PRE, limit_all_gathers left at its default (true), one unit per decoder layer
# (TRANSFORMER_BASED_WRAP) and one per trainable LoRA linear (peft/utils/other.py
# fsdp_auto_wrap_policy), the 4-bit weights stored in the compute dtype
# (bnb_4bit_quant_storage), and no prepare_model_for_kbit_training.


@dataclass(frozen=True)
class Units:
    """Unsharded bytes of the FSDP units (what one all-gather materializes), as gathered."""

    layer: int  # the largest decoder layer: its 4-bit weights, norms and LoRA units
    layer_grads: int  # that layer's unsharded gradients (before the reduce-scatter)
    root: int  # the root unit: everything outside the decoder layers (embeddings, final
    # norm, LM head), which FSDP never frees between forward and backward


def fsdp_units(
    summary: ArchSummary, prefix: str, lora: LoraPlan, setup: RunSetup, shard_4bit: bool = True
) -> Units:
    """Gathered bytes of the units. With bf16 / fp16 mixed precision accelerate gives FSDP
    MixedPrecision(param_dtype=bf16), so float parameters are all-gathered in 16 bit
    (accelerate/utils/dataclasses.py FullyShardedDataParallelPlugin.set_mixed_precision); the
    4-bit weights are gathered as their packed bytes (n / 2); the quantization constants are not
    parameters and stay whole on every GPU (bitsandbytes/nn/modules.py Linear4bit keeps its own
    quant_state: "the quant state got lost when the parameter got converted. This happens for
    example for fsdp")."""

    def unit(module_name: str) -> str:
        if prefix and module_name.startswith(prefix):
            index = module_name[len(prefix) :].split(".", 1)[0]
            if index.isdigit():
                return f"layer{index}"
        return "root"

    def gathered(stored: int) -> int:
        return setup.autocast_bytes or stored

    params: dict[str, int] = {}
    grads: dict[str, int] = {}
    trainable = {n for n, _ in lora.tensors}
    for m in summary.modules:
        u = unit(m.name)
        for p in m.params:
            if p.tied_to is not None:
                continue
            full = f"{m.name}.{p.name}"
            quantized = m.quantizable and setup.quant != "none" and p.name == "weight"
            if quantized and setup.quant == "4bit" and shard_4bit:
                nbytes = (p.numel + 1) // 2  # packed in the float quant storage
            elif quantized:
                continue  # integer storage: not sharded, nothing to gather (weights.base_weights)
            elif full in trainable:
                nbytes = p.numel * gathered(trainable_dtype_bytes(p.name, setup, summary))
            else:
                nbytes = p.numel * gathered(setup.unquantized_param_bytes)
            params[u] = params.get(u, 0) + nbytes
    for name, shape in lora.tensors:
        u = unit(name)
        nbytes = math.prod(shape) * gathered(trainable_dtype_bytes(name, setup, summary))
        grads[u] = grads.get(u, 0) + nbytes
        if ".lora_" in name or name.endswith("(modules_to_save)"):
            params[u] = params.get(u, 0) + nbytes
    layers = [k for k in params if k.startswith("layer")]
    biggest = max(layers, key=lambda k: params[k], default="")
    device = setup.device
    return Units(
        layer=alloc(params.get(biggest, 0), device),
        layer_grads=alloc(max((grads.get(k, 0) for k in layers), default=0), device),
        root=alloc(params.get("root", 0), device),
    )


def gathered_by_phase(units: Units) -> dict[str, int]:
    """Unsharded parameters alive at each moment that can be the peak.

    - The root unit is all-gathered at the start of forward and not freed after it ("Do not
      free the root's parameters in the post-forward for FULL_SHARD with the intention that they
      are immediately used for backward computation"; torch/distributed/fsdp/_runtime_utils.py
      _post_forward_reshard), so it is alive throughout forward and backward.
    - BACKWARD_PRE "prefetches the next set of parameters before the current set of parameters'
      gradient computation ... at the peak, it holds the current set of parameters, next set of
      parameters, and current set of gradients in memory" (torch/distributed/fsdp/api.py
      BackwardPrefetch).
    - In forward (and evaluation) the rate limiter keeps "GPU memory usage from only two
      consecutive FSDP instances (the current instance running computation and the next
      instance whose all-gather is prefetched)" (FullyShardedDataParallel, limit_all_gathers).
    """
    head = units.root + units.layer
    two = units.root + 2 * units.layer
    layer = two + units.layer_grads
    return {
        "LM head forward": head,
        "LM head backward": head,
        "layer recompute + backward": layer,
        "last layer backward": layer,
        "evaluation forward": two,
    }


def note(launch: Launch, setup: RunSetup, shard_4bit: bool = True) -> str:
    """What a multi-GPU estimate assumes, in one line."""
    if launch.mode == "ddp":
        return (
            f"per GPU, {launch.describe()}: every GPU holds a full copy of the run with its "
            "per-device batch, plus DDP's gradient buckets (a second copy of the trainable "
            "gradients) and NCCL's buffers"
        )
    text = (
        f"per GPU, {launch.describe()} (FSDP full shard): each GPU holds 1/{launch.world_size} "
        "of the weights, adapters, gradients and optimizer states and all of the 4-bit "
        "quantization constants, plus the gathered root unit (embeddings, LM head) and two "
        "decoder layers; activations are one GPU's with the per-device batch"
    )
    if setup.quant == "8bit":
        text += "; 8-bit weights are integers, which FSDP does not shard: whole on every GPU"
    elif setup.quant == "4bit" and not shard_4bit:
        text += (
            "; 4-bit weights in uint8 storage are not sharded (whole on every GPU): "
            "bnb_4bit_quant_storage = the compute dtype lets FSDP shard them"
        )
    return text
