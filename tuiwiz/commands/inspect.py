"""`tuiwiz inspect MODEL`: architecture, exact parameter counts and LoRA targets of a model, from
its config.json alone (no weights are downloaded or loaded)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("inspect", help="show a model's architecture and LoRA target modules")
    p.add_argument("model", help="a local model directory or a Hugging Face Hub id")
    p.add_argument("--revision", default="main", help="branch, tag or commit of a Hub model")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow architectures whose code lives in the model repo",
    )
    p.add_argument(
        "--r",
        type=int,
        default=16,
        metavar="RANK",
        help="LoRA rank for the adapter sizes shown per module (default 16)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return p


def report(
    model: str, revision: str = "main", trust_remote_code: bool = False, r: int = 16
) -> dict[str, Any]:
    """The inspect report as data (what --json prints)."""
    from tuiwiz.errors import TuiwizError
    from tuiwiz.inspect.lora import plan
    from tuiwiz.inspect.model import summarize

    if r <= 0:
        raise TuiwizError(f"--r must be > 0, got {r}")
    summary = summarize(model, revision, trust_remote_code)
    lora = plan(summary, {"r": r, "target_modules": "all-linear"})
    linears: dict[str, dict[str, int]] = {}
    for m in summary.adaptable_linears():
        entry = linears.setdefault(
            m.short_name,
            {"count": 0, "params": 0, "in_features": 0, "out_features": 0, "lora_params": 0},
        )
        entry["count"] += 1
        entry["params"] += sum(p.numel for p in m.params)
        entry["in_features"], entry["out_features"] = m.in_features, m.out_features
        entry["lora_params"] += r * (m.in_features + m.out_features)
    facts = dict(summary.facts)
    facts["tied_embeddings"] = summary.tied_embeddings
    return {
        "model": model,
        "source": summary.source,
        "architecture": facts,
        "total_params": summary.total_params,
        "linear_modules": linears,
        "lora_all_linear": {"r": r, "trainable_params": lora.trainable, "total_params": lora.total},
    }


def run(args: argparse.Namespace) -> int:
    from tuiwiz.inspect.overview import human_count

    data = report(args.model, args.revision, args.trust_remote_code, args.r)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    a = data["architecture"]
    facts = Table(box=None, show_header=False)
    rows = [
        ("model type", f"{a['model_type']} ({a['architecture']})"),
        ("layers", a["layers"]),
        ("hidden size", a["hidden_size"]),
        ("MLP size", a["intermediate_size"]),
        (
            "attention heads",
            f"{a['heads']} (key/value heads: {a['kv_heads']}, head dim {a['head_dim']})",
        ),
        ("vocabulary", a["vocab_size"]),
        ("tied embeddings", "yes" if a["tied_embeddings"] else "no"),
        ("context length", a["context_length"]),
        ("parameters", f"{data['total_params']:,} ({human_count(data['total_params'])})"),
    ]
    for key, value in rows:
        facts.add_row(f"[bold]{key}[/bold]", str(value))
    console.print(facts)
    table = Table(
        "LoRA target",
        "count",
        "in x out",
        "params",
        f"LoRA r={args.r}",
        box=None,
        header_style="bold",
        title="linear modules",
        title_justify="left",
    )
    for name, e in data["linear_modules"].items():
        table.add_row(
            name,
            str(e["count"]),
            f"{e['in_features']} x {e['out_features']}",
            f"{e['params']:,}",
            f"{e['lora_params']:,}",
        )
    console.print(table)
    lora = data["lora_all_linear"]
    console.print(
        f"all-linear at r={args.r}: {lora['trainable_params']:,} trainable parameters "
        f"({100 * lora['trainable_params'] / lora['total_params']:.3f}% of "
        f"{lora['total_params']:,})",
        highlight=False,
    )
    return 0
