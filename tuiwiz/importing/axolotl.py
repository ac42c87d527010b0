"""An axolotl YAML config onto a tuiwiz preset.

Field meanings from axolotl's config reference (src/axolotl/utils/schemas: config.py, peft.py,
training.py, model.py, datasets.py) and its trainer builder (the defaults that apply when a key
is left out: warmup 3% of steps, at most 100; bf16 "auto"; cosine; adamw_torch_fused; ...).
"""

from __future__ import annotations

from tuiwiz.errors import ConfigError
from tuiwiz.importing import common
from tuiwiz.importing.axolotl_data import convert_datasets, top_level_template
from tuiwiz.importing.convert import Conversion, shown, split_names
from tuiwiz.importing.locate import locate

# Keys only axolotl configs have; detection counts them.
MARKERS = frozenset(
    {
        "base_model",
        "datasets",
        "micro_batch_size",
        "sequence_len",
        "num_epochs",
        "adapter",
        "lora_r",
        "lora_target_linear",
        "lora_target_modules",
        "val_set_size",
        "sample_packing",
        "lr_scheduler",
        "optimizer",
        "train_on_inputs",
        "special_tokens",
        "dataset_prepared_path",
        "wandb_project",
        "flash_attention",
        "evals_per_epoch",
        "saves_per_epoch",
    }
)

