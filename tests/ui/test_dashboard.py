"""The live run dashboard and `tuiwiz attach`: Pilot tests on real demo runs (trained on the CPU)
and on synthetic run directories, and snapshots of a deterministic one at 80x24 and 120x40."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tuiwiz import config as cfg
from tuiwiz import presets
from tuiwiz.errors import TuiwizError
from tuiwiz.train import jobs
from tuiwiz.train.rundir import RunDir
from tuiwiz.ui.dashboard import AttachApp, DashboardScreen
from tuiwiz.ui.dashboard.chart import EVAL_MARK, render_chart
from tuiwiz.ui.dashboard.model import RunView
from tuiwiz.ui.dashboard.panels import GpuPanel, StatsPanel

ROOT = Path(__file__).resolve().parent.parent
NVML = ROOT / "fixtures" / "nvml"
QWEN = ROOT / "fixtures" / "reference-configs" / "qwen2.5-0.5b"
SESSION_CACHE = Path(os.environ.get("TUIWIZ_TEST_CACHE", "/tmp/tuiwiz-test-cache"))  # as conftest
T0 = 1_700_000_000.0
FAKE_PID = 999_999_991  # a "running" synthetic run's pid; process_alive is patched to accept it

pytestmark = pytest.mark.anyio


# --- helpers -----------------------------------------------------------------------------------


async def wait_for(pilot, condition: Callable[[], bool], what: str, timeout: float = 240) -> None:
    """Let the app run until `condition()` holds (a wait on an outcome, not on a duration)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await pilot.pause(0.05)


async def loaded(pilot) -> DashboardScreen:
    screen = pilot.app.dashboard
    await wait_for(pilot, lambda: screen.loaded, "the dashboard's first load")
    await pilot.pause()
    return screen


def plain(widget) -> str:
    return widget.content(60).plain


def short_config(*extra: str) -> dict:
    base = ["training.logging_steps=1", "data.validation_split=0", "training.save_steps=1000"]
    return presets.load("demo", base + list(extra))[0]


