"""A LLaMA-Factory training YAML onto a tuiwiz preset.

Field meanings from LLaMA-Factory's argument dataclasses (src/llamafactory/hparams: model_args.py,
data_args.py, finetuning_args.py; training_args.py extends transformers' Seq2SeqTrainingArguments,
so its training keys are TrainingArguments fields and carry as they are). Defaults that apply when
a key is left out come from those dataclasses and from TrainingArguments.
"""

from __future__ import annotations

from tuiwiz.errors import ConfigError
from tuiwiz.importing import common
from tuiwiz.importing.convert import Conversion, shown, split_names
from tuiwiz.importing.llamafactory_data import convert_dataset
from tuiwiz.importing.locate import locate

MARKERS = frozenset(
    {
        "model_name_or_path",
        "stage",
        "finetuning_type",
        "dataset",
        "dataset_dir",
        "template",
        "cutoff_len",
        "lora_rank",
        "lora_target",
        "val_size",
        "quantization_bit",
        "plot_loss",
        "overwrite_cache",
        "preprocessing_num_workers",
        "additional_target",
        "do_train",
    }
)
ATTENTION = {"sdpa": "sdpa", "fa2": "flash_attention_2", "fa3": "flash_attention_3"}
ATTENTION["disabled"] = "eager"
ATTENTION["auto"] = "sdpa"  # transformers' own choice, which is sdpa where it is available

