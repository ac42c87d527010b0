"""The pure parts of evaluate / chat / export: settings and commands, prompt rendering, batching
and scoring, the model card, export safety checks, and the RNG guard of the step-0 evaluation."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from tuiwiz.after import card, evaluate, export, generate
from tuiwiz.after.generate import GenerationSettings
from tuiwiz.after.session import ChatSession
from tuiwiz.errors import TuiwizError

# --- generation settings ------------------------------------------------------------------


def test_settings_update_parses_and_validates():
    s = GenerationSettings()
    assert s.greedy and s.max_new_tokens == 256
    s = generate.update(s, "temperature", "0.7")
    assert s.temperature == 0.7 and not s.greedy
    s = generate.update(s, "max-new-tokens", " 12 ")
    assert s.max_new_tokens == 12
    assert generate.update(s, "seed", "7").seed == 7
    assert generate.update(s, "seed", "none").seed is None
    with pytest.raises(ValueError, match="did you mean 'top_p'"):
        generate.update(s, "top_q", "0.9")
    with pytest.raises(ValueError, match="not a number"):
        generate.update(s, "temperature", "hot")
    with pytest.raises(ValueError, match="top_p must be above 0"):
        generate.update(s, "top_p", "0")
    with pytest.raises(ValueError, match="max_new_tokens must be at least 1"):
        generate.update(s, "max_new_tokens", "0")
    with pytest.raises(ValueError, match="not a number"):
        generate.update(s, "max_new_tokens", "1.5")  # an integer setting


def test_describe_shows_what_applies():
    assert generate.describe(GenerationSettings()) == "max_new_tokens=256 temperature=0 (greedy)"
    sampled = GenerationSettings(temperature=0.8, top_p=0.9, seed=3, repetition_penalty=1.1)
    assert generate.describe(sampled) == (
        "max_new_tokens=256 temperature=0.8 top_p=0.9 seed=3 repetition_penalty=1.1"
    )


def test_unescape():
    assert generate.unescape(r"Uppercase:\n\nxuniz") == "Uppercase:\n\nxuniz"
    assert generate.unescape(r"a\tb \\n c") == "a\tb \\n c"
    assert generate.unescape("plain") == "plain"


def test_as_messages_adds_a_system_prompt_once():
    assert generate.as_messages("hi") == [{"role": "user", "content": "hi"}]
    with_system = generate.as_messages("hi", system="be brief")
    assert with_system[0] == {"role": "system", "content": "be brief"}
    already = [{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}]
    assert generate.as_messages(already, system="y") == already


def test_generation_config_greedy_clears_sampling_defaults(demo_model: Path, demo_tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(demo_model))
    model.generation_config.temperature, model.generation_config.top_k = 0.6, 20
    chat = generate.ChatModel(model, demo_tokenizer)
    greedy = chat.generation_config(GenerationSettings(max_new_tokens=5))
    assert not greedy.do_sample and greedy.temperature is None and greedy.top_k is None
    assert greedy.max_new_tokens == 5 and demo_tokenizer.eos_token_id in greedy.eos_token_id
    sampled = chat.generation_config(GenerationSettings(temperature=0.5, top_p=0.8))
    assert sampled.do_sample and sampled.temperature == 0.5 and sampled.top_p == 0.8
    assert model.generation_config.temperature == 0.6  # the model's own config is untouched


# --- prompts are rendered as training rendered them -----------------------------------------


def test_render_prompt_uses_the_chat_template(demo_tokenizer):
    messages = [{"role": "user", "content": "Uppercase:\n\nxuniz"}]
    expected = demo_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert generate.render_prompt(messages, demo_tokenizer) == expected
    ids = generate.prompt_ids(expected, demo_tokenizer)
    assert ids[0] == demo_tokenizer.bos_token_id and ids[1] != demo_tokenizer.bos_token_id


def test_render_prompt_matches_the_training_rendering(demo_tokenizer):
    """The prompt part of a rendered training example is exactly what chat gives the model."""
    from tuiwiz.data import render
    from tuiwiz.data.formats import Example

    convo = [{"role": "user", "content": "Uppercase:\n\nbelo"}]
    example = Example(messages=[*convo, {"role": "assistant", "content": "BELO"}])
    segments = render.render(example, demo_tokenizer)
    trained_from = next(i for i, s in enumerate(segments) if s.trained)
    prompt = "".join(s.text for s in segments[:trained_from])
    assert generate.render_prompt(convo, demo_tokenizer) == prompt


def test_render_prompt_without_a_chat_template_and_raw(demo_tokenizer):
    import copy

    plain = copy.deepcopy(demo_tokenizer)
    plain.chat_template = None
    messages = [{"role": "user", "content": "Say hi"}]
    assert generate.render_prompt(messages, plain) == "### Instruction:\nSay hi\n\n### Response:\n"
    assert generate.render_prompt(messages, plain, raw=True) == "Say hi"


# --- the chat session's commands --------------------------------------------------------------


def test_session_commands():
    session = ChatSession()
    assert ChatSession.is_command("/set x 1") and not ChatSession.is_command("//etc/passwd")
    assert ChatSession.prompt_text("//etc") == "/etc"
    assert ChatSession.prompt_text(r"a\nb") == "a\nb"
    result = session.command("/set temperature 0.7")
    assert not result.error and session.settings.temperature == 0.7
    assert "temperature=0.7" in result.message
    session.command("/set top_p=0.5")
    assert session.settings.top_p == 0.5
    assert session.command("/set temperature").error
    assert session.command("/set temperature -1").error
    assert session.settings.temperature == 0.7  # a refused value changes nothing
    assert session.command("/compare").message == "compare on" and session.compare
    assert session.command("/compare off").message == "compare off" and not session.compare
    assert session.command("/compare maybe").error
    assert session.command("/nope").error
    assert session.command("/quit").quit and session.command("/exit").quit
    assert "/set NAME VALUE" in session.command("/help").message
    assert session.command("/system be brief").message == "system prompt: be brief"
    assert session.messages("tuned", "hi")[0] == {"role": "system", "content": "be brief"}


def test_session_history():
    session = ChatSession()
    session.record("tuned", "one", "ONE")
    assert session.messages("tuned", "two") == [{"role": "user", "content": "two"}]
    session.command("/history on")
    session.record("tuned", "one", "ONE")
    assert [m["content"] for m in session.messages("tuned", "two")] == ["one", "ONE", "two"]
    assert session.messages("base", "two") == [{"role": "user", "content": "two"}]
    session.command("/clear")
    assert session.messages("tuned", "two") == [{"role": "user", "content": "two"}]


# --- evaluation arithmetic ----------------------------------------------------------------------


def test_batches_pad_right_and_mask_labels():
    examples = [
        {"input_ids": [1, 2, 3], "labels": [-100, 2, 3]},
        {"input_ids": [4], "labels": [4]},
        {"input_ids": [5, 6], "labels": [-100, 6]},
    ]
    out = list(evaluate.batches(examples, batch_size=2, pad_id=0))
    assert out[0]["input_ids"] == [[4, 0], [5, 6]]  # shortest first
    assert out[0]["attention_mask"] == [[1, 0], [1, 1]]
    assert out[0]["labels"] == [[4, -100], [-100, 6]]
    assert out[1] == {
        "input_ids": [[1, 2, 3]],
        "attention_mask": [[1, 1, 1]],
        "labels": [[-100, 2, 3]],
    }


def test_score_and_perplexity():
    s = evaluate.score(nll_sum=6.0, tokens=3)
    assert s.loss == 2.0 and s.perplexity == pytest.approx(math.exp(2.0))
    assert evaluate.perplexity(1e6) == math.inf
    with pytest.raises(ValueError):
        evaluate.score(1.0, 0)


def test_nll_is_the_token_mean_of_the_models_own_loss(demo_model: Path, demo_tokenizer):
    """For one example our score equals the model's own (token-mean) loss on it."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(demo_model)).eval()
    ids = demo_tokenizer("<|bos|><|user|>Uppercase:\n\nbelo<|end|><|assistant|>BELO<|end|>")[
        "input_ids"
    ]
    labels = [-100] * (len(ids) - 5) + ids[-5:]
    total, count = evaluate.nll(model, [{"input_ids": ids, "labels": labels}], 4, 0)
    with torch.no_grad():
        expected = model(torch.tensor([ids]), labels=torch.tensor([labels])).loss.item()
    assert count == 5
    assert total / count == pytest.approx(expected, rel=1e-5)


