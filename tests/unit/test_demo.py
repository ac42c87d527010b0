"""Tests for the offline CPU demo: tokenizer, bundled dataset, model build, evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tuiwiz.demo import build, data

# --------------------------------------------------------------------- paths / cheap import


def test_import_does_not_load_heavy_libraries() -> None:
    # The TUI imports tuiwiz.demo at startup; torch & co. must stay lazy.
    code = (
        "import sys, tuiwiz\n"
        "before = set(sys.modules)\n"
        "import tuiwiz.demo\n"
        "heavy = {'torch', 'transformers', 'peft', 'tokenizers', 'bitsandbytes'}\n"
        "print(sorted(heavy & (set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_cache_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TUIWIZ_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert build.demo_model_dir() == tmp_path / "home" / ".cache" / "tuiwiz" / "demo-model-v1"

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.demo_model_dir() == tmp_path / "xdg" / "tuiwiz" / "demo-model-v1"

    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(tmp_path / "explicit"))
    assert build.demo_model_dir() == tmp_path / "explicit" / "demo-model-v1"


# ----------------------------------------------------------------------------- tokenizer


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return build.build_tokenizer()


@pytest.mark.parametrize(
    "text",
    ["hello", "Hello  World\n\nfoo\tbar", "a . b , c ' d n't ?!", " lead and trail  ", "X"],
)
def test_tokenizer_round_trip_is_one_token_per_character(tokenizer, text: str) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) == len(text)
    assert tokenizer.decode(ids) == text


def test_tokenizer_special_tokens(tokenizer) -> None:
    assert tokenizer.eos_token == build.END_TOKEN
    assert tokenizer.pad_token == build.PAD_TOKEN
    assert tokenizer.bos_token == build.BOS_TOKEN
    assert len({tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id}) == 3
    for marker in (build.USER_TOKEN, build.ASSISTANT_TOKEN, build.END_TOKEN):
        assert len(tokenizer.encode(marker, add_special_tokens=False)) == 1
    # Characters outside printable ASCII map to unk instead of failing.
    assert tokenizer.encode("é", add_special_tokens=False) == [tokenizer.unk_token_id]


def test_chat_template_and_prompt_prefix(tokenizer) -> None:
    msgs = data.alpaca_messages("Uppercase:", "hello", "HELLO")
    full = tokenizer.apply_chat_template(msgs, tokenize=False)
    prompt = tokenizer.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    assert full == "<|bos|><|user|>Uppercase:\n\nhello<|end|><|assistant|>HELLO<|end|>"
    assert prompt == "<|bos|><|user|>Uppercase:\n\nhello<|end|><|assistant|>"
    assert full.startswith(prompt)
    # The answer ends with eos, so greedy generation stops right after it.
    assert full.endswith(tokenizer.eos_token)
    assert data.alpaca_user_content("Do it.") == "Do it."


def test_encode_example_masks_the_prompt(tokenizer) -> None:
    ids, labels = build.encode_example(tokenizer, "Uppercase:", "abc", "ABC")
    prompt = build.render_prompt(tokenizer, "Uppercase:", "abc")
    prompt_len = len(tokenizer.encode(prompt, add_special_tokens=False))
    assert prompt_len == len("Uppercase:\n\nabc") + 4  # bos, user, end, assistant
    assert len(ids) == len(labels)
    assert labels[:prompt_len] == [-100] * prompt_len
    assert tokenizer.decode(labels[prompt_len:]) == "ABC" + build.END_TOKEN
    assert labels[prompt_len:] == ids[prompt_len:]


def test_tokenizer_save_and_reload_keeps_template(tokenizer, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    msgs = data.alpaca_messages("Repeat:", "Hi")
    assert loaded.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == (
        tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    )
    assert loaded.eos_token_id == tokenizer.eos_token_id
    assert loaded.encode("Hi there", add_special_tokens=False) == tokenizer.encode(
        "Hi there", add_special_tokens=False
    )


# ------------------------------------------------------------------------------- dataset


def test_bundled_dataset_files() -> None:
    train = data.load_jsonl(data.demo_dataset_path())
    heldout = data.load_jsonl(data.demo_heldout_path())
    assert 300 <= len(train) <= 1000
    assert 20 <= len(heldout) <= 30
    for row in train + heldout:
        assert set(row) == {"instruction", "input", "output"}
        assert all(isinstance(v, str) for v in row.values())
        assert row["input"] and row["output"] == row["input"].upper() != row["input"]
    train_inputs = {r["input"] for r in train}
    assert len(train_inputs) == len(train)
    assert train_inputs.isdisjoint(r["input"] for r in heldout)


def test_bundled_dataset_matches_generator(tmp_path: Path) -> None:
    # The committed files must be exactly what write_demo_dataset produces.
    train_path, heldout_path = data.write_demo_dataset(tmp_path)
    assert train_path.read_bytes() == data.demo_dataset_path().read_bytes()
    assert heldout_path.read_bytes() == data.demo_heldout_path().read_bytes()


# ---------------------------------------------------------------- build directory handling


def _fake_build(path: Path, **marker: object) -> Path:
    path.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (path / name).write_text(name)
    (path / build.DEMO_MARKER_FILE).write_text(json.dumps(marker))
    return path


def test_replace_dir_keeps_identical_concurrent_build(tmp_path: Path) -> None:
    recipe = build._recipe()
    target = _fake_build(tmp_path / "model", **recipe, who="first")
    src = _fake_build(tmp_path / "tmp", **recipe, who="second")
    build._replace_dir(src, target, recipe)
    assert json.loads((target / build.DEMO_MARKER_FILE).read_text())["who"] == "first"
    assert build.is_demo_model_built(target)


def test_replace_dir_replaces_outdated_build(tmp_path: Path) -> None:
    recipe = build._recipe()
    target = _fake_build(tmp_path / "model", version="old-recipe")
    assert not build.is_demo_model_built(target)
    src = _fake_build(tmp_path / "tmp", **recipe, who="new")
    build._replace_dir(src, target, recipe)
    assert json.loads((target / build.DEMO_MARKER_FILE).read_text())["who"] == "new"
    assert not src.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # stale copy removed


# ------------------------------------------------------------------------- model builds


def test_build_is_deterministic(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    messages: list[str] = []
    a = build.build_demo_model(tmp_path / "a" / "m", pretrain_steps=3, progress=messages.append)
    assert messages  # progress is reported
    b = build.build_demo_model(tmp_path / "b" / "m", pretrain_steps=3)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert all((wa[k] == wb[k]).all() for k in wa)
    # A different seed must give different weights (the check above is not vacuous).
    c = build.build_demo_model(tmp_path / "c" / "m", pretrain_steps=3, seed=7)
    wc = load_file(c / "model.safetensors")
    assert any(not (wa[k] == wc[k]).all() for k in wa)
    # A short build is not mistaken for the real recipe by ensure_demo_model.
    assert not build.is_demo_model_built(a)
    assert not list((tmp_path / "a").glob(".m.*"))  # no temp dirs left behind


@pytest.fixture(scope="session")
def demo_model_path(demo_model: Path) -> Path:
    """The real demo model: the session's shared build (building one more costs a minute or
    more; test_build_is_deterministic builds short ones, with their progress)."""
    return demo_model


def test_ensure_demo_model_builds_once(
    demo_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build.is_demo_model_built(demo_model_path)
    marker = json.loads((demo_model_path / build.DEMO_MARKER_FILE).read_text())
    assert marker["version"] == build.DEMO_VERSION
    assert marker["build_seconds"] > 0
    for name in ("config.json", "generation_config.json", "tokenizer.json", "model.safetensors"):
        assert (demo_model_path / name).is_file()
    config = json.loads((demo_model_path / "config.json").read_text())
    assert config["model_type"] == "llama"
    generation = json.loads((demo_model_path / "generation_config.json").read_text())
    assert generation["eos_token_id"] == config["eos_token_id"]

    # A second call finds the build and returns without rebuilding.
    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(demo_model_path.parent))
    assert demo_model_path == demo_model_path.parent / build.DEMO_MODEL_DIRNAME
    mtime = (demo_model_path / "model.safetensors").stat().st_mtime_ns
    assert build.ensure_demo_model() == demo_model_path
    assert (demo_model_path / "model.safetensors").stat().st_mtime_ns == mtime


def _chat(model_dir: Path, **load: object):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuiwiz.after.generate import ChatModel

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), **load).eval()
    return ChatModel(model, tokenizer)


def test_base_model_knows_format_but_not_the_demo_task(demo_model_path: Path) -> None:
    chat = _chat(demo_model_path)
    assert chat.reply("Repeat:\n\nkavomi") == "kavomi"
    assert chat.reply("Lowercase:\n\nBeLuGa") == "beluga"
    heldout = data.load_jsonl(data.demo_heldout_path())[:8]
    correct = [
        chat.reply(data.alpaca_user_content(r["instruction"], r["input"])) == r["output"]
        for r in heldout
    ]
    assert not any(correct)


def test_compare_on_heldout_with_4bit_and_identity_adapter(
    demo_model_path: Path, tmp_path: Path
) -> None:
    """The comparison of `tuiwiz demo` loads the run as `tuiwiz chat` does (4-bit here); an
    untrained adapter (B = 0) changes nothing, so the fine-tuned answers are the base's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from tuiwiz import presets
    from tuiwiz.demo.compare import compare_on_heldout
    from tuiwiz.train.rundir import RunDir

    config = presets.load("demo", [f"model.name_or_path={demo_model_path}"])[0]
    run = RunDir(tmp_path / "run")
    run.create()
    run.write_preset(presets.to_toml(config))
    run.write_status(state="finished", id="identity")
    model = AutoModelForCausalLM.from_pretrained(
        str(demo_model_path),
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4"),
        dtype=torch.float32,
    )
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(run.adapter)

    rows = compare_on_heldout(run)
    assert len(rows) == len(data.load_jsonl(data.demo_heldout_path()))
    for row in rows:
        assert {"prompt", "expected", "base", "tuned", "base_ok", "tuned_ok"} <= set(row)
        assert row["prompt"] == f"{row['instruction']}\n\n{row['input']}"
        assert row["prompt"].startswith("Uppercase:\n\n")
        assert row["base"] == row["tuned"]
        assert row["base_ok"] is row["tuned_ok"] is False
