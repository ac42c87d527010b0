"""The VRAM estimate of a training run: every term, what it is, and where it comes from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tuiwiz import speed
from tuiwiz.estimate import activations as act_mod
from tuiwiz.estimate import components, layers, parallel, peak, weights
from tuiwiz.estimate.components import Component
from tuiwiz.estimate.lengths import TokenLengths, longest_example
from tuiwiz.estimate.optimizers import optimizer_bytes
from tuiwiz.estimate.setup import RunSetup, from_config
from tuiwiz.inspect.arch import ArchSummary
from tuiwiz.inspect.lora import LoraPlan
from tuiwiz.inspect.lora import plan as lora_plan
from tuiwiz.launch import SINGLE, Launch, launch_of

MiB = 1 << 20
# The CUDA context, the kernels PyTorch, bitsandbytes and Triton load (lazily, CUDA >= 11.7) and
# the cuBLAS / cuDNN handles: memory NVML shows for the process but torch's allocator does not.
# bench/gpu_memory.py prints it as "context" (NVML process memory - max_memory_reserved): 768-778
# MiB on an H200 (driver 580, CUDA 13, torch 2.11), in every one of its 30 runs.
CUDA_CONTEXT = 768 * MiB
# cuBLAS and cuBLASLt workspaces, allocated through the caching allocator on the first matmul
# (source: torch/csrc/cuda/CublasHandlePool.cpp getChosenWorkspaceSize, 32 MiB on Hopper).
CUBLAS_WORKSPACES = 64 * MiB
FRAGMENTATION = components.FRAGMENTATION
# Model types Liger Kernel patches (liger_kernel/transformers/monkey_patch.py
# MODEL_TYPE_TO_APPLY_LIGER_FN, liger-kernel 0.8.5; the text models among them).
LIGER_MODEL_TYPES = frozenset(
    {
        "deepseek_v2", "deepseek_v3", "exaone4", "falcon_h1", "gemma", "gemma2", "gemma3",
        "gemma3_text", "glm4", "gpt_oss", "granite", "hunyuan_v1_dense", "hunyuan_v1_moe",
        "llama", "ministral", "mistral", "mixtral", "nemotron", "olmo2", "olmo3", "phi3",
        "qwen2", "qwen3", "qwen3_moe", "qwen3_next", "smollm3",
    }
)  # fmt: skip


@dataclass
class Estimate:
    params_total: int
    params_trainable: int
    components: list[Component]
    allocated_peak: int  # predicts torch.cuda.max_memory_allocated()
    reserved_peak: int  # predicts torch.cuda.max_memory_reserved()
    total: int  # the process's memory as NVML shows it: what must fit in the free memory
    phase: str
    setup: RunSetup
    summary: ArchSummary
    lora: LoraPlan
    notes: list[str] = field(default_factory=list)
    launch: Launch = SINGLE  # the estimate is per GPU, for this launch

    @property
    def world_size(self) -> int:
        return self.launch.world_size

    @property
    def strategy(self) -> str:
        """ "single" (one process), "ddp" or "fsdp"."""
        return self.launch.mode

    @property
    def effective_batch_size(self) -> int:
        """Sequences per optimizer step: per-device batch x accumulation x world size."""
        return self.setup.batch * self.setup.grad_accum * self.world_size

    def component(self, name: str) -> int:
        return next((c.bytes for c in self.components if c.name == name), 0)

    def to_json(self) -> dict[str, Any]:
        s = self.setup
        return {
            "params": {
                "total": self.params_total,
                "trainable": self.params_trainable,
                "base": self.lora.base_params,
            },
            "memory": {
                "total_bytes": self.total,
                "allocated_peak_bytes": self.allocated_peak,
                "reserved_peak_bytes": self.reserved_peak,
                "peak_phase": self.phase,
                "components": {c.name: c.bytes for c in self.components},
                "explanations": {
                    c.name: {"explain": c.explain, "source": c.source} for c in self.components
                },
            },
            "assumptions": {
                "batch_size": s.batch,
                "sequence_length": s.seq,
                "tokens_per_step": s.tokens,
                "full_length_batches": True,
                "gradient_checkpointing": s.checkpointing,
                "attn_implementation": s.attn,
                "quantization": s.quant,
                "optim": s.optim,
                "mixed_precision": {2: "bf16/fp16", None: "off"}[s.autocast_bytes],
                "gradient_accumulation_steps": s.grad_accum,
                "effective_batch_size": self.effective_batch_size,
                "padding_free": s.padding_free,
                "packing": s.packing,
                "liger_kernels": s.liger,
                "activation_offloading": s.offload,
                "upcast_unquantized": s.kbit_prepared,
            },
            "launch": {**self.launch.to_json(), "per_gpu": True},
            "notes": self.notes,
        }


def estimate(
    config: dict[str, Any],
    summary: ArchSummary | None = None,
    device: str = "cuda",
    gpu_count: int | None = None,
    *,
    machine: speed.Machine | None = None,
    lengths: TokenLengths | None = None,
) -> Estimate:
    """Estimate the peak memory of one GPU of the run a resolved preset describes: the only GPU
    of a single-process run, or each GPU of a [launch] with several processes (ddp / fsdp).
    `gpu_count`: the visible GPUs, when already read (for nproc_per_node = "auto").
    `machine`: where `speed = "fast"` is resolved (this machine when None). `lengths`: the
    dataset's token lengths, when known: batches are no longer than its longest example."""
    launch = launch_of(config, gpu_count)
    if summary is None:
        from tuiwiz.inspect.model import summarize

        m = config["model"]
        summary = summarize(m["name_or_path"], m["revision"], m["trust_remote_code"])
    notes = []
    if speed.speed_of(config) == "fast":
        machine = machine or speed.this_machine()
        config = speed.resolve(config, machine)
        notes.append(speed.summary(config, machine))
    setup = from_config(config, device, longest=longest_example(lengths))
    lora = lora_plan(summary, config["lora"])
    est = estimate_setup(setup, summary, lora, config["training"], launch)
    est.notes[:0] = notes
    if lengths is not None:
        est.notes.append(lengths.note(config["data"]))
    return est