def test_verdict_words():
    from tuiwiz.commands.eval import verdict

    assert "lower" in verdict(2.0, 1.0) and "50.0% lower" in verdict(2.0, 1.0)
    assert "higher" in verdict(1.0, 2.0)
    assert "the same" in verdict(1.0, 1.0)


# --- model card and export safety ---------------------------------------------------------------


def _facts(**kw) -> card.CardFacts:
    base = dict(
        name="demo",
        description="A test.",
        base_model="Qwen/Qwen2.5-0.5B",
        merged=False,
        dtype=None,
        preset_toml='name = "demo"\n',
        data={"format": "alpaca", "train_examples": 760, "validation_examples": 40},
        metrics={
            "final_train_loss": 0.01,
            "eval_loss": 0.02,
            "eval_step": 96,
            "base_eval_loss": 9.6,
            "evaluation": {
                "validation_examples": 40,
                "tokens": 266,
                "base": {"loss": 9.6, "perplexity": 14765.0},
                "tuned": {"loss": 0.0115, "perplexity": 1.0116},
            },
        },
        lora={"r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"]},
        quantization="4-bit nf4 (QLoRA)",
        version="0.1.0",
    )
    return card.CardFacts(**{**base, **kw})


def test_card_for_an_adapter():
    text = card.card_text(_facts())
    assert text.startswith("---\nbase_model: Qwen/Qwen2.5-0.5B\nlibrary_name: peft\n")
    assert "- qlora" in text and "PeftModel.from_pretrained" in text
    assert "| format | alpaca |" in text and "| training examples | 760 |" in text
    assert "| base model validation loss (trainer, step 0) | 9.6000 |" in text
    assert "| fine-tuned | 0.0115 | 1.01 |" in text
    assert '```toml\nname = "demo"\n```' in text
    assert "LoRA rank 16, alpha 32, on q_proj, v_proj." in text


