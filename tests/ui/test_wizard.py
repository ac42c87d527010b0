"""The wizard, driven with the keyboard through Pilot: every step, Back / Next keeping what was
typed, invalid values flagged before launch, saving a preset, applying a memory suggestion, and
a real demo run launched from the Review step reaching the dashboard's finished state."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, Input, Static
from wizard_helpers import focus_field, lookups_done, text_of, type_text, wait_for

from tuiwiz import presets
from tuiwiz.toml import tomllib
from tuiwiz.ui.app import TuiwizApp
from tuiwiz.ui.draft import Draft
from tuiwiz.ui.widgets.field_row import FieldRow

ROOT = Path(__file__).resolve().parent.parent
NVML = ROOT / "fixtures" / "nvml"
QWEN = ROOT / "fixtures" / "reference-configs" / "qwen2.5-0.5b"

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_local_hub_models(monkeypatch):
    """The machine's Hugging Face cache must not leak into what the tests see."""
    monkeypatch.setattr("tuiwiz.inspect.overview.cached_hub_models", lambda: [])


async def test_new_run_through_every_step_and_save(demo_model):
    app = TuiwizApp()
    async with app.run_test(size=(100, 40)) as pilot:
        assert app.screen.STEP == "start"
        await pilot.press("enter")  # "New run"
        assert app.screen.STEP == "model"

        await type_text(pilot, str(demo_model))
        await lookups_done(pilot)
        summary = text_of(pilot, "#summary")
        assert "LlamaForCausalLM" in summary and "chat template: yes" in summary

        await pilot.press("ctrl+n")
        assert app.screen.STEP == "dataset"
        await lookups_done(pilot)
        stats = text_of(pilot, "#stats")
        assert "alpaca" in stats and "800 rows" in stats and "median" in stats
        await focus_field(pilot, "data.max_seq_length")
        await type_text(pilot, "48")
        assert app.draft.get("data.max_seq_length") == 48

        await pilot.press("ctrl+n")
        assert app.screen.STEP == "targets"
        await lookups_done(pilot)
        await pilot.press("1")  # quick choice: q_proj + v_proj
        assert app.draft.get("lora.target_modules") == ["q_proj", "v_proj"]
        assert "Trainable: 14,336" in text_of(pilot, "#trainable")
        await pilot.press("3")
        assert app.draft.get("lora.target_modules") == "all-linear"
        await pilot.press("2")
        assert app.draft.get("lora.target_modules") == ["q_proj", "k_proj", "v_proj", "o_proj"]

        await pilot.press("ctrl+n")
        assert app.screen.STEP == "quantlora"
        await focus_field(pilot, "lora.r")
        await type_text(pilot, "8")
        assert "alpha / r = 32 / 8 = 4" in text_of(pilot, "#scale")

        await pilot.press("ctrl+n")
        assert app.screen.STEP == "training"
        await focus_field(pilot, "training.learning_rate")
        await type_text(pilot, "fast")
        row = app.screen.query_one("#f-training-learning_rate", FieldRow)
        assert row.has_class("-invalid")
        assert "must be a number" in str(row.query_one(".field-error", Static).render())
        await type_text(pilot, "1e-3")
        assert not row.has_class("-invalid")
        await focus_field(pilot, "training.per_device_train_batch_size")
        await type_text(pilot, "4")
        await lookups_done(pilot)
        derived = text_of(pilot, "#derived")
        assert "Effective batch size: 16" in derived  # 4 x 4 accumulated (the default)
        assert "Steps per epoch: 48" in derived  # 800 rows, 5% held out: 760 / 16

        await pilot.press("ctrl+b")  # back: what was typed is still there
        assert app.screen.STEP == "quantlora"
        r_input = app.screen.query_one("#f-lora-r", FieldRow).control
        assert isinstance(r_input, Input) and r_input.value == "8"

        await pilot.press("ctrl+r")
        assert app.screen.STEP == "review"
        await lookups_done(pilot)
        name = app.screen.query_one("#preset-name", Input)
        name.focus()
        await type_text(pilot, "walked")
        await pilot.press("enter")  # saves under that name
        saved = presets.saved_dir() / "walked.toml"
        data = tomllib.loads(saved.read_text())
        assert data["lora"]["r"] == 8
        assert data["lora"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
        assert data["data"]["max_seq_length"] == 48
        assert data["training"]["learning_rate"] == pytest.approx(1e-3)
        assert data["training"]["per_device_train_batch_size"] == 4
        assert data["model"]["name_or_path"] == str(demo_model)
        presets.load(str(saved))  # and `tuiwiz run walked` would accept it


async def test_invalid_value_blocks_launch_until_fixed():
    app = TuiwizApp(Draft(), start="training")
    async with app.run_test(size=(100, 40)) as pilot:
        await focus_field(pilot, "training.per_device_train_batch_size")
        await type_text(pilot, "0")
        row = app.screen.query_one("#f-training-per_device_train_batch_size", FieldRow)
        assert row.has_class("-invalid")
        assert "must be > 0" in str(row.query_one(".field-error", Static).render())
        await pilot.press("ctrl+r")
        assert "Cannot launch yet" in text_of(pilot, "#problem")
        assert app.screen.query_one("#launch", Button).disabled
        await pilot.press("ctrl+l")  # refused, with the reason
        assert app.screen.STEP == "review"
        await pilot.press("ctrl+g")  # go to: the training step
        await pilot.press(*["down"] * 5, "enter")
        assert app.screen.STEP == "training"
        row = app.screen.query_one("#f-training-per_device_train_batch_size", FieldRow)
        assert row.has_class("-invalid")  # the invalid text is still shown, with its reason
        await focus_field(pilot, "training.per_device_train_batch_size")
        await type_text(pilot, "2")
        await pilot.press("ctrl+r")
        assert text_of(pilot, "#problem") == ""
        assert not app.screen.query_one("#launch", Button).disabled


async def test_trust_remote_code_warns():
    app = TuiwizApp(Draft(), start="model")
    async with app.run_test(size=(100, 40)) as pilot:
        assert text_of(pilot, "#trust-warning") == ""
        await focus_field(pilot, "model.trust_remote_code")
        await pilot.press("space")
        assert app.draft.get("model.trust_remote_code") is True
        assert "runs Python code from its repository" in text_of(pilot, "#trust-warning")
        assert "runs Python code" in str(app.screen.query_one("#explain", Static).render())


async def test_unreadable_model_and_dataset_are_shown_not_raised(tmp_path):
    app = TuiwizApp(Draft(), start="model")
    async with app.run_test(size=(100, 40)) as pilot:
        await type_text(pilot, str(tmp_path / "nowhere"))
        await lookups_done(pilot)
        assert "no such model directory" in text_of(pilot, "#summary")
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"instruction": "x", "output": "y"}\nnot json\n')
        app.draft.set("model.name_or_path", "tuiwiz:demo-model")
        await pilot.press("ctrl+n")
        await focus_field(pilot, "data.path")
        await type_text(pilot, str(bad))
        await lookups_done(pilot)
        stats = text_of(pilot, "#stats")
        assert "✗" in stats and "bad.jsonl:2: malformed JSON" in stats
        assert app.is_running


async def test_preset_opens_at_review_and_a_suggestion_applies_with_one_key(monkeypatch):
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "two_gpus_busy.json"))
    resolved, _ = presets.load(
        "qwen2.5-1.5b-alpaca-8gb",
        [
            f"model.name_or_path={QWEN}",
            "data.max_seq_length=8192",
            "training.per_device_train_batch_size=16",
            "training.gradient_checkpointing=false",
        ],
    )
    app = TuiwizApp(Draft(resolved), start="review")
    async with app.run_test(size=(100, 50)) as pilot:
        await lookups_done(pilot)
        memory = text_of(pilot, "#memory")
        assert "does not fit" in memory
        suggestions = text_of(pilot, "#suggestions")
        assert "press the number to apply" in suggestions
        before = app.screen.memory["estimate"].total
        first = app.screen.memory["suggestions"][0]
        await pilot.press("1")
        for override in first.overrides:
            section_key, value = override.split("=", 1)
            assert str(app.draft.get(section_key)).lower() == value.strip('"').lower()
        await lookups_done(pilot)
        after = app.screen.memory["estimate"].total
        assert after == first.total_bytes and after < before


async def test_review_estimates_before_a_dataset_is_chosen(tmp_path, monkeypatch):
    """A preset without [data] path opens at Review: the memory estimate is there (it needs
    only the model), and launch waits for a dataset."""
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "two_gpus_busy.json"))
    path = tmp_path / "model-only.toml"
    path.write_text(f'[model]\nname_or_path = "{QWEN}"\n')
    resolved, _ = presets.load(str(path), require_data=False)
    app = TuiwizApp(Draft(resolved), start="review")
    async with app.run_test(size=(100, 50)) as pilot:
        await lookups_done(pilot)
        assert "[data] path is required" in text_of(pilot, "#problem")
        assert app.screen.query_one("#launch", Button).disabled
        memory = text_of(pilot, "#memory")
        assert "Estimated peak GPU memory" in memory and "GPU 0" in memory