_NOT_SUPPORTED = "not supported by tuiwiz"
_INFERENCE = "an inference setting: pass it to `tuiwiz chat RUN` instead"
_TOKEN = "tokens are never stored in presets; set HF_TOKEN in the environment"
NOT_CARRIED = {
    "template": "tuiwiz renders conversations with the tokenizer's own chat template (the "
    "model's), or the ### Instruction / ### Response layout when it has none",
    "plot_loss": "not needed: the dashboard and `tuiwiz compare` chart the loss",
    "overwrite_cache": "not needed: tuiwiz's tokenization cache is keyed on the data and tokenizer",
    "preprocessing_num_workers": "tuiwiz tokenizes in batches and caches the result itself",
    "preprocessing_batch_size": "tuiwiz tokenizes in batches and caches the result itself",
    "tokenized_path": "tuiwiz caches tokenized data itself (~/.cache/tuiwiz/tokenized)",
    "eval_dataset": "tuiwiz holds out [data] validation_split of the training rows instead",
    "mix_strategy": "tuiwiz trains on one dataset",
    "interleave_probs": "tuiwiz trains on one dataset",
    "streaming": "streaming datasets are not supported",
    "buffer_size": "streaming datasets are not supported",
    "mask_history": "tuiwiz trains every assistant turn of a conversation",
    "tool_format": "tool calling data is not supported",
    "media_dir": "text models only",
    "ignore_pad_token_for_loss": "not needed: padding never counts in the loss",
    "eval_on_each_dataset": "tuiwiz trains on one dataset",
    "eval_num_beams": _INFERENCE,
    "adapter_name_or_path": "tuiwiz trains a new adapter; starting from a trained one is not "
    "supported",
    "adapter_folder": "tuiwiz trains a new adapter",
    "create_new_adapter": "tuiwiz trains a new adapter",
    "cache_dir": "models come from the Hugging Face cache (set HF_HOME to move it)",
    "use_fast_tokenizer": "tuiwiz uses the model's fast tokenizer",
    "resize_vocab": "tuiwiz does not change the tokenizer",
    "split_special_tokens": "tuiwiz does not change the tokenizer",
    "add_tokens": "tuiwiz does not add tokens to the tokenizer",
    "add_special_tokens": "tuiwiz does not add tokens to the tokenizer",
    "new_special_tokens_config": "tuiwiz does not add tokens to the tokenizer",
    "init_special_tokens": "tuiwiz does not add tokens to the tokenizer",
    "low_cpu_mem_usage": "tuiwiz places the model itself",
    "rope_scaling": "context extension is not supported",
    "shift_attn": "shifted sparse attention is not supported",
    "mixture_of_depths": _NOT_SUPPORTED,
    "use_unsloth": "unsloth is not supported",
    "use_unsloth_gc": "unsloth is not supported",
    "enable_liger_kernel": "Liger kernels are not supported",
    "use_v1_kernels": _NOT_SUPPORTED,
    "moe_aux_loss_coef": _NOT_SUPPORTED,
    "use_reentrant_gc": "tuiwiz uses non-reentrant gradient checkpointing",
    "upcast_layernorm": _NOT_SUPPORTED,
    "upcast_lmhead_output": _NOT_SUPPORTED,
    "train_from_scratch": "tuiwiz fine-tunes a pretrained model",
    "print_param_status": "`tuiwiz inspect MODEL` shows the parameters",
    "offload_folder": "tuiwiz places the model itself",
    "use_kv_cache": _INFERENCE,
    "infer_backend": _INFERENCE,
    "infer_dtype": _INFERENCE,
    "hf_hub_token": _TOKEN,
    "ms_hub_token": _TOKEN,
    "om_hub_token": _TOKEN,
    "quantization_device_map": "tuiwiz places the model itself",
    "pure_bf16": "tuiwiz trains with mixed precision ([training] bf16)",
    "use_llama_pro": _NOT_SUPPORTED,
    "freeze_vision_tower": "text models only",
    "freeze_multi_modal_projector": "text models only",
    "freeze_language_model": "text models only",
    "pissa_init": "PiSSA initialization is not supported",
    "pissa_iter": "PiSSA initialization is not supported",
    "pissa_convert": "PiSSA initialization is not supported",
    "loraplus_lr_ratio": "LoRA+ is not supported",
    "loraplus_lr_embedding": "LoRA+ is not supported",
    "use_galore": "GaLore is not supported",
    "use_apollo": "APOLLO is not supported",
    "use_badam": "BAdam is not supported",
    "use_adam_mini": "Adam-mini is not supported",
    "use_muon": "Muon is not supported",
    "compute_accuracy": "not supported: `tuiwiz eval RUN` measures the loss",
    "disable_shuffling": "tuiwiz shuffles the training rows each epoch",
    "include_effective_tokens_per_second": "not needed: tuiwiz always logs tokens per second",
    "use_swanlab": 'SwanLab is not supported: report_to = ["wandb"] or ["tensorboard"]',
    "export_dir": "export after training with `tuiwiz export RUN --out DIR`",
    "export_size": "export after training with `tuiwiz export RUN --out DIR`",
    "export_device": "export after training with `tuiwiz export RUN --out DIR`",
    "export_quantization_bit": "export after training with `tuiwiz export RUN --out DIR`",
    "export_legacy_format": "export after training with `tuiwiz export RUN --out DIR`",
    "export_hub_model_id": "export after training with `tuiwiz export RUN --out DIR`",
    "predict_with_generate": _INFERENCE,
    "do_sample": _INFERENCE,
    "temperature": _INFERENCE,
    "top_p": _INFERENCE,
    "top_k": _INFERENCE,
    "num_beams": _INFERENCE,
    "max_length": _INFERENCE,
    "max_new_tokens": _INFERENCE,
    "repetition_penalty": _INFERENCE,
    "length_penalty": _INFERENCE,
    "default_system": "not supported: put a system message in the rows",
    "enable_thinking": _INFERENCE,
}
_PREFIXES_NOT_CARRIED = {
    "swanlab_": "SwanLab is not supported",
    "galore_": "GaLore is not supported",
    "apollo_": "APOLLO is not supported",
    "badam_": "BAdam is not supported",
    "freeze_": "tuiwiz trains LoRA adapters; freezing rules do not apply",
    "oft_": "OFT is not supported: tuiwiz trains LoRA adapters",
    "pref_": "preference training is not supported",
    "ppo_": "PPO is not supported",
    "kto_": "KTO is not supported",
    "ref_model": "preference training is not supported",
    "reward_model": "reward models are not supported",
    "ray_": "Ray is not supported",
    "image_": "text models only",
    "video_": "text models only",
    "audio_": "text models only",
    "vllm_": _INFERENCE,
    "export_": "export after training with `tuiwiz export RUN --out DIR`",
    "fp8": "fp8 training is not supported",
}