def test_card_for_a_merged_local_model():
    text = card.card_text(
        _facts(merged=True, dtype="bfloat16", base_model="/models/mine", metrics={})
    )
    assert "base_model:" not in text  # not a Hub id: the Hub would reject it
    assert "library_name: transformers" in text and "(bfloat16)" in text
    assert "AutoModelForCausalLM.from_pretrained" in text and "peft" not in text.split("```")[1]
    assert "| final training loss | - |" in text


def test_card_for_the_bundled_demo_model_says_where_it_is():
    """`tuiwiz:demo-model` is tuiwiz's name, not something transformers can load: the card
    points at the directory the demo model was built in."""
    text = card.card_text(
        _facts(base_model="tuiwiz:demo-model", base_model_path="/cache/tuiwiz/demo-model-v1")
    )
    assert 'from_pretrained("tuiwiz:demo-model")' not in text
    assert 'AutoModelForCausalLM.from_pretrained("/cache/tuiwiz/demo-model-v1")' in text
    assert "tuiwiz's bundled demo model" in text and "base_model:" not in text


def test_card_facts_of_a_demo_run_carry_the_demo_model_directory(adapter_run, tmp_path):
    from tuiwiz import presets
    from tuiwiz.demo import demo_model_dir

    config, _ = presets.load(str(adapter_run / "preset.toml"))
    facts = card.facts_from_run(adapter_run, config, merged=False, dtype=None)
    assert facts.base_model == "tuiwiz:demo-model"
    assert facts.base_model_path == str(demo_model_dir())


