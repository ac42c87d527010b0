"""What a resolved preset means for memory: the dtypes every tensor ends up in, the batch shape,
the attention kernel, the optimizer. Derived from how tuiwiz.train.builders builds the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class RunSetup:
    batch: int  # per-device batch size
    # tokens per sequence: max_seq_length (full-length batches, the worst case), or the
    # dataset's longest example when that is known and shorter (see from_config)
    seq: int
    grad_accum: int
    checkpointing: bool
    attn: str  # sdpa, eager, flash_attention_2, flash_attention_3
    quant: str  # "4bit", "8bit" or "none"
    quant_type: str  # nf4 / fp4
    double_quant: bool
    compute_bytes: int  # bnb_4bit_compute_dtype
    load_bytes: int  # dtype the checkpoint is loaded in (builders.model_dtype)
    autocast_bytes: int | None  # 2 with bf16/fp16 mixed precision, None without
    optim: str
    optim_args: str
    lora: dict[str, Any] = field(default_factory=dict)
    packing: bool = False
    device: str = "cuda"  # "cpu" only to check the formulas against real CPU runs in tests
    padding: bool | None = None  # whether batches are padded; None: assume so when batch > 1
    evaluates: bool = False  # evaluation runs during training (a validation split is set)
    eval_batch: int = 8  # per_device_eval_batch_size (TrainingArguments' default: 8)
    # bnb_4bit_quant_storage when a preset sets it ("uint8" is bitsandbytes' default; FSDP needs
    # a float dtype to shard the 4-bit weights). None: not set, the launcher decides.
    quant_storage: str | None = None
    # Whether peft's prepare_model_for_kbit_training runs (it upcasts what is not 4/8-bit to
    # float32). tuiwiz/train/builders.py skips it under FSDP, which cannot shard float32 next to
    # the 16-bit storage of the 4-bit weights: everything stays in the load dtype there.
    kbit_prepared: bool = True
    # FSDP1 with mixed precision: accelerate upcasts every trainable FlatParameter to float32
    # (accelerate/accelerator.py prepare_model, "we follow DeepSpeed's strategy to hold the
    # parameters in full precision"), so adapters, their gradients and states are float32.
    trainable_fp32: bool = False
    # TRL's padding-free batches: the batch's examples joined in one row (as packing does)
    padding_free: bool = False
    # Liger's kernels for RMSNorm, SwiGLU and RoPE (use_liger_kernel), which save other tensors
    liger: bool = False
    # TRL's activation offloading: saved activations move to CPU RAM during the forward pass
    offload: bool = False

    @property
    def one_row(self) -> bool:
        """Whether the batch is one row of batch x seq tokens (packing and padding-free)."""
        return self.packing or self.padding_free

    @property
    def tokens(self) -> int:
        return self.batch * self.seq

    @property
    def residual_bytes(self) -> int:
        """Dtype of the hidden states between layers. With quantization, peft's
        prepare_model_for_kbit_training upcasts the embeddings and norms to float32, so the
        residual stream is float32 even under bf16 autocast (additions promote to float32).
        # source: peft/utils/other.py prepare_model_for_kbit_training ("cast all non INT8
        # parameters to fp32")
        """
        return 4 if self.quant != "none" and self.kbit_prepared else self.load_bytes

    @property
    def unquantized_param_bytes(self) -> int:
        """Dtype of the parameters that are not 4/8-bit: fp32 after prepare_model_for_kbit_training,
        else the load dtype (builders only calls prepare_model_for_kbit_training when quantized)."""
        return 4 if self.quant != "none" and self.kbit_prepared else self.load_bytes

    @property
    def adapter_bytes(self) -> int:
        """Dtype of the trainable tensors (LoRA A/B, trainable biases, modules_to_save copies).
        For a quantized model trl's SFTTrainer casts every trainable parameter except DoRA's
        magnitude vectors to bfloat16, as the QLoRA paper does.
        # source: trl/trainer/sft_trainer.py SFTTrainer.__init__ ("When using QLoRA, the PEFT
        # adapter weights are converted to bf16"). Without quantization peft keeps adapters in
        # float32 (get_peft_model(autocast_adapter_dtype=True)).
        """
        return 2 if self.quant != "none" else 4

    @property
    def padded(self) -> bool:
        """Whether batches carry an attention mask with padding. Several sequences of different
        lengths are padded to the longest (trl's DataCollatorForLanguageModeling), and with a
        mask transformers cannot hand sdpa the mask-free causal path. A single sequence, or
        packing (padding-free), has none."""
        if self.padding is not None:
            return self.padding and not self.one_row
        return self.batch > 1 and not self.one_row


def _dtype_bytes(name: str, fallback: int) -> int:
    return DTYPE_BYTES.get(name, fallback)


def from_config(
    config: dict[str, Any], device: str = "cuda", longest: int | None = None
) -> RunSetup:
    """The setup of a resolved preset (tuiwiz.config.validate's output, with any `speed`
    shortcut resolved: tuiwiz.speed.resolve). `longest`: the dataset's longest example in
    tokens, when known: batches are never longer (without packing, which fills every row to
    max_seq_length)."""
    q, t, data = config["quantization"], config["training"], config["data"]
    quant = "4bit" if q["load_in_4bit"] else "8bit" if q["load_in_8bit"] else "none"
    compute = _dtype_bytes(q["bnb_4bit_compute_dtype"], 2)
    torch_dtype = config["model"]["torch_dtype"]
    # source: tuiwiz/train/builders.py model_dtype: torch_dtype, else the 4-bit compute dtype,
    # else bf16 on a GPU (fp16 on pre-Ampere cards: the same size), float32 on the CPU.
    if torch_dtype != "auto":
        load = _dtype_bytes(torch_dtype, 2)
    elif quant == "4bit":
        load = compute
    else:
        load = 2 if device == "cuda" else 4
    # builders.training_arguments turns bf16/fp16 off on the CPU; SFTConfig gets bf16=False
    # unless the preset says otherwise.
    mixed = bool(t.get("bf16") or t.get("fp16")) and device == "cuda"
    packing = bool(data.get("packing", False))
    seq = int(data["max_seq_length"])
    if longest is not None and not packing:
        seq = max(1, min(seq, longest))
    return RunSetup(
        batch=int(t["per_device_train_batch_size"]),
        seq=seq,
        grad_accum=int(t.get("gradient_accumulation_steps", 1)),
        checkpointing=bool(t.get("gradient_checkpointing", False)),
        attn=config["model"]["attn_implementation"],
        quant=quant,
        quant_type=q["bnb_4bit_quant_type"],
        double_quant=bool(q["bnb_4bit_use_double_quant"]),
        compute_bytes=compute,
        load_bytes=load,
        autocast_bytes=2 if mixed else None,
        optim=str(t.get("optim", "adamw_torch")),
        optim_args=str(t.get("optim_args") or ""),
        lora=dict(config["lora"]),
        packing=packing,
        device=device,
        # builders turns evaluation on when [data] validation_split > 0
        evaluates=float(data.get("validation_split", 0.0)) > 0
        or str(t.get("eval_strategy", "no")) not in ("no", "IntervalStrategy.NO"),
        eval_batch=int(t.get("per_device_eval_batch_size") or 8),
        quant_storage=q.get("bnb_4bit_quant_storage"),
        kbit_prepared=bool(q.get("upcast_unquantized", True)),
        padding_free=bool(t.get("padding_free", False)),
        liger=bool(t.get("use_liger_kernel", False)),
        offload=bool(t.get("activation_offloading", False)),
    )
