"""`tuiwiz import`: axolotl and LLaMA-Factory configs onto presets. Real example configs of both
tools (tests/fixtures/peer-configs), and hand-written ones covering every mapping; nothing is
ever lost in silence, the written preset is valid, every key commented, and bad input ends in
one line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuiwiz import config as cfg
from tuiwiz import presets
from tuiwiz.cli import main
from tuiwiz.errors import ConfigError
from tuiwiz.importing import Imported, axolotl_keys, import_config, llamafactory_keys, preset_text
from tuiwiz.toml import tomllib

PEERS = Path(__file__).resolve().parent.parent / "fixtures" / "peer-configs"
QLORA_1B = PEERS / "axolotl" / "qlora-1b.yml"
LORA_8B = PEERS / "axolotl" / "lora-8b.yml"
LF_SFT = PEERS / "llamafactory" / "llama3_lora_sft.yaml"


def write(tmp_path: Path, text: str, name: str = "config.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, tool: str | None = None) -> Imported:
    return import_config(write(tmp_path, text), tool)


def notes(imported: Imported, kind: str) -> dict[str, str]:
    """{source key: text} of one kind of note (the last one, when a key has several)."""
    return {n.key: n.text for n in imported.notes if n.kind == kind}


def assert_nothing_lost(imported: Imported, source: Path) -> None:
    """Every key of the file with a value is carried, translated, defaulted or reported."""
    data = yaml.safe_load(source.read_text())
    named = set(imported.carried) | {n.key for n in imported.notes}
    for key, value in data.items():
        key = str(key)
        if value is None:
            assert key in imported.empty
            continue
        assert any(n == key or n.startswith((f"{key}[", f"{key}.", f"{key} (")) for n in named), (
            f"{key} is neither carried nor reported"
        )


AXOLOTL_BASE = """\
base_model: org/model
datasets:
  - path: org/data
    type: alpaca