async def test_review_on_a_machine_without_a_gpu_says_it_trains_on_the_cpu(demo_model, monkeypatch):
    """No GPU at all: the run trains on the CPU; nothing claims GPUs are missing."""
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    resolved, _ = presets.load("demo")
    app = TuiwizApp(Draft(resolved), start="review")
    async with app.run_test(size=(100, 50)) as pilot:
        await lookups_done(pilot)
        memory = text_of(pilot, "#memory")
        assert "Training will run on the CPU" in memory
        assert "✗" not in memory and "need" not in memory and "processes" not in memory


async def test_review_estimates_with_the_dataset_steps_lengths(demo_model, monkeypatch):
    """Once the Dataset step has measured every example, Review's estimate uses the longest
    one (the demo's examples are far shorter than a max_seq_length of 256)."""
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))
    resolved, _ = presets.load("demo", ["data.max_seq_length=256"])
    app = TuiwizApp(Draft(resolved), start="review")
    async with app.run_test(size=(100, 50)) as pilot:
        await lookups_done(pilot)
        before = app.screen.memory["estimate"]
        assert before.setup.seq == 256
        app.goto("dataset")
        await lookups_done(pilot)
        app.goto("review")
        await lookups_done(pilot)
        after = app.screen.memory["estimate"]
        preview = app.data_preview().value
        assert preview.measured == preview.rows  # every example measured: the longest is known
        assert after.setup.seq == preview.max_tokens < 256
        assert after.total < before.total
        assert f"longest example is {preview.max_tokens} tokens" in text_of(pilot, "#memory")


def test_missing_gpus_line_speaks_in_the_singular_and_plural():
    from tuiwiz.ui.wizard.review import missing_gpus_line

    assert missing_gpus_line(1, 0) == "✗ 1 process needs 1 GPU; none visible"
    assert missing_gpus_line(2, 1) == "✗ 2 processes need 2 GPUs; 1 visible"
    assert missing_gpus_line(4, 2) == "✗ 4 processes need 4 GPUs; 2 visible"


