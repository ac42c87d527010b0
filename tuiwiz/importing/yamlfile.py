"""Read a YAML config safely: plain data only (yaml.SafeLoader, never yaml.load), errors with
the line and column, and keys given twice found instead of silently overwritten."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiwiz.errors import ConfigError

MAX_BYTES = 4 << 20  # a training config is a few KiB; anything this big is not one


@dataclass
class YamlFile:
    path: Path
    data: dict[str, Any]
    # top-level keys given more than once: key -> the lines, in order (the last one wins, as in
    # PyYAML and so in axolotl and LLaMA-Factory)
    repeated: dict[str, list[int]] = field(default_factory=dict)


def _loader(repeated: dict[str, list[int]]):
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that records top-level keys seen more than once."""

        def construct_mapping(self, node, deep=False):
            if node is self._root:
                lines: dict[str, list[int]] = {}
                for key_node, _ in node.value:
                    if isinstance(key_node, yaml.ScalarNode):
                        lines.setdefault(key_node.value, []).append(key_node.start_mark.line + 1)
                repeated.update({k: v for k, v in lines.items() if len(v) > 1})
            return super().construct_mapping(node, deep=deep)

        def construct_document(self, node):
            self._root = node
            return super().construct_document(node)

    return Loader


def _documents(loader: Any) -> list[Any]:
    """Every document of the stream, built by our SafeLoader subclass (plain data only)."""
    try:
        documents = []
        while loader.check_data():
            documents.append(loader.get_data())
        return documents
    finally:
        loader.dispose()


def _where(error: Any) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"


def read_yaml(path: Path) -> YamlFile:
    """The file's top-level mapping; ConfigError (one line) for anything else."""
    import yaml

    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size} bytes is too big for a config file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    repeated: dict[str, list[int]] = {}
    try:
        documents = _documents(_loader(repeated)(text))
    except yaml.YAMLError as e:
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        context, mark = getattr(e, "context", None), getattr(e, "context_mark", None)
        if context and mark is not None and getattr(e, "problem_mark", None) is not None:
            problem += f" ({context} at line {mark.line + 1}, column {mark.column + 1})"
        raise ConfigError(f"{path}: YAML syntax error at {_where(e)}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply to be a config file") from None
    documents = [d for d in documents if d is not None]
    if not documents:
        raise ConfigError(f"{path}: the file is empty; expected an axolotl or LLaMA-Factory config")
    if len(documents) > 1:
        raise ConfigError(
            f"{path}: holds {len(documents)} YAML documents (separated by ---); a config is one"
        )
    data = documents[0]
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(
            f"{path}: the top level is a {kind}, not a mapping of settings (key: value lines); "
            "is this an axolotl or LLaMA-Factory config?"
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"{path}: setting names must be text, got {bad[0]!r}")
    return YamlFile(path, data, repeated)
