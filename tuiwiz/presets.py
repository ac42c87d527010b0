"""Read, write and list presets: TOML files that are data and are never executed.

A preset is found by path, by the name of a shipped preset (`tuiwiz/shipped_presets/NAME.toml`
inside the package; the repository's top-level `presets/` links there) or by the name of a saved
one (`<data dir>/presets/NAME.toml`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuiwiz import config, packaged
from tuiwiz.errors import ConfigError
from tuiwiz.fileio import write_atomic
from tuiwiz.paths import data_dir
from tuiwiz.toml import tomllib

SHIPPED_DIR = packaged.folder("shipped_presets")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class PresetInfo:
    name: str
    path: Path
    description: str
    origin: str  # "shipped" or "saved"


def saved_dir() -> Path:
    return data_dir() / "presets"


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; errors name the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such preset file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a preset file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    text = text.removeprefix("\ufeff")  # a byte order mark, as some Windows editors write
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # tomllib's message already carries "(at line L, column C)".
        raise ConfigError(f"{path}: TOML syntax error: {e}") from None


def find(ref: str) -> Path:
    """Resolve a preset reference: an existing path, a shipped name, or a saved name."""
    path = Path(ref).expanduser()
    # A bare name means a preset even when a folder of that name sits in the working directory.
    if path.is_file() or ref.endswith(".toml") or "/" in ref:
        return path
    for folder in (saved_dir(), SHIPPED_DIR):
        candidate = folder / f"{ref}.toml"
        if candidate.is_file():
            return candidate
    names = [p.name for p in list_presets()]
    raise ConfigError(
        f"no preset named '{ref}'{config.did_you_mean(ref, names)}; "
        f"give a path to a .toml file or one of: {', '.join(names) or '(none)'}"
    )


def load(
    ref: str, overrides: list[str] | None = None, *, require_data: bool = True
) -> tuple[dict[str, Any], Path]:
    """Load, override and validate a preset. Returns the resolved configuration and its path.

    An error in a value given with --set names that --set, not the file. `require_data=False`
    (the memory estimate) accepts a preset without `[data] path`; it is then None. Local model
    and data paths come back absolute: the preset file's relative to the file, the `--set` ones
    relative to the working directory (tuiwiz.references).
    """
    from tuiwiz import references

    path = find(ref)
    raw = read_toml(path)
    if overrides:
        raw = config.apply_overrides(raw, overrides)
    resolved = config.validate(
        raw,
        source=str(path),
        origins=config.override_origins(overrides or []),
        require_data=require_data,
    )
    given = {".".join(config.parse_override(o)[:2]) for o in overrides or []}
    file_keys = {f"{s}.{k}" for s, k, _ in references.REFERENCES} - given
    references.resolve_config(resolved, path.parent.absolute(), file_keys)
    references.resolve_config(resolved, Path.cwd(), given)
    return resolved, path


def load_run_preset(path: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """A run's preset.toml (what ran, every path already absolute), validated, with `overrides`
    (`--set` values: local paths relative to the working directory)."""
    from tuiwiz import references

    raw = read_toml(path)
    if overrides:
        raw = config.apply_overrides(raw, overrides)
    resolved = config.validate(raw, source=str(path))
    references.resolve_config(
        resolved, Path.cwd(), {".".join(config.parse_override(o)[:2]) for o in overrides or []}
    )
    relative = references.relative_paths(resolved)
    if relative:
        raise ConfigError(
            f"{path}: {relative[0]} is a relative path, so it would be read from wherever a "
            "command runs; edit it to the absolute path of what the run trained on"
        )
    return resolved


def list_presets() -> list[PresetInfo]:
    """Shipped presets, then saved ones; a saved preset that fails to parse is still listed."""
    out: list[PresetInfo] = []
    for origin, folder in (("shipped", SHIPPED_DIR), ("saved", saved_dir())):
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            try:
                description = str(read_toml(path).get("description", ""))
            except ConfigError as e:
                description = f"(unreadable: {e})"
            out.append(PresetInfo(path.stem, path, description, origin))
    return out


def save(resolved: dict[str, Any], name: str, folder: Path | None = None) -> Path:
    """Save a configuration as a commented preset under `name`; returns its path."""
    if not NAME_RE.match(name):
        raise ConfigError(
            f"preset name {name!r} is not valid: use letters, digits, '.', '_' or '-' (max 64)"
        )
    folder = folder or saved_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{name}.toml"
    write_atomic(path, to_toml({**resolved, "name": name}))
    return path


# --- writing TOML ---------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    escaped = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else str(v).lower()
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return (
            "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }" if v else "{}"
        )
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _comment(section: str, key: str) -> str:
    from tuiwiz.explain import EXPLANATIONS

    entry = EXPLANATIONS.get(f"{section}.{key}")
    if entry is None and section == "training":
        return "  # A transformers TrainingArguments field: see its documentation"
    return f"  # {entry.summary}" if entry else ""


def to_toml(resolved: dict[str, Any]) -> str:
    """Render a configuration as TOML, each key followed by its one-line explanation."""
    lines = [
        "# tuiwiz preset: data only, never executed. `tuiwiz explain KEY` says more about a key.",
    ]
    for key in config.TOP_LEVEL:
        if key in resolved:
            lines.append(f"{key} = {_value(resolved[key])}{_comment('preset', key)}")
    for section in config.SECTIONS:
        table = resolved.get(section)
        if table is None:
            continue
        if section in config.OPTIONAL_SECTIONS and table == config.section_defaults(section):
            continue  # e.g. [launch] of a one-process run: the defaults go without saying
        lines += ["", f"[{section}]"]
        for key, value in table.items():
            lines.append(f"{_key(key)} = {_value(value)}{_comment(section, key)}")
    return "\n".join(lines) + "\n"
