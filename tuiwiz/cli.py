"""The `tuiwiz` command line: argument parsing and dispatch only; each command lives in
tuiwiz/commands/NAME.py with `add_parser(subparsers)` and `run(args) -> int`."""

from __future__ import annotations

import argparse
import importlib
import keyword
import sys

from tuiwiz import __version__
from tuiwiz.errors import TuiwizError

COMMANDS = [
    "run",
    "resume",
    "stop",
    "runs",
    "launch-script",
    "logs",
    "attach",
    "serve",
    "data",
    "eval",
    "chat",
    "export",
    "demo",
    "presets",
    "import",
    "compare",
    "explain",
    "inspect",
    "estimate",
    "gpus",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuiwiz",
        description="Configure and run LoRA / QLoRA fine-tunes from the terminal. With no "
        "command, opens the wizard.",
    )
    parser.add_argument("--version", action="version", version=f"tuiwiz {__version__}")
    parser.add_argument(
        "--preset",
        metavar="FILE",
        help="open the wizard prefilled from a preset (a file, or a shipped or saved name)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"tuiwiz.commands.{_module_name(name)}")
        module.add_parser(sub).set_defaults(handler=module.run)
    return parser


def _module_name(command: str) -> str:
    """A command's module: dashes become underscores; a Python keyword (import) gets a trailing
    underscore, as PEP 8 suggests."""
    name = command.replace("-", "_")
    return f"{name}_" if keyword.iskeyword(name) else name


def _wizard_preset(argv: list[str]) -> str | None | bool:
    """The preset of a plain `tuiwiz [--preset X]` (None for none), or False for anything else.

    The wizard's first frame should come fast: this path skips importing every command module."""
    if not argv:
        return None
    if len(argv) == 2 and argv[0] == "--preset" and not argv[1].startswith("-"):
        return argv[1]
    if len(argv) == 1 and argv[0].startswith("--preset="):
        return argv[0].split("=", 1)[1]
    return False


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    preset = _wizard_preset(args_list)
    if preset is not False and (preset or (sys.stdin.isatty() and sys.stdout.isatty())):
        from tuiwiz.commands.wizard import open_wizard

        try:
            return open_wizard(preset)
        except TuiwizError as e:
            print(f"tuiwiz: error: {e}", file=sys.stderr)
            return e.exit_code
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        if not getattr(args, "handler", None):
            if args.preset or (sys.stdin.isatty() and sys.stdout.isatty()):
                from tuiwiz.commands.wizard import open_wizard

                return open_wizard(args.preset)
            parser.print_help()  # no terminal to draw the wizard on
            return 0
        return int(args.handler(args) or 0)
    except TuiwizError as e:
        print(f"tuiwiz: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("tuiwiz: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
