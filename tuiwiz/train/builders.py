"""Map a resolved preset onto the Hugging Face objects: BitsAndBytesConfig, the model, LoraConfig,
the tokenizer and SFTConfig (a TrainingArguments subclass)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tuiwiz.errors import ConfigError, first_line


def device_kind() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def local_rank() -> int:
    """This process's GPU on its node: torchrun's LOCAL_RANK, 0 for a single process."""
    import os

    return int(os.environ.get("LOCAL_RANK", "0"))


def uses_fsdp(config: dict[str, Any]) -> bool:
    from tuiwiz.launch import launch_of

    return launch_of(config).fsdp


def bnb_config(quantization: dict[str, Any], fsdp: bool = False):
    import torch
    from transformers import BitsAndBytesConfig

    if quantization["load_in_4bit"]:
        compute = getattr(torch, quantization["bnb_4bit_compute_dtype"])
        extra = {}
        if fsdp:
            # FSDP shards only floating-point tensors of one dtype: the packed 4-bit weights are
            # stored in the compute dtype (the model's dtype) instead of uint8 (bitsandbytes'
            # FSDP-QLoRA guide).
            extra["bnb_4bit_quant_storage"] = compute
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quantization["bnb_4bit_quant_type"],
            bnb_4bit_use_double_quant=quantization["bnb_4bit_use_double_quant"],
            bnb_4bit_compute_dtype=compute,
            **extra,
        )
    if quantization["load_in_8bit"]:
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


def model_dtype(config: dict[str, Any]):
    """The dtype weights load in: the compute dtype when quantized, else torch_dtype or auto."""
    import torch

    name = config["model"]["torch_dtype"]
    if name != "auto":
        return getattr(torch, name)
    if config["quantization"]["load_in_4bit"]:
        return getattr(torch, config["quantization"]["bnb_4bit_compute_dtype"])
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_tokenizer(path: str, config: dict[str, Any]):
    from transformers import AutoTokenizer

    model = config["model"]
    tokenizer = AutoTokenizer.from_pretrained(
        path, revision=model["revision"], trust_remote_code=model["trust_remote_code"]
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # batches need padding; EOS is the usual stand-in
    return tokenizer


def load_base_model(
    path: str, config: dict[str, Any], *, quantize: bool = True, dtype=None, on_cpu: bool = False
):
    """The base model as training loads it: quantized as the preset says (unless `quantize` is
    False), in the preset's dtype (or `dtype`), on the GPU when there is one (unless `on_cpu`)."""
    import torch
    from transformers import AutoModelForCausalLM

    model_cfg = config["model"]
    fsdp = quantize and uses_fsdp(config)
    if fsdp:
        # FSDP places and shards the weights itself: no device map. With
        # cpu_ram_efficient_loading only the first process reads the weights (see fsdp_settings).
        device_map = None
    else:
        # One whole copy per process, on that process's own GPU (DDP).
        device_map = {"": local_rank()} if torch.cuda.is_available() and not on_cpu else None
    return AutoModelForCausalLM.from_pretrained(
        path,
        revision=model_cfg["revision"],
        trust_remote_code=model_cfg["trust_remote_code"],
        attn_implementation=model_cfg["attn_implementation"],
        quantization_config=bnb_config(config["quantization"], fsdp=fsdp) if quantize else None,
        dtype=dtype or model_dtype(config),
        device_map=device_map,
    )


