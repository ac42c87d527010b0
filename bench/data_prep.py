"""Data preparation speed and memory: tuiwiz next to a plain `datasets.map`, same rows, same
tokenizer, same chat-template rendering, in one process and on all cores.

    .venv/bin/python bench/data_prep.py [--rows 50000] [--tokenizer bpe|demo] [--runs ...]

Rows are synthetic and seeded, with alpaca-like lengths: instructions of 5-30 words, an input
(40% of rows) of 5-60 words, answers of 20-250 words, drawn from a Zipf-distributed vocabulary
of 20,000 made-up words with punctuation. The tokenizers are built offline: `bpe` is a
byte-level BPE with a 32k vocabulary trained here on the first 20,000 rows, with a ChatML chat
template (the shape of Qwen's or SmolLM's); `demo` is tuiwiz's demo model's character-level
tokenizer (one token per character).

Each run is its own process, started fresh (imports done before its clock starts), with a fresh
tokenization cache, except `tuiwiz-cached`, which reruns tuiwiz on the cache the run before it
left (the fingerprint of the data file is hashed again). Runs:

  plain-1      datasets.load_dataset("json") + map(render + tokenize), one process
  plain-N      the same with map(num_proc=N), N = the cores available
  tuiwiz-1     tuiwiz.data.prepare.prepare with [data] num_proc = 1
  tuiwiz-N     the same with num_proc = N (what "auto" picks here)
  tuiwiz-cached  tuiwiz again, on its cache

`--crossover 1000,2000,5000,10000,20000` instead times tuiwiz-1 and tuiwiz-N on the first rows
of the file at each size (best of three, alternating): where N processes start to pay off,
which sets pipeline.MIN_EXAMPLES_PER_PROCESS.

`-1core` runs (plain-1-1core, tuiwiz-1-1core) set TOKENIZERS_PARALLELISM=false: one process
that also keeps the tokenizer's own threads off, so exactly one core works. Peak memory is the
proportional set size (PSS) of the run's whole process tree, so pages that forked processes
share are counted once, sampled every 100 ms in a second run of its own (reading a process's
PSS walks its page tables and slows it down: the timed runs are not watched); `anon` is its
anonymous part (what must fit in RAM; the rest is files mapped in, which the kernel can drop).

The machine may be shared: each run starts when other processes use under a tenth of its CPUs,
and is done again (up to three tries) when they used more than a tenth of a core on average
while it ran; `other` is that average, in cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MAX_SEQ_LENGTH = {"bpe": 1024, "demo": 256}
RUNS = ("plain-1", "plain-N", "tuiwiz-1", "tuiwiz-N", "tuiwiz-cached")


# --- the data and the tokenizer ----------------------------------------------------------------


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    """`n` alpaca rows as JSON Lines, deterministic for a seed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = "bcdfghjklmnprstvwz"
    vowels = "aeiou"
    words = []
    for _ in range(20_000):
        syllables = rng.integers(1, 4, endpoint=True)
        words.append(
            "".join(rng.choice(list(letters)) + rng.choice(list(vowels)) for _ in range(syllables))
        )
    weights = 1.0 / np.arange(1, len(words) + 1)  # Zipf: a few words are most of the text
    weights /= weights.sum()
    marks = np.array(["", "", "", "", "", "", ",", ".", "?", ":"])

    def texts(counts: np.ndarray) -> list[str]:
        picks = rng.choice(len(words), size=int(counts.sum()), p=weights)
        punct = marks[rng.integers(0, len(marks), size=len(picks))]
        out, start = [], 0
        for count in counts:
            chunk = [words[i] + p for i, p in zip(picks[start : start + count], punct)]
            start += count
            out.append(" ".join(chunk).capitalize())
        return out

    with path.open("w") as f:
        for first in range(0, n, 10_000):
            size = min(10_000, n - first)
            instructions = texts(rng.integers(5, 30, size, endpoint=True))
            has_input = rng.random(size) < 0.4
            inputs = texts(np.where(has_input, rng.integers(5, 60, size, endpoint=True), 0))
            lengths = np.exp(rng.uniform(np.log(20), np.log(250), size)).astype(int)
            outputs = texts(lengths)
            for i in range(size):
                row = {"instruction": instructions[i], "input": inputs[i], "output": outputs[i]}
                f.write(json.dumps(row) + "\n")