def convert(conv: Conversion) -> None:
    stage = _stage(conv)
    _model(conv)
    _method(conv)
    _lora(conv)
    _quantization(conv)
    _precision(conv)
    convert_dataset(conv, stage)
    _data_settings(conv, stage)
    _training(conv)
    common.distributed(conv)
    conv.drop_known(NOT_CARRIED)
    conv.drop_prefixed(_PREFIXES_NOT_CARRIED)
    conv.finish()


def refuse_other_files(data: dict, path) -> None:
    """LLaMA-Factory files that are not (classic) training configs: say what they are."""
    if {"peft_config", "train_dataset", "model_class"} & data.keys():
        raise ConfigError(
            f"{path}: a LLaMA-Factory v1 config (model, peft_config, train_dataset), a newer "
            "format that tuiwiz import does not read; use the classic format "
            "(model_name_or_path, finetuning_type, dataset ...)"
        )
    if not {"dataset", "stage", "do_train"} & data.keys():
        kind = "export (merge)" if "export_dir" in data else "inference"
        raise ConfigError(
            f"{path}: no dataset, stage or do_train: a LLaMA-Factory {kind} config, not a "
            "training config"
        )


def _stage(conv: Conversion) -> str:
    stage = conv.take("stage", "sft")
    if stage == "sft":
        conv.carried.append("stage")
        return stage
    if stage == "pt":
        conv.translated("stage", stage, {"data.format": "text"}, "pre-training on plain text")
        return stage
    raise ConfigError(
        f"{conv.path}: stage: {shown(stage)}: tuiwiz does supervised fine-tuning (stage: sft) "
        "and plain-text training (stage: pt) only"
    )


def _model(conv: Conversion) -> None:
    ref = conv.take("model_name_or_path")
    if isinstance(ref, str) and ref.strip():
        locate(conv, "model_name_or_path", ref.strip(), "model.name_or_path")
    else:
        conv.placeholder("model.name_or_path", "model_name_or_path", "the file names no model")
    revision = conv.take("model_revision")
    if isinstance(revision, str):
        conv.translated("model_revision", revision, {"model.revision": revision})
    elif revision is not None:
        conv.dropped("model_revision", f"{shown(revision)} is not a branch, tag or commit")
    conv.flag_to("trust_remote_code", "model.trust_remote_code")
    if conv.raw["model"].get("trust_remote_code"):
        conv.check("trust_remote_code", "true: Python code from the model repo will run")
    attention = conv.take("flash_attn")
    if attention is None:
        return
    if isinstance(attention, str) and attention in ATTENTION:
        why = "transformers' own choice" if attention == "auto" else ""
        conv.translated(
            "flash_attn", attention, {"model.attn_implementation": ATTENTION[attention]}, why
        )
    else:
        conv.dropped("flash_attn", f"{shown(attention)} is not supported; tuiwiz uses sdpa")


def _method(conv: Conversion) -> None:
    kind = conv.take("finetuning_type", "lora")
    if kind == "lora":
        conv.carried.append("finetuning_type")
        return
    conv.check(
        "finetuning_type",
        f"{shown(kind)}: tuiwiz trains LoRA adapters; this preset trains one with these settings "
        "(LoRA usually wants a learning rate of 1e-4 to 2e-4)",
    )


