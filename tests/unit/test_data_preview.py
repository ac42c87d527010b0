"""The dataset preview (`tuiwiz data`, the wizard's Dataset step): token lengths only from the
model's real tokenizer, and examples shown cut where max_seq_length cuts them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tuiwiz import config
from tuiwiz.cli import main
from tuiwiz.data import preview as preview_module
from tuiwiz.data import render
from tuiwiz.errors import ModelError

REFERENCE = Path(__file__).resolve().parent.parent / "fixtures" / "reference-configs"
ROWS = [{"instruction": "Repeat", "input": "x" * n, "output": "y" * n} for n in range(5, 30)]


def write_preset(tmp_path: Path, model: Path | str, **data) -> Path:
    rows = tmp_path / "d.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in data.items())
    preset = tmp_path / "p.toml"
    preset.write_text(
        f'[model]\nname_or_path = "{model}"\n[data]\npath = "{rows}"\n{extra}'
        "validation_split = 0.0\n"
    )
    return preset


def config_only(tmp_path: Path, name: str) -> Path:
    """A model directory with config.json and nothing else (no tokenizer files)."""
    folder = tmp_path / f"{name}-config-only"
    folder.mkdir()
    shutil.copy(REFERENCE / name / "config.json", folder / "config.json")
    return folder


# --- no tokenizer: no invented token counts ------------------------------------------------------


@pytest.mark.parametrize("name", ["qwen2.5-0.5b", "smollm2-135m"])
def test_a_model_without_tokenizer_files_gets_no_token_lengths(tmp_path, name):
    """Qwen2's tokenizer class builds an empty vocabulary (every text 0 tokens + EOS: "median 1,
    max 1"); Llama's fails to build. Either way: say the lengths need the model's tokenizer."""
    folder = config_only(tmp_path, name)
    cfg = config.validate({"model": {"name_or_path": str(folder)}, "data": {"path": "x"}})
    with pytest.raises(ModelError) as info:
        preview_module.tokenizer_for(str(folder), cfg)
    text = str(info.value)
    assert str(folder) in text and "tokenizer" in text and "\n" not in text


def test_tuiwiz_data_without_a_tokenizer_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    preset = write_preset(tmp_path, config_only(tmp_path, "qwen2.5-0.5b"))
    capsys.readouterr()
    assert main(["data", str(preset)]) == 2
    captured = capsys.readouterr()
    assert "25 rows, format alpaca" in captured.out  # what can be known without it
    assert "median" not in captured.out + captured.err
    err = captured.err.strip()
    assert err.startswith("tuiwiz: error: ") and "\n" not in err
    assert "token lengths need the model's tokenizer" in err


def test_the_wizard_preview_without_a_tokenizer_says_so(tmp_path):
    from tuiwiz.ui.background import load_preview
    from tuiwiz.ui.wizard.dataset import stats_text

    folder = config_only(tmp_path, "qwen2.5-0.5b")
    cfg, _ = _load(write_preset(tmp_path, folder))
    model = {k: cfg["model"][k] for k in ("name_or_path", "revision", "trust_remote_code")}
    result = load_preview((), cfg["data"], model)
    assert result.rows == 25 and result.format == "alpaca" and result.examples == []
    assert "tokenizer" in (result.token_problem or "")
    shown = stats_text(result, 1024).plain
    assert "Tokens per example" not in shown and "median" not in shown
    assert "Token lengths need the model's tokenizer" in shown


def test_the_wizard_preview_before_a_dataset_is_chosen_asks_for_one():
    from tuiwiz.errors import DataError
    from tuiwiz.ui.background import load_preview

    data = config.validate({"model": {"name_or_path": "m"}}, require_data=False)["data"]
    with pytest.raises(DataError, match="no dataset yet"):
        load_preview((), data, {"name_or_path": "m", "revision": "main"})


def test_the_wizard_says_how_far_the_reading_is_and_that_it_sampled(
    tmp_path, monkeypatch, demo_model
):
    """A big dataset takes a while to read: the step shows how far it is; its token lengths
    come from a sample, and the screen says so (training tokenizes every example)."""
    from tuiwiz.ui import background
    from tuiwiz.ui.wizard.dataset import stats_text

    monkeypatch.setattr(preview_module, "SAMPLE", 10)
    cfg, _ = _load(write_preset(tmp_path, demo_model))
    model = {k: cfg["model"][k] for k in ("name_or_path", "revision", "trust_remote_code")}
    seen: list[str | None] = []
    real_preview = preview_module.preview

    def watched(*args, progress=None, **kwargs):
        def report(p):
            progress(p)
            seen.append(background.preview_progress(("k",)))

        return real_preview(*args, progress=report, **kwargs)

    monkeypatch.setattr(preview_module, "preview", watched)
    result = background.load_preview(("k",), cfg["data"], model)
    assert seen[-1] and seen[-1].startswith("25 rows (100%)")
    assert "measuring token lengths on a sample of up to 10" in seen[-1]
    assert background.preview_progress(("k",)) is None  # done: nothing pending is shown
    shown = stats_text(result, 1024).plain
    assert "(a random sample of 10 of 25; training uses all)" in shown, shown


def _load(preset: Path):
    from tuiwiz import presets

    return presets.load(str(preset))


# --- where max_seq_length cuts --------------------------------------------------------------------


def test_the_cut_is_at_max_seq_length_tokens(tmp_path, demo_tokenizer):
    cfg, _ = _load(write_preset(tmp_path, "m", max_seq_length=16))
    result = preview_module.preview(cfg["data"], demo_tokenizer, count=3)
    assert result.truncated_share == 1.0 and len(result.cuts) == 3
    for segments, cut in zip(result.examples, result.cuts):
        assert cut is not None
        kept, dropped = preview_module.split_at(segments, cut)
        ids, _ = render.tokenize_batch([kept], demo_tokenizer)
        whole, _ = render.tokenize_batch([segments], demo_tokenizer)
        assert len(ids[0]) == 16 and ids[0] == whole[0][:16]  # exactly what training keeps
        assert "".join(s.text for s in kept + dropped) == "".join(s.text for s in segments)


def test_an_example_that_fits_has_no_cut(tmp_path, demo_tokenizer):
    cfg, _ = _load(write_preset(tmp_path, "m", max_seq_length=1024))
    result = preview_module.preview(cfg["data"], demo_tokenizer, count=2)
    assert result.cuts == [None, None] and result.truncated_share == 0


def test_tuiwiz_data_marks_the_cut(tmp_path, capsys, monkeypatch, demo_model):
    monkeypatch.setenv("COLUMNS", "200")
    preset = write_preset(tmp_path, demo_model, max_seq_length=16)
    capsys.readouterr()
    assert main(["data", str(preset), "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("✂ cut here (max_seq_length 16)") == 2
    assert "100.0% would be truncated" in out


def test_the_wizard_example_marks_the_cut(tmp_path, demo_tokenizer):
    from tuiwiz.ui.wizard.dataset import render_example

    cfg, _ = _load(write_preset(tmp_path, "m", max_seq_length=16))
    result = preview_module.preview(cfg["data"], demo_tokenizer, count=1)
    text = render_example(result.examples[0], result.cuts[0], 16)
    assert "✂ cut here (max_seq_length 16)" in text.plain
    after = text.plain.index("✂")
    assert any(span.start > after and "strike" in str(span.style) for span in text.spans)