def build_bpe(rows: Path, folder: Path) -> None:
    """A byte-level BPE (32k) trained on the first 20,000 rows, with ChatML, saved to `folder`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    def lines():
        with rows.open() as f:
            for i, line in enumerate(f):
                if i == 20_000:
                    return
                r = json.loads(line)
                yield f"{r['instruction']} {r['input']} {r['output']}"

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    tok.train_from_iterator(lines(), trainers.BpeTrainer(vocab_size=32_000, special_tokens=special))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    fast.chat_template = CHATML
    fast.model_max_length = 32_768
    fast.save_pretrained(str(folder))


def tokenizer_path(kind: str, work: Path, rows: Path) -> Path:
    if kind == "demo":
        from tuiwiz.demo import ensure_demo_model

        return ensure_demo_model()
    folder = work / "bpe-tokenizer"
    if not folder.is_dir():
        build_bpe(rows, folder)
    return folder


# --- one run (a child process) -----------------------------------------------------------------


def child(run: str, rows: Path, tokenizer_dir: Path, max_seq_length: int, cores: int) -> dict:
    import datasets  # noqa: F401 - imported before the clock, as both sides need it
    from transformers import AutoTokenizer

    from tuiwiz import config
    from tuiwiz.data import prepare

    datasets.disable_progress_bars()
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    processes = 1 if run.startswith(("plain-1", "tuiwiz-1")) else cores
    start = time.perf_counter()
    if run.startswith("plain"):
        examples, tokens = plain_map(rows, tokenizer, max_seq_length, processes)
    else:
        raw = {"path": str(rows), "max_seq_length": max_seq_length, "num_proc": processes}
        data = config.validate({"model": {"name_or_path": "m"}, "data": raw})["data"]
        train, _, report = prepare.prepare(data, tokenizer, log=lambda m: None)
        examples, tokens = len(train), report.median_tokens
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "examples": examples, "median_tokens": tokens}


def plain_map(rows: Path, tokenizer, max_seq_length: int, processes: int) -> tuple[int, float]:
    """What one writes by hand with datasets: the same conversation, the chat template, the
    tokenizer with truncation. No loss mask (this is the floor, not a rival)."""
    import statistics

    import datasets

    dataset = datasets.load_dataset("json", data_files=str(rows), split="train")

    def tokenize(batch):
        texts = [
            tokenizer.apply_chat_template(
                [
                    {"role": "user", "content": f"{i}\n\n{x}" if x else i},
                    {"role": "assistant", "content": o},
                ],
                tokenize=False,
            )
            for i, x, o in zip(batch["instruction"], batch["input"], batch["output"])
        ]
        return tokenizer(texts, truncation=True, max_length=max_seq_length)

    mapped = dataset.map(
        tokenize,
        batched=True,
        remove_columns=dataset.column_names,
        num_proc=processes if processes > 1 else None,
    )
    lengths = [len(x) for x in mapped.select(range(min(len(mapped), 2000)))["input_ids"]]
    return len(mapped), statistics.median(lengths)


# --- the parent: runs, memory, the table ----------------------------------------------------------


def tree_pss(root: int) -> tuple[int, int]:
    """Proportional set size, in bytes, of a process and all its descendants: all of it, and
    its anonymous part (the memory that must fit in RAM: the rest is files mapped in, which the
    kernel can drop and read again)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total = anon = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                elif line.startswith("Pss_Anon:"):
                    anon += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total, anon


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all the machine's CPUs since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    return sum(fields) - fields[3] - fields[4], sum(fields)  # idle and iowait are not busy


