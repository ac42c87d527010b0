"""The model card (README.md) of an exported run: what it is, how to load it, the data it saw,
its metrics and the exact preset. Built from the run directory alone; `card_text` is pure."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class CardFacts:
    name: str
    description: str
    base_model: str  # as the preset names it (a Hub id, a local path, tuiwiz:demo-model)
    merged: bool
    dtype: str | None  # of the merged weights
    preset_toml: str
    data: dict[str, Any] = field(default_factory=dict)  # format, path, examples, ...
    metrics: dict[str, Any] = field(default_factory=dict)
    lora: dict[str, Any] = field(default_factory=dict)
    quantization: str = ""  # how the base was held in training, in words
    created: float = field(default_factory=time.time)
    version: str = ""
    # Where the base model is on disk when its name is tuiwiz's own (tuiwiz:demo-model), which
    # transformers cannot load by that name.
    base_model_path: str | None = None
    gguf: str | None = None  # the GGUF file's type, for a GGUF export


def _number(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def facts_from_run(
    run_path: Path, config: dict[str, Any], merged: bool, dtype: str | None, gguf: str | None = None
):
    """Gather the card's facts from a finished run's directory."""
    from tuiwiz import __version__
    from tuiwiz.after.evaluate import load_saved
    from tuiwiz.after.loading import FinishedRun
    from tuiwiz.train.events import read_events
    from tuiwiz.train.rundir import RunDir

    run = RunDir(run_path)
    events = read_events(run.events)
    started = next((e for e in reversed(events) if e["event"] == "started"), {})
    finished = next((e for e in reversed(events) if e["event"] == "finished"), {})
    evals = [e for e in events if e["event"] == "eval"]
    base_eval = next((e for e in evals if e.get("base")), None)
    last_eval = next((e for e in reversed(evals) if not e.get("base")), None)
    metrics: dict[str, Any] = {
        "final_train_loss": finished.get("loss"),
        "steps": finished.get("step"),
        "train_runtime": finished.get("train_runtime"),
    }
    if last_eval:
        metrics["eval_loss"] = last_eval.get("eval_loss")
        metrics["eval_step"] = last_eval.get("step")
    if base_eval:
        metrics["base_eval_loss"] = base_eval.get("eval_loss")
    saved = load_saved(FinishedRun(run, config))
    if saved:
        metrics["evaluation"] = saved
    data_cfg = config["data"]
    data = {
        "source": data_cfg["path"],
        "format": started.get("data_format") or data_cfg["format"],
        "train_examples": started.get("train_examples"),
        "validation_examples": started.get("validation_examples"),
        "max_seq_length": data_cfg["max_seq_length"],
    }
    q = config["quantization"]
    if q["load_in_4bit"]:
        quantization = (
            f"4-bit {q['bnb_4bit_quant_type']}"
            f"{' with double quantization' if q['bnb_4bit_use_double_quant'] else ''} (QLoRA), "
            f"compute dtype {q['bnb_4bit_compute_dtype']}"
        )
    elif q["load_in_8bit"]:
        quantization = "8-bit (LLM.int8)"
    else:
        quantization = f"not quantized ({config['model']['torch_dtype']})"
    from tuiwiz.bundled import DEMO_MODEL

    base = config["model"]["name_or_path"]
    base_path = None
    if base == DEMO_MODEL:
        from tuiwiz.demo import demo_model_dir

        base_path = str(demo_model_dir())
    return CardFacts(
        base_model_path=base_path,
        name=config["name"],
        description=config.get("description", ""),
        base_model=config["model"]["name_or_path"],
        merged=merged,
        dtype=dtype,
        preset_toml=run.preset.read_text(encoding="utf-8"),
        data=data,
        metrics=metrics,
        lora=dict(config["lora"]),
        quantization=quantization,
        version=__version__,
        gguf=gguf,
    )


def card_text(f: CardFacts) -> str:
    """README.md for the exported folder (Hugging Face model card layout: YAML front matter)."""
    front = ["---"]
    if HUB_ID.match(f.base_model):
        front.append(f"base_model: {f.base_model}")
    library = "gguf" if f.gguf else "transformers" if f.merged else "peft"
    front.append(f"library_name: {library}")
    front += ["tags:", "- tuiwiz", "- lora", *(["- gguf"] if f.gguf else [])]
    if "4-bit" in f.quantization:
        front.append("- qlora")
    front.append("---")
    base = f"`{f.base_model}`"
    if f.base_model_path:
        base = (
            f"tuiwiz's bundled demo model (`{f.base_model}`, a tiny model tuiwiz builds on "
            f"first use; on the machine that trained this it is in `{f.base_model_path}`)"
        )
    what = (
        f"{base} with a LoRA adapter merged into its weights as training held them, as one "
        f"GGUF file ({f.gguf}) for llama.cpp, Ollama and LM Studio."
        if f.gguf
        else f"{base} with a LoRA adapter merged into its weights ({f.dtype}): a complete "
        "model that loads with transformers alone."
        if f.merged
        else f"A LoRA adapter for {base}, with its tokenizer."
    )
    trained = time.strftime("%Y-%m-%d", time.localtime(f.created))
    lines = [
        *front,
        "",
        f"# {f.name}",
        "",
        *([f.description, ""] if f.description else []),
        what,
        f"Fine-tuned with tuiwiz {f.version}, exported {trained}. {_lora_words(f.lora)} "
        f"The base model was held {f.quantization} during training.",
        "",
        "## Use",
        "",
        *(
            _use_gguf()
            if f.gguf
            else [
                "```python",
                *(_use_merged() if f.merged else _use_adapter(f.base_model_path or f.base_model)),
                "```",
            ]
        ),
        "",
        "## Training data",
        "",
        "| | |",
        "|---|---|",
        f"| source | `{f.data.get('source', '-')}` |",
        f"| format | {f.data.get('format', '-')} |",
        f"| training examples | {f.data.get('train_examples', '-')} |",
        f"| validation examples | {f.data.get('validation_examples', '-')} |",
        f"| max_seq_length | {f.data.get('max_seq_length', '-')} |",
        "",
        "## Metrics",
        "",
        *_metrics(f.metrics),
        "",
        "## Configuration",
        "",
        "The tuiwiz preset this run trained with, also in `tuiwiz-preset.toml` (train again with "
        "`tuiwiz run tuiwiz-preset.toml`):",
        "",
        "```toml",
        f.preset_toml.rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def _lora_words(lora: dict[str, Any]) -> str:
    if not lora:
        return ""
    targets = lora.get("target_modules")
    targets = ", ".join(targets) if isinstance(targets, list) else targets
    kind = "DoRA" if lora.get("use_dora") else "LoRA"
    return f"{kind} rank {lora.get('r')}, alpha {lora.get('lora_alpha')}, on {targets}."


def _use_gguf() -> list[str]:
    return [
        "With Ollama (the Modelfile holds the chat layout the model was trained with):",
        "",
        "```sh",
        "ollama create my-model -f Modelfile",
        "ollama run my-model",
        "```",
        "",
        "With llama.cpp (the chat template is inside the file):",
        "",
        "```sh",
        "llama-cli -m model.gguf -cnv",
        "```",
        "",
        "LM Studio: import `model.gguf` (`lms import model.gguf`).",
    ]


def _use_merged() -> list[str]:
    return [
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        'model = AutoModelForCausalLM.from_pretrained("PATH/TO/THIS/FOLDER")',
        'tokenizer = AutoTokenizer.from_pretrained("PATH/TO/THIS/FOLDER")',
    ]


def _use_adapter(base: str) -> list[str]:
    return [
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        f'base = AutoModelForCausalLM.from_pretrained("{base}")',
        'model = PeftModel.from_pretrained(base, "PATH/TO/THIS/FOLDER")',
        'tokenizer = AutoTokenizer.from_pretrained("PATH/TO/THIS/FOLDER")',
    ]


def _metrics(m: dict[str, Any]) -> list[str]:
    rows = ["| metric | value |", "|---|---|"]
    rows.append(f"| final training loss | {_number(m.get('final_train_loss'))} |")
    if m.get("steps") is not None:
        rows.append(f"| optimizer steps | {m['steps']} |")
    if m.get("eval_loss") is not None:
        rows.append(
            f"| validation loss (trainer, step {m.get('eval_step')}) | {_number(m['eval_loss'])} |"
        )
    if m.get("base_eval_loss") is not None:
        base_loss = _number(m["base_eval_loss"])
        rows.append(f"| base model validation loss (trainer, step 0) | {base_loss} |")
    evaluation = m.get("evaluation")
    if evaluation:
        base, tuned = evaluation.get("base", {}), evaluation.get("tuned", {})
        rows += [
            "",
            f"`tuiwiz eval` on the {evaluation.get('validation_examples', '?')} validation "
            f"examples ({evaluation.get('tokens', '?')} answer tokens):",
            "",
            "| model | validation loss | perplexity |",
            "|---|---|---|",
            *(
                f"| {label} | {_number(s.get('loss'))} | {_number(s.get('perplexity'), 2)} |"
                for label, s in (("base", base), ("fine-tuned", tuned))
            ),
        ]
    return rows
