"""Read a model's architecture from its config.json alone: no weights are loaded.

The model is built on PyTorch's meta device (shapes without storage), which gives its real module
tree: the names LoRA can target and exact parameter counts, in a second, even for 70B models.
`summarize` wraps this in two shortcuts that keep it exact: the Llama-style families computed from
config.json without importing torch (tuiwiz.inspect.families), and a cache of earlier summaries
keyed by the config's bytes and the transformers version.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections import OrderedDict
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tuiwiz.errors import ModelError, first_line
from tuiwiz.inspect.arch import ArchSummary
from tuiwiz.inspect.config_values import check_config_values


def config_path(name_or_path: str, revision: str = "main") -> Path:
    """The local path of a model's config.json (from a directory, or fetched alone from the Hub)."""
    from tuiwiz.bundled import resolve_model

    name_or_path = resolve_model(name_or_path)
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        path = local / "config.json"
        if not path.is_file():
            raise ModelError(f"{local}: no config.json in this directory; is it a model directory?")
        return path
    if local.exists():
        raise ModelError(f"{local}: a model must be a directory with config.json, or a Hub id")
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise ModelError(f"{name_or_path}: no such model directory")
    return _fetch_config(name_or_path, revision)


def _hub_unreachable() -> str | None:
    """Why the Hub cannot be reached, or None. Checked first because huggingface_hub retries a
    failed name lookup for ~25 s, printing a line per try, before it gives up."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    host = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    try:
        socket.getaddrinfo(host, 443)
    except OSError as e:
        return f"cannot resolve {host}: {e.strerror or e}"
    return None


def _fetch_config(repo_id: str, revision: str) -> Path:
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.utils import logging as hf_logging

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(cached, str):
        return Path(cached)
    reason = _hub_unreachable()
    if reason is None:
        hf_logging.set_verbosity_error()  # no retry chatter: the error below is the one line
        try:
            return Path(hf_hub_download(repo_id, "config.json", revision=revision))
        except Exception as e:  # unknown repo, gated repo, network error: one line each
            reason = first_line(e)
    raise ModelError(
        f"{repo_id}: cannot fetch config.json from the Hugging Face Hub ({reason}); "
        "check the id, your network or HF_TOKEN, or give a local directory"
    )


def read_raw_config(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror})") from None
    if not isinstance(raw, dict) or "model_type" not in raw:
        raise ModelError(f"{path}: has no model_type; not a transformers model config")
    check_config_values(raw, path)
    return raw


def load_config(name_or_path: str, revision: str = "main", trust_remote_code: bool = False):
    """The model's transformers config; errors name the file and what is wrong."""
    path = config_path(name_or_path, revision)
    raw = read_raw_config(path)
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            str(path.parent), trust_remote_code=trust_remote_code, local_files_only=True
        )
    except (ValueError, KeyError, TypeError) as e:
        reason = first_line(e)
        raise ModelError(
            f"{path}: transformers cannot read architecture '{raw['model_type']}' ({reason})"
        ) from None


def build_meta_model(config: Any, trust_remote_code: bool = False):
    """The causal LM for a config with every tensor on the meta device (no memory used)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except (ValueError, TypeError, AssertionError) as e:
        reason = first_line(e)
        raise ModelError(
            f"{config.model_type}: cannot build a causal language model ({reason})"
        ) from None


def is_linear(module: Any) -> bool:
    """Layers LoRA adapts as linear: nn.Linear and GPT-2 style Conv1D (also their 4-bit kinds)."""
    import torch
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, torch.nn.Linear | Conv1D)


def linear_modules(model: Any) -> OrderedDict[str, dict[str, int]]:
    """Each linear layer's short name (q_proj, ...) with how many there are and their parameters.

    The output layer (lm_head) is left out, as peft's "all-linear" leaves it out.
    """
    output = model.get_output_embeddings()
    found: OrderedDict[str, dict[str, int]] = OrderedDict()
    for name, module in model.named_modules():
        if not is_linear(module) or module is output:
            continue
        short = name.rsplit(".", 1)[-1]
        entry = found.setdefault(short, {"count": 0, "params": 0})
        entry["count"] += 1
        entry["params"] += sum(p.numel() for p in module.parameters(recurse=False))
    return found


def check_target_modules(targets: list[str] | str, available: list[str]) -> None:
    """Raise ModelError naming the modules the model lacks and the ones it has."""
    if targets == "all-linear":
        return
    missing = [t for t in targets if t.rsplit(".", 1)[-1] not in available]
    if missing:
        raise ModelError(
            f"[lora] target_modules: the model has no {', '.join(missing)}; "
            f'its linear modules are {", ".join(available)} (or use "all-linear")'
        )


# --- summaries: fast path, cache, meta device ----------------------------------------------


def _transformers_version() -> str:
    try:
        return metadata.version("transformers")
    except metadata.PackageNotFoundError:
        return "none"


def _cache_file(config_bytes: bytes, trust_remote_code: bool) -> Path:
    from tuiwiz.inspect.arch import SUMMARY_VERSION
    from tuiwiz.paths import cache_dir

    h = hashlib.sha256(config_bytes)
    h.update(f"|{_transformers_version()}|v{SUMMARY_VERSION}|{trust_remote_code}".encode())
    return cache_dir() / "architectures" / f"{h.hexdigest()[:32]}.json"


def _fast_path_allowed() -> bool:
    # The families were checked against transformers 5.x; other majors take the exact path.
    return _transformers_version().split(".")[0] == "5"


def summarize(
    name_or_path: str, revision: str = "main", trust_remote_code: bool = False
) -> ArchSummary:
    """The architecture of a model from its config.json; raises ModelError on bad input."""
    path = config_path(name_or_path, revision)
    config_bytes = path.read_bytes()
    raw = read_raw_config(path)
    if _fast_path_allowed() and not trust_remote_code:
        from tuiwiz.inspect.families import summarize_config

        summary = summarize_config(raw)
        if summary is not None:
            return summary
    cache = _cache_file(config_bytes, trust_remote_code)
    try:
        return ArchSummary.from_json(json.loads(cache.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no cache entry, or an unreadable one: build it
    from tuiwiz.inspect.arch import from_meta_model

    config = load_config(str(path.parent), revision, trust_remote_code)
    summary = from_meta_model(build_meta_model(config, trust_remote_code), config)
    try:
        from tuiwiz.fileio import write_atomic

        cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache, json.dumps(summary.to_json(), separators=(",", ":")))
    except OSError:
        pass  # a read-only cache only costs speed
    return summary