async def test_review_checks_every_gpu_a_two_gpu_fsdp_run_uses(monkeypatch):
    """Two GPUs, FSDP over both: one bar and verdict per GPU with the per-GPU estimate, each
    against that GPU's own free memory (the busy A100 has 11 GiB free, the RTX 4090 22.7)."""
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "two_gpus_busy.json"))
    resolved, _ = presets.load(
        "qwen2.5-1.5b-alpaca-8gb",
        [
            f"model.name_or_path={QWEN}",
            "data.max_seq_length=8192",
            "training.per_device_train_batch_size=8",
        ],
    )
    app = TuiwizApp(Draft(resolved), start="review")
    app.draft.raw["launch"] = {"nproc_per_node": 2, "strategy": "fsdp"}
    async with app.run_test(size=(100, 50)) as pilot:
        await lookups_done(pilot)
        est = app.screen.memory["estimate"]
        assert (est.world_size, est.strategy) == (2, "fsdp")
        memory = text_of(pilot, "#memory")
        assert f"Estimated peak GPU memory: {est.total / (1 << 30):.1f} GiB per GPU" in memory
        assert "For fsdp over 2 GPUs: each GPU holds 1/2 of the model." in memory
        a100 = memory.index("GPU 0 NVIDIA A100-SXM4-40GB")
        rtx = memory.index("GPU 1 NVIDIA GeForce RTX 4090")
        assert "does not fit: 11.0 GiB free" in memory[a100:rtx]
        assert "fits: 22.7 GiB free" in memory[rtx:]
        assert memory.count("█ this run") == 1 and "unused" not in memory
        assert "fsdp_gathered_params" in memory and "nccl_buffers" in memory

        # The same run on one process: GPU 1 is present but unused.
        app.draft.raw["launch"] = {"nproc_per_node": 1, "strategy": "ddp"}
        app.screen.refresh_derived()
        await lookups_done(pilot)
        memory = text_of(pilot, "#memory")
        assert app.screen.memory["estimate"].world_size == 1
        assert "GPU 1 NVIDIA GeForce RTX 4090: unused" in memory
        assert "per GPU" not in memory and "For " not in memory


async def test_training_step_counts_every_gpu_in_the_effective_batch(demo_model, monkeypatch):
    """Effective batch = per-device batch x accumulation x processes; steps divide by it."""
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "two_gpus_busy.json"))
    resolved, _ = presets.load("demo", ["training.gradient_accumulation_steps=2"])
    app = TuiwizApp(Draft(resolved), start="training")
    async with app.run_test(size=(100, 50)) as pilot:
        await lookups_done(pilot)
        one = text_of(pilot, "#derived")
        assert "Effective batch size: 32 (16 per step × 2 accumulated)" in one
        app.draft.raw["launch"] = {"nproc_per_node": "auto", "strategy": "ddp"}  # 2 GPUs
        app.screen.refresh_derived()
        await lookups_done(pilot)
        app.screen.refresh_derived()
        two = text_of(pilot, "#derived")
        assert "Effective batch size: 64 (16 per step × 2 accumulated × 2 GPUs)" in two

        def steps(text: str) -> int:
            return int(text.split("Steps per epoch: ")[1].split()[0])

        examples = int(two.split("(")[2].split(" training examples")[0].replace(",", ""))
        assert steps(one) == -(-examples // 32) and steps(two) == -(-examples // 64)


@pytest.mark.e2e
async def test_launch_from_review_trains_and_the_dashboard_sees_it_finish(tmp_path, monkeypatch):
    from tuiwiz.ui.dashboard import DashboardScreen

    monkeypatch.chdir(tmp_path)  # runs/ is created in the working directory, as with the CLI
    resolved, _ = presets.load(
        "demo", ["training.max_steps=12", "training.logging_steps=2", "training.eval_steps=6"]
    )
    app = TuiwizApp(Draft(resolved), start="review")
    async with app.run_test(size=(100, 40)) as pilot:
        await lookups_done(pilot)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        dashboard = app.screen
        await wait_for(pilot, lambda: dashboard.view.train, "the first step event", timeout=240)
        await wait_for(pilot, lambda: dashboard.state == "finished", "finished", timeout=240)
        steps = [step for step, _ in dashboard.view.train]
        assert steps == [2, 4, 6, 8, 10, 12]  # every logged step, in order
        assert dashboard.view.base_loss is not None  # the base model's loss at step 0
        run_dir = dashboard.run.path
        assert run_dir.parent == tmp_path / "runs"
        assert (run_dir / "adapter" / "adapter_config.json").is_file()
        await pilot.press("q")
    assert tomllib.loads((run_dir / "preset.toml").read_text())["training"]["max_steps"] == 12
