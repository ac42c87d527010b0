"""The same job as bench/plain_trl_sft.py through Unsloth's FastLanguageModel, as Unsloth's
own notebooks set it up: 4-bit loading, LoRA r 16 on q/k/v/o/gate/up/down, lora_dropout 0 and
use_gradient_checkpointing="unsloth" (its recommended fast path), then TRL's SFTTrainer, which
Unsloth patches. Batches of 4 padded to their longest example, at most 2048 tokens.

    python bench/unsloth_sft.py --model DIR --data rows.jsonl --result out.json

Unsloth pins its own versions (transformers <= 5.17, trl <= 1.15, datasets < 5 in
unsloth 2026.10.9), so it runs in its own environment: bench/gpu_session.sh installs them in a
separate folder. Unsloth must be imported before transformers and TRL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SETTINGS = "4-bit, r 16 on 7 projections, lora_dropout 0, use_gradient_checkpointing='unsloth'"


def train(model_dir: str, data: Path, steps: int, warmup: int, output: Path) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
    from unsloth import FastLanguageModel  # noqa: I001 - first: it patches transformers and TRL
    import datasets
    import torch
    from trl import SFTConfig, SFTTrainer
    from plain_trl_sft import chat_rows, timing_callback, train_measured

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=model_dir,
        max_seq_length=2048,
        dtype=torch.bfloat16,
        load_in_4bit=True,
        # the bench's models carry a character-level tokenizer; there is nothing to fix
        fix_tokenizer=False,
    )
    model = FastLanguageModel.get_peft_model(
        model,
        r=16,
        lora_alpha=32,
        lora_dropout=0,
        target_modules=[
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
        use_gradient_checkpointing="unsloth",
        random_state=42,
    )
    args = SFTConfig(
        output_dir=str(output),
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        max_length=2048,
        bf16=torch.cuda.is_available(),
        optim="paged_adamw_8bit",
        learning_rate=2e-4,
        lr_scheduler_type="cosine",
        warmup_steps=0.03,
        max_steps=warmup + steps,
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        seed=42,
        include_num_input_tokens_seen="non_padding",
    )
    record: dict = {}
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(chat_rows(data)),
        processing_class=tokenizer,
        callbacks=[timing_callback(warmup, steps, record)],
    )
    return {**train_measured(trainer, record, warmup, steps), "settings": SETTINGS}


def main(argv: list[str] | None = None) -> int:
    from plain_trl_sft import cli

    return cli(train, __doc__.split("\n\n")[0], "unsloth-out", argv)


if __name__ == "__main__":
    raise SystemExit(main())