@pytest.fixture(scope="module")
def module_env(tmp_path_factory):
    """What conftest's private_dirs gives each test, for module-scoped runs too."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUIWIZ_CACHE_DIR", str(SESSION_CACHE))
        mp.setenv("TUIWIZ_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def demo_job(module_env, demo_model, tmp_path_factory):
    """A real demo run with evaluations and a checkpoint, started once for the module: the
    live test watches it train to the end, the history test opens it once it has finished."""
    run = tmp_path_factory.mktemp("demo") / "run"
    config = presets.load(
        "demo", ["training.max_steps=10", "training.eval_steps=5", "training.save_steps=5"]
    )[0]
    job = jobs.start(run, config=config)
    yield job
    job.stop()
    job.wait()


def write_run(
    path: Path,
    state: str = "running",
    max_steps: int = 100,
    last_step: int = 40,
    suggestions: list | None = None,
) -> Path:
    """A deterministic run directory, written as the training process would write it."""
    path.mkdir(parents=True)
    raw = {
        "name": "synthetic",
        "model": {"name_or_path": str(QWEN)},
        "data": {"path": str(path.parent / "data.jsonl"), "max_seq_length": 512},
        "lora": {"r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"]},
        "training": {"per_device_train_batch_size": 4, "max_steps": max_steps},
    }
    RunDir(path).write_preset(presets.to_toml(cfg.validate(raw)))
    events = [
        {"event": "started", "time": T0, "step": 0, "max_steps": max_steps,
         "num_train_epochs": 3.0, "device": "cuda", "train_examples": 800,
         "validation_examples": 40, "effective_batch_size": 16, "trainable_params": 540672,
         "total_params": 494573440, "resumed_from": None},
        {"event": "eval", "time": T0 + 1, "step": 0, "epoch": 0.0, "eval_loss": 2.9, "base": True},
    ]  # fmt: skip
    for step in range(2, last_step + 1, 2):
        events.append(
            {"event": "step", "time": T0 + 2 * step, "step": step, "max_steps": max_steps,
             "epoch": round(step * 0.03, 4), "loss": round(2.6 * 0.96**step + 0.4, 4),
             "learning_rate": 2e-4 * (1 - step / max_steps), "grad_norm": 0.8,
             "tokens_per_second": 2048.0, "tokens_seen": step * 4096, "rss_bytes": 3 << 30}
        )  # fmt: skip
        if step % 10 == 0:
            events.append(
                {"event": "eval", "time": T0 + 2 * step + 1, "step": step,
                 "epoch": round(step * 0.03, 4), "eval_loss": round(2.7 * 0.96**step + 0.5, 4)}
            )  # fmt: skip
    if suggestions is not None:
        events.append(
            {"event": "failed", "time": T0 + 2 * last_step + 2, "step": last_step,
             "reason": "CUDA out of memory. Tried to allocate 2.00 GiB",
             "suggestions": suggestions}
        )  # fmt: skip
    (path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (path / "train.log").write_text(  # as the Trainer prints its logs: Python dicts
        "".join(
            f"{{'loss': '{2.6 * 0.96**s + 0.4:.4g}', 'grad_norm': '0.8', "
            f"'learning_rate': '{2e-4 * (1 - s / max_steps):.4g}', 'epoch': '{s * 0.03:.4g}', "
            f"'num_input_tokens_seen': {s * 4096}}}\n"
            for s in range(2, last_step + 1, 2)
        )
    )
    RunDir(path).write_status(
        id="synthetic", state=state, pid=FAKE_PID, step=last_step, max_steps=max_steps,
        started_at=T0, reason=events[-1].get("reason"), suggestions=suggestions,
    )  # fmt: skip
    return path


SUGGESTIONS = [
    {"title": "per-device batch 1 with gradient accumulation 4 (same effective batch of 4)",
     "overrides": ["training.per_device_train_batch_size=1",
                   "training.gradient_accumulation_steps=4"],
     "total_bytes": 7 << 30, "saves_bytes": 3 << 30, "fits": True},
    {"title": "turn gradient checkpointing on (recompute activations in backward)",
     "overrides": ["training.gradient_checkpointing=true"],
     "total_bytes": 9 << 30, "saves_bytes": 1 << 30, "fits": False},
]  # fmt: skip


@pytest.fixture
def fake_alive(monkeypatch):
    """Synthetic "running" runs: their pid counts as a live training process."""
    from tuiwiz.train import registry

    real = registry.process_alive
    monkeypatch.setattr(
        registry, "process_alive", lambda pid, run_dir=None: pid == FAKE_PID or real(pid, run_dir)
    )


def attach(run: Path, **kwargs) -> AttachApp:
    return AttachApp(run, clock=lambda: T0 + 81, **kwargs)


# --- pure parts --------------------------------------------------------------------------------


def test_chart_draws_both_series_with_axis_labels():
    train = [(s, 3.0 - s / 50) for s in range(1, 101)]
    text = render_chart(train, [(50, 2.2), (100, 1.5)], 3.2, 40, 10).plain
    lines = text.split("\n")
    assert len(lines) == 10 and all(len(line) <= 40 for line in lines)
    labels = [line.split("┤")[0].strip() for line in lines if "┤" in line]
    assert labels[0] == "3.2" and labels[-1] == "1"  # max and min loss
    assert text.count(EVAL_MARK) == 2 and "┄" in lines[0]  # evaluations, base baseline
    assert lines[-1].split() == ["step", "1", "100"]
    assert any(0x2800 < ord(ch) <= 0x28FF for ch in text)  # the braille training line


def test_chart_without_points_says_so():
    assert "no loss logged yet" in render_chart([], [], None, 30, 6).plain


def test_view_sums_sessions_and_estimates_the_rest():
    view = RunView()
    view.apply(
        [
            {"event": "started", "time": 100.0, "step": 0, "max_steps": 10},
            {"event": "step", "time": 110.0, "step": 5, "max_steps": 10, "loss": 1.0},
            {"event": "stopped", "time": 111.0, "step": 5},
            {"event": "started", "time": 500.0, "step": 5, "max_steps": 10},
            {"event": "step", "time": 504.0, "step": 7, "max_steps": 10, "loss": 0.5},
        ]
    )
    assert view.elapsed(now=506.0, running=True) == 11.0 + 6.0  # the pause is not counted
    assert view.eta(now=504.0) == 6.0  # 3 steps at the resumed session's 2 s a step
    assert view.end is None and view.step == 7


def test_attach_needs_a_terminal(tmp_path: Path, capsys):
    from tuiwiz import cli
    from tuiwiz.commands import attach as attach_command

    run = write_run(tmp_path / "run", state="finished")
    with pytest.raises(TuiwizError, match=r"needs a terminal.*tuiwiz logs -f"):
        attach_command.run(argparse.Namespace(run=str(run)))
    assert "attach" in cli.COMMANDS
    assert TuiwizError.exit_code == 2


# --- synthetic run directories -------------------------------------------------------------


async def test_failed_run_lists_suggestions_by_number(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    run = write_run(tmp_path / "run", state="failed", suggestions=SUGGESTIONS)
    app = attach(run)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        assert screen.state == "failed"
        outcome = str(screen.query_one("#dash-outcome-text").render())
        assert "CUDA out of memory" in outcome and "Press 1-2" in outcome
        options = screen.query_one("#dash-suggestions")
        assert options.option_count == 2 and options.has_focus
        assert "gradient_accumulation_steps=4" in str(screen.query_one("#dash-hint").render())
        assert screen.check_action("apply_suggestion", (2,)) and not screen.check_action(
            "apply_suggestion", (3,)
        )
        assert not screen.check_action("stop", ()) and not screen.check_action("try_it", ())


async def test_a_new_run_that_cannot_start_says_why(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    run = write_run(tmp_path / "run", state="failed", suggestions=SUGGESTIONS)
    app = attach(run)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        await pilot.press("enter")  # the highlighted first suggestion; its data file is missing
        assert screen.relaunching and not screen.check_action("apply_suggestion", (1,))
        await wait_for(pilot, lambda: not screen.relaunching, "the launch to fail")
        hint = str(screen.query_one("#dash-hint").render())
        assert "no new run" in hint and "data.jsonl" in hint
        assert screen.run.path == run and screen.check_action("apply_suggestion", (1,))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing left behind


async def test_no_gpu_shows_the_reason_and_the_process_ram(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    app = attach(write_run(tmp_path / "run", state="finished"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        text = plain(screen.query_one(GpuPanel))
        assert "the NVIDIA driver (libnvidia-ml) is not installed" in text
        assert "RAM 3.0 GiB (last logged)" in text


async def test_fake_gpu_shows_memory_bars_with_the_estimate(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "two_gpus_busy.json"))
    app = attach(write_run(tmp_path / "run", state="finished"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        panel = screen.query_one(GpuPanel)
        assert panel.estimate is not None and panel.estimate > 1 << 30
        lines = plain(panel).splitlines()
        assert sum(line.startswith("GPU ") for line in lines) == 2
        assert sum("▼ est " in line for line in lines) == 1  # on the GPU training uses
        assert any(line.startswith("█") for line in lines)
        assert sum("┃" in line for line in lines) == 1  # the estimate, marked on the bar
        assert any("util " in line and "°C" in line and " W" in line for line in lines)


async def test_running_synthetic_run_numbers(tmp_path: Path, monkeypatch, fake_alive):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))
    app = attach(write_run(tmp_path / "run"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        assert screen.state == "running"
        stats = plain(screen.query_one(StatsPanel))
        assert "40 / 100" in stats and "ETA 1m59s" in stats and "elapsed  1m21s" in stats
        assert screen.check_action("stop", ()) and screen.check_action("detach", ())
        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape", "o")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "FilesScreen", "files")
        assert "events.jsonl" in "\n".join(app.screen.lines)
        await pilot.press("escape", "s")
        assert type(app.screen).__name__ == "ConfirmStop"
        await pilot.press("n")  # keep training
        assert not screen.stopping and app.is_running
        await pilot.press("d")
    assert app.return_value is None and not app.is_running


async def test_learning_rate_and_speed_stay_apart(tmp_path: Path, monkeypatch, fake_alive):
    """Two numbers side by side need more than spaces between them (a copy of the screen, or
    an SVG viewer, can lose those): "1.20e-04 · 2,048 tok/s", never "1.20e-042,048"."""
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))
    app = attach(write_run(tmp_path / "run"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        stats = plain(screen.query_one(StatsPanel))
        assert "lr       1.20e-04 · 2,048 tok/s" in stats, stats


def write_preparing_run(path: Path) -> Path:
    """A run still preparing its data: no training event yet, the progress in its status."""
    write_run(path)
    (path / "events.jsonl").write_text("")
    (path / "train.log").write_text("data: tokenizing 1,000,000 examples with 2 processes\n")
    RunDir(path).write_status(
        phase="preparing", step=None, max_steps=None,
        prepare={"phase": "tokenizing", "done": 340_000, "total": 1_000_000,
                 "rows_per_second": 5210.0, "eta_seconds": 127.0, "fraction": 0.34},
    )  # fmt: skip
    return path


async def test_preparing_data_shows_its_progress(tmp_path: Path, monkeypatch, fake_alive):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))
    run = write_preparing_run(tmp_path / "run")
    app = attach(run)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        stats = plain(screen.query_one(StatsPanel))
        assert "data     tokenizing" in stats and " 34%" in stats, stats
        assert "340,000 of 1,000,000\n" in stats and "5,210/s · 2m07s left" in stats, stats
        # The data's rows stand where epoch and lr go: the panel keeps its height (the GPU's
        # readings below stay on an 80x24 screen).
        assert "epoch" not in stats and "lr " not in stats and stats.count("\n") == 4, stats
        memory = screen.query_one(GpuPanel).parent
        assert memory.max_scroll_y == 0, "the GPU's readings are pushed out of sight"
        # Tokenized: the model is loading next.
        prepare = {**RunDir(run).status()["prepare"], "done": 1_000_000, "fraction": 1.0}
        RunDir(run).write_status(prepare=prepare)
        await wait_for(
            pilot, lambda: "data ready" in plain(screen.query_one(StatsPanel)), "data ready"
        )


async def test_unreadable_run_directory_is_a_message(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    run = write_run(tmp_path / "run", state="finished")
    app = attach(run)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        shutil.rmtree(run)
        await wait_for(pilot, lambda: screen.state == "unreadable", "the unreadable state")
        assert "cannot read the run directory" in str(
            screen.query_one("#dash-outcome-text").render()
        )


async def test_damaged_files_do_not_take_the_dashboard_down(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    run = write_run(tmp_path / "run", state="failed", suggestions=SUGGESTIONS)
    with (run / "events.jsonl").open("a") as f:
        f.write('{"event":"step","step":"x","loss":"y"}\n[1, 2]\nnot json\n')
        f.write('{"event":"step","step":41,"loss":0.5,"max_steps":"many","rss_bytes":"big"}\n')
        f.write('{"event":"failed","step":null,"suggestions":5}\n{"event":"step","step":42')
    RunDir(run).write_status(state=7, suggestions={"not": "a list"}, pid="nobody")
    app = attach(run)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        # A state that is no state is left out (said once), like every field of the wrong kind.
        assert screen.state == "unknown" and screen.view.train[-1] == (41, 0.5)
        assert not screen.suggestions and "40 / 100" in plain(screen.query_one(StatsPanel))
        (run / "status.json").write_text("[]")
        await wait_for(pilot, lambda: screen.state == "unknown", "the unreadable status")
        assert app.is_running


async def test_try_it_is_offered_only_for_finished_runs(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    app = attach(write_run(tmp_path / "run", state="finished"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        assert screen.check_action("try_it", ()) and not screen.check_action("stop", ())
        await pilot.press("t")  # the try-it screen, or a notice while it does not exist yet
        assert app.is_running


async def test_the_screen_works_inside_another_app(tmp_path: Path, monkeypatch):
    """As the wizard uses it: pushed over other screens; escape goes back and its readers end."""
    from textual.app import App
    from textual.widgets import Static

    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    run = write_run(tmp_path / "run", state="finished")

    class Host(App):
        def compose(self):
            yield Static("the wizard")

    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = DashboardScreen(run)
        await app.push_screen(screen)
        await wait_for(pilot, lambda: screen.loaded, "the dashboard's first load")
        assert screen.state == "finished" and screen.check_action("back", ())
        workers = [w for w in app.workers if w.node is screen]
        assert workers
        await pilot.press("escape")
        assert app.screen is not screen
        await wait_for(pilot, lambda: all(w.is_finished for w in workers), "the readers to end")


# --- snapshots -----------------------------------------------------------------------------


def _snapshot_app(run: Path) -> AttachApp:
    return attach(run, gpu_interval=3600)


async def _until_loaded(pilot) -> None:
    await loaded(pilot)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot_running(snap_compare, tmp_path, monkeypatch, fake_alive, size):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))
    app = _snapshot_app(write_run(tmp_path / "run"))
    assert snap_compare(app, terminal_size=size, run_before=_until_loaded)


def test_snapshot_preparing_data(snap_compare, tmp_path, monkeypatch, fake_alive):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))
    app = _snapshot_app(write_preparing_run(tmp_path / "run"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_until_loaded)


def test_snapshot_failed_with_suggestions(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    run = write_run(tmp_path / "run", state="failed", suggestions=SUGGESTIONS)
    assert snap_compare(_snapshot_app(run), terminal_size=(80, 24), run_before=_until_loaded)


def test_snapshot_finished_without_gpu(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    run = write_run(tmp_path / "run", state="finished", max_steps=40)
    (run / "events.jsonl").open("a").write(
        json.dumps({"event": "finished", "time": T0 + 90, "step": 40, "loss": 0.9}) + "\n"
    )
    RunDir(run).write_status(adapter="adapter")
    assert snap_compare(_snapshot_app(run), terminal_size=(80, 24), run_before=_until_loaded)


# --- real training on the CPU ------------------------------------------------------------


@pytest.mark.e2e
async def test_live_run_streams_steps_until_finished(demo_job: jobs.Job, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    app = AttachApp(demo_job.run.path, poll_interval=0.1)
    seen: set[tuple[str, int]] = set()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)

        def finished() -> bool:
            seen.add((screen.state, len(screen.view.train)))
            return screen.state == "finished"

        await wait_for(pilot, finished, "the live run to finish")
        assert [step for step, _ in screen.view.train] == [5, 10]
        assert "10 / 10" in plain(screen.query_one(StatsPanel))
        assert "RAM" in plain(screen.query_one(GpuPanel))
    running = sorted(n for state, n in seen if state == "running")
    assert running and running[0] < 2  # shown while it trained, not only at the end
    assert demo_job.wait() == 0


@pytest.mark.e2e
async def test_finished_demo_run_shows_its_whole_history(demo_job: jobs.Job, monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    assert demo_job.wait() == 0
    run = demo_job.run.path

    def files() -> dict:
        return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in run.rglob("*")}

    before = files()
    app = AttachApp(run)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        assert screen.state == "finished"
        assert "10 / 10" in plain(screen.query_one(StatsPanel))
        assert len(screen.view.train) == 2 and len(screen.view.evals) == 2
        assert screen.view.base_loss is None or screen.view.base_loss > screen.view.evals[-1][1]
        chart = screen.query_one("#dash-chart")
        assert chart.point_count >= 4 and EVAL_MARK in chart.render().plain
        log = screen.query_one("#dash-log")
        assert any("train_loss" in line for line in log.lines[-3:])  # the log's tail
        assert "Adapter:" in str(screen.query_one("#dash-outcome-text").render())
        assert screen.check_action("try_it", ()) and not screen.check_action("stop", ())
        await pilot.press("o", "escape", "l", "question_mark", "escape", "q")
    assert files() == before  # attaching only reads the run directory


@pytest.mark.e2e
async def test_stop_key_ends_the_run_stopped_with_a_checkpoint(
    tmp_path: Path, demo_model, monkeypatch
):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    job = jobs.start(tmp_path / "run", config=short_config("training.max_steps=500"))
    try:
        app = AttachApp(job.run.path, poll_interval=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await loaded(pilot)
            await wait_for(pilot, lambda: len(screen.view.train) >= 2, "two steps")
            await pilot.press("s")
            assert type(app.screen).__name__ == "ConfirmStop"
            await pilot.press("y")
            await wait_for(pilot, lambda: screen.state == "stopped", "the stopped state")
            assert "Continue from checkpoint" in str(
                screen.query_one("#dash-outcome-text").render()
            )
        assert job.wait() == 3
        status = job.run.status()
        assert status["state"] == "stopped"
        step, _ = job.run.latest_checkpoint()
        assert step == status["step"] >= 2
    finally:
        job.stop()
        job.wait()


@pytest.mark.e2e
async def test_out_of_memory_then_a_suggestion_relaunches(tmp_path: Path, demo_model, monkeypatch):
    tiny = json.loads((NVML / "h100_idle.json").read_text())
    for gpu in tiny["gpus"]:  # 1 MiB free: the estimator has advice for the demo model
        gpu["total_bytes"], gpu["used_bytes"], gpu["free_bytes"] = 2**30, 2**30 - 2**20, 2**20
    (tmp_path / "tiny.json").write_text(json.dumps(tiny))
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(tmp_path / "tiny.json"))
    monkeypatch.setenv("TUIWIZ_FAULT", "oom@2")
    config = short_config("training.max_steps=4", "data.max_seq_length=1024")
    failed = jobs.start(tmp_path / "failed", config=config)
    assert failed.wait() == 1
    monkeypatch.delenv("TUIWIZ_FAULT")  # the new run trains normally

    app = AttachApp(failed.run.path, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        assert screen.state == "failed" and screen.suggestions
        number = next(
            n
            for n, s in enumerate(screen.suggestions, 1)
            if s["overrides"] == ["data.max_seq_length=128"]
        )
        await pilot.press(str(number))
        await wait_for(pilot, lambda: screen.run.path != failed.run.path, "the new run")
        new_run = screen.run
        assert new_run.path.parent == failed.run.path.parent
        assert "max_seq_length = 128" in new_run.preset.read_text()
        await wait_for(pilot, lambda: screen.state == "finished", "the new run to finish")
        assert len(screen.view.train) == 4
    assert failed.run.status()["state"] == "failed"  # the failed run is left as it was
    assert os.environ.get("TUIWIZ_FAULT") is None