def test_check_target(tmp_path: Path):
    export.check_target(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    export.check_target(tmp_path / "empty")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(TuiwizError, match="not empty"):
        export.check_target(tmp_path / "full")
    with pytest.raises(TuiwizError, match="not a folder"):
        export.check_target(tmp_path / "full" / "x")


def test_assert_no_secrets(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnop")
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "weights.safetensors").write_bytes(b"hf_abcdefghijklmnop")  # not scanned
    tokens = export.secrets()
    assert "hf_abcdefghijklmnop" in tokens
    export.assert_no_secrets(tmp_path, tokens)
    (tmp_path / "README.md").write_text("token hf_abcdefghijklmnop")
    with pytest.raises(TuiwizError, match="access token"):
        export.assert_no_secrets(tmp_path, tokens)


# --- the step-0 evaluation leaves every random generator as it found it -------------------------


def test_preserved_rng_restores_all_generators():
    import random

    import numpy as np
    import torch

    from tuiwiz.train.callbacks import preserved_rng

    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    with preserved_rng():
        torch.rand(3), random.random(), np.random.rand()
    after = (torch.rand(1).item(), random.random(), float(np.random.rand()))
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    assert after == (torch.rand(1).item(), random.random(), float(np.random.rand()))


# --- export into a place it cannot write -------------------------------------------------------


@pytest.fixture
def adapter_run(tmp_path: Path) -> Path:
    """A finished run directory as export reads it: preset, status, events and an adapter."""
    from tuiwiz import presets

    run = tmp_path / "runs" / "fake-run"
    (run / "adapter").mkdir(parents=True)
    config, _ = presets.load("demo")
    (run / "preset.toml").write_text(presets.to_toml(config))
    (run / "status.json").write_text('{"state": "finished", "id": "fake-run"}')
    (run / "events.jsonl").write_text("")
    (run / "adapter" / "adapter_config.json").write_text('{"r": 16}')
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    return run


def _export_error(capsys, run: Path, out: Path) -> str:
    from tuiwiz.cli import main

    capsys.readouterr()
    assert main(["export", str(run), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("tuiwiz: error: ") and "\n" not in err, err
    assert "Traceback" not in err and not captured.out
    return err


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_export_below_a_file_is_one_line_and_writes_nothing(adapter_run, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    before = _tree(tmp_path)
    err = _export_error(capsys, adapter_run, blocker / "deeper" / "export")
    assert str(blocker) in err and "cannot" in err
    assert _tree(tmp_path) == before and blocker.read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_export_into_a_read_only_folder_is_one_line(adapter_run, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        err = _export_error(capsys, adapter_run, locked / "new" / "export")
        assert "permission denied" in err.lower() and list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_export_into_a_filesystem_that_refuses_folders(adapter_run, capsys):
    """/proc refuses new folders even to root: the same one line."""
    err = _export_error(capsys, adapter_run, Path("/proc/tuiwiz-export-test/export"))
    assert "/proc" in err


def test_export_creates_missing_parents_and_removes_them_on_failure(
    adapter_run, tmp_path, capsys, monkeypatch
):
    from tuiwiz.after import export as export_module

    def full_disk(fr, staging):
        (staging / "adapter_model.safetensors").write_bytes(b"\0" * 10)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module, "write_adapter", full_disk)
    err = _export_error(capsys, adapter_run, tmp_path / "new" / "deeper" / "export")
    assert "No space left on device" in err and "nothing was exported" in err
    assert not (tmp_path / "new").exists()


# --- a prompt to suggest; an empty answer ---------------------------------------------------


def test_the_demo_run_suggests_a_prompt_the_demo_understands(adapter_run):
    from tuiwiz.after.examples import as_typed, example_prompt
    from tuiwiz.demo import DEMO_INSTRUCTION, demo_heldout_path, load_jsonl

    prompt = example_prompt(adapter_run)
    word = load_jsonl(demo_heldout_path())[0]["input"]
    assert prompt == f"{DEMO_INSTRUCTION}\n\n{word}"  # a held-out word: never trained on
    assert as_typed(prompt) == f"{DEMO_INSTRUCTION}\\n\\n{word}"


def test_another_run_suggests_a_prompt_from_its_own_data(adapter_run, tmp_path):
    import json

    from tuiwiz.after.examples import example_prompt

    rows = tmp_path / "chat.jsonl"
    rows.write_text(
        json.dumps({"messages": [{"role": "user", "content": "Capital of France?"}]}) + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "2+2?"},
                                   {"role": "assistant", "content": "4"}]}) + "\n"
    )  # fmt: skip
    preset = (adapter_run / "preset.toml").read_text()
    preset = preset.replace('"tuiwiz:demo-model"', '"/models/mine"')
    preset = preset.replace('"tuiwiz:demo-data"', json.dumps(str(rows)))
    preset = preset.replace('format = "alpaca"', 'format = "auto"')
    (adapter_run / "preset.toml").write_text(preset)
    assert example_prompt(adapter_run) == "2+2?"  # the first row has no answer to learn from
    rows.unlink()
    assert example_prompt(adapter_run) is None  # nothing to suggest: no error either


class _SilentChat:
    """A model that answers nothing."""

    name = "silent"

    def stream(self, messages, settings, adapter=True, stop=None):
        yield from (" \n" if adapter else "")


def test_chat_says_when_an_answer_is_empty(capsys, monkeypatch):
    from tuiwiz.commands import chat as chat_command

    session = ChatSession(settings=GenerationSettings(), compare=True)
    capsys.readouterr()
    assert chat_command.answer_once(_SilentChat(), session, "hi", as_json=False) == 0
    out = capsys.readouterr().out
    assert out.count("(empty answer)") == 2, out
    session = ChatSession(settings=GenerationSettings(), compare=False)
    assert chat_command.answer_once(_SilentChat(), session, "hi", as_json=False) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "" and "(empty answer)" in captured.err  # stdout: the answer
    typed = ["hi"]

    def fake_input(prompt: str = "") -> str:
        if not typed:
            raise EOFError  # Ctrl-D ends the loop
        return typed.pop()

    monkeypatch.setattr("builtins.input", fake_input)
    assert chat_command.interactive(_SilentChat(), session) == 0
    assert "(empty answer)" in capsys.readouterr().out
