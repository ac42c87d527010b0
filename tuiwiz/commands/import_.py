"""`tuiwiz import FILE [--out PRESET.toml]`: an axolotl or LLaMA-Factory YAML config as a preset.

Writes the preset (every key commented) and prints, one line each, every key that was translated,
left out (and why), filled in with the other tool's default, or needs checking before a run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuiwiz.errors import ConfigError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "import",
        help="turn an axolotl or LLaMA-Factory YAML config into a preset",
        description="Read an axolotl or LLaMA-Factory YAML config and write a tuiwiz preset with "
        "the same settings. Every key that could not be carried over, and every value that had "
        "to be translated, is printed with the reason.",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the axolotl or LLaMA-Factory YAML")
    p.add_argument(
        "--from",
        dest="tool",
        choices=("axolotl", "llamafactory"),
        help="the tool the config is for (default: told from its keys)",
    )
    p.add_argument(
        "--out",
        metavar="PRESET.toml|-",
        help="where to write the preset (default: FILE's name with .toml, in the current "
        "directory; '-' prints it, and the report goes to standard error)",
    )
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.importing import CHECK, import_config, preset_text

    imported = import_config(args.file, args.tool)
    text = preset_text(imported)
    to_stdout = args.out == "-"
    out = None if to_stdout else Path(args.out or f"{imported.preset['name']}.toml")
    if out is not None:
        _check_target(out, args.force)
    report = sys.stderr if to_stdout else sys.stdout
    article = "an" if imported.tool == "axolotl" else "a"
    print(f"Read {imported.path} as {article} {imported.tool_name} config.", file=report)
    for line in imported.report_lines():
        print(line, file=report)
    if out is None:
        sys.stdout.write(text)
        return 0
    from tuiwiz.fileio import write_atomic

    write_atomic(out, text, mode=0o644)
    checks = len(imported.of_kind(CHECK))
    ahead = f"; {checks} item(s) to check first (above)" if checks else ""
    print(
        f"Wrote {out}{ahead}. Run it with `tuiwiz run {out}`, or open it in the wizard with "
        f"`tuiwiz --preset {out}`.",
        file=report,
    )
    return 0


def _check_target(out: Path, force: bool) -> None:
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a directory; give a file name such as {out}/x.toml")
    if out.exists() and not force:
        raise ConfigError(f"--out {out}: already exists; choose another name, or add --force")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist")
