"""Bytes of the model's own tensors: quantized linear layers, the parts that stay unquantized, the
LoRA adapters and their gradients. Exact tensor bytes: the CPU test compares them with a real
4-bit model, parameter by parameter."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tuiwiz.estimate.setup import RunSetup
from tuiwiz.inspect.arch import ArchSummary, ModuleInfo
from tuiwiz.inspect.lora import LoraPlan

# source: bitsandbytes/functional.py quantize_4bit: blocksize 64 is the default that
# Params4bit / Linear4bit use (transformers passes none).
BLOCK_4BIT = 64
# source: quantize_4bit(compress_statistics=True) quantizes the absmax with
# quantize_blockwise(blocksize=256) into uint8 (QLoRA paper, "double quantization").
BLOCK_NESTED = 256
CODE_8BIT = 256 * 4  # the 256-entry float32 dynamic map, copied per tensor (code.to(copy=True))
CODE_4BIT = 16 * 4  # get_4bit_type: the 16 nf4 / fp4 values as float32, one tensor per weight
OFFSET = 4  # the float32 mean subtracted before nesting (a 0-dim tensor)
CUDA_ROUND = 512  # CUDA caching allocator rounds every block up to 512 bytes (CUDACachingAllocator)


def alloc(nbytes: int, device: str) -> int:
    """Bytes one tensor takes: on CUDA the caching allocator rounds each block to 512 bytes."""
    if device != "cuda" or nbytes == 0:
        return nbytes
    return -(-nbytes // CUDA_ROUND) * CUDA_ROUND


def shard_shape(shape: tuple[int, ...], shards: int) -> tuple[int, ...]:
    """The local shard of a tensor under FSDP: dim 0 split into `shards` chunks of
    ceil(dim0 / shards) rows (the last ones padded).
    # source: torch/distributed/fsdp/_fully_shard/_fsdp_param.py FSDPParam._init_sharded_param
    # (torch.chunk on dim 0, padded to equal chunks)
    """
    if shards <= 1 or not shape:
        return shape
    return (-(-shape[0] // shards), *shape[1:])


def shard_numel(shape: tuple[int, ...], shards: int) -> int:
    return math.prod(shard_shape(shape, shards))


def linear_4bit_bytes(numel: int, double_quant: bool, device: str, shards: int = 1) -> int:
    """One Params4bit: packed data and its QuantState tensors. With FSDP (`shards` > 1) each GPU
    holds 1/shards of the packed data (stored in a float dtype, bnb_4bit_quant_storage, so that
    FSDP can shard it) and all of the quantization state, which is not a parameter.
    # source: bitsandbytes docs/source/fsdp_qlora.md (quant_storage); nn/modules.py
    # fix_4bit_weight_quant_state_from_module (Linear4bit keeps its own quant_state)
    """
    packed = (numel + 1) // 2  # two 4-bit codes per byte (uint8, or packed into bf16 pairs)
    packed = -(-packed // shards)
    blocks = -(-numel // BLOCK_4BIT)
    if double_quant:
        nested_blocks = -(-blocks // BLOCK_NESTED)
        stats = [blocks, nested_blocks * 4, CODE_8BIT, OFFSET]  # uint8 absmax + state2
    else:
        stats = [blocks * 4]  # float32 absmax per block
    return sum(alloc(n, device) for n in (packed, CODE_4BIT, *stats))


def linear_8bit_bytes(m: ModuleInfo, device: str) -> int:
    """One Int8Params: int8 weight (CB) and one float32 scale per output row (SCB).
    # source: bitsandbytes/nn/modules.py Int8Params._quantize -> int8_vectorwise_quant
    """
    return alloc(m.in_features * m.out_features, device) + alloc(m.out_features * 4, device)


@dataclass(frozen=True)
class WeightBytes:
    quantized: int  # 4/8-bit linear weights with their quantization constants
    unquantized: int  # embeddings, lm_head, norms, biases, linears left in 16/32 bit
    quantized_params: int
    unquantized_params: int
    largest_quantized: int  # elements of the largest quantized weight (its dequantized copy)


def base_weights(
    summary: ArchSummary,
    setup: RunSetup,
    trainable: frozenset[str] = frozenset(),
    shards: int = 1,
    shard_4bit: bool = True,
) -> WeightBytes:
    """`trainable`: full names of base parameters made trainable (biases with bias="all").
    `shards`: FSDP's world size; each GPU holds 1/shards of every parameter (dim 0), except
    8-bit weights, whose integer storage FSDP cannot shard, and 4-bit weights kept in uint8
    storage (`shard_4bit` False: accelerate leaves them out of FSDP, whole on every GPU)."""

    quantized = unquantized = q_params = u_params = largest = 0
    for m in summary.modules:
        for p in m.params:
            if p.tied_to is not None:
                continue  # one storage for tied tensors
            n = p.numel
            if m.quantizable and setup.quant != "none" and p.name == "weight":
                q_params += n
                largest = max(largest, n)
                if setup.quant == "4bit":
                    quantized += linear_4bit_bytes(
                        n, setup.double_quant, setup.device, shards if shard_4bit else 1
                    )
                else:
                    quantized += linear_8bit_bytes(m, setup.device)
                continue
            u_params += n
            size = setup.unquantized_param_bytes
            if f"{m.name}.{p.name}" in trainable:
                size = trainable_dtype_bytes(p.name, setup, summary)
            elif m.quantizable and setup.quant == "4bit" and p.name == "bias":
                # source: bitsandbytes Linear4bit.forward casts the bias to the compute dtype in
                # place on the first forward (bias.data = bias.data.to(x.dtype))
                size = setup.compute_bytes
            unquantized += alloc(shard_numel(p.shape, shards) * size, setup.device)
    return WeightBytes(quantized, unquantized, q_params, u_params, largest)


def trainable_dtype_bytes(name: str, setup: RunSetup, summary: ArchSummary) -> int:
    """Dtype of a trainable tensor (see RunSetup.adapter_bytes).

    Quantized: bfloat16, but DoRA magnitudes stay float32 (trl skips them). Not quantized: LoRA
    tensors are float32 (peft creates them so and autocast_adapter_dtype upcasts 16-bit ones);
    trainable biases and modules_to_save copies keep the model's dtype.
    # source: trl/trainer/sft_trainer.py SFTTrainer.__init__; peft/tuners/tuners_utils.py
    # cast_adapter_dtype
    """
    if "lora_magnitude_vector" in name or setup.trainable_fp32:
        return 4
    if setup.quant != "none":
        return setup.adapter_bytes
    if ".lora_" in name:
        return 4
    return setup.unquantized_param_bytes


def adapter_bytes(
    plan: LoraPlan, setup: RunSetup, summary: ArchSummary, shards: int = 1
) -> tuple[int, int, int]:
    """(LoRA adapter weights, modules_to_save copies, gradients of everything trainable).

    Trainable biases live in the base weights already; their gradients are counted here.
    `shards`: FSDP's world size (each GPU keeps 1/shards of every tensor and its gradient).
    """
    adapters = copies = grads = 0
    for name, shape in plan.tensors:
        size = trainable_dtype_bytes(name, setup, summary)
        nbytes = alloc(shard_numel(shape, shards) * size, setup.device)
        grads += nbytes  # param.grad has the parameter's dtype and shape
        if ".lora_" in name:
            adapters += nbytes
        elif name.endswith("(modules_to_save)"):
            copies += nbytes
    return adapters, copies, grads


def bytes_per_param(total_bytes: int, params: int) -> float:
    return total_bytes / params if params else math.nan


def dequant_bytes(setup: RunSetup, largest: int) -> int:
    """The one full-precision copy of a quantized weight alive in a matmul: bitsandbytes
    dequantizes to the load dtype (then to the compute dtype when they differ) for F.linear in
    forward and for grad_output @ W in backward; 8-bit backward dequantizes int8 to float32."""
    if setup.quant == "4bit":
        extra = setup.compute_bytes if setup.compute_bytes != setup.load_bytes else 0
        return largest * (setup.load_bytes + extra)
    if setup.quant == "8bit":
        return largest * (4 + 1)
    return 0
