"""After training, end to end on the CPU: eval, chat and export of a real demo run (4-bit QLoRA),
through the real CLI. The demo is trained once for the whole module."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import DEMO_RUN_SECRET

from tuiwiz.errors import TuiwizError
from tuiwiz.train.events import read_events
from tuiwiz.train.rundir import RunDir

pytestmark = pytest.mark.e2e

SECRET = DEMO_RUN_SECRET


def tuiwiz(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuiwiz", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def heldout() -> list[dict]:
    from tuiwiz import demo

    return demo.load_jsonl(demo.demo_heldout_path())


def user_prompt(row: dict) -> str:
    from tuiwiz import demo

    return demo.alpaca_user_content(row["instruction"], row["input"])


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (no interpreter start, models load in a second): exit code,
    stdout, stderr."""
    from tuiwiz.cli import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def private_env(tmp_path_factory, demo_model: Path):
    """Module fixtures run before the per-test private directories: give them their own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUIWIZ_CACHE_DIR", str(demo_model.parent))
        mp.setenv("TUIWIZ_DATA_DIR", str(tmp_path_factory.mktemp("after-data")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def run(demo_run, private_env) -> Path:
    """The shipped demo preset, trained once with HF_TOKEN = SECRET (validation split 0.05: 40
    held-out examples)."""
    return demo_run.path


@pytest.fixture(scope="module")
def chat(run: Path, private_env):
    """The run loaded once for chatting in this process (quantized base + adapter)."""
    from tuiwiz.after.generate import load_for_chat

    return load_for_chat(run)


def test_a_fresh_run_records_the_base_loss_at_step_0(run: Path):
    events = read_events(RunDir(run).events)
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["started", "eval"]  # before the first step
    base = events[1]
    assert base["step"] == 0 and base["base"] is True
    assert events[0]["data_format"] == "alpaca"
    later = [e for e in events if e["event"] == "eval" and not e.get("base")]
    assert later and all("base" not in e for e in later)
    assert later[-1]["eval_loss"] < base["eval_loss"]
    assert RunDir(run).status()["base_eval_loss"] == base["eval_loss"]


def test_eval_scores_the_fine_tuned_model_below_the_base(run: Path, capsys):
    code, out, err = cli(capsys, "eval", str(run), "--json")
    assert code == 0, err
    report = json.loads(out)
    base, tuned = report["base"], report["tuned"]
    assert tuned["loss"] < base["loss"]
    assert tuned["perplexity"] == pytest.approx(math.exp(tuned["loss"]))
    assert base["perplexity"] == pytest.approx(math.exp(base["loss"]))
    started = read_events(RunDir(run).events)[0]
    assert report["validation_examples"] == started["validation_examples"] == 40
    # Same base model, same split: the step-0 event (the trainer's batch-mean) and eval's
    # token-mean agree closely, so the adapter really was off at step 0.
    step0 = read_events(RunDir(run).events)[1]["eval_loss"]
    assert step0 == pytest.approx(base["loss"], rel=0.02)
    saved = json.loads((run / "eval.json").read_text())
    assert saved["tuned"] == tuned


def test_chat_prompt_answers_a_held_out_word_the_base_model_cannot(run: Path, chat):
    rows = heldout()
    # A held-out word the base model gets wrong (greedy, the default).
    row = next(r for r in rows if chat.reply(user_prompt(r), adapter=False) != r["output"])
    result = tuiwiz("chat", str(run), "--prompt", user_prompt(row), env={"HF_TOKEN": SECRET})
    assert result.returncode == 0, result.stderr
    assert result.stdout == row["output"] + "\n"  # plain text: the answer and nothing else
    # Nor library chatter on stderr (bitsandbytes' "Failed to load CPU gemm_4bit_forward from
    # kernels-community" on CPUs with AVX512-BF16, for one).
    assert "kernels" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert chat.reply(user_prompt(row)) == row["output"]
    # The streamed pieces make up the same answer.
    assert "".join(chat.stream(user_prompt(row))).strip() == row["output"]


def test_chat_compare_reads_the_prompt_from_stdin(run: Path, chat, capsys, monkeypatch):
    import io

    row = next(r for r in heldout() if chat.reply(user_prompt(r), adapter=False) != r["output"])
    monkeypatch.setattr("sys.stdin", io.StringIO(user_prompt(row) + "\n"))
    code, out, err = cli(capsys, "chat", str(run), "--prompt", "-", "--compare", "--json")
    assert code == 0, err
    answers = json.loads(out)
    assert answers["tuned"] == row["output"] and answers["base"] != row["output"]
    assert answers["settings"] == "max_new_tokens=256 temperature=0 (greedy)"
    code, out, err = cli(capsys, "chat", str(run), "--prompt", user_prompt(row), "--compare")
    assert code == 0, err
    assert out == f"[base]\n{answers['base']}\n\n[fine-tuned]\n{row['output']}\n"


def test_merged_export_loads_without_peft_and_answers_like_the_adapter(
    run: Path, chat, tmp_path: Path, demo_model: Path, capsys, monkeypatch
):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    out = tmp_path / "merged"
    code, _, err = cli(capsys, "export", str(run), "--out", str(out), "--merge")
    assert code == 0, err
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert not (out / "adapter_config.json").exists()
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["merged"]  # no partial folder left
    prompts = [user_prompt(r) for r in heldout()]
    # Greedy answers of the merged model, loaded by transformers alone (peft cannot be imported).
    script = textwrap.dedent(
        """
        import json, sys
        sys.modules["peft"] = None
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        folder, prompts = sys.argv[1], json.loads(sys.stdin.read())
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        answers = []
        for p in prompts:
            text = tok.apply_chat_template(
                [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
            )
            ids = tok(text, add_special_tokens=False, return_tensors="pt")
            with torch.no_grad():
                gen = model.generate(**ids, max_new_tokens=32, do_sample=False)
            answers.append(tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
        print(json.dumps([a.strip() for a in answers]))
        """
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        input=json.dumps(prompts),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert loaded.returncode == 0, loaded.stderr
    merged = json.loads(loaded.stdout.strip().splitlines()[-1])
    # The same adapter on the UNQUANTIZED base (float32, as the demo preset computes): merging
    # only adds B·A·scale into those weights, so the greedy answers must be identical.
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tuiwiz.after.generate import ChatModel, GenerationSettings

    base = AutoModelForCausalLM.from_pretrained(str(demo_model), dtype=torch.float32)
    full = ChatModel(PeftModel.from_pretrained(base, str(run / "adapter")).eval(), chat.tokenizer)
    unquantized = [full.reply(p, GenerationSettings(max_new_tokens=32)) for p in prompts]
    assert merged == unquantized
    # Against the 4-bit base the adapter was trained on, the merged model's logits differ (by up
    # to ~1.6 on this demo: nf4 rounding of the base weights), but its greedy answers agree on
    # (nearly) every held-out word: 24 of 24 when this test was written.
    quantized = [chat.reply(p, GenerationSettings(max_new_tokens=32)) for p in prompts]
    agree = sum(a == b for a, b in zip(merged, quantized))
    assert agree >= 0.9 * len(prompts), (merged, quantized)
    correct = sum(a == r["output"] for a, r in zip(merged, heldout()))
    assert correct >= 0.8 * len(prompts)
    for path in out.rglob("*"):
        assert SECRET.encode() not in path.read_bytes(), path


def test_adapter_export_with_model_card(run: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    out = tmp_path / "adapter"
    out.mkdir()  # an empty folder is fine
    code, stdout, err = cli(capsys, "export", str(run), "--out", str(out))
    assert code == 0, err
    assert stdout == f"tuiwiz: exported the adapter of {run.name} to {out}\n"
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"} <= names
    assert {"README.md", "tuiwiz-preset.toml"} <= names
    assert "training_args.bin" not in names  # a pickle: never exported
    readme = (out / "README.md").read_text()
    assert "library_name: peft" in readme and "## Metrics" in readme
    assert "| format | alpaca |" in readme and "| training examples | 760 |" in readme
    assert "base model validation loss (trainer, step 0)" in readme
    assert "```toml\n# tuiwiz preset" in readme and 'name_or_path = "tuiwiz:demo-model"' in readme
    from peft import PeftConfig

    assert PeftConfig.from_pretrained(str(out)).r == 16
    for path in out.rglob("*"):
        assert SECRET.encode() not in path.read_bytes(), path


def test_export_failure_leaves_nothing(run: Path, tmp_path: Path, monkeypatch):
    from tuiwiz.after import export as export_module
    from tuiwiz.after.loading import finished_run

    def broken(fr, staging):
        (staging / "adapter_model.safetensors").write_bytes(b"\0" * 10)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module, "write_adapter", broken)
    with pytest.raises(TuiwizError, match="No space left on device.*nothing was exported"):
        export_module.export(finished_run(run), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_bad_input_is_one_line_and_exit_2(run: Path, tmp_path: Path, capsys):
    def one_error_line(*args: str) -> str:
        code, out, err = cli(capsys, *args)
        assert code == 2, out + err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tuiwiz: error: "), err
        return lines[0]

    commands = (["eval"], ["chat", "--prompt", "x"], ["export", "--out", str(tmp_path / "o")])
    for command in commands:
        line = one_error_line(command[0], "no-such-run", *command[1:])
        assert "no run 'no-such-run'" in line
    # A run without a finished adapter (stopped before it finished).
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    (stopped / "preset.toml").write_text((run / "preset.toml").read_text())
    (stopped / "status.json").write_text('{"state": "stopped", "id": "stopped"}')
    for command in commands:
        line = one_error_line(command[0], str(stopped), *command[1:])
        assert "no finished adapter (it is stopped)" in line and "tuiwiz resume stopped" in line
    assert not (tmp_path / "o").exists()
    # An export folder that is not empty.
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    line = one_error_line("export", str(run), "--out", str(full))
    assert "not empty" in line and (full / "keep.txt").read_text() == "mine"
    # Settings out of range, and a run with no validation split to evaluate on.
    line = one_error_line("chat", str(run), "--prompt", "x", "--temperature", "-1")
    assert "--temperature" in line
    no_val = tmp_path / "no-val"
    no_val.mkdir()
    for name in ("status.json", "events.jsonl"):
        (no_val / name).write_text((run / name).read_text())
    preset = (run / "preset.toml").read_text()
    assert "validation_split = 0.05" in preset
    (no_val / "preset.toml").write_text(
        preset.replace("validation_split = 0.05", "validation_split = 0.0")
    )
    (no_val / "adapter").symlink_to(run / "adapter")
    line = one_error_line("eval", str(no_val))
    assert "no validation split" in line


def test_bad_input_through_the_real_cli(tmp_path: Path):
    """One case through a real process: one line on stderr, exit 2, no traceback."""
    result = tuiwiz("export", "no-such-run", "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.startswith("tuiwiz: error: no run 'no-such-run'")
    assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout
