"""`tuiwiz data PRESET`: the dataset as the model will see it, before any training."""

from __future__ import annotations

import argparse

from tuiwiz.commands import add_override_argument


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "data", help="show a preset's dataset as the model sees it: format, examples, lengths"
    )
    p.add_argument("preset", help="a preset file, or the name of a shipped or saved one")
    add_override_argument(p)
    p.add_argument(
        "-n", "--examples", type=int, default=3, metavar="N", help="how many examples to render"
    )
    return p


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tuiwiz import bundled, presets
    from tuiwiz.data.preview import NoTokenizer, tokenizer_for

    config, _ = presets.load(args.preset, args.overrides)
    data = {**config["data"], "path": bundled.resolve_data(config["data"]["path"])}
    model_path = bundled.resolve_model(config["model"]["name_or_path"])
    limit = config["data"]["max_seq_length"]
    try:
        tokenizer, problem = tokenizer_for(model_path, config), None
    except NoTokenizer as e:
        tokenizer, problem = None, e
    console = Console(highlight=False)
    result = _preview_with_progress(data, tokenizer, max(0, args.examples))
    console.print(
        f"[bold]{config['data']['path']}[/bold]: {result.rows} rows, "
        f"format {result.format} ({result.why})"
    )
    for reason, n in result.skipped.items():
        console.print(f"[yellow]skipped {n} rows: {reason}[/yellow]")
    if problem is not None:
        raise problem  # what needs the tokenizer cannot be shown: say why, exit 2
    console.print(
        "[dim]dim: the prompt (no loss)[/dim]   [bold green]green: trained on[/bold green]"
        + f"   [dim strike]struck out: cut at max_seq_length {limit}[/dim strike]"
    )
    for i, (segments, cut) in enumerate(zip(result.examples, result.cuts), start=1):
        console.rule(f"example {i}")
        console.print(example_text(segments, cut, limit))
    console.rule()
    examples = result.rows - sum(result.skipped.values())
    sampled = (
        f" (a random sample of {result.measured:,} of {examples:,} examples)"
        if result.measured < examples
        else ""
    )
    console.print(
        f"tokens per example{sampled}: median {result.median_tokens:.0f}, "
        f"95th percentile {result.p95_tokens:.0f}, max {result.max_tokens}; "
        f"max_seq_length {limit}: {result.truncated_share:.1%} would be truncated"
    )
    return 0


def _preview_with_progress(data, tokenizer, count: int):
    """The preview; on a terminal, a status line says how far the reading is (big datasets
    take a while to read through)."""
    import sys

    from rich.console import Console

    from tuiwiz.data.preview import preview

    stderr = Console(stderr=True, highlight=False)
    if not sys.stderr.isatty():
        return preview(data, tokenizer, count)
    with stderr.status("reading the dataset") as status:
        return preview(
            data, tokenizer, count, progress=lambda p: status.update(f"data: {p.line()}")
        )


def example_text(segments, cut: int | None, limit: int):
    """An example as Rich text: the prompt dim, the trained answer green, and, where
    max_seq_length cuts it, a marker and the part training never sees struck out."""
    from rich.text import Text

    from tuiwiz.data.preview import split_at

    kept, dropped = split_at(segments, cut) if cut is not None else (segments, [])
    text = Text()
    for segment in kept:
        text.append(segment.text, "bold green" if segment.trained else "dim")
    if cut is not None:
        text.append(f"✂ cut here (max_seq_length {limit})", "bold yellow")
        for segment in dropped:
            text.append(segment.text, "dim strike")
    return text
