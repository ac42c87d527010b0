"""An axolotl YAML config onto a tuiwiz preset.

Field meanings from axolotl's config reference (src/axolotl/utils/schemas: config.py, peft.py,
training.py, model.py, datasets.py) and its trainer builder (the defaults that apply when a key
is left out: warmup 3% of steps, at most 100; bf16 "auto"; cosine; adamw_torch_fused; ...).
"""

from __future__ import annotations

from tuiwiz.errors import ConfigError
from tuiwiz.importing import common
from tuiwiz.importing.axolotl_data import convert_datasets, top_level_template
from tuiwiz.importing.axolotl_keys import NOT_CARRIED, PREFIXES_NOT_CARRIED
from tuiwiz.importing.convert import Conversion, shown, split_names
from tuiwiz.importing.locate import locate


def convert(conv: Conversion) -> None:
    _refuse_other_training(conv)
    _model(conv)
    _attention(conv)
    _adapter_and_quantization(conv)
    _lora(conv)
    _precision(conv)
    convert_datasets(conv)
    top_level_template(conv)
    _data_settings(conv)
    _batch_and_schedule(conv)
    _intervals(conv)
    _loggers(conv)
    _speed(conv)
    common.distributed(conv)
    _renamed(conv)
    conv.drop_known(NOT_CARRIED)
    conv.drop_prefixed(PREFIXES_NOT_CARRIED)
    conv.finish()


def _speed(conv: Conversion) -> None:
    """Liger's kernels (axolotl's LigerPlugin options), length-grouped batches and activation
    offloading, which tuiwiz has too; Liger's fused cross-entropy stays TRL's fused LM head."""
    common.speed_options(conv, common.LIGER_KERNEL_KEYS, "group_by_length")
    value = conv.take("liger_fused_linear_cross_entropy")
    if value is not None:
        conv.dropped("liger_fused_linear_cross_entropy", common.LIGER_LOSS_WHY)
    value = conv.take("activation_offloading")
    if value is True:
        conv.translated("activation_offloading", value, {"training.activation_offloading": True})
    elif value is False:
        conv.carried.append("activation_offloading")
    elif value is not None:
        conv.dropped(
            "activation_offloading",
            f"{shown(value)}: tuiwiz offloads activations to CPU RAM (true) or not at all",
        )


def _renamed(conv: Conversion) -> None:
    """Keys axolotl passes on to TrainingArguments under their older name."""
    for old, new in (("evaluation_strategy", "eval_strategy"), ("adam_eps", "adam_epsilon")):
        value = conv.take(old)
        if value is not None and not conv.has(new):
            conv.translated(old, value, {f"training.{new}": value})
        elif value is not None:
            conv.dropped(old, f"{new} is given too, and takes precedence")


def _refuse_other_training(conv: Conversion) -> None:
    """Preference and reward training would import as something else entirely: refuse them."""
    for key in ("rl", "reward_model", "process_reward_model"):
        value = conv.keys.left.get(key)
        if value:
            raise ConfigError(
                f"{conv.path}: {key}: {shown(value)} is preference or reward-model training; "
                "tuiwiz does supervised fine-tuning only (remove it to import the rest)"
            )


def _model(conv: Conversion) -> None:
    ref = conv.take("base_model")
    if isinstance(ref, str) and ref.strip():
        locate(conv, "base_model", ref.strip(), "model.name_or_path")
    else:
        conv.placeholder("model.name_or_path", "base_model", "the file names no base_model")
    revision = conv.take("revision_of_model")
    if isinstance(revision, str):
        conv.translated("revision_of_model", revision, {"model.revision": revision})
    elif revision is not None:
        conv.dropped("revision_of_model", f"{shown(revision)} is not a branch, tag or commit")
    conv.flag_to("trust_remote_code", "model.trust_remote_code")
    if conv.raw["model"].get("trust_remote_code"):
        conv.check("trust_remote_code", "true: Python code from the model repo will run")