_KERNEL = "axolotl's own kernel patches; tuiwiz uses the model's standard implementation"
_EVAL_GEN = "generation metrics during evaluation are not computed: try `tuiwiz chat RUN`"
NOT_CARRIED = {
    "dataset_prepared_path": "tuiwiz caches tokenized data itself (~/.cache/tuiwiz/tokenized)",
    "output_dir": "tuiwiz chooses each run's directory (`tuiwiz run --output-dir DIR` to pick)",
    "resume_from_checkpoint": "continue a run with `tuiwiz resume RUN`",
    "auto_resume_from_checkpoints": "continue a run with `tuiwiz resume RUN`",
    "lora_model_dir": "tuiwiz trains a new adapter; starting from a trained one is not supported",
    "special_tokens": "tuiwiz keeps the tokenizer's special tokens (padding with EOS when it has "
    "no pad token)",
    "tokens": "tuiwiz does not add tokens to the tokenizer",
    "added_tokens_overrides": "tuiwiz does not change the tokenizer's tokens",
    "model_type": "not needed: tuiwiz loads every model with AutoModelForCausalLM",
    "tokenizer_type": "not needed: tuiwiz loads every tokenizer with AutoTokenizer",
    "base_model_config": "tuiwiz reads config.json from the model itself",
    "tokenizer_config": "tuiwiz loads the tokenizer that comes with the model",
    "tokenizer_use_fast": "tuiwiz uses the model's fast tokenizer",
    "tokenizer_legacy": "tuiwiz uses the model's tokenizer as it is",
    "processor_type": "text models only: tuiwiz does not load processors",
    "is_llama_derived_model": "not needed: transformers reads the architecture from config.json",
    "is_mistral_derived_model": "not needed: transformers reads the architecture from config.json",
    "is_qwen_derived_model": "not needed: transformers reads the architecture from config.json",
    "is_falcon_derived_model": "not needed: transformers reads the architecture from config.json",
    "strict": "not needed: tuiwiz checks every key of a preset",
    "hub_model_id": "a run does not upload: `tuiwiz export RUN --out DIR`, then upload the folder",
    "hub_strategy": "a run does not upload: `tuiwiz export RUN --out DIR`, then upload the folder",
    "hf_use_auth_token": "set HF_TOKEN in the environment for gated models",
    "merge_lora": "merge after training with `tuiwiz export RUN --out DIR --merge`",
    "merge_method": "merge after training with `tuiwiz export RUN --out DIR --merge`",
    "save_safetensors": "not needed: adapters are always saved as safetensors",
    "save_first_step": "not supported: checkpoints follow [training] save_steps",
    "include_tokens_per_second": "not needed: tuiwiz always logs tokens per second",
    "eval_sample_packing": "no separate setting: the validation split is packed like the "
    "training data when [data] packing = true",
    "pad_to_sequence_len": "tuiwiz pads each batch to its longest example",
    "dataset_processes": "tuiwiz tokenizes in batches and caches the result itself",
    "dataset_num_proc": "tuiwiz tokenizes in batches and caches the result itself",
    "dataset_keep_in_memory": "tuiwiz tokenizes in batches and caches the result itself",
    "skip_prepare_dataset": "tuiwiz tokenizes in batches and caches the result itself",
    "shuffle_merged_datasets": "tuiwiz trains on one dataset (shuffled each epoch)",
    "dataset_exact_deduplication": "not supported: deduplicate the file before training",
    "push_dataset_to_hub": "not supported",
    "dataset_shard_num": "tuiwiz reads the whole dataset ([data] max_samples limits the rows)",
    "dataset_shard_idx": "tuiwiz reads the whole dataset ([data] max_samples limits the rows)",
    "test_datasets": "tuiwiz holds out [data] validation_split of the training rows instead",
    "min_sample_len": "not supported: tuiwiz trains on every usable row",
    "eval_sequence_len": "evaluation uses [data] max_seq_length",
    "default_system_message": "not supported: put a system message in the rows",
    "eot_tokens": "tuiwiz trains the end-of-turn tokens the chat template writes",
    "early_stopping_patience": "early stopping is not supported",
    "loss_watchdog_threshold": "not supported: the dashboard shows the loss as it trains",
    "loss_watchdog_patience": "not supported: the dashboard shows the loss as it trains",
    "gc_steps": "not needed",
    "max_memory": "tuiwiz places the model itself",
    "gpu_memory_limit": "tuiwiz places the model itself",
    "device_map": "tuiwiz places the model itself",
    "low_cpu_mem_usage": "tuiwiz places the model itself",
    "sequence_parallel_degree": "sequence parallelism is not supported",
    "context_parallel_size": "context parallelism is not supported",
    "tensor_parallel_size": "tensor parallelism is not supported",
    "ring_attn_func": "sequence parallelism is not supported",
    "heads_k_stride": "sequence parallelism is not supported",
    "unfrozen_parameters": "tuiwiz trains LoRA adapters; freezing rules do not apply",
    "lora_fan_in_fan_out": "not needed for the models transformers loads as torch.nn.Linear",
    "lora_target_parameters": "targeting parameters (MoE experts) is not supported",
    "peft_layers_to_transform": "tuiwiz puts adapters on every layer",
    "peft_layers_pattern": "tuiwiz puts adapters on every layer",
    "peft_layer_replication": "not supported",
    "peft_init_lora_weights": "tuiwiz uses peft's standard initialization",
    "peft_trainable_token_indices": "not supported",
    "peft_ensure_weight_tying": "not supported",
    "peft_autocast_adapter_dtype": "not supported: peft keeps adapters in float32",
    "loftq_config": "LoftQ initialization is not supported",
    "loraplus_lr_ratio": "LoRA+ is not supported",
    "loraplus_lr_embedding": "LoRA+ is not supported",
    "lora_on_cpu": "not needed",
    "qlora_sharded_model_loading": "tuiwiz's FSDP-QLoRA loads the model its own way",
    "gptq": "GPTQ models are not supported: tuiwiz quantizes with bitsandbytes",
    "relora": "ReLoRA is not supported",
    "relora_steps": "ReLoRA is not supported",
    "relora_warmup_steps": "ReLoRA is not supported",
    "relora_anneal_steps": "ReLoRA is not supported",
    "relora_prune_ratio": "ReLoRA is not supported",
    "relora_prune_method": "ReLoRA is not supported",
    "relora_cpu_offload": "ReLoRA is not supported",
    "embedding_lr": "per-module learning rates are not supported",
    "embedding_lr_scale": "per-module learning rates are not supported",
    "lr_groups": "per-module learning rates are not supported",
    "lr_quadratic_warmup": "transformers' schedulers warm up linearly",
    "cosine_constant_lr_ratio": "not supported by transformers' schedulers",
    "lr_div_factor": "the one_cycle scheduler is not supported",
    "adam_beta3": "not a transformers optimizer setting",
    "adam_epsilon2": "not a transformers optimizer setting",
    "torchdistx_path": "not needed",
    "eval_table_size": _EVAL_GEN,
    "eval_max_new_tokens": _EVAL_GEN,
    "do_causal_lm_eval": _EVAL_GEN,
    "eval_causal_lm_metrics": _EVAL_GEN,
    "do_bench_eval": _EVAL_GEN,
    "bench_dataset": _EVAL_GEN,
    "bench_split": _EVAL_GEN,
    "plugins": "axolotl plugins are not supported",
    "xformers_attention": "xformers attention is not supported; tuiwiz uses sdpa",
    "s2_attention": "shifted sparse attention is not supported",
    "flex_attention": "flex attention is not supported; tuiwiz uses sdpa",
    "flash_attn_cross_entropy": _KERNEL,
    "flash_attn_rms_norm": _KERNEL,
    "flash_attn_fuse_qkv": _KERNEL,
    "flash_attn_fuse_mlp": _KERNEL,
    "flash_optimum": _KERNEL,
    "unsloth_cross_entropy_loss": _KERNEL,
    "unsloth_lora_mlp": _KERNEL,
    "unsloth_lora_qkv": _KERNEL,
    "unsloth_lora_o": _KERNEL,
    "unsloth_rms_norm": _KERNEL,
    "unsloth_rope": _KERNEL,
    "lora_mlp_kernel": _KERNEL,
    "lora_qkv_kernel": _KERNEL,
    "lora_o_kernel": _KERNEL,
    "liger_rope": _KERNEL,
    "liger_rms_norm": _KERNEL,
    "liger_glu_activation": _KERNEL,
    "liger_layer_norm": _KERNEL,
    "liger_fused_linear_cross_entropy": _KERNEL,
    "cut_cross_entropy": _KERNEL,
    "bfloat16": "tuiwiz trains with mixed precision ([training] bf16 / fp16)",
    "float16": "tuiwiz trains with mixed precision ([training] bf16 / fp16)",
    "float32": "tuiwiz trains with mixed precision ([training] bf16 / fp16)",
    "fp8": "fp8 training is not supported",
    "wandb_run_id": "W&B names a run itself (wandb_name sets its display name)",
    "fsdp_final_state_dict_type": "tuiwiz saves the adapter itself",
    "group_by_length": "transformers 5 no longer groups batches by length",
    "activation_offloading": "activation offloading is not supported (gradient checkpointing is)",
    "qat": "quantization-aware training is not supported",
    "quantization": "post-training quantization is not part of a run",
    "use_kernels": _KERNEL,
    "tiled_mlp": _KERNEL,
    "fused_attn_kernel": _KERNEL,
    "resize_token_embeddings_to_32x": "tuiwiz does not resize the embeddings",
    "mean_resizing_embeddings": "tuiwiz does not resize the embeddings",
    "shrink_embeddings": "tuiwiz does not resize the embeddings",
    "embeddings_skip_upcast": "not needed",
    "experimental_skip_move_to_device": "tuiwiz places the model itself",
    "tokenizer_use_mistral_common": "tuiwiz loads the model's tokenizer with AutoTokenizer",
    "tokenizer_save_jinja_files": "the adapter is saved with the model's tokenizer as it is",
    "model_quantization_config": "tuiwiz quantizes with bitsandbytes ([quantization])",
    "model_quantization_config_kwargs": "tuiwiz quantizes with bitsandbytes ([quantization])",
    "flex_attn_compile_kwargs": "flex attention is not supported; tuiwiz uses sdpa",
    "dp_shard_size": "tuiwiz shards with FSDP over every process ([launch] strategy)",
    "dp_replicate_size": "hybrid sharding is not supported ([launch] strategy = ddp or fsdp)",
    "expert_parallel_size": "expert parallelism is not supported",
    "sample_packing_group_size": "TRL packs the examples its own way",
    "sample_packing_bin_size": "TRL packs the examples its own way",
    "sample_packing_sequentially": "TRL packs the examples its own way",
    "multipack_real_batches": "TRL packs the examples its own way",
    "batch_flattening": "TRL packs the examples its own way ([data] packing)",
    "curriculum_sampling": "tuiwiz shuffles the training rows each epoch",
    "pretrain_multipack_attn": "TRL packs the examples its own way",
    "pretrain_multipack_buffer_size": "TRL packs the examples its own way",
    "pretraining_sample_concatenation": "TRL packs the examples its own way ([data] packing)",
    "streaming_multipack_buffer_size": "streaming datasets are not supported",
    "use_ray": "Ray is not supported",
    "ray_num_workers": "Ray is not supported",
    "ray_run_name": "Ray is not supported",
    "use_otel_metrics": "not supported: the run directory's events.jsonl has the metrics",
    "profiler_steps": "not supported",
}
# Families of axolotl keys, by prefix, with one reason each.
PREFIXES_NOT_CARRIED = {
    "liger_": _KERNEL,
    "unsloth_": _KERNEL,
    "lisa_": "LISA (layer-wise sampling) is not supported",
    "jagged_restart_": "ReLoRA is not supported",
    "relora_": "ReLoRA is not supported",
    "mlflow_": "MLflow is set up through its environment (MLFLOW_*) and report_to",
    "comet_": 'Comet is not supported: report_to = ["wandb"] or ["tensorboard"]',
    "gradio_": "not part of a run: try the adapter with `tuiwiz chat RUN`",
    "vllm": "not part of supervised fine-tuning",
    "trl": "not part of supervised fine-tuning",
    "kd_": "knowledge distillation is not supported",
    "dpo_": "preference training is not supported",
    "kto_": "preference training is not supported",
    "orpo_": "preference training is not supported",
    "rl_": "preference training is not supported",
}


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
    common.distributed(conv)
    _renamed(conv)
    conv.drop_known(NOT_CARRIED)
    conv.drop_prefixed(PREFIXES_NOT_CARRIED)
    conv.finish()


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