def wait_until_quiet(most: float = 0.1, window: float = 3.0, patience: float = 900) -> float:
    """Wait until other processes use at most `most` of the machine's CPUs over `window`
    seconds (at most `patience` seconds); returns the share they used last."""
    deadline = time.monotonic() + patience
    while True:
        busy0, total0 = cpu_jiffies()
        time.sleep(window)
        busy1, total1 = cpu_jiffies()
        share = (busy1 - busy0) / max(1, total1 - total0)
        if share <= most or time.monotonic() > deadline:
            return share


def measure(run: str, args: argparse.Namespace, env: Callable[[], dict[str, str]]) -> dict:
    """One run in a fresh process (with the environment `env()` makes for each try), started
    when the machine is quiet and done again (up to three tries) when other processes took
    more than a tenth of a core on average meanwhile. Its memory is measured in a run of its
    own: reading a process's PSS walks its page tables, which slows it down."""
    tries = []
    for _ in range(3):
        wait_until_quiet()
        tries.append(measure_once(run, args, env(), memory=False))
        if tries[-1]["other_cores"] <= 0.1:
            break
    result = min(tries, key=lambda r: r["other_cores"])
    if args.memory:
        memory = measure_once(run, args, env(), memory=True)
        result.update(peak_pss=memory["peak_pss"], peak_anon=memory["peak_anon"])
    return result


def measure_once(run: str, args: argparse.Namespace, env: dict[str, str], memory: bool) -> dict:
    command = [
        sys.executable, __file__, "--child", run, "--data", str(args.data),
        "--tokenizer-dir", str(args.tokenizer_dir), "--max-seq-length", str(args.max_seq_length),
        "--cores", str(args.cores),
    ]  # fmt: skip
    busy0, _ = cpu_jiffies()
    started, watching = time.monotonic(), time.process_time()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    peak = peak_anon = 0
    while True:  # wait4 rather than poll: the child's CPU time (its processes' included)
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if memory:
            pss, anon = tree_pss(process.pid)
            peak, peak_anon = max(peak, pss), max(peak_anon, anon)
        time.sleep(0.1)
    wall = time.monotonic() - started
    busy1, _ = cpu_jiffies()
    watching = time.process_time() - watching  # this process's own work, watching
    process.returncode = os.waitstatus_to_exitcode(status)
    out = process.stdout.read() if process.stdout else ""
    if process.returncode:
        raise SystemExit(f"run {run} failed (exit {process.returncode})")
    ours = usage.ru_utime + usage.ru_stime + watching
    other = max(0.0, (busy1 - busy0) / os.sysconf("SC_CLK_TCK") - ours) / wall
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "peak_pss": peak, "peak_anon": peak_anon, "other_cores": other}


def fastest(best: dict | None, result: dict) -> dict:
    """The faster of two results of a run, with the higher of their memory peaks."""
    if best is None:
        return result
    peaks = {k: max(best[k], result[k]) for k in ("peak_pss", "peak_anon")}
    return {**(result if result["seconds"] < best["seconds"] else best), **peaks}


def show(run: str, result: dict, rows: int) -> None:
    mib = 2**20
    print(
        f"{run:<16} {result['seconds']:>8.2f} {rows / result['seconds']:>8,.0f} "
        f"{result['peak_pss'] / mib:>5,.0f} MiB {result['peak_anon'] / mib:>5,.0f} MiB "
        f"{result['other_cores']:>6.2f}  {result['examples']:,}",
        flush=True,
    )