def _attention(conv: Conversion) -> None:
    flags = {"flash_attention": "flash_attention_2", "sdp_attention": "sdpa"}
    flags["eager_attention"] = "eager"
    chosen = conv.take("attn_implementation")
    if chosen is not None and not isinstance(chosen, str):
        conv.dropped("attn_implementation", f"{shown(chosen)} is not an attention kernel's name")
    elif isinstance(chosen, str):
        choices = ("sdpa", "eager", "flash_attention_2", "flash_attention_3")
        if chosen in choices:
            conv.same("attn_implementation", "model.attn_implementation", chosen)
        else:
            conv.dropped("attn_implementation", f"{chosen} is not supported; tuiwiz uses sdpa")
    for key, implementation in flags.items():
        value = conv.take(key)
        if value is True and not isinstance(chosen, str):
            conv.translated(key, value, {"model.attn_implementation": implementation})
        elif value is True:
            conv.dropped(key, "attn_implementation is given too, and takes precedence")
        elif value is False:
            conv.carried.append(key)  # off, as in tuiwiz unless attn_implementation says so
        elif value is not None:
            conv.dropped(key, f"{shown(value)} is not true or false")


def _adapter_and_quantization(conv: Conversion) -> None:
    adapter = conv.take("adapter")
    flags = {"load_in_4bit": conv.take("load_in_4bit"), "load_in_8bit": conv.take("load_in_8bit")}
    for key, value in flags.items():
        if value is not None and not isinstance(value, bool):
            conv.dropped(key, f"{shown(value)} is not true or false")
            flags[key] = None
    peft = conv.take("peft")
    if isinstance(peft, dict) and peft.get("backend") == "bnb":
        dtype = peft.get("weight_dtype")
        key = {"nf4": "load_in_4bit", "int8": "load_in_8bit"}.get(
            dtype if isinstance(dtype, str) else ""
        )
        if key:
            if flags[key] is False:
                conv.dropped(key, f"false, but peft.weight_dtype: {dtype} quantizes the model")
            conv.translated("peft", peft, {f"quantization.{key}": True}, "bitsandbytes")
            flags[key] = True
        else:
            conv.dropped("peft", f"{shown(peft)}: tuiwiz quantizes to nf4 or int8 only")
    elif peft is not None:
        conv.dropped("peft", f"{shown(peft)}: tuiwiz quantizes with bitsandbytes only")
    if adapter == "qlora" and flags["load_in_4bit"] is False:
        conv.dropped("load_in_4bit", "false, but adapter: qlora trains on the 4-bit model")
    if adapter == "qlora" and flags["load_in_4bit"] is not True:
        conv.translated(
            "adapter", adapter, {"quantization.load_in_4bit": True}, "LoRA on the 4-bit model"
        )
    elif adapter in ("lora", "qlora"):
        conv.carried.append("adapter")
    elif adapter in (None, ""):
        conv.check(
            "adapter",
            "none given: axolotl would fine-tune every weight; tuiwiz trains a LoRA adapter "
            "with these settings instead (LoRA usually wants a learning rate of 1e-4 to 2e-4)",
        )
    else:
        conv.check("adapter", f"{shown(adapter)}: tuiwiz trains LoRA adapters; this preset does")
    for key, value in flags.items():
        dotted = f"quantization.{key}"
        if dotted in _written(conv):
            continue
        if value is None:
            conv.default(key, dotted, False, "axolotl's default (not quantized)")
        else:
            conv.same(key, dotted, value)
    kwargs = conv.take("bnb_config_kwargs")
    if isinstance(kwargs, dict):
        for name, value in kwargs.items():
            key = f"bnb_config_kwargs.{name}"
            if name in ("bnb_4bit_quant_type", "bnb_4bit_use_double_quant"):
                conv.translated(key, value, {f"quantization.{name}": value})
            else:
                conv.dropped(key, "tuiwiz sets the other BitsAndBytesConfig fields itself")
    elif kwargs is not None:
        conv.dropped("bnb_config_kwargs", f"{shown(kwargs)} is not a mapping")


def _written(conv: Conversion) -> set[str]:
    return {f"{s}.{k}" for s, table in conv.raw.items() for k in table}