def _lora(conv: Conversion) -> None:
    conv.number_to("lora_rank", "lora.r", int)
    if "r" not in conv.raw["lora"]:
        conv.default("lora_rank", "lora.r", 8, "LLaMA-Factory's default")
    rank = conv.raw["lora"].get("r", 8)
    conv.number_to("lora_alpha", "lora.lora_alpha", float, rename=False)
    alpha = conv.raw["lora"].get("lora_alpha")
    if isinstance(alpha, float) and alpha.is_integer():
        conv.raw["lora"]["lora_alpha"] = int(alpha)
    if alpha is None:
        conv.default("lora_alpha", "lora.lora_alpha", 2 * rank, "LLaMA-Factory's default, 2 x rank")
    conv.number_to("lora_dropout", "lora.lora_dropout", float, rename=False)
    if "lora_dropout" not in conv.raw["lora"]:
        conv.default("lora_dropout", "lora.lora_dropout", 0.0, "LLaMA-Factory's default")
    target = conv.take("lora_target", "all")
    names = split_names(target)
    if names == ["all"]:
        conv.translated("lora_target", target, {"lora.target_modules": "all-linear"})
    elif names:
        conv.translated("lora_target", target, {"lora.target_modules": names})
    else:
        conv.dropped("lora_target", f"{shown(target)} is not a list of module names")
    extra = conv.take("additional_target")
    if extra is not None:
        names = split_names(extra)
        if names:
            conv.translated("additional_target", extra, {"lora.modules_to_save": names})
        else:
            conv.dropped("additional_target", f"{shown(extra)} is not a list of module names")
    conv.flag_to("use_rslora", "lora.use_rslora")
    conv.flag_to("use_dora", "lora.use_dora")


def _quantization(conv: Conversion) -> None:
    bits = conv.take("quantization_bit")
    method = conv.take("quantization_method")
    if method not in (None, "bnb", "bitsandbytes"):
        conv.dropped("quantization_method", f"{shown(method)}: tuiwiz quantizes with bitsandbytes")
        if bits is not None:
            conv.dropped("quantization_bit", f"{shown(bits)}: the model loads unquantized")
        conv.write("quantization.load_in_4bit", False)
        conv.write("quantization.load_in_8bit", False)
        bits = "dropped"
    elif method is not None:
        conv.carried.append("quantization_method")
    if bits in (4, 8):
        key = f"quantization.load_in_{bits}bit"
        other = f"quantization.load_in_{12 - bits}bit"
        conv.translated("quantization_bit", bits, {key: True, other: False})
    elif bits is None:
        conv.default(
            "quantization_bit", "quantization.load_in_4bit", False, "LLaMA-Factory's default"
        )
        conv.write("quantization.load_in_8bit", False)
    elif bits != "dropped":
        conv.dropped("quantization_bit", f"{shown(bits)}: tuiwiz quantizes to 4 or 8 bits")
        conv.write("quantization.load_in_4bit", False)
    kind = conv.take("quantization_type")
    if kind is not None:
        conv.translated("quantization_type", kind, {"quantization.bnb_4bit_quant_type": kind})
    double = conv.take("double_quantization")
    if double is not None:
        conv.translated(
            "double_quantization", double, {"quantization.bnb_4bit_use_double_quant": double}
        )


def _precision(conv: Conversion) -> None:
    bf16, fp16 = conv.take("bf16"), conv.take("fp16")
    conv.flag_to("tf32", "training.tf32")
    for key, value in (("bf16", bf16), ("fp16", fp16)):
        if value is not None and not isinstance(value, bool):
            conv.dropped(key, f"{shown(value)} is not true or false")
    bf16, fp16 = (v if isinstance(v, bool) else None for v in (bf16, fp16))
    if bf16 is True:
        why = "the model loads and computes in bfloat16"
        common.precision(conv, "bf16", True, "bf16", why, True)
        if fp16 is True:
            conv.dropped("fp16", "bf16 is set too, and takes precedence")
        elif fp16 is False:
            conv.carried.append("fp16")
    elif fp16 is True:
        why = "the model loads and computes in float16"
        common.precision(conv, "fp16", True, "fp16", why, True)
        if bf16 is False:
            conv.carried.append("bf16")
    else:
        why = "no mixed precision; the model loads in its own dtype"
        src = "bf16" if bf16 is not None else "fp16" if fp16 is not None else None
        if src:
            common.precision(conv, src, False, "fp32", why, False)
            if src == "bf16" and fp16 is False:
                conv.carried.append("fp16")
        else:
            conv.default("bf16", "training.bf16", False, "transformers' default (" + why + ")")


