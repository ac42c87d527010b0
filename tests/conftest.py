"""Shared fixtures: every test gets private cache and data directories (no test touches ~)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# One demo model for the whole session: building it costs ~30-60 s, so it lives in a cache
# shared by all tests (it is deterministic and read-only once built).
SESSION_CACHE = Path(os.environ.get("TUIWIZ_TEST_CACHE", "/tmp/tuiwiz-test-cache"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # A worker per core: each worker, and every training process it starts, computes on one
    # thread. The demo model is tiny, and more threads than cores (two workers' trainings, or
    # gloo's two ranks beside another worker's run) slowed the suite down many times over.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


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
    import fcntl

    previous = os.environ.get("TUIWIZ_CACHE_DIR")
    os.environ["TUIWIZ_CACHE_DIR"] = str(SESSION_CACHE)
    SESSION_CACHE.mkdir(parents=True, exist_ok=True)
    try:
        from tuiwiz.demo import ensure_demo_model

        # With pytest-xdist, one worker builds it while the others wait, then find it built.
        with (SESSION_CACHE / ".demo-build.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
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


@pytest.fixture
def make_run(tmp_path: Path):
    """Write a small run directory as the training process would (preset.toml, events.jsonl,
    status.json): `make_run("a", learning_rate=1e-4, losses=[...], ...)`. For `tuiwiz compare`
    and its screen, which read nothing else."""
    import json

    from tuiwiz import config as cfg
    from tuiwiz import presets
    from tuiwiz.train.rundir import RunDir

    def make(
        name: str,
        *,
        overrides: dict | None = None,
        losses: tuple[float, ...] = (2.0, 1.5, 1.0, 0.8),
        every: int = 5,
        evals: dict[int, float] | None = None,
        base: float | None = 2.5,
        state: str = "finished",
        t0: float = 1_700_000_000.0,
        seconds_per_step: float = 2.0,
        gpu: bool = False,
        rate: float = 1000.0,
    ) -> Path:
        raw = {
            "name": name,
            "model": {"name_or_path": "tuiwiz:demo-model"},
            "data": {"path": "tuiwiz:demo-data", "validation_split": 0.1},
            "training": {"max_steps": len(losses) * every},
        }
        for dotted, value in (overrides or {}).items():
            section, key = dotted.split(".", 1)
            raw.setdefault(section, {})[key] = value
        path = tmp_path / name
        path.mkdir()
        run = RunDir(path)
        run.write_preset(presets.to_toml(cfg.validate(raw)))
        max_steps = len(losses) * every
        events = [{"event": "started", "time": t0, "step": 0, "max_steps": max_steps}]
        if base is not None:
            events.append({"event": "eval", "time": t0, "step": 0, "eval_loss": base, "base": True})
        for i, loss in enumerate(losses, 1):
            step = i * every
            event = {"event": "step", "time": t0 + step * seconds_per_step, "step": step,
                     "max_steps": max_steps, "loss": loss, "tokens_per_second": rate * i,
                     "rss_bytes": (100 + i) << 20}  # fmt: skip
            if gpu:
                event["gpu_max_memory_allocated"] = (1 << 30) + i
            events.append(event)
            if evals and step in evals:
                events.append({"event": "eval", "time": t0 + step * seconds_per_step + 0.5,
                               "step": step, "eval_loss": evals[step]})  # fmt: skip
        end = t0 + max_steps * seconds_per_step + 1
        if state == "finished":
            events.append({"event": "finished", "time": end, "step": max_steps})
        run.events.write_text("".join(json.dumps(e) + "\n" for e in events))
        run.write_status(state=state, step=max_steps, id=name)
        return path

    return make


# A token set while the shared demo run trains: no file it writes may contain it.
DEMO_RUN_SECRET = "hf_tuiwizAfterTestSecret0123456789"


@dataclass(frozen=True)
class FinishedDemoRun:
    path: Path
    stdout: str  # what `tuiwiz run demo` printed


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, demo_model: Path) -> FinishedDemoRun:
    """The shipped demo preset trained once, through the real CLI, for every module that only
    reads a finished run (run, after, try-it, GGUF export, the dashboard's export, the browser):
    training it once instead of in each module saves minutes. HF_TOKEN is set while it trains.
    Tests must not change it: ones that need a changed run copy what they need."""
    import subprocess
    import sys

    path = tmp_path_factory.mktemp("shared") / "demo-run"
    env = {
        **os.environ,
        "TUIWIZ_CACHE_DIR": str(SESSION_CACHE),
        "TUIWIZ_DATA_DIR": str(tmp_path_factory.mktemp("demo-run-data")),
        "HF_HUB_OFFLINE": "1",
        "HF_TOKEN": DEMO_RUN_SECRET,
    }
    result = subprocess.run(
        [sys.executable, "-m", "tuiwiz", "run", "demo", "--output-dir", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return FinishedDemoRun(path, result.stdout)
