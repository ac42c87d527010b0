"""`tuiwiz chat RUN`: type prompts, read the fine-tuned model's answers as they are generated.

`--compare` also shows the base model's answer (the same loaded model with its adapter switched
off); `--prompt TEXT` answers once and exits, plain text on stdout, for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tuiwiz.notices import notice

LABELS = {"tuned": "fine-tuned", "base": "base"}
EMPTY_ANSWER = "(empty answer)"  # shown when the model answered nothing at all


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("chat", help="try a finished run: prompt it, see its answers stream")
    p.add_argument("run", help="run directory, run id, or unique prefix of an id")
    p.add_argument(
        "--prompt",
        metavar="TEXT",
        help="answer this one prompt and exit (plain text on stdout); '-' reads it from stdin",
    )
    p.add_argument(
        "--compare", action="store_true", help="also answer with the base model, for comparison"
    )
    p.add_argument("--max-new-tokens", type=str, metavar="N", help="longest answer (default 256)")
    p.add_argument(
        "--temperature", type=str, metavar="T", help="0 = greedy, the default; e.g. 0.7 samples"
    )
    p.add_argument("--top-p", type=str, metavar="P", help="nucleus sampling threshold (1 = off)")
    p.add_argument("--repetition-penalty", type=str, metavar="R", help="above 1 discourages loops")
    p.add_argument("--seed", type=str, metavar="S", help="seed for sampling, to repeat an answer")
    p.add_argument("--system", metavar="TEXT", help="a system prompt")
    p.add_argument(
        "--raw",
        action="store_true",
        help="give the prompt to the model as it is, without the chat template",
    )
    p.add_argument("--json", action="store_true", help="with --prompt: print JSON")
    return p


def settings_from(args: argparse.Namespace):
    from tuiwiz.after.generate import GenerationSettings, update
    from tuiwiz.errors import TuiwizError

    settings = GenerationSettings()
    for name in ("max_new_tokens", "temperature", "top_p", "repetition_penalty", "seed"):
        value = getattr(args, name, None)
        if value is not None:
            try:
                settings = update(settings, name, value)
            except ValueError as e:
                raise TuiwizError(f"--{name.replace('_', '-')}: {e}") from None
    return settings


def run(args: argparse.Namespace) -> int:
    from tuiwiz.after.generate import load_for_chat
    from tuiwiz.after.loading import finished_run, quiet_libraries
    from tuiwiz.after.session import ChatSession
    from tuiwiz.errors import TuiwizError

    if args.json and args.prompt is None:
        raise TuiwizError("--json goes with --prompt")
    session = ChatSession(settings=settings_from(args), compare=args.compare, system=args.system)
    prompt = None
    if args.prompt is not None:
        prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
        if not prompt.strip():
            raise TuiwizError("--prompt: the prompt is empty")
    fr = finished_run(args.run)  # bad input fails here, before the slow load
    quiet_libraries()
    chat = load_for_chat(fr.run, notice, raw=True if args.raw else None)
    if prompt is not None:
        return answer_once(chat, session, prompt.rstrip("\n"), args.json)
    from tuiwiz.after.examples import example_prompt

    return interactive(chat, session, example_prompt(fr.run.path))


def _sides(session) -> list[str]:
    return ["base", "tuned"] if session.compare else ["tuned"]


def answer_once(chat: Any, session: Any, prompt: str, as_json: bool) -> int:
    from tuiwiz.after.generate import describe

    answers = {}
    for side in _sides(session):
        if session.compare and not as_json:
            print(f"[{LABELS[side]}]", flush=True)
        stream = chat.stream(
            session.messages(side, prompt), session.settings, adapter=side == "tuned"
        )
        if as_json:
            answers[side] = "".join(stream).strip()
            continue
        text = ""
        for chunk in stream:
            text += chunk
            sys.stdout.write(chunk)
            sys.stdout.flush()
        answers[side] = text.strip()
        if not answers[side]:
            # Said where it cannot be mistaken for the answer: beside the label, or on stderr
            # when stdout is the answer itself (a script reads it).
            if session.compare:
                print(EMPTY_ANSWER, end="", flush=True)
            else:
                print(f"tuiwiz: {EMPTY_ANSWER}", file=sys.stderr, flush=True)
        print("\n" if session.compare and side == "base" else "", end="\n", flush=True)
    if as_json:
        out = {"prompt": prompt, "settings": describe(session.settings), **answers}
        print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def interactive(chat: Any, session: Any, example: str | None = None) -> int:
    from rich.console import Console

    from tuiwiz.after.generate import GenerationError, describe

    tty = sys.stdin.isatty()
    if tty:
        import readline  # noqa: F401  (line editing and history for input())
    console = Console(highlight=False)
    from rich.markup import escape

    from tuiwiz.after.examples import as_typed

    hint = f" (e.g. {escape(as_typed(example))})" if example else ""
    console.print(
        f"[bold]{chat.name}[/bold]: type a prompt{hint}; /help for commands, /quit to leave. "
        f"[dim]{describe(session.settings)}[/dim]"
    )
    while True:
        try:
            line = input("you> " if tty else "")
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print()
            return 0
        if not line.strip():
            continue
        if session.is_command(line):
            result = session.command(line)
            if result.message:
                console.print(result.message, markup=False)
            if result.quit:
                return 0
            continue
        prompt = session.prompt_text(line)
        for side in _sides(session):
            console.print(f"[bold cyan]{LABELS[side]}>[/bold cyan] ", end="")
            text = ""
            try:
                for chunk in chat.stream(
                    session.messages(side, prompt), session.settings, adapter=side == "tuned"
                ):
                    text += chunk
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
            except KeyboardInterrupt:
                console.print(" [yellow](stopped)[/yellow]")
                break
            except GenerationError as e:
                console.print(f"[red]{e}[/red]", markup=True)
                break
            if not text.strip():
                console.print(f"[dim]{EMPTY_ANSWER}[/dim]", end="")
            print(flush=True)
            session.record(side, prompt, text.strip())
