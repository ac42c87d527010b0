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
from tuiwiz.importing.llamafactory_keys import NOT_CARRIED, PREFIXES_NOT_CARRIED
from tuiwiz.importing.locate import locate

ATTENTION = {"sdpa": "sdpa", "fa2": "flash_attention_2", "fa3": "flash_attention_3"}
ATTENTION["disabled"] = "eager"
ATTENTION["auto"] = "sdpa"  # transformers' own choice, which is sdpa where it is available


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
    common.speed_options(conv, ("enable_liger_kernel",), None)
    common.distributed(conv)
    conv.drop_known(NOT_CARRIED)
    conv.drop_prefixed(PREFIXES_NOT_CARRIED)
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
