"""Import an axolotl or LLaMA-Factory YAML config as a tuiwiz preset.

`import_config(path)` reads the file (plain data: yaml.SafeLoader), tells the tool from its keys,
maps every key onto the preset (Hugging Face names) and returns the validated preset with the
report: what was translated, what was left out and why, which of the other tool's defaults were
written, and what to check before running. `preset_text()` renders it as a commented preset.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiwiz.errors import ConfigError
from tuiwiz.importing.convert import CHECK, DROPPED, KINDS, Conversion, Note, printable

TOOLS = {"axolotl": "axolotl", "llamafactory": "LLaMA-Factory"}


@dataclass
class Imported:
    path: Path  # the source file, absolute
    tool: str  # "axolotl" or "llamafactory"
    preset: dict[str, Any]  # resolved by tuiwiz.config.validate
    notes: list[Note] = field(default_factory=list)
    carried: list[str] = field(default_factory=list)  # keys carried with the same name and value
    empty: list[str] = field(default_factory=list)  # keys given with no value

    @property
    def tool_name(self) -> str:
        return TOOLS[self.tool]

    def of_kind(self, kind: str) -> list[Note]:
        return [n for n in self.notes if n.kind == kind]

    def sections(self) -> list[tuple[str, str, list[Note]]]:
        """(kind, heading, notes) for each kind of note there is, in the report's order."""
        headings = {
            CHECK: "Check before running",
            DROPPED: "Not carried over",
            "translated": "Translated",
            "default": f"Not in the file: {self.tool_name}'s defaults written",
        }
        return [(k, headings[k], self.of_kind(k)) for k in KINDS if self.of_kind(k)]

    def summary(self) -> str:
        text = f"{len(self.carried)} key(s) carried as they were"
        if self.empty:
            text += f"; {len(self.empty)} key(s) with no value skipped ({', '.join(self.empty)})"
        return printable(text + ".")

    def report_lines(self) -> list[str]:
        """The report: a heading per kind, then one line per key."""
        lines: list[str] = []
        for _, heading, notes in self.sections():
            lines.append(f"{heading} ({len(notes)}):")
            lines += [f"  {n.line()}" for n in notes]
        return [*lines, self.summary()]


def detect(data: dict[str, Any], path: Path) -> str:
    """ "axolotl" or "llamafactory", from the keys only one of them uses."""
    from tuiwiz.importing import axolotl_keys, llamafactory_keys

    scores = {
        "axolotl": len(axolotl_keys.MARKERS & data.keys()),
        "llamafactory": len(llamafactory_keys.MARKERS & data.keys()),
    }
    best = max(scores, key=lambda k: scores[k])
    if scores[best] == 0:
        raise ConfigError(
            f"{path}: neither an axolotl config (base_model, datasets, micro_batch_size ...) nor "
            "a LLaMA-Factory config (model_name_or_path, stage, dataset ...); "
            "use --from axolotl|llamafactory if it is one"
        )
    if list(scores.values()).count(scores[best]) > 1:
        raise ConfigError(
            f"{path}: has keys of both axolotl and LLaMA-Factory; say which with --from"
        )
    return best


def import_config(path: str | Path, tool: str | None = None) -> Imported:
    """Read and convert `path`; ConfigError (one line) for a file that cannot be imported."""
    from tuiwiz import config as cfg
    from tuiwiz.importing import axolotl, llamafactory
    from tuiwiz.importing.yamlfile import read_yaml

    path = Path(path).expanduser().absolute()
    if tool is not None and tool not in TOOLS:
        raise ConfigError(f"--from {tool!r}: use axolotl or llamafactory")
    source = read_yaml(path)
    if {"compute_environment", "distributed_type"} <= source.data.keys():
        raise ConfigError(
            f"{path}: an accelerate launch config (how many GPUs and machines), not a training "
            "config; tuiwiz's [launch] section holds that"
        )
    if tool is None and {"peft_config", "train_dataset", "model_class"} & source.data.keys():
        tool = "llamafactory"  # its v1 format, refused below with what to do instead
    tool = tool or detect(source.data, path)
    if tool == "llamafactory":
        llamafactory.refuse_other_files(source.data, path)
    conv = Conversion(source.data, path, TOOLS[tool])
    for key, lines in source.repeated.items():
        where = ", ".join(map(str, lines))
        conv.check(key, f"given {len(lines)} times (lines {where}); the last one is used")
    (axolotl if tool == "axolotl" else llamafactory).convert(conv)
    conv.raw["name"] = preset_name(path)
    conv.raw["description"] = f"Imported from the {TOOLS[tool]} config {path.name}"
    raw = {k: v for k, v in conv.raw.items() if v != {}}
    try:
        resolved = cfg.validate(raw, source=str(path))
    except ConfigError as e:
        message = str(e).removeprefix(f"{path}: ")
        raise ConfigError(
            f"{path}: the imported settings do not form a valid preset: {message}"
        ) from None
    return Imported(path, tool, resolved, conv.notes, conv.carried, conv.keys.empty)


def preset_name(path: Path) -> str:
    """A preset name from the file name: letters, digits, '.', '_' and '-' only."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._")[:64]
    return name or "imported"


def preset_text(imported: Imported) -> str:
    """The preset as TOML, every key commented, with a header naming the source and what it
    did not carry (so the file says so after the report has scrolled away)."""
    from tuiwiz.presets import to_toml

    body = to_toml(imported.preset).split("\n", 1)
    header = [f"# Imported by `tuiwiz import` from the {imported.tool_name} config {imported.path}"]
    for kind, label in ((CHECK, "Check before running"), (DROPPED, "Not carried over")):
        notes = imported.of_kind(kind)
        if notes:
            header.append(f"# {label}:")
            for note in notes:
                header += textwrap.wrap(
                    note.line(), 96, initial_indent="#   ", subsequent_indent="#     "
                )
    return "\n".join([body[0], *header, body[1]])