micro_batch_size: 2
gradient_accumulation_steps: 4
num_epochs: 1
learning_rate: 0.0002
adapter: lora
"""


# --- the real example configs ---------------------------------------------------------------


def test_axolotl_qlora_example():
    imported = import_config(QLORA_1B)
    p = imported.preset
    assert imported.tool == "axolotl"
    assert p["model"] == {
        "name_or_path": "NousResearch/Llama-3.2-1B",
        "revision": "main",
        "attn_implementation": "flash_attention_2",
        "trust_remote_code": False,
        "torch_dtype": "bfloat16",
    }
    q = p["quantization"]
    assert (q["load_in_4bit"], q["load_in_8bit"], q["bnb_4bit_compute_dtype"]) == (
        True,
        False,
        "bfloat16",
    )
    assert p["lora"]["r"] == 32 and p["lora"]["lora_alpha"] == 16
    assert p["lora"]["lora_dropout"] == 0.05
    assert p["lora"]["target_modules"] == [
        "gate_proj", "down_proj", "up_proj", "q_proj", "v_proj", "k_proj", "o_proj"
    ]  # fmt: skip
    d = p["data"]
    assert (d["path"], d["format"], d["max_seq_length"]) == (
        "teknium/GPT4-LLM-Cleaned",
        "alpaca",
        2048,
    )
    assert (d["packing"], d["validation_split"], d["train_on_prompt"]) == (True, 0.1, False)
    t = p["training"]
    assert t["per_device_train_batch_size"] == 2 and t["gradient_accumulation_steps"] == 4
    assert t["num_train_epochs"] == 1.0 and t["learning_rate"] == 2e-4
    assert (t["optim"], t["lr_scheduler_type"], t["warmup_steps"]) == (
        "adamw_bnb_8bit",
        "cosine",
        0.1,
    )
    assert t["eval_steps"] == 0.25  # evals_per_epoch: 4, one epoch
    assert t["save_strategy"] == "epoch"  # saves_per_epoch: 1
    assert (t["bf16"], t["tf32"], t["gradient_checkpointing"], t["weight_decay"]) == (
        True,
        False,
        True,
        0.0,
    )
    assert t["logging_steps"] == 1
    dropped = notes(imported, "not carried")
    for key in ("dataset_prepared_path", "output_dir", "special_tokens", "eval_sample_packing"):
        assert key in dropped
    assert "loss_watchdog_threshold" in dropped
    translated = notes(imported, "translated")
    assert "-> training.warmup_steps" in translated["warmup_ratio"]
    assert "drops longer examples" in translated["sequence_len"]
    assert "auto" in translated["bf16"]
    assert set(imported.empty) >= {"wandb_project", "lora_model_dir", "resume_from_checkpoint"}
    assert_nothing_lost(imported, QLORA_1B)


def test_axolotl_8bit_lora_example():
    imported = import_config(LORA_8B)
    p = imported.preset
    assert (p["quantization"]["load_in_8bit"], p["quantization"]["load_in_4bit"]) == (True, False)
    assert p["lora"]["target_modules"] == "all-linear"  # lora_target_linear: true
    assert p["lora"]["modules_to_save"] == ["embed_tokens", "lm_head"]
    assert p["model"]["attn_implementation"] == "flash_attention_2"  # flash_attention: true
    assert p["training"]["eval_steps"] == 0.0625  # 4 evals in each of 4 epochs
    assert p["data"]["max_seq_length"] == 4096
    dropped = notes(imported, "not carried")
    assert "model_type" in dropped and "tokenizer_type" in dropped
    assert_nothing_lost(imported, LORA_8B)


def test_llamafactory_example():
    imported = import_config(LF_SFT)
    p = imported.preset
    assert imported.tool == "llamafactory"
    assert p["model"]["name_or_path"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert p["model"]["trust_remote_code"] is True
    assert "trust_remote_code" in notes(imported, "check")
    assert p["lora"]["r"] == 8 and p["lora"]["target_modules"] == "all-linear"
    assert p["lora"]["lora_alpha"] == 16  # LLaMA-Factory's default: 2 x rank
    assert p["lora"]["lora_dropout"] == 0.0
    assert p["quantization"]["load_in_4bit"] is False  # no quantization_bit
    t = p["training"]
    assert (t["learning_rate"], t["num_train_epochs"], t["warmup_steps"]) == (1e-4, 3.0, 0.1)
    assert (t["per_device_train_batch_size"], t["gradient_accumulation_steps"]) == (1, 8)
    assert (t["logging_steps"], t["save_steps"], t["optim"]) == (10, 500, "adamw_torch")
    assert t["ddp_timeout"] == 180000000  # a TrainingArguments field, carried as it is
    assert p["data"]["max_seq_length"] == 2048 and p["data"]["max_samples"] == 1000
    defaults = notes(imported, "default")
    assert "lora_alpha" in defaults and "2 x rank" in defaults["lora_alpha"]
    # The dataset names refer to LLaMA-Factory's own registry, which is not here.
    assert p["data"]["path"].startswith("SET-ME:")
    assert "dataset_info.json" in notes(imported, "check")["dataset"]
    dropped = notes(imported, "not carried")
    assert "alpaca_en_demo" in dropped["dataset"]
    for key in ("template", "plot_loss", "overwrite_cache", "output_dir", "do_train"):
        assert key in dropped
    assert_nothing_lost(imported, LF_SFT)


@pytest.mark.parametrize("source", [QLORA_1B, LORA_8B, LF_SFT], ids=lambda p: p.stem)
def test_written_preset_is_valid_commented_and_says_what_was_left_out(source: Path):
    imported = import_config(source)
    text = preset_text(imported)

    again = cfg.validate(tomllib.loads(text), source="written")
    assert again == imported.preset
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            assert "  # " in line, f"no comment on {line!r}"
    assert f"from the {imported.tool_name} config {source}" in text
    for note in imported.of_kind("not carried"):
        assert note.key in text  # the header lists what was not carried


@pytest.mark.parametrize("source", [QLORA_1B, LORA_8B, LF_SFT], ids=lambda p: p.stem)
def test_training_arguments_accept_the_imported_preset(source: Path, tmp_path: Path):
    """TRL builds its SFTConfig from the imported [training]: a preset `tuiwiz run` accepts."""
    from tuiwiz.train import builders

    preset = import_config(source).preset
    preset["data"]["path"] = "tuiwiz:demo-data"
    # an imported flash_attention_2 is refused on a machine without CUDA and flash-attn (before
    # the run starts: tests/unit/test_speed.py); the training arguments are what is checked here
    preset["model"]["attn_implementation"] = "sdpa"
    args = builders.training_arguments(preset, tmp_path, has_validation=True, notice=lambda _: None)
    assert args.learning_rate == preset["training"]["learning_rate"]
    assert args.gradient_accumulation_steps == preset["training"]["gradient_accumulation_steps"]


# --- axolotl, key by key --------------------------------------------------------------------


def test_chat_template_with_sharegpt_keys_becomes_sharegpt_with_columns(tmp_path: Path):
    imported = load(
        tmp_path,
        AXOLOTL_BASE.replace(
            "    type: alpaca\n",
            "    type: chat_template\n    field_messages: dialog\n"
            "    message_property_mappings:\n      role: from\n      content: value\n"
            "    chat_template: tokenizer_default\n    roles_to_train: [assistant]\n",
        ),
    )
    assert imported.preset["data"]["format"] == "sharegpt"
    assert imported.preset["data"]["columns"] == {"conversations": "dialog"}
    assert "datasets[0].type" in notes(imported, "translated")
    assert "datasets[0].chat_template" in imported.carried


def test_chat_template_default_keys_become_messages(tmp_path: Path):
    imported = load(tmp_path, AXOLOTL_BASE.replace("type: alpaca", "type: chat_template"))
    assert imported.preset["data"]["format"] == "messages"
    assert imported.preset["data"]["columns"] == {}


def test_chat_template_with_other_keys_and_roles_is_reported(tmp_path: Path):
    imported = load(
        tmp_path,
        AXOLOTL_BASE.replace(
            "    type: alpaca\n",
            "    type: chat_template\n    message_field_role: speaker\n"
            "    message_field_content: text\n    chat_template: chatml\n",
        )
        + "chat_template: llama3\n",
    )
    assert imported.preset["data"]["format"] == "auto"
    dropped = notes(imported, "not carried")
    assert "'speaker' / 'text'" in dropped["datasets[0].message_property_mappings"]
    assert "chat template" in dropped["chat_template"]
    assert "datasets[0].type" in notes(imported, "check")


def test_sharegpt_roles_tuiwiz_cannot_read_are_reported(tmp_path: Path):
    imported = load(
        tmp_path,
        AXOLOTL_BASE.replace(
            "    type: alpaca\n",
            "    type: chat_template\n    message_property_mappings: {role: from, content: value}\n"
            "    roles:\n      user: [human, customer]\n      assistant: [gpt]\n"
            "    roles_to_train: [user, assistant]\n    train_on_eos: all\n",
        ),
    )
    dropped = notes(imported, "not carried")
    assert "customer as user" in dropped["datasets[0].roles"]
    assert "datasets[0].roles_to_train" in dropped
    assert "datasets[0].train_on_eos" in dropped


def test_completion_and_user_defined_types(tmp_path: Path):
    completion = load(
        tmp_path, AXOLOTL_BASE.replace("type: alpaca", "type: completion\n    field: body")
    )
    assert completion.preset["data"]["format"] == "text"
    assert completion.preset["data"]["columns"] == {"text": "body"}
    custom = load(
        tmp_path,
        AXOLOTL_BASE.replace(
            "    type: alpaca\n",
            "    type:\n      field_instruction: question\n      field_output: answer\n"
            "      format: '[INST] {instruction} [/INST]'\n",
        ),
    )
    assert custom.preset["data"]["format"] == "alpaca"
    assert custom.preset["data"]["columns"] == {"instruction": "question", "output": "answer"}
    assert "datasets[0].type.format" in notes(custom, "not carried")
    unknown = load(tmp_path, AXOLOTL_BASE.replace("type: alpaca", "type: oasst"))
    assert unknown.preset["data"]["format"] == "auto"
    assert "oasst" in notes(unknown, "not carried")["datasets[0].type"]


def test_only_the_first_of_several_datasets_is_carried(tmp_path: Path):
    imported = load(
        tmp_path,
        AXOLOTL_BASE.replace(
            "    type: alpaca\n",
            "    type: alpaca\n  - path: org/second\n    type: alpaca\n"
            "  - path: org/third\n    type: completion\n",
        ),
    )
    assert imported.preset["data"]["path"] == "org/data"
    dropped = notes(imported, "not carried")
    assert "org/second" in dropped["datasets[1]"] and "one dataset" in dropped["datasets[1]"]
    assert "org/third" in dropped["datasets[2]"]


def test_local_paths_are_made_absolute_and_said_so(tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "model").mkdir()
    text = AXOLOTL_BASE.replace("base_model: org/model", "base_model: ./model")
    imported = load(tmp_path, text.replace("path: org/data", "path: data/train.jsonl"))
    assert imported.preset["model"]["name_or_path"] == str(tmp_path / "model")
    assert imported.preset["data"]["path"] == str(tmp_path / "data" / "train.jsonl")
    assert "config file's folder" in notes(imported, "translated")["datasets[0].path"]
    missing = load(tmp_path, AXOLOTL_BASE.replace("path: org/data", "path: data/missing.jsonl"))
    assert missing.preset["data"]["path"] == str(tmp_path / "data" / "missing.jsonl")
    assert "does not exist" in notes(missing, "check")["datasets[0].path"]
    remote = load(tmp_path, AXOLOTL_BASE.replace("path: org/data", "path: s3://bucket/x.jsonl"))
    assert remote.preset["data"]["path"].startswith("SET-ME:")
    assert "datasets[0].path" in notes(remote, "check")


def test_numbers_written_as_yaml_text_are_read_as_numbers(tmp_path: Path):
    """YAML 1.1 reads 2e-4 (no dot) as a string; both tools convert it, and so does import."""
    imported = load(tmp_path, AXOLOTL_BASE.replace("learning_rate: 0.0002", "learning_rate: 2e-4"))
    assert imported.preset["training"]["learning_rate"] == 2e-4
    assert "read as a number" in notes(imported, "translated")["learning_rate"]
    bad = load(tmp_path, AXOLOTL_BASE.replace("learning_rate: 0.0002", "learning_rate: fast"))
    assert "learning_rate" in notes(bad, "not carried")
    assert "learning_rate" in notes(bad, "check")


def test_adapters_quantization_and_precision(tmp_path: Path):
    qlora = load(tmp_path, AXOLOTL_BASE.replace("adapter: lora", "adapter: qlora\nfp16: true"))
    q, t, m = qlora.preset["quantization"], qlora.preset["training"], qlora.preset["model"]
    assert q["load_in_4bit"] is True and "adapter" in notes(qlora, "translated")
    assert (t["fp16"], t["bf16"], m["torch_dtype"], q["bnb_4bit_compute_dtype"]) == (
        True,
        False,
        "float16",
        "float16",
    )
    full = load(tmp_path, AXOLOTL_BASE.replace("adapter: lora\n", "bf16: false\n"))
    assert "fine-tune every weight" in notes(full, "check")["adapter"]
    assert full.preset["quantization"]["load_in_4bit"] is False  # axolotl's default
    assert full.preset["model"]["torch_dtype"] == "float32"
    assert full.preset["training"]["bf16"] is False
    kwargs = load(
        tmp_path,
        AXOLOTL_BASE + "load_in_4bit: true\nbnb_config_kwargs:\n  bnb_4bit_quant_type: fp4\n"
        "  llm_int8_has_fp16_weight: true\n",
    )
    assert kwargs.preset["quantization"]["bnb_4bit_quant_type"] == "fp4"
    assert "bnb_config_kwargs.llm_int8_has_fp16_weight" in notes(kwargs, "not carried")


def test_schedule_batch_and_checkpointing(tmp_path: Path):
    imported = load(
        tmp_path,
        AXOLOTL_BASE.replace("gradient_accumulation_steps: 4\n", "batch_size: 16\n")
        + "lr_scheduler: cosine\ncosine_min_lr_ratio: 0.1\ngradient_checkpointing: offload\n"
        "warmup_steps: 10\nwarmup_ratio: 0.05\noptimizer: muon\nmax_grad_norm: 0.5\nseed: 7\n"
        "save_total_limit: 3\nsave_only_model: true\nsome_future_key: 1\n",
    )
    t = imported.preset["training"]
    assert t["gradient_accumulation_steps"] == 8  # 16 / micro_batch_size 2
    assert t["lr_scheduler_type"] == "cosine_with_min_lr"
    assert t["lr_scheduler_kwargs"] == {"min_lr_rate": 0.1}
    assert t["gradient_checkpointing"] is True
    assert t["warmup_steps"] == 10
    assert (t["max_grad_norm"], t["seed"], t["save_total_limit"]) == (0.5, 7, 3)
    assert t["optim"] == "paged_adamw_8bit"  # muon is not a transformers optimizer
    assert "save_only_model" not in t
    dropped = notes(imported, "not carried")
    assert "takes precedence" in dropped["warmup_ratio"]
    assert "muon" in dropped["optimizer"]
    assert "save_only_model" in dropped
    assert "no tuiwiz equivalent" in dropped["some_future_key"]


def test_loggers_and_distributed(tmp_path: Path):
    imported = load(
        tmp_path,
        AXOLOTL_BASE + "wandb_project: my-proj\nwandb_entity: me\nwandb_name: run-1\n"
        "use_tensorboard: true\nfsdp:\n  - full_shard\n  - auto_wrap\n"
        "fsdp_config:\n  fsdp_offload_params: false\ndeepspeed: zero3.json\n",
    )
    t = imported.preset["training"]
    assert t["report_to"] == ["wandb", "tensorboard"] and t["run_name"] == "run-1"
    checks = notes(imported, "check")
    assert "WANDB_PROJECT=my-proj" in checks["wandb_project"]
    assert "WANDB_ENTITY=me" in checks["wandb_entity"]
    assert imported.preset["launch"]["strategy"] == "fsdp"
    assert imported.preset["launch"]["nproc_per_node"] == "auto"
    dropped = notes(imported, "not carried")
    assert "DeepSpeed" in dropped["deepspeed"] and "fsdp_config" in dropped


def test_preference_training_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match="rl: dpo .*supervised fine-tuning only"):
        load(tmp_path, AXOLOTL_BASE + "rl: dpo\n")


def test_counts_and_repeated_keys_are_reported(tmp_path: Path):
    imported = load(tmp_path, AXOLOTL_BASE + "val_set_size: 200\nlora_r: 8\nlora_r: 16\n")
    assert "fraction" in notes(imported, "not carried")["val_set_size"]
    assert imported.preset["lora"]["r"] == 16  # the last one, as PyYAML (and so axolotl) reads
    assert "given 2 times (lines 11, 12)" in notes(imported, "check")["lora_r"]


# --- LLaMA-Factory, key by key --------------------------------------------------------------

LF_BASE = """\
model_name_or_path: org/model
stage: sft
finetuning_type: lora
dataset: mine
template: llama3
"""


def test_llamafactory_registry_entries_are_resolved(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "mine.json").write_text("[]")
    registry = {
        "mine": {"file_name": "mine.json", "columns": {"prompt": "q", "response": "a"}},
        "chat": {
            "file_name": "mine.json",
            "formatting": "sharegpt",
            "columns": {"messages": "messages"},
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
            },
        },  # fmt: skip
        "hub": {"hf_hub_url": "org/dataset", "subset": "en", "formatting": "sharegpt"},
    }
    (data / "dataset_info.json").write_text(json.dumps(registry))
    sub = tmp_path / "examples"
    sub.mkdir()  # the config sits below the folder that holds data/, as in LLaMA-Factory
    alpaca = import_config(write(sub, LF_BASE))
    assert alpaca.preset["data"]["path"] == str(data / "mine.json")
    assert alpaca.preset["data"]["format"] == "alpaca"
    assert alpaca.preset["data"]["columns"] == {"instruction": "q", "output": "a"}
    chat = import_config(write(sub, LF_BASE.replace("dataset: mine", "dataset: chat")))
    assert chat.preset["data"]["format"] == "messages"
    assert chat.preset["data"]["columns"] == {}
    hub = import_config(write(sub, LF_BASE.replace("dataset: mine", "dataset: hub")))
    assert hub.preset["data"]["path"] == "org/dataset"
    assert (hub.preset["data"]["format"], hub.preset["data"]["subset"]) == ("sharegpt", "en")
    missing = import_config(write(sub, LF_BASE.replace("dataset: mine", "dataset: other")))
    assert missing.preset["data"]["path"].startswith("SET-ME:")
    assert "not in" in notes(missing, "check")["dataset"]


def test_llamafactory_method_quantization_and_training_keys(tmp_path: Path):
    imported = load(
        tmp_path,
        LF_BASE + "lora_rank: 16\nlora_target: q_proj,v_proj\nadditional_target: embed_tokens\n"
        "quantization_bit: 4\nquantization_type: fp4\ndouble_quantization: false\n"
        "flash_attn: fa2\nval_size: 0.05\nneat_packing: true\ndisable_gradient_checkpointing: "
        "true\nlearning_rate: 1e-4\nfp16: true\nuse_dora: true\nreport_to: wandb\n"
        "hf_hub_token: hf_abcdefghijklmnopqrstuvwxyz\n",
    )
    p = imported.preset
    assert p["lora"]["r"] == 16 and p["lora"]["lora_alpha"] == 32
    assert p["lora"]["target_modules"] == ["q_proj", "v_proj"]
    assert p["lora"]["modules_to_save"] == ["embed_tokens"] and p["lora"]["use_dora"] is True
    q = p["quantization"]
    assert (q["load_in_4bit"], q["bnb_4bit_quant_type"], q["bnb_4bit_use_double_quant"]) == (
        True,
        "fp4",
        False,
    )
    assert p["model"]["attn_implementation"] == "flash_attention_2"
    assert p["data"]["validation_split"] == 0.05 and p["data"]["packing"] is True
    t = p["training"]
    assert t["gradient_checkpointing"] is False and t["learning_rate"] == 1e-4
    assert t["fp16"] is True and p["model"]["torch_dtype"] == "float16"
    assert t["report_to"] == "wandb"
    assert t["num_train_epochs"] == 3.0 and t["per_device_train_batch_size"] == 8  # defaults
    # The token is reported as not carried, and its value appears nowhere.
    assert "hf_hub_token" in notes(imported, "not carried")
    everything = preset_text(imported) + "\n".join(imported.report_lines())
    assert "hf_abcdefghijklmnopqrstuvwxyz" not in everything


def test_llamafactory_stages_and_methods(tmp_path: Path):
    with pytest.raises(ConfigError, match="stage: dpo"):
        load(tmp_path, LF_BASE.replace("stage: sft", "stage: dpo"))
    pretrain = load(tmp_path, LF_BASE.replace("stage: sft", "stage: pt"))
    assert pretrain.preset["data"]["format"] == "text"
    assert pretrain.preset["data"]["packing"] is True  # LLaMA-Factory packs pt by default
    full = load(tmp_path, LF_BASE.replace("finetuning_type: lora", "finetuning_type: full"))
    assert "LoRA" in notes(full, "check")["finetuning_type"]


# --- detection and bad input ----------------------------------------------------------------


def test_the_tool_is_told_from_the_keys_and_can_be_forced(tmp_path: Path):
    assert load(tmp_path, AXOLOTL_BASE).tool == "axolotl"
    assert load(tmp_path, LF_BASE).tool == "llamafactory"
    with pytest.raises(ConfigError, match="neither an axolotl config .* nor"):
        load(tmp_path, "foo: 1\nbar: 2\n")
    with pytest.raises(ConfigError, match="both axolotl and LLaMA-Factory; say which with --from"):
        load(tmp_path, "base_model: a/b\nmodel_name_or_path: a/b\n")
    both = "base_model: a/b\nmodel_name_or_path: a/b\nstage: sft\ndataset: x\n"
    forced = load(tmp_path, both, tool="llamafactory")
    assert forced.preset["model"]["name_or_path"] == "a/b"
    assert "base_model" in notes(forced, "not carried")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\nnum_processes: 8\n",
            "an accelerate launch config",
        ),
        (
            "model: Qwen/Qwen3-4B\nmodel_class: llm\npeft_config:\n  name: lora\n"
            "micro_batch_size: 1\ncutoff_len: 2048\n",
            "a LLaMA-Factory v1 config",
        ),
        ("model_name_or_path: a/b\ntemplate: qwen3\ninfer_backend: huggingface\n", "inference"),
        ("model_name_or_path: a/b\nadapter_name_or_path: x\nexport_dir: out\n", "export"),
    ],
)
def test_files_that_are_not_training_configs_are_named(tmp_path: Path, content: str, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, content)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [1, 2\n", r"YAML syntax error at line 2, column 1: .*line 1, column 4"),
        ("base_model: a\n  bad: indent\n", "YAML syntax error at line 2"),
        ("", "the file is empty"),
        ("- a\n- b\n", "the top level is a list"),
        ("base_model: a\n---\nbase_model: b\n", "2 YAML documents"),
        ("1: one\n", "setting names must be text"),
    ],
)
def test_bad_files_end_in_one_line(tmp_path: Path, content: str, message: str):
    with pytest.raises(ConfigError, match=message) as e:
        load(tmp_path, content)
    assert "\n" not in str(e.value)


def test_a_directory_or_non_utf8_file_ends_in_one_line(tmp_path: Path):
    with pytest.raises(ConfigError, match="is a directory"):
        import_config(tmp_path)
    binary = tmp_path / "config.yml"
    binary.write_bytes(b"base_model: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        import_config(binary)


def test_yaml_is_read_as_data_only(tmp_path: Path):
    """A Python tag is refused by the safe loader, never constructed."""
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load(tmp_path, "base_model: !!python/object/apply:os.system ['true']\n")


# --- the command ----------------------------------------------------------------------------


def test_cli_writes_the_preset_and_prints_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["import", str(QLORA_1B)]) == 0
    out = capsys.readouterr().out
    written = tmp_path / "qlora-1b.toml"
    assert "as an axolotl config" in out
    assert "Not carried over (6):" in out and "  output_dir: " in out
    assert "micro_batch_size: 2 -> training.per_device_train_batch_size" in out
    assert f"Wrote {written.name}" in out
    resolved, _ = presets.load(str(written))
    assert resolved["lora"]["r"] == 32
    before = written.read_text()
    assert main(["import", str(QLORA_1B)]) == 2  # never overwrites without --force
    assert "already exists" in capsys.readouterr().err
    assert written.read_text() == before
    assert main(["import", str(LORA_8B), "--out", str(written), "--force"]) == 0
    assert "lora-8b.yml" in written.read_text()


def test_cli_prints_the_preset_with_out_dash(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["import", str(LF_SFT), "--out", "-"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# tuiwiz preset")
    assert "Check before running (2):" in captured.err
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_input_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["import", "missing.yml"]) == 2
    assert main(["import", str(QLORA_1B), "--out", "no/such/dir/x.toml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"tuiwiz: error: {tmp_path / 'missing.yml'}: no such file",
        "tuiwiz: error: --out no/such/dir/x.toml: the folder no/such/dir does not exist",
    ]
    assert list(tmp_path.iterdir()) == []


def test_importing_needs_neither_the_ui_nor_torch():
    """The core stays headless and light: an import reads YAML and transformers' sources only."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom tuiwiz.importing import import_config, preset_text\n"
        f"preset_text(import_config({str(QLORA_1B)!r}))\n"
        "import tuiwiz.commands.import_\n"
        "print(' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert not {"textual", "torch", "transformers", "trl", "peft"} & loaded


