"""A model in a few facts for people: architecture, size, context length, chat template.

What the wizard's model step shows once a model is chosen. The architecture comes from
`summarize` (config.json only); the chat template from the tokenizer files, read as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tuiwiz.inspect.arch import ArchSummary
from tuiwiz.inspect.model import config_path, summarize


@dataclass(frozen=True)
class Overview:
    name: str
    architecture: str  # e.g. LlamaForCausalLM
    model_type: str
    total_params: int
    layers: int
    hidden_size: int
    context_length: int | None
    chat_template: bool | None  # None: the tokenizer files could not be read
    summary: ArchSummary


def human_count(n: int) -> str:
    """A parameter count for people: 1.54B, 494.03M, 65.54K."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def _has_chat_template(model_dir: Path) -> bool | None:
    if (model_dir / "chat_template.jinja").is_file() or (
        model_dir / "chat_template.json"
    ).is_file():
        return True
    try:
        data = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    return bool(data.get("chat_template")) if isinstance(data, dict) else None


def _hub_chat_template(repo_id: str, revision: str) -> bool | None:
    """Looks only in the local Hugging Face cache: fetching more files is the trainer's job."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        found = try_to_load_from_cache(repo_id, name, revision=revision)
        if isinstance(found, str):
            return _has_chat_template(Path(found).parent)
    return None


def overview(
    name_or_path: str, revision: str = "main", trust_remote_code: bool = False
) -> Overview:
    """Raises ModelError (one line) when the model cannot be read."""
    summary = summarize(name_or_path, revision, trust_remote_code)
    config_file = config_path(name_or_path, revision)
    raw = json.loads(config_file.read_text(encoding="utf-8"))
    text_config = raw.get("text_config") if isinstance(raw.get("text_config"), dict) else raw
    if Path(name_or_path).expanduser().is_dir() or name_or_path.startswith("tuiwiz:"):
        template = _has_chat_template(config_file.parent)
    else:
        template = _hub_chat_template(name_or_path, revision)
        if template is None:
            template = _has_chat_template(config_file.parent)
    facts = summary.facts
    architectures = raw.get("architectures") or [str(facts.get("model_type", "?"))]
    return Overview(
        name=name_or_path,
        architecture=str(architectures[0]),
        model_type=str(facts.get("model_type", raw.get("model_type", "?"))),
        total_params=summary.total_params,
        layers=int(facts.get("layers") or text_config.get("num_hidden_layers") or 0),
        hidden_size=int(facts.get("hidden_size") or text_config.get("hidden_size") or 0),
        context_length=text_config.get("max_position_embeddings"),
        chat_template=template,
        summary=summary,
    )


def cached_hub_models() -> list[tuple[str, int]]:
    """Models in the local Hugging Face cache, as (repo id, size on disk in bytes)."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache yet, or an unreadable one: nothing to list
        return []
    repos = [(r.repo_id, r.size_on_disk) for r in info.repos if r.repo_type == "model"]
    return sorted(repos)