def checkpointing_settings(training: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Whether activations are checkpointed, and how. Presets name it gradient_checkpointing
    (tuiwiz.config maps transformers 5's activation_checkpointing onto it)."""
    # Non-reentrant checkpointing works with frozen inputs and with DDP (torch's recommendation).
    kwargs = training.get("gradient_checkpointing_kwargs") or {"use_reentrant": False}
    return bool(training.get("gradient_checkpointing")), dict(kwargs)


def resolve_speed(config: dict[str, Any]):
    """Turn `[training] speed` into the options it stands for on this machine, in `config`
    itself (the run records it as preset.toml), and refuse options this machine cannot run.
    Both builders call it first; a resolved configuration is left as it is. Returns the
    machine it resolved for."""
    from tuiwiz import speed

    machine = speed.this_machine(cuda=device_kind() == "cuda")
    speed.resolve_in_place(config, machine)
    found = speed.problems(config, machine)
    if found:
        raise ConfigError(found[0])
    return machine


def load_model(path: str, config: dict[str, Any]):
    """The base model, quantized as the preset says, prepared for k-bit training, with LoRA."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    resolve_speed(config)  # the attention kernel is chosen at load time
    lora, training = config["lora"], config["training"]
    quantization = bnb_config(config["quantization"])
    model = load_base_model(path, config)
    checkpointing, checkpointing_kwargs = checkpointing_settings(training)
    if uses_fsdp(config):
        # FSDP wraps checkpointing itself (fsdp_config activation_checkpointing), and keeps every
        # weight in the storage dtype: prepare_model_for_kbit_training would upcast the
        # non-quantized ones to float32, which FSDP cannot shard together with the rest.
        pass
    elif quantization is not None and config["quantization"]["upcast_unquantized"]:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=checkpointing,
            gradient_checkpointing_kwargs=checkpointing_kwargs,
        )
    elif checkpointing:
        # Without quantization, or with upcast_unquantized = false: the weights that are not
        # quantized stay in the model's dtype (get_peft_model freezes them all, as
        # prepare_model_for_kbit_training would).
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpointing_kwargs)
        model.enable_input_require_grads()
    peft_config = LoraConfig(
        r=lora["r"],
        lora_alpha=lora["lora_alpha"],
        lora_dropout=lora["lora_dropout"],
        target_modules=lora["target_modules"],
        bias=lora["bias"],
        use_rslora=lora["use_rslora"],
        use_dora=lora["use_dora"],
        modules_to_save=lora["modules_to_save"] or None,
        task_type="CAUSAL_LM",
    )
    keep_4bit_weights_trainable(model)
    return get_peft_model(model, peft_config)


def keep_4bit_weights_trainable(model: Any) -> None:
    """On a CPU with AVX512-BF16, bitsandbytes repacks a 4-bit layer's weights, in place and for
    good, the first time the layer runs in eval mode without gradients (its inference kernel's
    format). A run's evaluations (the base model's loss at step 0, eval_steps) would do that, and
    training goes on with the repacked weights: from then on its losses and gradients differ
    from a run with no evaluation (measured on the demo: the loss barely falls). Training keeps
    the format it started with."""
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False


def training_arguments(
    config: dict[str, Any], output_dir: Path, has_validation: bool, notice=print
):
    """SFTConfig from [training] plus what tuiwiz manages; errors become ConfigError."""
    from trl import SFTConfig

    from tuiwiz import speed

    machine = resolve_speed(config)
    if speed.speed_of(config) == "fast":
        notice(speed.summary(config, machine))
    training = dict(config["training"])
    training.pop("speed", None)  # tuiwiz's own key, resolved above
    data = config["data"]
    max_length = data["max_seq_length"]
    if training.get("padding_free") and not data["packing"]:
        # tuiwiz cut every example at max_seq_length when it tokenized them (tuiwiz.data.prepare);
        # TRL refuses padding_free with a max_length it would not enforce itself.
        max_length = None
    on_cpu = device_kind() == "cpu"
    if on_cpu:
        for precision in ("bf16", "fp16", "tf32"):
            if training.get(precision):
                notice(f"no CUDA GPU: {precision} is turned off, training runs in float32")
                training[precision] = False
        training["use_cpu"] = True
    # transformers 5 renamed gradient_checkpointing (the old name is a deprecated alias); the
    # model was prepared with the same settings (load_model).
    names = {f.name for f in dataclasses.fields(SFTConfig)}
    checkpointing, checkpointing_kwargs = checkpointing_settings(training)
    training.pop("gradient_checkpointing", None)
    training.pop("gradient_checkpointing_kwargs", None)
    if "activation_checkpointing" in names:
        training["activation_checkpointing"] = checkpointing
        training["activation_checkpointing_kwargs"] = checkpointing_kwargs
    else:
        training["gradient_checkpointing"] = checkpointing
        training["gradient_checkpointing_kwargs"] = checkpointing_kwargs
    training.setdefault("bf16", False)  # SFTConfig would turn bf16 on by default
    from tuiwiz.launch import launch_of

    if launch_of(config).distributed:
        if uses_fsdp(config):
            training.update(fsdp_settings(config, training))
            # FSDP checkpoints activations itself; SFTConfig would turn the Trainer's on.
            checkpointing = "activation_checkpointing"
            training[checkpointing if checkpointing in names else "gradient_checkpointing"] = False
        else:
            # LoRA uses every adapter in every step: no search for unused parameters (it costs
            # a pass over the graph each step, and fails with checkpointing).
            training.setdefault("ddp_find_unused_parameters", False)
    # tuiwiz rotates checkpoints itself, after a checkpoint is marked complete: the trainer's own
    # rotation runs before that, and could delete the last complete one for an unfinished one.
    training.pop("save_total_limit", None)
    if has_validation and "eval_strategy" not in training:
        training["eval_strategy"] = "steps"
        training.setdefault("eval_steps", training.get("save_steps", 100))
    if not has_validation and training.get("eval_strategy", "no") != "no":
        raise ConfigError(
            "[training] eval_strategy needs a validation set: set [data] validation_split > 0"
        )
    try:
        return SFTConfig(
            output_dir=str(output_dir),
            max_length=max_length,
            packing=data["packing"],
            include_num_input_tokens_seen="non_padding",
            disable_tqdm=True,
            save_only_model=False,
            dataset_num_proc=None,
            # tuiwiz's data is tokenized, truncated and rid of fully masked examples already
            # (tuiwiz.data.prepare): TRL's own pass over it would repeat that, one example at a
            # time (a minute per million rows). Packing is TRL's, so it keeps that pass.
            dataset_kwargs=None if data["packing"] else {"skip_prepare_dataset": True},
            **training,
        )
    except (ValueError, TypeError) as e:
        raise ConfigError(f"[training]: {first_line(e)}") from None


def fsdp_settings(config: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    """TrainingArguments for FSDP-QLoRA, after PEFT's and bitsandbytes' FSDP-QLoRA guides.

    FSDP1 with use_orig_params false: PEFT's documented configuration for QLoRA (FSDP2 with 4-bit
    weights is still an open accelerate feature request, huggingface/accelerate#3874). Each
    transformer block is one FSDP unit (auto wrap by layer class; transformers adds the LoRA
    layers as their own units for PEFT models). cpu_ram_efficient_loading: only the first
    process reads the weights, the others receive them (sync_module_states), so a node's RAM
    holds one copy of the model, not one per GPU. Checkpointing is FSDP's own (the Trainer's
    would add a redundant all-gather in the backward pass).
    """
    checkpointing = bool(
        training.pop("activation_checkpointing", None)
        or training.pop("gradient_checkpointing", None)
    )
    training.pop("activation_checkpointing_kwargs", None)
    training.pop("gradient_checkpointing_kwargs", None)
    fsdp_config = {
        "version": 1,
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "backward_prefetch": "BACKWARD_PRE",
        "forward_prefetch": False,
        "cpu_ram_efficient_loading": True,
        "sync_module_states": True,
        "use_orig_params": False,
        "offload_params": False,
        "state_dict_type": "SHARDED_STATE_DICT",
        "activation_checkpointing": checkpointing,
        **(training.pop("fsdp_config", None) or {}),
    }
    return {"fsdp": training.pop("fsdp", None) or True, "fsdp_config": fsdp_config}
