"""Shared fixtures: every test gets private cache and data directories (no test touches ~)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# One demo model for the whole session: building it costs ~30-60 s, so it lives in a cache
# shared by all tests (it is deterministic and read-only once built).
SESSION_CACHE = Path(os.environ.get("TUIWIZ_TEST_CACHE", "/tmp/tuiwiz-test-cache"))


@pytest.fixture(scope="session", autouse=True)
def session_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Module- and session-scoped fixtures run before the per-test ones below: give them
    private directories too, so that no test ever writes under the user's ~."""
    os.environ["TUIWIZ_CACHE_DIR"] = str(SESSION_CACHE)
    os.environ["TUIWIZ_DATA_DIR"] = str(tmp_path_factory.mktemp("session-data"))
    os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(SESSION_CACHE))
    monkeypatch.setenv("TUIWIZ_DATA_DIR", str(tmp_path / "tuiwiz-data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def demo_model() -> Path:
    """The bundled demo model, built once per test session."""
    previous = os.environ.get("TUIWIZ_CACHE_DIR")
    os.environ["TUIWIZ_CACHE_DIR"] = str(SESSION_CACHE)
    try:
        from tuiwiz.demo import ensure_demo_model

        return ensure_demo_model()
    finally:
        if previous is None:
            os.environ.pop("TUIWIZ_CACHE_DIR", None)
        else:
            os.environ["TUIWIZ_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def demo_tokenizer(demo_model: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(demo_model))
