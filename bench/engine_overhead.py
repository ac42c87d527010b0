"""Engine overhead: `tuiwiz run` against a plain script that calls the same trainer directly.

Both train the demo model (4-bit nf4 QLoRA on the CPU here) on the demo data with the same
arguments. The plain script uses TRL's own data pipeline (conversational prompt / completion,
which renders the same chat template and masks the same prompt tokens). The number compared is
the training wall time that the Trainer itself reports (`train_runtime`), so process start-up,
imports and model loading are left out of both sides. Runs alternate (A B A B ...) so that
machine noise hits both alike; the table shows each run and the median ratio.

    .venv/bin/python bench/engine_overhead.py [--steps 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PLAIN = textwrap.dedent(
    """
    import json, sys, torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    model_dir, data_path, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    cfg = json.loads(sys.argv[5])
    q, lora, t, d = cfg["quantization"], cfg["lora"], cfg["training"], cfg["data"]
    tok = AutoTokenizer.from_pretrained(model_dir)
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q["bnb_4bit_quant_type"],
        bnb_4bit_use_double_quant=q["bnb_4bit_use_double_quant"],
        bnb_4bit_compute_dtype=getattr(torch, q["bnb_4bit_compute_dtype"]))
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=bnb,
        dtype=getattr(torch, q["bnb_4bit_compute_dtype"]))
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=lora["r"], lora_alpha=lora["lora_alpha"],
        lora_dropout=lora["lora_dropout"], target_modules=lora["target_modules"],
        task_type="CAUSAL_LM"))
    rows = [json.loads(line) for line in open(data_path)]
    def user(r):
        return r["instruction"] + ("\\n\\n" + r["input"] if r.get("input") else "")
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": user(r)}],
                             "completion": [{"role": "assistant", "content": r["output"]}]}
                            for r in rows])
    args = SFTConfig(output_dir=out, max_steps=steps, save_strategy="no", report_to="none",
        per_device_train_batch_size=t["per_device_train_batch_size"],
        gradient_accumulation_steps=t["gradient_accumulation_steps"],
        learning_rate=t["learning_rate"], lr_scheduler_type=t["lr_scheduler_type"],
        warmup_steps=t["warmup_steps"], optim=t["optim"], logging_steps=t["logging_steps"],
        seed=t["seed"], max_length=d["max_seq_length"], bf16=False, use_cpu=True,
        gradient_checkpointing=False, disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    result = trainer.train()
    print("RUNTIME", result.metrics["train_runtime"])
    """
)


def tuiwiz_runtime(steps: int, out: Path) -> float:
    command = [
        sys.executable,
        "-m",
        "tuiwiz",
        "run",
        "demo",
        "--output-dir",
        str(out),
        "--set",
        f"training.max_steps={steps}",
        "--set",
        "training.save_strategy=no",
        "--set",
        "data.validation_split=0",
        "--set",
        "training.gradient_checkpointing=false",
    ]
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    return float(next(e for e in events if e["event"] == "finished")["train_runtime"])


def plain_runtime(steps: int, out: Path, config: dict) -> float:
    from tuiwiz.demo import demo_dataset_path, ensure_demo_model

    command = [
        sys.executable,
        "-c",
        PLAIN,
        str(ensure_demo_model()),
        str(demo_dataset_path()),
        str(steps),
        str(out),
        json.dumps(config),
    ]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    line = next(x for x in result.stdout.splitlines() if x.startswith("RUNTIME"))
    return float(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from tuiwiz import presets

    config, _ = presets.load("demo")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            a = tuiwiz_runtime(args.steps, Path(tmp) / f"tuiwiz-{i}")
            b = plain_runtime(args.steps, str(Path(tmp) / f"plain-{i}"), config)
            rows.append((i + 1, a, b, a / b))
    print(f"engine overhead: demo model, 4-bit nf4 QLoRA, CPU, {args.steps} optimizer steps")
    print(f"{'run':>3}  {'tuiwiz run (s)':>14}  {'plain script (s)':>16}  {'ratio':>6}")
    for i, a, b, r in rows:
        print(f"{i:>3}  {a:>14.2f}  {b:>16.2f}  {r:>6.3f}")
    median = statistics.median(r for *_, r in rows)
    print(f"median ratio: {median:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
