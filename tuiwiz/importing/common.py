"""Conversions both importers make the same way: optimizer and scheduler names, warmup given as a
ratio, mixed precision and the dtypes it implies, and loggers (report_to)."""

from __future__ import annotations

from typing import Any

from tuiwiz.importing import hf_names
from tuiwiz.importing.convert import Conversion, shown

DTYPE = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def optimizer(conv: Conversion, src: str, value: Any) -> None:
    known = hf_names.optimizers()
    if isinstance(value, str) and (value in known or not known):
        if src == "optim":
            conv.same(src, "training.optim", value)
        else:
            conv.translated(src, value, {"training.optim": value})
    else:
        conv.dropped(
            src,
            f"{shown(value)} is not a transformers optimizer; tuiwiz's default "
            f"{conv.raw['training'].get('optim', 'paged_adamw_8bit')} is used",
        )


def scheduler(conv: Conversion, src: str, value: Any) -> bool:
    known = hf_names.schedulers()
    if isinstance(value, str) and (value in known or not known):
        if src == "lr_scheduler_type":
            return conv.same(src, "training.lr_scheduler_type", value)
        return conv.translated(src, value, {"training.lr_scheduler_type": value})
    conv.dropped(src, f"{shown(value)} is not a transformers scheduler; tuiwiz's default is used")
    return False


def warmup(conv: Conversion, steps: Any, ratio: Any, steps_key: str, ratio_key: str) -> bool:
    """warmup_steps as given, or warmup_ratio as a fractional warmup_steps (transformers reads
    a warmup_steps below 1 as a fraction of all steps). Returns whether either was given."""
    if steps is not None:
        number = conv.number(steps, int)
        if number is None:
            conv.dropped(steps_key, f"{shown(steps)} is not a whole number of steps")
        elif isinstance(steps, str):
            conv.translated(steps_key, steps, {"training.warmup_steps": number}, "read as a number")
        else:
            conv.same(steps_key, "training.warmup_steps", number)
        if ratio is not None:
            conv.dropped(ratio_key, f"{steps_key} is given too, and takes precedence")
        return True
    if ratio is not None:
        number = conv.number(ratio)
        if number is None or not 0 <= number < 1:
            conv.dropped(ratio_key, f"{shown(ratio)} is not a fraction in [0, 1)")
        else:
            why = "a warmup_steps below 1 is a fraction of all steps"
            conv.translated(ratio_key, ratio, {"training.warmup_steps": number}, why)
        return True
    return False


def precision(conv: Conversion, src: str, value: Any, mode: str, why: str, dtypes: bool) -> None:
    """Mixed precision `mode` (bf16, fp16 or fp32), and with `dtypes` also the dtype the model is
    loaded in and 4-bit matmuls compute in, as the other tool derives them from it."""
    targets: dict[str, Any] = {"training.bf16": mode == "bf16"}
    if mode == "fp16":
        targets["training.fp16"] = True
    if dtypes:
        targets["model.torch_dtype"] = DTYPE[mode]
        targets["quantization.bnb_4bit_compute_dtype"] = DTYPE[mode]
    conv.translated(src, value, targets, why)


def add_report_to(conv: Conversion, logger: str) -> None:
    """Add a logger to [training] report_to (transformers' integrations: wandb, tensorboard...)."""
    current = conv.raw["training"].get("report_to", [])
    current = [current] if isinstance(current, str) else list(current)
    if logger not in current:
        conv.write("training.report_to", [*current, logger])


CHAT_TEMPLATE_WHY = (
    "tuiwiz renders conversations with the tokenizer's own chat template (the model's), or the "
    "### Instruction / ### Response layout when it has none"
)


def distributed(conv: Conversion) -> None:
    """fsdp (axolotl's list, or TrainingArguments' text) becomes [launch] strategy = "fsdp" on
    every visible GPU; DeepSpeed has no equivalent."""
    fsdp, fsdp_config = conv.take("fsdp"), conv.take("fsdp_config")
    version = conv.take("fsdp_version")
    for key, value in (("fsdp", fsdp), ("fsdp_config", fsdp_config)):
        if value is not None and not value:
            conv.carried.append(key)  # empty or false: no FSDP, as a one-process preset
    if fsdp or fsdp_config:
        conv.translated(
            "fsdp" if fsdp else "fsdp_config",
            fsdp or "{...}",
            {"launch.strategy": "fsdp", "launch.nproc_per_node": "auto"},
            "one process per visible GPU, as accelerate launches it; tuiwiz writes FSDP-QLoRA's "
            "settings itself",
            show=bool(fsdp),
        )
        if fsdp and fsdp_config:
            conv.dropped("fsdp_config", "tuiwiz writes FSDP-QLoRA's settings itself")
    if version is not None:
        conv.dropped("fsdp_version", "tuiwiz uses FSDP1, as peft documents for QLoRA")
    deepspeed = conv.take("deepspeed")
    if deepspeed is not None and not deepspeed:
        conv.carried.append("deepspeed")  # empty or false: no DeepSpeed
    elif deepspeed:
        conv.dropped(
            "deepspeed",
            'tuiwiz trains with DDP or FSDP, not DeepSpeed: [launch] strategy = "fsdp" shards '
            "a model too large for one GPU",
        )


# axolotl's Liger options (through its LigerPlugin) for the kernels TRL's use_liger_kernel applies.
LIGER_KERNEL_KEYS = ("liger_rope", "liger_rms_norm", "liger_glu_activation", "liger_layer_norm")
LIGER_LOSS_WHY = (
    "TRL computes the loss with its own fused, chunked LM head and keeps Liger's fused "
    "cross-entropy off: only one of them may patch the model"
)


def speed_options(conv: Conversion, liger_keys: tuple[str, ...], group_key: str | None) -> None:
    """Liger's kernels and length-grouped batches, where the other tool has them:
    use_liger_kernel and train_sampling_strategy = "group_by_length" (tuiwiz.speed)."""
    for key in liger_keys:
        value = conv.take(key)
        if value is True:
            conv.translated(key, value, {"training.use_liger_kernel": True})
        elif value is False:
            conv.carried.append(key)  # off in both tools
        elif value is not None:
            conv.dropped(key, f"{shown(value)} is not true or false")
    if group_key is None:
        return
    value = conv.take(group_key)
    if value is True:
        conv.translated(group_key, value, {"training.train_sampling_strategy": "group_by_length"})
    elif value is False:
        conv.carried.append(group_key)
    elif value is not None:
        conv.dropped(group_key, f"{shown(value)} is not true or false")