def _lora(conv: Conversion) -> None:
    conv.number_to("lora_r", "lora.r", int)
    if "r" not in conv.raw["lora"]:
        conv.default("lora_r", "lora.r", 8, "peft's default rank")
    conv.number_to("lora_alpha", "lora.lora_alpha", float, rename=False)
    if "lora_alpha" not in conv.raw["lora"]:
        conv.default("lora_alpha", "lora.lora_alpha", 8, "peft's default")
    conv.number_to("lora_dropout", "lora.lora_dropout", float, rename=False)
    if "lora_dropout" not in conv.raw["lora"]:
        conv.default("lora_dropout", "lora.lora_dropout", 0.0, "axolotl's default")
    _integral(conv, "lora.lora_alpha")
    modules, linear = conv.take("lora_target_modules"), conv.take("lora_target_linear")
    names = split_names(modules) if modules is not None else None
    if linear is False:
        conv.carried.append("lora_target_linear")
    elif linear is not None and linear is not True:
        conv.dropped("lora_target_linear", f"{shown(linear)} is not true or false")
    if modules is not None and names is None:
        conv.dropped("lora_target_modules", f"{shown(modules)} is not a list of module names")
        modules = None
    if linear is True:
        why = "every linear layer"
        if names:
            why += f", which includes {', '.join(names)} (lora_target_modules)"
            conv.carried.append("lora_target_modules")
        conv.translated("lora_target_linear", True, {"lora.target_modules": "all-linear"}, why)
    elif names and all(n.replace("_", "").replace(".", "").isalnum() for n in names):
        conv.translated("lora_target_modules", modules, {"lora.target_modules": names})
    else:
        if modules is not None:
            conv.dropped(
                "lora_target_modules",
                f"{shown(modules)}: tuiwiz takes module names or all-linear, not a pattern",
            )
        conv.check(
            "lora_target_modules",
            'no target modules: target_modules = "all-linear" written (peft would pick the '
            "model type's own defaults); choose them in the wizard's Target modules step",
        )
    saved = conv.take("lora_modules_to_save")
    if saved is not None:
        names = split_names(saved)
        if names:
            conv.translated("lora_modules_to_save", saved, {"lora.modules_to_save": names})
        else:
            conv.dropped("lora_modules_to_save", f"{shown(saved)} is not a list of module names")
    conv.flag_to("peft_use_dora", "lora.use_dora")
    conv.flag_to("peft_use_rslora", "lora.use_rslora")


def _integral(conv: Conversion, dotted: str) -> None:
    """Write 16.0 as 16 (YAML may give either; the preset reads better as an integer)."""
    section, name = dotted.split(".", 1)
    value = conv.raw[section].get(name)
    if isinstance(value, float) and value.is_integer():
        conv.raw[section][name] = int(value)


def _precision(conv: Conversion) -> None:
    bf16, fp16 = conv.take("bf16"), conv.take("fp16")
    conv.flag_to("tf32", "training.tf32")
    if fp16 is True and bf16 in (None, "auto", False):
        common.precision(
            conv, "fp16", True, "fp16", "the model loads and computes in float16", True
        )
        if bf16 is not None:
            conv.dropped("bf16", f"{shown(bf16)}: fp16 is set and takes precedence")
        return
    if fp16 is False:
        conv.carried.append("fp16")
    elif fp16 is not None:
        conv.dropped("fp16", f"{shown(fp16)}: bf16 is set and takes precedence")
    if bf16 in (None, "auto"):
        why = (
            "auto: bf16 where the GPU has it (Ampere or newer), which an import cannot know; "
            "set fp16 = true instead on older GPUs"
        )
        if bf16 is None:
            why = "not in the file; axolotl's default is " + why
        common.precision(conv, "bf16", bf16 or "auto", "bf16", why, True)
    elif bf16 is True or bf16 == "full":
        why = "the model loads and computes in bfloat16"
        if bf16 == "full":
            why += "; bf16 evaluation (full) is not carried"
        common.precision(conv, "bf16", bf16, "bf16", why, True)
    elif bf16 is False:
        common.precision(conv, "bf16", bf16, "fp32", "no mixed precision: float32", True)
    else:
        conv.dropped("bf16", f"{shown(bf16)} is not true, false, auto or full")


def _data_settings(conv: Conversion) -> None:
    strategy = conv.take("excess_length_strategy")
    length = conv.take("sequence_len")
    if length is not None:
        number = conv.number(length, int)
        if number is None:
            conv.dropped("sequence_len", f"{shown(length)} is not a whole number")
        elif strategy == "truncate":
            conv.translated("sequence_len", length, {"data.max_seq_length": number})
            conv.carried.append("excess_length_strategy")
        else:
            why = "axolotl drops longer examples (excess_length_strategy: drop); tuiwiz cuts them"
            conv.translated("sequence_len", length, {"data.max_seq_length": number}, why)
    else:
        conv.default("sequence_len", "data.max_seq_length", 512, "axolotl's default")
    if strategy is not None and strategy != "truncate":
        conv.dropped("excess_length_strategy", f"{shown(strategy)}: tuiwiz cuts longer examples")
    conv.flag_to("sample_packing", "data.packing")
    conv.flag_to("train_on_inputs", "data.train_on_prompt")
    size = conv.take("val_set_size")
    if size is not None:
        number = conv.number(size)
        if number is not None and 0 <= number < 1:
            conv.translated("val_set_size", size, {"data.validation_split": number})
        else:
            conv.dropped(
                "val_set_size",
                f"{shown(size)}: tuiwiz holds out a fraction of the rows (validation_split in "
                "[0, 1)); divide the count by the number of rows",
            )


