"""The estimate's terms as the user sees them: name, bytes, what it is, where it comes from."""

from __future__ import annotations

from dataclasses import dataclass

from tuiwiz.estimate.setup import RunSetup
from tuiwiz.estimate.weights import WeightBytes
from tuiwiz.inspect.lora import LoraPlan
from tuiwiz.launch import SINGLE, Launch

# Blocks the caching allocator reserves but cannot reuse at the peak (fragmentation of the
# activation-sized blocks freed and reallocated every step). A heuristic share of the memory
# that changes during a step, not a first-principles term: reserved - allocated on real runs.
FRAGMENTATION = 0.08


@dataclass(frozen=True)
class Component:
    name: str
    bytes: int
    explain: str
    source: str


SOURCES = {
    "weights_quantized": "bitsandbytes/functional.py quantize_4bit (blocks of 64, nested "
    "256-block absmax with double quant); nn/modules.py Int8Params._quantize (int8 + fp32 "
    "row scales)",
    "weights_unquantized": "peft/utils/other.py prepare_model_for_kbit_training (upcasts fp16/"
    "bf16 params to fp32); transformers/quantizers/base.py get_keys_to_not_convert",
    "lora_adapters": "peft/tuners/lora/layer.py update_layer; trl/trainer/sft_trainer.py "
    "(bf16 cast for quantized models)",
    "trainable_copies": "peft/utils/other.py ModulesToSaveWrapper.update (copy.deepcopy)",
    "gradients": "torch autograd: param.grad accumulates in the parameter's dtype",
    "optimizer_states": "tuiwiz/estimate/optimizers.py (torch.optim, bitsandbytes.optim "
    "init_state, transformers Adafactor)",
    "optimizer_paged_states": "bitsandbytes/optim/optimizer.py get_state_buffer "
    "(paged from 1e5 elements)",
    "activations": "tuiwiz/estimate/activations.py (per-op walk of the decoder layer)",
    "logits_and_loss": "trl/kernels/chunked_logprob.py ChunkedLogProbFunction",
    "backward_buffers": "bitsandbytes/autograd/_functions.py MatMul4Bit.backward "
    "(dequantize_4bit); torch.utils.checkpoint (recompute)",
    "cuda_workspaces": "torch/csrc/cuda/CublasHandlePool.cpp getChosenWorkspaceSize",
    "allocator_reserve": f"heuristic: {FRAGMENTATION:.0%} of the memory that changes during a "
    "step (reserved - allocated)",
    "cuda_context": "typical for CUDA 12 with lazy module loading; bench/gpu_memory.py measures it",
    "ddp_gradient_buckets": "torch/nn/parallel/distributed.py (Reducer buckets; "
    "gradient_as_bucket_view=False by default: 'the saved memory size will be equal to the "
    "total gradients size')",
    "fsdp_gathered_params": "accelerate/utils/fsdp_utils.py fsdp2_prepare_model (units); "
    "torch/distributed/fsdp/_fully_shard (two all-gathered units at a time, pytorch PR #128884)",
    "nccl_buffers": "typical: 544 MiB for 2 GPUs, 688 MiB for more (NVIDIA/nccl issue #964, "
    "4x A100 NVLink)",
}
# Terms FSDP shards: each GPU holds 1/world_size of them.
SHARDED = (
    "weights_quantized",
    "weights_unquantized",
    "lora_adapters",
    "trainable_copies",
    "gradients",
    "optimizer_states",
    "optimizer_paged_states",
)


def build(
    values: dict[str, int],
    setup: RunSetup,
    w: WeightBytes,
    lora: LoraPlan,
    phase: str,
    launch: Launch = SINGLE,
) -> list[Component]:
    adapter_dtype = (
        "bfloat16 (trl casts them for quantized models)" if setup.adapter_bytes == 2 else "float32"
    )
    if setup.trainable_fp32:
        adapter_dtype = "float32 (accelerate keeps FSDP's trainable parameters in float32)"
    activations = (
        "checkpointing keeps one input per layer plus one recomputed layer"
        if setup.checkpointing
        else "every layer's activations"
    )
    explain = {
        "weights_quantized": f"{w.quantized_params:,} linear-layer weights in {setup.quant}: "
        "packed values and the per-block quantization constants",
        "weights_unquantized": f"{w.unquantized_params:,} parameters left unquantized "
        f"(embeddings, lm_head, norms, biases) in {setup.unquantized_param_bytes * 8}-bit",
        "lora_adapters": f"{lora.lora_params + lora.dora_params:,} adapter parameters in "
        + adapter_dtype,
        "trainable_copies": "modules_to_save: full trainable copies of whole modules",
        "gradients": "one gradient per trainable parameter, same dtype",
        "optimizer_states": f"{setup.optim} state for each trainable tensor, allocated on "
        "the first step",
        "optimizer_paged_states": "paged optimizer state in CUDA unified memory: counted by "
        "the driver, evicted to CPU RAM under memory pressure",
        "activations": f"tensors saved for backward at the peak ({phase}), with the batch "
        f"and the RoPE tables; {activations}",
        "logits_and_loss": "LM head and loss: per-token log-probs, [4096 x 32768] logit "
        "tiles, the hidden rows kept for backward",
        "backward_buffers": "working buffers of the peak moment: gradients in flight through "
        "a layer and the dequantized copy of one quantized weight (or evaluation's forward "
        "intermediates, or the optimizer step's temporaries)",
        "cuda_workspaces": "cuBLAS / cuBLASLt workspaces",
        "allocator_reserve": "cached blocks the allocator holds but cannot reuse at the peak "
        "(fragmentation)",
        "cuda_context": "CUDA context, loaded kernels and library handles (outside "
        "PyTorch's allocator)",
        "ddp_gradient_buckets": "DDP's all-reduce buckets: one more copy of every trainable "
        "gradient, allocated when DDP wraps the model",
        "fsdp_gathered_params": "all-gathered (unsharded) parameters of the FSDP units in use at "
        "the peak: the current decoder layer and the prefetched next one (or the LM head)",
        "nccl_buffers": "NCCL communicator buffers (outside PyTorch's allocator; a typical "
        "value, more with many NVLink channels)",
    }
    if launch.fsdp:
        share = f"; this GPU's 1/{launch.world_size} shard"
        for name in SHARDED:
            explain[name] += share
        explain["weights_quantized"] = explain["weights_quantized"].replace(
            share, f"; this GPU's 1/{launch.world_size} of the packed values, all of the constants"
        )
    return [Component(name, size, explain[name], SOURCES[name]) for name, size in values.items()]