def _data_settings(conv: Conversion, stage: str) -> None:
    length = conv.take("cutoff_len")
    if length is not None:
        number = conv.number(length, int)
        if number is None:
            conv.dropped("cutoff_len", f"{shown(length)} is not a whole number")
        else:
            conv.translated("cutoff_len", length, {"data.max_seq_length": number})
    else:
        conv.default("cutoff_len", "data.max_seq_length", 2048, "LLaMA-Factory's default")
    packing = conv.take("packing")
    neat = conv.take("neat_packing")
    if neat is True:
        conv.translated(
            "neat_packing",
            True,
            {"data.packing": True},
            "without LLaMA-Factory's attention masks between packed examples",
        )
    elif isinstance(packing, bool):
        conv.same("packing", "data.packing", packing)
    if neat is True and packing is not None:
        conv.dropped("packing", "neat_packing is given too, and takes precedence")
    elif neat is False:
        conv.carried.append("neat_packing")
    elif neat is not None:
        conv.dropped("neat_packing", f"{shown(neat)} is not true or false")
    if packing is not None and not isinstance(packing, bool):
        conv.dropped("packing", f"{shown(packing)} is not true or false")
    if neat is not True and not isinstance(packing, bool) and stage == "pt":
        conv.default("packing", "data.packing", True, "LLaMA-Factory's default for stage pt")
    conv.flag_to("train_on_prompt", "data.train_on_prompt")
    size = conv.take("val_size")
    if size is not None:
        number = conv.number(size)
        if number is not None and 0 <= number < 1:
            conv.translated("val_size", size, {"data.validation_split": number})
        else:
            conv.dropped(
                "val_size",
                f"{shown(size)}: tuiwiz holds out a fraction of the rows (validation_split in "
                "[0, 1)); divide the count by the number of rows",
            )
    samples = conv.take("max_samples")
    if samples is not None:
        number = conv.number(samples, int)
        if number is None:
            conv.dropped("max_samples", f"{shown(samples)} is not a whole number")
        else:
            conv.translated("max_samples", samples, {"data.max_samples": number}, "rows read")


def _training(conv: Conversion) -> None:
    """TrainingArguments keys: the same names in both tools. Where the file leaves one out,
    LLaMA-Factory uses transformers' default, written when it is not tuiwiz's (logging and
    checkpoint intervals keep tuiwiz's: they do not change what is learned)."""
    defaults = {
        "learning_rate": 5e-5,
        "num_train_epochs": 3.0,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "lr_scheduler_type": "linear",
        "optim": "adamw_torch",
        "weight_decay": 0.0,
    }
    for key in ("learning_rate", "num_train_epochs", "weight_decay"):
        conv.number_to(key, f"training.{key}")
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps", "max_steps"):
        conv.number_to(key, f"training.{key}", int)
    optimizer = conv.take("optim")
    if optimizer is not None:
        common.optimizer(conv, "optim", optimizer)
    scheduler = conv.take("lr_scheduler_type")
    if scheduler is not None:
        common.scheduler(conv, "lr_scheduler_type", scheduler)
    given = common.warmup(
        conv, conv.take("warmup_steps"), conv.take("warmup_ratio"), "warmup_steps", "warmup_ratio"
    )
    if not given:
        conv.default("warmup_steps", "training.warmup_steps", 0, "transformers' default")
    no_checkpointing = conv.take("disable_gradient_checkpointing")
    if no_checkpointing is True:
        conv.translated(
            "disable_gradient_checkpointing",
            True,
            {"training.gradient_checkpointing": False},
        )
    else:
        conv.write("training.gradient_checkpointing", True)  # LLaMA-Factory's default, and ours
        if no_checkpointing is False:
            conv.carried.append("disable_gradient_checkpointing")
        elif no_checkpointing is not None:
            conv.dropped(
                "disable_gradient_checkpointing", f"{shown(no_checkpointing)} is not true or false"
            )
    for key, value in defaults.items():
        if key not in conv.raw["training"] and not conv.has(key):
            conv.default(key, f"training.{key}", value, "transformers' default")
