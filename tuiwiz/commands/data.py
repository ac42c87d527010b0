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
    p.add_argument("-n", "--examples", type=int, default=3, help="how many examples to render")
    return p


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    from tuiwiz import bundled, presets
    from tuiwiz.data.preview import preview
    from tuiwiz.train.builders import load_tokenizer

    config, _ = presets.load(args.preset, args.overrides)
    data = {**config["data"], "path": bundled.resolve_data(config["data"]["path"])}
    model_path = bundled.resolve_model(config["model"]["name_or_path"])
    result = preview(data, load_tokenizer(model_path, config), max(0, args.examples))
    console = Console(highlight=False)
    console.print(
        f"[bold]{config['data']['path']}[/bold]: {result.rows} rows, "
        f"format {result.format} ({result.why})"
    )
    for reason, n in result.skipped.items():
        console.print(f"[yellow]skipped {n} rows: {reason}[/yellow]")
    console.print(
        "[dim]dim: the prompt (no loss)[/dim]   [bold green]green: trained on[/bold green]"
    )
    for i, segments in enumerate(result.examples, start=1):
        text = Text()
        for segment in segments:
            text.append(segment.text, style="bold green" if segment.trained else "dim")
        console.rule(f"example {i}")
        console.print(text)
    console.rule()
    sampled = f" (a sample of {result.measured})" if result.measured < result.rows else ""
    console.print(
        f"tokens per example{sampled}: median {result.median_tokens:.0f}, "
        f"95th percentile {result.p95_tokens:.0f}, max {result.max_tokens}; "
        f"max_seq_length {config['data']['max_seq_length']}: "
        f"{result.truncated_share:.1%} would be truncated"
    )
    return 0
