"""`tuiwiz eval RUN [--json]`: validation loss and perplexity, base model vs fine-tuned."""

from __future__ import annotations

import argparse
import json

from tuiwiz.notices import notice


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval", help="validation loss and perplexity of the base model and the fine-tuned one"
    )
    p.add_argument("run", help="run directory, run id, or unique prefix of an id")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.after import evaluate
    from tuiwiz.after.loading import finished_run, quiet_libraries

    fr = finished_run(args.run)
    quiet_libraries()
    result = evaluate.evaluate(fr, notice)
    evaluate.save(fr, result)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    show(result)
    return 0


def show(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        "model",
        "validation loss",
        "perplexity",
        title=f"{result.run}: {result.validation_examples} validation examples, "
        f"{result.tokens:,} answer tokens",
        header_style="bold",
    )
    table.add_row("base", f"{result.base.loss:.4f}", _ppl(result.base.perplexity))
    table.add_row("fine-tuned", f"{result.tuned.loss:.4f}", _ppl(result.tuned.perplexity))
    console.print(table)
    console.print(verdict(result.base.loss, result.tuned.loss))


def _ppl(value: float) -> str:
    return "inf" if value == float("inf") else f"{value:,.2f}"


def verdict(base: float, tuned: float) -> str:
    """One line on the change, in words."""
    change = tuned - base
    if abs(change) < 1e-4:
        return "The fine-tuned model scores the same as the base model on the validation split."
    if change < 0:
        share = f" ({-change / base:.1%} lower)" if base > 0 else ""
        return (
            f"[green]The fine-tuned model's validation loss is {-change:.4f} lower{share}[/green]: "
            "it predicts the held-out answers better than the base model."
        )
    return (
        f"[red]The fine-tuned model's validation loss is {change:.4f} higher[/red] than the base "
        "model's: it fits the held-out answers worse (overfitting, or a learning rate too high?)."
    )