def crossover(args: argparse.Namespace, work: Path, sizes: list[int]) -> None:
    full = args.data
    print(f"tuiwiz-1 vs tuiwiz-N (N = {args.cores}), best of 3, {full.name}", flush=True)
    print(f"{'examples':>9} {'1 process':>10} {'N':>8}  N / 1", flush=True)
    for size in sizes:
        args.data = work / f"first-{size}.jsonl"
        with full.open() as source, args.data.open("w") as out:
            out.writelines(line for _, line in zip(range(size), source))
        best = {"tuiwiz-1": float("inf"), "tuiwiz-N": float("inf")}
        for _ in range(3):
            for run in best:
                fresh = lambda: {**os.environ, "TUIWIZ_CACHE_DIR": tempfile.mkdtemp(dir=work)}  # noqa: E731
                best[run] = min(best[run], measure(run, args, fresh)["seconds"])
        one, many = best["tuiwiz-1"], best["tuiwiz-N"]
        print(f"{size:>9,} {one:>9.2f}s {many:>7.2f}s  {many / one:.2f}", flush=True)
    args.data = full


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--tokenizer", choices=("bpe", "demo"), default="bpe")
    parser.add_argument(
        "--runs", default=",".join(RUNS), help="comma-separated, of: " + " ".join(RUNS)
    )
    parser.add_argument("--one-core", action="store_true", help="also the -1core runs")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; each run's fastest kept")
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip the memory runs"
    )
    parser.add_argument("--work", type=Path, help="keep the rows and tokenizer here (reused)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--crossover", help="sizes: where N processes start to pay off")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--max-seq-length", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cores", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.child, args.data, args.tokenizer_dir, args.max_seq_length, args.cores)
        print(json.dumps(result))
        return

    from tuiwiz.data.pipeline import available_cores

    args.cores = available_cores()
    args.max_seq_length = MAX_SEQ_LENGTH[args.tokenizer]
    work = args.work or Path(tempfile.mkdtemp(prefix="tuiwiz-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    args.data = work / f"alpaca-{args.rows}.jsonl"
    if not args.data.is_file():
        write_rows(args.data, args.rows)
    args.tokenizer_dir = tokenizer_path(args.tokenizer, work, args.data)
    if args.crossover:
        crossover(args, work, [int(n) for n in args.crossover.split(",")])
        return
    runs = [r for r in args.runs.split(",") if r]
    if args.one_core:
        runs = [*runs, "plain-1-1core", "tuiwiz-1-1core"]
    print(
        f"data preparation: {args.rows:,} alpaca rows ({args.data.stat().st_size / 2**20:,.0f} MiB)"
        f", {args.tokenizer} tokenizer, max_seq_length {args.max_seq_length}, "
        f"N = {args.cores} cores; load average {os.getloadavg()[0]:.2f} at the start",
        flush=True,
    )
    rounds = f", fastest of {args.repeat} rounds" if args.repeat > 1 else ""
    print(
        f"{'run':<16} {'seconds':>8} {'rows/s':>8} {'peak PSS':>9} {'anon':>9} {'other':>6}  "
        f"examples{rounds}",
        flush=True,
    )
    results: dict[str, dict] = {}
    for round_ in range(args.repeat):  # rounds, so that a busy moment hits every run alike
        cache = ""  # the last run's tokenization cache: what tuiwiz-cached reads

        def environment(run: str) -> dict[str, str]:
            nonlocal cache
            env = {**os.environ, "HF_DATASETS_CACHE": tempfile.mkdtemp(dir=work, prefix="hf-")}
            if run != "tuiwiz-cached" or not cache:
                cache = tempfile.mkdtemp(dir=work, prefix="cache-")
            env["TUIWIZ_CACHE_DIR"] = cache
            if run.endswith("-1core"):
                env["TOKENIZERS_PARALLELISM"] = "false"
            return env

        for run in runs:
            result = measure(run, args, lambda run=run: environment(run))
            results[run] = fastest(results.get(run), result)
            if round_ == args.repeat - 1:
                show(run, results[run], args.rows)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    for mine, theirs in (("tuiwiz-1", "plain-1"), ("tuiwiz-1-1core", "plain-1-1core")):
        if mine in results and theirs in results:
            ratio = results[mine]["seconds"] / results[theirs]["seconds"]
            print(f"{mine} / {theirs}: {ratio:.2f}x the time (goal <= 1.2)")
    for one in ("tuiwiz-1-1core", "tuiwiz-1"):
        if one in results and "tuiwiz-N" in results:
            speedup = results[one]["seconds"] / results["tuiwiz-N"]["seconds"]
            print(f"tuiwiz-N ({args.cores} processes): {speedup:.2f}x the speed of {one}")
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, "results": results}, indent=2))


if __name__ == "__main__":
    main()
