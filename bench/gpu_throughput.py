"""Training throughput on a GPU: one QLoRA job through a plain TRL script, `tuiwiz run` with its
defaults, `tuiwiz run` with speed = "fast", and Unsloth.

The job: random weights of the real Llama-3.1-8B and Qwen2.5-7B architectures (config.json only),
4-bit nf4 with double quantization, LoRA r 16 on every linear layer, bf16, gradient
checkpointing, batches of 4 examples of at most 2048 tokens, paged 8-bit AdamW, on seeded
alpaca-like data (median 179 tokens, 86% between 50 and 400, one in thirty up to 2,000:
bench/gpu_common.py).
Each system trains in its own process, one after the other; the rate is real (non-padding)
tokens per second over 30 steps after 5 warm-up steps, and the peak is the device's memory in
NVML while that process ran.

    python bench/gpu_throughput.py                      # every model and system, on a GPU
    python bench/gpu_throughput.py --models llama-3.1-8b --systems plain tuiwiz-fast
    python bench/gpu_throughput.py --smoke --json out.json   # a tiny model on the CPU: checks
                                                             # the script, measures nothing

The systems: plain = bench/plain_trl_sft.py; tuiwiz-default and tuiwiz-fast = `python -m tuiwiz
run` of the same job as a preset (rates from the run's events.jsonl); unsloth =
bench/unsloth_sft.py, in the Python environment given by --unsloth-pythonpath (Unsloth pins
older transformers and TRL; bench/gpu_session.sh builds that environment).
Results: bench/results/gpu_throughput-<gpu>.json ({"gpu", "versions", "rows": [{"system",
"model", "tokens_per_second", "peak_bytes", ...}]}) and a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_common  # noqa: E402

ROOT = gpu_common.ROOT
SYSTEMS = ("plain", "tuiwiz-default", "tuiwiz-fast", "unsloth")
MODELS = ("llama-3.1-8b", "qwen2.5-7b")
DATA_ROWS = 2000
BATCH = 4
MAX_LENGTH = 2048


@dataclass
class Row:
    system: str
    model: str
    tokens_per_second: float | None = None
    peak_bytes: int | None = None  # NVML: the device's used memory while the system ran
    allocated_peak_bytes: int | None = None  # torch.cuda.max_memory_allocated
    seconds: float | None = None  # of the measured steps
    tokens: int | None = None  # real tokens in the measured steps
    steps: int = 30
    warmup: int = 5
    wall_seconds: float | None = None  # the whole process: imports, loading, training, saving
    settings: str = ""
    note: str = ""


def tuiwiz_preset(model_dir: Path, data: Path, steps: int, warmup: int, fast: bool) -> str:
    """The job as a tuiwiz preset: tuiwiz's defaults, with the job's batch and length."""
    speed = '\nspeed = "fast"' if fast else ""
    return f"""schema_version = 1
name = "throughput"
[model]
name_or_path = "{model_dir}"
[data]
path = "{data}"
format = "alpaca"
max_seq_length = {MAX_LENGTH}
[training]
per_device_train_batch_size = {BATCH}
gradient_accumulation_steps = 1
max_steps = {warmup + steps}
logging_steps = {math.gcd(warmup, steps)}
save_steps = 100000
bf16 = true
report_to = "none"{speed}
"""


def rate_from_events(run: Path, steps: int, warmup: int) -> dict:
    """Real tokens per second between the step events of `warmup` and `warmup + steps`."""
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    by_step = {e["step"]: e for e in events if e.get("event") == "step"}
    a, b = by_step[warmup], by_step[warmup + steps]
    seconds, tokens = b["time"] - a["time"], b["tokens_seen"] - a["tokens_seen"]
    return {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_second": tokens / seconds,
        "allocated_peak_bytes": max(
            (e.get("gpu_max_memory_allocated") or 0 for e in by_step.values()), default=None
        )
        or None,
    }


def preset_settings(run: Path) -> str:
    """What the run's preset.toml says it trained with, for the speed options."""
    import tomllib

    preset = tomllib.loads((run / "preset.toml").read_text())
    t, m = preset["training"], preset["model"]
    keys = ("speed", "padding_free", "use_liger_kernel", "train_sampling_strategy")
    parts = [f"{k}={t[k]}" for k in keys if k in t]
    return ", ".join([*parts, f"attn={m['attn_implementation']}"])


