"""LLaMA-Factory's `dataset:` onto [data].

A LLaMA-Factory dataset is a name in its own registry, `dataset_info.json` in `dataset_dir`
(default "data", relative to the directory LLaMA-Factory runs from). When that registry can be
found (next to the config, or in one of its parent folders, as in a LLaMA-Factory checkout), the
name's entry gives the file or Hub id, the format (alpaca or sharegpt), the column names and the
sharegpt role tags; otherwise the name cannot be carried and the report says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuiwiz.data.formats import SHAREGPT_ROLES
from tuiwiz.importing.convert import Conversion, shown, split_names

REGISTRY = "dataset_info.json"
# alpaca columns: LLaMA-Factory's names -> tuiwiz's alpaca columns
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}
ALPACA_DEFAULTS = {"prompt": "instruction", "query": "input", "response": "output"}


def registry_candidates(conv: Conversion, folder: str) -> list[Path]:
    path = Path(folder).expanduser()
    if path.is_absolute():
        return [path / REGISTRY]
    here = conv.path.parent
    bases = [Path.cwd(), here, *here.parents[:3]]
    return list(dict.fromkeys((base / path / REGISTRY).resolve() for base in bases))


def find_registry(conv: Conversion, folder: str) -> tuple[Path | None, dict[str, Any]]:
    for candidate in registry_candidates(conv, folder):
        try:
            registry = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(registry, dict):
            return candidate, registry
    return None, {}


def convert_dataset(conv: Conversion, stage: str) -> None:
    names_value = conv.take("dataset")
    given = conv.has("dataset_dir")
    folder = conv.take("dataset_dir", "data")
    if not isinstance(folder, str):
        conv.dropped("dataset_dir", f"{shown(folder)} is not a folder; data/ is looked for")
        folder = "data"
    elif given:
        conv.carried.append("dataset_dir")  # read with the registry below
    names = split_names(names_value) if names_value is not None else None
    if not names:
        conv.placeholder("data.path", "dataset", "the file names no dataset")
        return
    for extra in names[1:]:
        conv.dropped(
            "dataset",
            f"{extra}: tuiwiz trains on one dataset; combine the files into one to use both",
        )
    name = names[0]
    if str(folder).startswith("REMOTE:"):
        conv.placeholder(
            "data.path",
            "dataset",
            f"{name!r} is a name in the dataset_info.json of the Hub repo "
            f"{str(folder).removeprefix('REMOTE:')}, which tuiwiz does not read; give the "
            "dataset's file or Hub id",
        )
        return
    registry_path, registry = find_registry(conv, str(folder))
    entry = registry.get(name)
    if registry_path is None or not isinstance(entry, dict):
        where = (
            f"not in {registry_path}"
            if registry_path
            else f"no {folder}/{REGISTRY} in the current folder, the config's or its parents'"
        )
        conv.placeholder(
            "data.path",
            "dataset",
            f"{name!r} is a name in LLaMA-Factory's {REGISTRY} registry ({where}); "
            "give its file or Hub id",
        )
        return
    _entry(conv, name, entry, registry_path.parent, stage)


def _entry(conv: Conversion, name: str, entry: dict[str, Any], folder: Path, stage: str) -> None:
    src = f"dataset ({name})"
    if entry.get("ranking"):
        conv.placeholder("data.path", src, f"{name!r} is preference data (ranking), not SFT data")
        return
    if isinstance(entry.get("hf_hub_url"), str):
        conv.translated(
            src, name, {"data.path": entry["hf_hub_url"]}, f"its hf_hub_url, in {folder}"
        )
    elif isinstance(entry.get("file_name"), str):
        path = folder / entry["file_name"]
        conv.translated(src, name, {"data.path": str(path)}, f"its file_name, in {folder}")
        if not path.exists():
            conv.check(src, f"{path} does not exist on this machine")
    elif isinstance(entry.get("ms_hub_url"), str) or isinstance(entry.get("script_url"), str):
        conv.placeholder("data.path", src, f"{name!r} comes from ModelScope or a script")
        return
    else:
        conv.placeholder("data.path", src, f"{name!r} has no file_name or hf_hub_url")
        return
    for key, dotted in (("subset", "data.subset"), ("split", "data.split")):
        if isinstance(entry.get(key), str):
            conv.write(dotted, entry[key])
    formatting = entry.get("formatting", "alpaca")
    columns = entry.get("columns") if isinstance(entry.get("columns"), dict) else {}
    if stage == "pt":
        column = columns.get("prompt", "text")
        conv.write("data.format", "text")
        if column != "text":
            conv.write("data.columns", {"text": column})
        return
    if formatting == "alpaca":
        _alpaca(conv, src, columns)
    elif formatting == "sharegpt":
        tags = entry.get("tags") if isinstance(entry.get("tags"), dict) else {}
        _sharegpt(conv, src, columns, tags)
    else:
        conv.dropped(f"{src}.formatting", f"{shown(formatting)}: [data] format = auto")


def _alpaca(conv: Conversion, src: str, columns: dict[str, Any]) -> None:
    mapping = {}
    for theirs, ours in ALPACA_COLUMNS.items():
        column = columns.get(theirs, ALPACA_DEFAULTS[theirs])
        if column != ours:
            mapping[ours] = column
    if isinstance(columns.get("system"), str) and columns["system"] != "system":
        mapping["system"] = columns["system"]
    conv.write("data.format", "alpaca")
    if mapping:
        conv.write("data.columns", mapping)
    for key in columns:
        if key not in (*ALPACA_COLUMNS, "system"):
            conv.dropped(f"{src}.columns.{key}", "not read by tuiwiz's alpaca format")
    conv.note(
        "translated",
        f"{src}.formatting",
        'alpaca -> data.format = "alpaca" (LLaMA-Factory\'s template is not carried: tuiwiz '
        "renders rows through the model's chat template)",
    )


def _sharegpt(conv: Conversion, src: str, columns: dict[str, Any], tags: dict[str, Any]) -> None:
    role, content = tags.get("role_tag", "from"), tags.get("content_tag", "value")
    column = columns.get("messages", "conversations")
    if (role, content) == ("role", "content"):
        fmt, ours = "messages", "messages"
    elif (role, content) == ("from", "value"):
        fmt, ours = "sharegpt", "conversations"
    else:
        conv.dropped(f"{src}.tags", f"messages keyed {role!r} / {content!r}: [data] format = auto")
        return
    conv.write("data.format", fmt)
    if column != ours:
        conv.write("data.columns", {ours: column})
    conv.note("translated", f"{src}.formatting", f'sharegpt -> data.format = "{fmt}"')
    readable = (
        (lambda r, t: r == t)
        if fmt == "messages"
        else (lambda r, t: isinstance(r, str) and SHAREGPT_ROLES.get(r) == t)
    )
    for tag, target in (
        ("user_tag", "user"),
        ("assistant_tag", "assistant"),
        ("system_tag", "system"),
    ):
        value = tags.get(tag)
        if value is not None and not readable(value, target):
            conv.dropped(f"{src}.tags.{tag}", f"{value!r}: tuiwiz does not read this role name")
    for key in columns:
        if key not in ("messages",):
            conv.dropped(f"{src}.columns.{key}", "not read by tuiwiz (put it in the messages)")