def _batch_and_schedule(conv: Conversion) -> None:
    micro = conv.keys.left.get("micro_batch_size")
    conv.number_to("micro_batch_size", "training.per_device_train_batch_size", int)
    if "per_device_train_batch_size" not in conv.raw["training"]:
        conv.default(
            "micro_batch_size", "training.per_device_train_batch_size", 1, "axolotl's default"
        )
    conv.number_to("eval_batch_size", "training.per_device_eval_batch_size", int)
    conv.number_to("gradient_accumulation_steps", "training.gradient_accumulation_steps", int)
    total = conv.take("batch_size")
    if "gradient_accumulation_steps" not in conv.raw["training"]:
        micro_n = conv.number(micro, int) if micro is not None else 1
        total_n = conv.number(total, int) if total is not None else None
        if total_n and micro_n and total_n % micro_n == 0:
            conv.translated(
                "batch_size",
                total,
                {"training.gradient_accumulation_steps": total_n // micro_n},
                "the total batch over micro_batch_size, on one GPU",
            )
            total = None
        else:
            conv.default(
                "gradient_accumulation_steps",
                "training.gradient_accumulation_steps",
                1,
                "axolotl's default",
            )
    if total is not None:
        conv.dropped("batch_size", "gradient_accumulation_steps is given too, and takes precedence")
    conv.number_to("num_epochs", "training.num_train_epochs")
    if "num_train_epochs" not in conv.raw["training"]:
        conv.default("num_epochs", "training.num_train_epochs", 1.0, "axolotl's default")
    conv.number_to("max_steps", "training.max_steps", int)
    conv.number_to("learning_rate", "training.learning_rate")
    if "learning_rate" not in conv.raw["training"]:
        conv.check("learning_rate", "not in the file (axolotl requires it): tuiwiz's 2e-4 written")
    optimizer = conv.take("optimizer")
    if optimizer is not None:
        common.optimizer(conv, "optimizer", optimizer)
    else:
        conv.default("optimizer", "training.optim", "adamw_torch_fused", "axolotl's default")
    _scheduler(conv)
    given = common.warmup(
        conv, conv.take("warmup_steps"), conv.take("warmup_ratio"), "warmup_steps", "warmup_ratio"
    )
    if not given:
        conv.default(
            "warmup_steps", "training.warmup_steps", 0.03, "axolotl's default, 3% of all steps"
        )
    conv.number_to("weight_decay", "training.weight_decay", rename=False)
    if "weight_decay" not in conv.raw["training"]:
        conv.default("weight_decay", "training.weight_decay", 0.0, "axolotl's default")
    checkpointing = conv.take("gradient_checkpointing")
    if isinstance(checkpointing, bool):
        conv.same("gradient_checkpointing", "training.gradient_checkpointing", checkpointing)
    elif checkpointing in ("offload", "offload_disk"):
        conv.translated(
            "gradient_checkpointing",
            checkpointing,
            {"training.gradient_checkpointing": True},
            "activations are recomputed, not offloaded",
        )
    elif checkpointing is None:
        conv.default(
            "gradient_checkpointing",
            "training.gradient_checkpointing",
            False,
            "axolotl's default",
        )
    else:
        conv.dropped("gradient_checkpointing", f"{shown(checkpointing)} is not true or false")


def _scheduler(conv: Conversion) -> None:
    name = conv.take("lr_scheduler")
    minimum = conv.take("cosine_min_lr_ratio")
    if name is None:
        conv.default("lr_scheduler", "training.lr_scheduler_type", "cosine", "axolotl's default")
    elif name in ("one_cycle", "rex"):
        conv.dropped("lr_scheduler", f"{name} is axolotl's own scheduler; tuiwiz's cosine is used")
    else:
        common.scheduler(conv, "lr_scheduler", name)
    if minimum is None:
        return
    ratio = conv.number(minimum)
    if conv.raw["training"].get("lr_scheduler_type") == "cosine" and ratio is not None:
        conv.translated(
            "cosine_min_lr_ratio",
            minimum,
            {
                "training.lr_scheduler_type": "cosine_with_min_lr",
                "training.lr_scheduler_kwargs": {"min_lr_rate": ratio},
            },
            "cosine decay that stops at this fraction of the learning rate",
        )
    else:
        conv.dropped("cosine_min_lr_ratio", "applies to the cosine scheduler only")


def _intervals(conv: Conversion) -> None:
    """evals_per_epoch / saves_per_epoch as eval / save steps given as a fraction of all steps
    (transformers reads a value below 1 so), or as once per epoch."""
    epochs = conv.raw["training"].get("num_train_epochs", 1.0)
    by_steps = conv.raw["training"].get("max_steps", -1) not in (-1, None)
    for key, kind in (("evals_per_epoch", "eval"), ("saves_per_epoch", "save")):
        value = conv.take(key)
        if value is None:
            continue
        if conv.has(f"{kind}_steps"):
            conv.dropped(key, f"{kind}_steps is given too, and takes precedence")
            continue
        per_epoch = conv.number(value, int)
        if not per_epoch or per_epoch < 1:
            conv.dropped(key, f"{shown(value)} is not a whole number >= 1")
        elif by_steps:
            conv.dropped(key, "training is by max_steps: set [training] " + f"{kind}_steps")
        elif per_epoch == 1:
            conv.translated(key, value, {f"training.{kind}_strategy": "epoch"}, "once per epoch")
        else:
            fraction = round(1 / (per_epoch * epochs), 6)
            if fraction < 1:
                why = f"a fraction of all steps: {per_epoch} times in each of {epochs:g} epochs"
                conv.translated(key, value, {f"training.{kind}_steps": fraction}, why)
            else:
                conv.dropped(key, f"too few epochs for {per_epoch} per epoch")


def _loggers(conv: Conversion) -> None:
    project = conv.take("wandb_project")
    env = {
        "wandb_entity": "WANDB_ENTITY",
        "wandb_watch": "WANDB_WATCH",
        "wandb_log_model": "WANDB_LOG_MODEL",
        "wandb_mode": "WANDB_MODE",
    }
    if isinstance(project, str) and project:
        common.add_report_to(conv, "wandb")
        conv.translated(
            "wandb_project", project, {"training.report_to": conv.raw["training"]["report_to"]}
        )
        conv.check("wandb_project", f"set WANDB_PROJECT={project} in the environment (needs wandb)")
        name = conv.take("wandb_name")
        if isinstance(name, str) and name:
            conv.translated("wandb_name", name, {"training.run_name": name})
        elif name not in (None, ""):
            conv.dropped("wandb_name", f"{shown(name)} is not a run name")
        for key, variable in env.items():
            value = conv.take(key)
            if value not in (None, ""):
                conv.check(key, f"set {variable}={shown(value)} in the environment")
    elif project is not None:
        conv.carried.append("wandb_project")  # empty: no W&B, as tuiwiz
    tensorboard = conv.take("use_tensorboard")
    if tensorboard is True:
        common.add_report_to(conv, "tensorboard")
        conv.translated(
            "use_tensorboard", True, {"training.report_to": conv.raw["training"]["report_to"]}
        )
    elif tensorboard is False:
        conv.carried.append("use_tensorboard")
    elif tensorboard is not None:
        conv.dropped("use_tensorboard", f"{shown(tensorboard)} is not true or false")
    mlflow = conv.take("mlflow_experiment_name")
    uri = conv.take("mlflow_tracking_uri")
    for key, value in (("mlflow_experiment_name", mlflow), ("mlflow_tracking_uri", uri)):
        if value is not None and not isinstance(value, str):
            conv.dropped(key, f"{shown(value)} is not text")
    mlflow, uri = (v if isinstance(v, str) else "" for v in (mlflow, uri))
    if mlflow or uri:
        common.add_report_to(conv, "mlflow")
        conv.translated(
            "mlflow_experiment_name" if mlflow else "mlflow_tracking_uri",
            mlflow or uri,
            {"training.report_to": conv.raw["training"]["report_to"]},
        )
        for key, value, variable in (
            ("mlflow_experiment_name", mlflow, "MLFLOW_EXPERIMENT_NAME"),
            ("mlflow_tracking_uri", uri, "MLFLOW_TRACKING_URI"),
        ):
            if value:
                conv.check(key, f"set {variable}={shown(value)} in the environment")
