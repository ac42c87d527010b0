"""The `tuiwiz` command line: argument parsing and dispatch only; each command lives in
tuiwiz/commands/NAME.py with `add_parser(subparsers)` and `run(args) -> int`."""

from __future__ import annotations

import argparse
import importlib
import keyword
import os
import shutil
import sys
import textwrap

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
    "doctor",
]

# One example per sub-command (or two), shown at the end of its --help.
EXAMPLES = {
    "run": [
        "tuiwiz run demo --set training.max_steps=3",
        "tuiwiz run my-preset.toml --output-dir runs/first --detach",
    ],
    "resume": ["tuiwiz resume demo-20250101-120000"],
    "stop": ["tuiwiz stop demo-20250101-120000"],
    "runs": ["tuiwiz runs"],
    "launch-script": [
        "tuiwiz launch-script my-preset.toml --slurm --set launch.nnodes=2 "
        "--output-dir /shared/runs/x --out train.sbatch"
    ],
    "logs": ["tuiwiz logs --follow demo-20250101-120000"],
    "attach": ["tuiwiz attach demo-20250101-120000"],
    "serve": ["tuiwiz serve --preset demo"],
    "data": ["tuiwiz data demo -n 5"],
    "eval": ["tuiwiz eval demo-20250101-120000 --json"],
    "chat": ["tuiwiz chat demo-20250101-120000 --compare"],
    "export": [
        "tuiwiz export demo-20250101-120000 --out my-adapter",
        "tuiwiz export demo-20250101-120000 --out my-model --gguf q8_0",
    ],
    "demo": ["tuiwiz demo"],
    "presets": ["tuiwiz presets"],
    "import": ["tuiwiz import qlora-1b.yml --out qlora-1b.toml"],
    "compare": ["tuiwiz compare demo-20250101-120000 demo-20250101-130000"],
    "explain": ["tuiwiz explain lora_alpha"],
    "inspect": ["tuiwiz inspect Qwen/Qwen2.5-0.5B"],
    "estimate": ["tuiwiz estimate qwen2.5-1.5b-alpaca-8gb --gpu 0"],
    "gpus": ["tuiwiz gpus --json"],
    "doctor": ["tuiwiz doctor", "tuiwiz doctor --json > doctor.json"],
}
# The names the README gives arguments (`tuiwiz run PRESET [--output-dir DIR]`), by destination.
METAVARS = {"preset": "PRESET", "run": "RUN", "output_dir": "DIR"}


class _VersionsAction(argparse.Action):
    """`tuiwiz --version`: tuiwiz's version and those of the libraries it drives."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, _namespace, values, _option_string=None) -> None:
        from tuiwiz.compat import versions_report

        print(versions_report())
        parser.exit()


class _Subcommands:
    """The sub-parsers' factory, as each command module sees it: every sub-command gets its
    one-line help as the description of its --help, an example at the end, and the README's
    argument names."""

    def __init__(self, sub) -> None:
        self.sub = sub

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        width = min(shutil.get_terminal_size().columns, 100) - 2
        description = kwargs.get("description") or _sentence(kwargs.get("help", ""))
        kwargs["description"] = textwrap.fill(description, width)
        examples = "\n".join(f"  {line}" for line in EXAMPLES.get(name, []))
        kwargs.setdefault("epilog", f"example{'s' * (examples.count(chr(10)) > 0)}:\n{examples}")
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        return self.sub.add_parser(name, **kwargs)


def _sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}." if text else ""


class _CommandParser(argparse.ArgumentParser):
    """A sub-command's parser: positional arguments in capitals, and the README's names for
    the arguments every command shares (PRESET, RUN, DIR), unless a command names them."""

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if action.metavar is None and action.dest in METAVARS:
            action.metavar = METAVARS[action.dest]
        elif action.metavar is None and not action.option_strings:
            action.metavar = action.dest.upper()
        return action


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuiwiz",
        description="Configure and run LoRA / QLoRA fine-tunes from the terminal. With no "
        "command, opens the wizard.",
    )
    parser.add_argument(
        "--version",
        action=_VersionsAction,
        help="print tuiwiz's version and those of torch (and its CUDA build), transformers, "
        "peft, trl, bitsandbytes, datasets and textual",
    )
    parser.add_argument(
        "--preset",
        metavar="PRESET",
        help="open the wizard prefilled from a preset (a file, or a shipped or saved name)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    for name in COMMANDS:
        module = importlib.import_module(f"tuiwiz.commands.{_module_name(name)}")
        module.add_parser(_Subcommands(sub)).set_defaults(handler=module.run)
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
        # The versions and library internals the command relies on. The wizard is not checked
        # here (reading package metadata costs its first frame ~0.1 s): its Start step shows
        # any problem of `tuiwiz doctor`'s quick checks, and launching checks as `run` does.
        from tuiwiz import compat

        compat.check_command(args.command)
        return int(args.handler(args) or 0)
    except TuiwizError as e:
        print(f"tuiwiz: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("tuiwiz: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped reading (`tuiwiz doctor --json | head`): nothing to report. Point
        # stdout at /dev/null so that Python's final flush does not fail again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