def estimate_setup(
    setup: RunSetup,
    summary: ArchSummary,
    lora: LoraPlan,
    training: dict[str, Any],
    launch: Launch = SINGLE,
) -> Estimate:
    notes: list[str] = []
    plan = layers.plan_layers(summary)
    if plan.approximate:
        notes.append(f"activations are approximate: {plan.approximate}")
    model_type = str(summary.facts.get("model_type") or "")
    if setup.liger and model_type not in LIGER_MODEL_TYPES:
        # transformers' apply_liger_kernel leaves a model type Liger has no kernels for as it is
        setup = dataclasses.replace(setup, liger=False)
        notes.append(f"Liger has no kernels for {model_type or 'this model'}: it trains without")
    fsdp = launch.fsdp
    shards = launch.world_size if fsdp else 1
    if fsdp:
        # tuiwiz/train/builders.py: no prepare_model_for_kbit_training under FSDP (everything
        # not 4-bit stays in the load dtype, so the residual stream does too); accelerate holds
        # trainable FlatParameters in float32 under mixed precision.
        setup = dataclasses.replace(
            setup, kbit_prepared=False, trainable_fp32=bool(setup.autocast_bytes)
        )
    # FSDP shards float tensors only: 4-bit weights in bitsandbytes' default uint8 storage are
    # left out of FSDP (accelerate/utils/fsdp_utils.py fsdp2_prepare_model: ignored_params).
    shard_4bit = setup.quant_storage != "uint8"
    w = weights.base_weights(
        summary, setup, frozenset(n for n, _ in lora.tensors), shards, shard_4bit
    )
    adapters, copies, grads = weights.adapter_bytes(lora, setup, summary, shards)
    shapes = [
        (weights.shard_shape(shape, shards), weights.trainable_dtype_bytes(name, setup, summary))
        for name, shape in lora.tensors
    ]
    opt = optimizer_bytes(setup.optim, shapes, setup.device, setup.optim_args)
    if opt.note:
        notes.append(opt.note)

    acts = act_mod.walk(
        setup,
        plan,
        layers.adapted_per_layer(plan, lora),
        act_mod.input_requires_grad(setup, summary, lora),
    )
    vocab = int(summary.facts.get("vocab_size") or 0)
    out = summary.output_embedding
    lm_head_bytes = setup.unquantized_param_bytes
    if out and summary.module(out).quantizable and setup.quant != "none":
        lm_head_bytes = setup.compute_bytes
    smoothing = float(training.get("label_smoothing_factor") or 0) > 0
    if smoothing:
        notes.append("label smoothing makes trl build the full logits (no fused LM head)")
    head = peak.head_buffers(setup, plan, vocab, acts.head_input_bytes, lm_head_bytes, smoothing)
    dequant = weights.dequant_bytes(setup, w.largest_quantized)
    gathered: dict[str, int] = {}
    if fsdp:
        units = parallel.fsdp_units(summary, plan.prefix, lora, setup, shard_4bit)
        gathered = parallel.gathered_by_phase(units)
    p = peak.peak(setup, plan, acts, head, dequant, gathered or None)
    # Shared by every layer and kept for backward: RoPE's cos and sin tables (q * cos keeps
    # cos), and under autocast the bf16 copies of the adapter weights (autocast caches one cast
    # per weight for the whole forward). The (B, 1, S, S) masks are built once per forward but
    # not saved: they are gone before backward.
    # (one row of batch x seq positions with packing or padding-free batches)
    positions = setup.seq * (setup.batch if setup.one_row else 1)
    rope = 2 * positions * plan.q_dim // plan.heads * setup.residual_bytes if plan.rope else 0
    autocast_copies = 0
    if setup.autocast_bytes and setup.adapter_bytes != setup.autocast_bytes:
        autocast_copies = lora.lora_params * setup.autocast_bytes
    saved = p.saved + rope + autocast_copies
    dynamic = saved + p.head + p.transient
    phase = p.phase
    head_b, transient = p.head, p.transient
    eval_bytes = 0
    if setup.evaluates:
        eval_bytes = peak.eval_forward(
            setup, plan, acts.head_input_bytes, setup.eval_batch, head[1], dequant
        )
    # Outside the forward/backward the activations are gone: the optimizer step runs on the
    # weights, gradients and states; evaluation after zero_grad (which sets the gradients to
    # None) on the weights and states alone.
    eval_gathered = gathered.get("evaluation forward", 0) if eval_bytes else 0
    moments = {
        phase: grads + dynamic + p.gathered,
        "optimizer step": grads + opt.step_temporaries,
        "evaluation forward": eval_bytes + eval_gathered,
    }
    grads_alive = grads
    gathered_alive = p.gathered
    if max(moments, key=moments.get) != phase:
        phase = max(moments, key=moments.get)
        saved = head_b = 0
        transient = opt.step_temporaries if phase == "optimizer step" else eval_bytes
        grads_alive = grads if phase == "optimizer step" else 0
        gathered_alive = eval_gathered if phase == "evaluation forward" else 0
    if not setup.checkpointing and p.saved_full > 0:
        notes.append("gradient checkpointing is off: every layer's activations stay in memory")
    if setup.attn == "sdpa" and (setup.packing or (setup.padding_free and setup.batch > 1)):
        how = "packing" if setup.packing else "padding-free batches"
        notes.append(f"{how} with sdpa: a (B*S)^2 attention mask; flash_attention_2 avoids it")
    if p.offloaded:
        notes.append(
            f"activation offloading keeps {p.offloaded / (1 << 30):.1f} GiB of activations in "
            "pinned CPU RAM (the machine needs that much free)"
        )
    cuda = setup.device == "cuda"
    values = {
        "weights_quantized": w.quantized,
        "weights_unquantized": w.unquantized,
        "lora_adapters": adapters,
        "trainable_copies": copies,
        "gradients": grads_alive,
        "optimizer_states": opt.states,
        "optimizer_paged_states": opt.paged,
        "activations": saved,
        "logits_and_loss": head_b,
        "backward_buffers": transient,
        "cuda_workspaces": CUBLAS_WORKSPACES if cuda else 0,
    }
    if launch.mode == "ddp":
        cap = training.get("ddp_bucket_cap_mb")
        values["ddp_gradient_buckets"] = parallel.ddp_bucket_bytes(shapes, setup.device, cap)
    if fsdp:
        values["fsdp_gathered_params"] = gathered_alive
    allocated = sum(v for k, v in values.items() if k != "optimizer_paged_states")
    # Unsharded FSDP parameters are allocated and freed unit by unit, like activations.
    reserve = int(FRAGMENTATION * (saved + head_b + transient + gathered_alive)) if cuda else 0
    values["allocator_reserve"] = reserve
    values["cuda_context"] = CUDA_CONTEXT if cuda else 0
    outside = values["cuda_context"]
    if launch.distributed:
        values["nccl_buffers"] = parallel.nccl_bytes(launch) if cuda else 0
        outside += values["nccl_buffers"]
        notes.append(parallel.note(launch, setup, shard_4bit))
    comps = components.build(values, setup, w, lora, phase, launch)
    notes.append(
        f"the estimate is for full-length batches (every sequence {setup.seq} tokens): the "
        "worst case; shorter batches use less"
    )
    return Estimate(
        params_total=lora.total,
        params_trainable=lora.trainable,
        components=comps,
        allocated_peak=allocated,
        reserved_peak=allocated + reserve,
        total=allocated + reserve + opt.paged + outside,
        phase=phase,
        setup=setup,
        summary=summary,
        lora=lora,
        notes=notes,
        launch=launch,
    )
