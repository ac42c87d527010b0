"""Environment checks: the Hugging Face cache, the Hub, a token, a terminal multiplexer."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tuiwiz.doctor import FAIL, OK, WARN, Check, Facts
from tuiwiz.doctor.probe import offline

TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def hf_home(environ: Mapping[str, str]) -> Path:
    """Where huggingface_hub keeps its files (huggingface_hub/constants.py, same order)."""
    if given := environ.get("HF_HOME"):
        return Path(given).expanduser()
    cache = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "huggingface"


def hub_cache(environ: Mapping[str, str]) -> Path:
    given = environ.get("HF_HUB_CACHE") or environ.get("HUGGINGFACE_HUB_CACHE")
    return Path(given).expanduser() if given else hf_home(environ) / "hub"


def _writable(path: Path) -> bool:
    while not path.exists() and path != path.parent:
        path = path.parent
    return os.access(path, os.W_OK)


def hf_cache(facts: Facts) -> Check:
    path = hub_cache(facts.environ)
    how = next(
        (
            f"from {name}"
            for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME")
            if facts.environ.get(name)
        ),
        "the default; HF_HOME moves it",
    )
    if not _writable(path):
        return Check(
            "hf cache",
            FAIL,
            f"{path} ({how}) cannot be written: models cannot be downloaded",
            "set HF_HOME to a folder you can write, e.g. export HF_HOME=/data/$USER/hf",
        )
    state = "" if path.exists() else ", not created yet"
    return Check("hf cache", OK, f"{path} ({how}{state})")


def hub(facts: Facts) -> Check:
    if offline(facts.environ):
        return Check(
            "hub",
            OK,
            "offline mode (HF_HUB_OFFLINE is set): models and datasets come from the cache only",
        )
    reason = facts.hub()
    if reason is None:
        endpoint = facts.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        return Check("hub", OK, f"the Hugging Face Hub answers ({endpoint})")
    return Check(
        "hub",
        WARN,
        f"the Hugging Face Hub is not reachable ({reason}): use local model and data folders, "
        "or ones already in the cache",
        "check the network or the proxy (HTTPS_PROXY); to work from the cache on purpose, "
        "export HF_HUB_OFFLINE=1",
    )


def token(facts: Facts) -> Check:
    """Whether a token is there; its value is never read into the output."""
    for name in TOKEN_VARIABLES:
        if facts.environ.get(name, "").strip():
            return Check("hf token", OK, f"a Hugging Face token is set ({name})")
    saved = facts.environ.get("HF_TOKEN_PATH") or str(hf_home(facts.environ) / "token")
    if Path(saved).expanduser().is_file():
        return Check("hf token", OK, f"a saved Hugging Face token ({saved})")
    return Check(
        "hf token",
        WARN,
        "no Hugging Face token: gated models (Llama, Gemma, ...) cannot be downloaded",
        "create a read token at https://huggingface.co/settings/tokens, then "
        "export HF_TOKEN=... (or run: hf auth login)",
    )


def multiplexer(facts: Facts) -> Check:
    survive = "training survives a dropped SSH session either way (tuiwiz attach RUN reopens it)"
    if facts.environ.get("TMUX"):
        return Check("multiplexer", OK, f"running inside tmux; {survive}")
    found = [name for name in ("tmux", "screen") if facts.which(name)]
    if found:
        return Check("multiplexer", OK, f"{' and '.join(found)} installed; {survive}")
    return Check(
        "multiplexer",
        OK,
        f"no tmux or screen (optional: they keep the wizard itself open); {survive}",
    )