def run_child(cmd: list[str], env: dict, nvml, timeout: float, log: Path) -> tuple[int, int | None]:
    """Run one system's process, sampling the device's memory; (exit code, NVML peak)."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        if nvml is not None:
            nvml.__enter__()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = -9
        finally:
            if nvml is not None:
                nvml.__exit__(None, None, None)
    return code, (nvml.peak if nvml is not None else None)


def _tail(log: Path, lines: int = 3) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    found = [line for line in text if "Error" in line or "error" in line] or text
    return " | ".join(line.strip() for line in found[-lines:])[:300]


def measure(
    system: str, model: str, model_dir: Path, data: Path, args, nvml, work: Path, timeout: float
) -> Row:
    row = Row(system, model, steps=args.steps, warmup=args.warmup)
    log = work / f"{model}-{system}.log"
    result = work / f"{model}-{system}.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    common = ["--data", str(data), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if system == "plain":
        cmd = [sys.executable, str(ROOT / "bench" / "plain_trl_sft.py"), "--model", str(model_dir)]
        cmd += [*common, "--output", str(work / f"{model}-plain"), "--result", str(result)]
        row.settings = "sdpa, padded batches (bench/plain_trl_sft.py)"
    elif system == "unsloth":
        if not args.unsloth_pythonpath:
            row.note = "not run: no Unsloth environment (--unsloth-pythonpath)"
            return row
        env["PYTHONPATH"] = args.unsloth_pythonpath
        cmd = [sys.executable, str(ROOT / "bench" / "unsloth_sft.py"), "--model", str(model_dir)]
        cmd += [*common, "--output", str(work / f"{model}-unsloth"), "--result", str(result)]
    else:
        run = work / f"{model}-{system}-run"
        preset = work / f"{model}-{system}.toml"
        preset.write_text(
            tuiwiz_preset(model_dir, data, args.steps, args.warmup, system == "tuiwiz-fast")
        )
        cmd = [sys.executable, "-m", "tuiwiz", "run", str(preset), "--output-dir", str(run)]
    started = time.monotonic()
    code, peak = run_child(cmd, env, nvml, timeout, log)
    row.wall_seconds = round(time.monotonic() - started, 1)
    row.peak_bytes = peak
    if code != 0:
        row.note = ("timed out" if code == -9 else f"failed (exit {code})") + f": {_tail(log)}"
        return row
    if system.startswith("tuiwiz"):
        measured = rate_from_events(run, args.steps, args.warmup)
        row.settings = preset_settings(run)
    else:
        measured = json.loads(result.read_text())
        row.settings = measured.pop("settings", row.settings)
    for key, value in measured.items():
        setattr(row, key, value)
    return row


def data_summary(rows: list[dict]) -> dict:
    from tuiwiz.demo import alpaca_user_content as user
    from tuiwiz.demo.build import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.model_max_length = 1 << 20
    lengths = []
    for r in rows:
        messages = [
            {"role": "user", "content": user(r["instruction"], r["input"])},
            {"role": "assistant", "content": r["output"]},
        ]
        lengths.append(len(tokenizer.apply_chat_template(messages, tokenize=True)["input_ids"]))
    lengths.sort()
    return {
        "rows": len(rows),
        "median_tokens": statistics.median(lengths),
        "p95_tokens": lengths[int(0.95 * (len(lengths) - 1))],
        "max_tokens": lengths[-1],
        "share_50_to_400": sum(50 <= n <= 400 for n in lengths) / len(lengths),
    }


def gpu_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("nvidia", "")).strip("-") or "gpu"


def table(rows: list[Row]) -> str:
    plain = {r.model: r.tokens_per_second for r in rows if r.system == "plain"}
    head = ("model", "system", "tok/s", "x plain", "peak GiB", "alloc GiB", "wall s", "note")
    out = [head]
    for r in rows:
        base = plain.get(r.model)
        ratio = f"{r.tokens_per_second / base:.2f}" if r.tokens_per_second and base else ""
        out.append(
            (
                r.model,
                r.system,
                f"{r.tokens_per_second:,.0f}" if r.tokens_per_second else "",
                ratio,
                f"{r.peak_bytes / gpu_common.GiB:.2f}" if r.peak_bytes else "",
                f"{r.allocated_peak_bytes / gpu_common.GiB:.2f}" if r.allocated_peak_bytes else "",
                f"{r.wall_seconds:.0f}" if r.wall_seconds else "",
                r.note or r.settings,
            )
        )
    widths = [max(len(x[i]) for x in out) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip() for x in out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--steps", type=int, default=30, help="measured steps")
    parser.add_argument("--warmup", type=int, default=5, help="steps before the measurement")
    parser.add_argument("--budget", type=float, default=3600, help="seconds for the whole bench")
    parser.add_argument("--unsloth-pythonpath", default=os.environ.get("UNSLOTH_PYTHONPATH"))
    parser.add_argument("--json", type=Path, help="results file (default: bench/results/...)")
    parser.add_argument(
        "--results-dir", type=Path, help="write gpu_throughput-<gpu>.json into this folder"
    )
    parser.add_argument(
        "--merge", type=Path, help="an earlier results file: its rows stay, unless measured again"
    )
    parser.add_argument("--work", type=Path, help="where models, data and runs go")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny model on the CPU, 2 + 2 steps: checks only"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.smoke:
        args.models, args.steps, args.warmup = ["smoke"], 2, 2
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        print("gpu_throughput: no CUDA GPU; use --smoke to check the script", file=sys.stderr)
        return 2
    nvml = gpu_common.NvmlPeak(torch.cuda.current_device()) if cuda else None
    gpu = nvml.name() if nvml else "cpu"
    need = max(gpu_common.weights_bytes(m) for m in args.models)
    work = args.work or gpu_common.work_dir(need)
    data_rows = gpu_common.alpaca_rows(64 if args.smoke else DATA_ROWS, seed=0)
    data = gpu_common.write_jsonl(work / "alpaca-like.jsonl", data_rows)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        for model in args.models:
            model_dir = gpu_common.random_model(model, work)
            for system in args.systems:
                left = args.budget - (time.monotonic() - started)
                if left < 60:
                    rows.append(Row(system, model, note="skipped: time budget"))
                    continue
                row = measure(system, model, model_dir, data, args, nvml, Path(tmp), left)
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
    result = {
        "gpu": gpu,
        "versions": gpu_common.versions(),
        "data": data_summary(data_rows),
        "job": f"4-bit nf4 QLoRA, r 16 all-linear, bf16, checkpointing, batch {BATCH} x "
        f"<= {MAX_LENGTH} tokens, {args.warmup} warm-up + {args.steps} measured steps",
        "rows": [asdict(r) for r in rows],
    }
    if args.merge and args.merge.is_file():
        known = {f.name for f in fields(Row)}
        earlier = json.loads(args.merge.read_text())
        old = [Row(**{k: v for k, v in r.items() if k in known}) for r in earlier["rows"]]
        done = {(r.system, r.model) for r in rows if not r.note.startswith("skipped")}
        rows = [r for r in old if (r.system, r.model) not in done] + rows
        result["rows"] = [asdict(r) for r in rows]
        if earlier.get("versions") != result["versions"]:
            result["earlier_versions"] = earlier.get("versions")
    target = args.json
    name = f"gpu_throughput-{gpu_slug(gpu)}.json"
    if target is None and args.results_dir is not None:
        target = args.results_dir / name
    if target is None and not args.smoke:
        target = ROOT / "bench" / "results" / name
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result, indent=2) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
