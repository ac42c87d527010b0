"""The baseline of bench/gpu_throughput.py: QLoRA with TRL's SFTTrainer as a careful user writes
it, without tuiwiz: 4-bit nf4 with double quantization and bf16 compute, LoRA r 16 on every
linear layer, bf16, gradient checkpointing, sdpa, paged 8-bit AdamW, batches of 4 padded to
their longest example (at most 2048 tokens), completion-only loss on prompt/completion chat data.

    python bench/plain_trl_sft.py --model DIR --data rows.jsonl --result out.json

The only additions are for measuring: the count of real (non-padding) tokens, and a callback
that reads the clock and that count after the warm-up steps and at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def chat_rows(path: Path) -> list[dict]:
    """Alpaca rows as TRL's conversational prompt/completion examples."""
    out = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        user = row["instruction"] + ("\n\n" + row["input"] if row.get("input") else "")
        out.append(
            {
                "prompt": [{"role": "user", "content": user}],
                "completion": [{"role": "assistant", "content": row["output"]}],
            }
        )
    return out


def timing_callback(warmup: int, steps: int, record: dict):
    """Clock and real tokens seen after `warmup` steps and after `warmup + steps`."""
    import torch
    from transformers import TrainerCallback

    class Timing(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (warmup, warmup + steps):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                record[state.global_step] = (time.perf_counter(), int(state.num_input_tokens_seen))

    return Timing()


def measured(record: dict, warmup: int, steps: int) -> dict:
    (t0, n0), (t1, n1) = record[warmup], record[warmup + steps]
    return {"seconds": t1 - t0, "tokens": n1 - n0, "tokens_per_second": (n1 - n0) / (t1 - t0)}


def train(model_dir: str, data: Path, steps: int, warmup: int, output: Path) -> dict:
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        ),
        dtype=torch.bfloat16,
        attn_implementation="sdpa",
        device_map={"": 0} if cuda else None,
    )
    peft_config = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    args = SFTConfig(
        output_dir=str(output),
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        max_length=2048,
        bf16=cuda,
        use_cpu=not cuda,
        gradient_checkpointing=True,
        optim="paged_adamw_8bit",
        learning_rate=2e-4,
        lr_scheduler_type="cosine",
        warmup_steps=0.03,
        max_steps=warmup + steps,
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        seed=42,
        include_num_input_tokens_seen="non_padding",  # for the measurement
    )
    record: dict = {}
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(chat_rows(data)),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[timing_callback(warmup, steps, record)],
    )
    return train_measured(trainer, record, warmup, steps)


def train_measured(trainer, record: dict, warmup: int, steps: int) -> dict:
    """Train, then the throughput after the warm-up and the peak of allocated GPU memory."""
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    result = measured(record, warmup, steps)
    result["allocated_peak_bytes"] = torch.cuda.max_memory_allocated() if cuda else None
    return result


def cli(train, description: str, default_output: str, argv: list[str] | None) -> int:
    """The command line both baselines share: train, then write and print the measurement."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", type=Path, default=Path(default_output))
    parser.add_argument("--result", type=Path, required=True, help="write the measurement here")
    args = parser.parse_args(argv)
    result = train(args.model, args.data, args.steps, args.warmup, args.output)
    args.result.write_text(json.dumps(result))
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli(train, __doc__.split("\n\n")[0], "plain-trl-out", argv)


if __name__ == "__main__":
    raise SystemExit(main())