KEYS = sorted(
    axolotl_keys.MARKERS
    | llamafactory_keys.MARKERS
    | {"lora_alpha", "learning_rate", "bf16", "fp16", "load_in_4bit", "adapter", "warmup_ratio",
       "quantization_bit", "flash_attn", "fsdp", "deepspeed", "save_steps", "report_to"}
)  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.dictionaries(
        st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=12)),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3)
            ),
            max_leaves=6,
        ),
        max_size=12,
    )
)
def test_any_config_imports_or_fails_in_one_line(tmp_path: Path, data: dict):
    """Whatever a YAML mapping holds: a valid preset with its report, or a one-line error."""
    path = tmp_path / "random.yml"
    path.write_text(yaml.safe_dump(data))
    try:
        imported = import_config(path)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    cfg.validate(tomllib.loads(preset_text(imported)))
    assert all("\n" not in line for line in imported.report_lines())
    assert_nothing_lost(imported, path)


# --- speed and memory options -----------------------------------------------------------------


def test_axolotl_speed_options_become_tuiwiz_options(tmp_path: Path):
    imported = load(
        tmp_path,
        AXOLOTL_BASE
        + "plugins:\n  - axolotl.integrations.liger.LigerPlugin\nliger_rms_norm: true\n"
        "liger_glu_activation: true\nliger_rope: false\nliger_fused_linear_cross_entropy: true\n"
        "group_by_length: true\nactivation_offloading: true\n",
    )
    training = imported.preset["training"]
    assert training["use_liger_kernel"] is True
    assert training["train_sampling_strategy"] == "group_by_length"
    assert training["activation_offloading"] is True
    translated = notes(imported, "translated")
    assert {"liger_rms_norm", "liger_glu_activation", "group_by_length"} <= set(translated)
    assert "liger_rope" in imported.carried
    dropped = notes(imported, "not carried")
    assert "fused, chunked LM head" in dropped["liger_fused_linear_cross_entropy"]
    assert "use_liger_kernel" in dropped["plugins"]
    off = load(tmp_path, AXOLOTL_BASE + "group_by_length: false\nactivation_offloading: disk\n")
    assert "train_sampling_strategy" not in off.preset["training"]
    assert "CPU RAM" in notes(off, "not carried")["activation_offloading"]


def test_llamafactory_liger_kernel_becomes_use_liger_kernel(tmp_path: Path):
    imported = load(tmp_path, LF_BASE + "enable_liger_kernel: true\n")
    assert imported.preset["training"]["use_liger_kernel"] is True
    assert "enable_liger_kernel" in notes(imported, "translated")
