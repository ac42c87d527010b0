"""GGUF export of a real demo run (4-bit QLoRA, trained once for the module), proven by llama.cpp
itself through llama-cpp-python: the same token ids as training for every held-out prompt, the
greedy answers of `tuiwiz chat`, and the validation perplexity of `tuiwiz eval`. Bad input fails
with one line and leaves nothing behind.

The llama.cpp checks need the gguf-test extra (it compiles llama.cpp); without it they report
themselves skipped with the line that installs it. CI installs it.
"""

from __future__ import annotations

import math
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

INSTALL = ".venv/bin/pip install -e '.[gguf-test]'"


def tuiwiz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuiwiz", *args], capture_output=True, text=True, timeout=600
    )


def cli(capsys, *args: str) -> tuple[int, str, str]:
    from tuiwiz.cli import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def heldout() -> list[dict]:
    from tuiwiz import demo

    return demo.load_jsonl(demo.demo_heldout_path())


def user_prompt(row: dict) -> str:
    from tuiwiz import demo

    return demo.alpaca_user_content(row["instruction"], row["input"])


@pytest.fixture(scope="module")
def llama_cpp():
    return pytest.importorskip(
        "llama_cpp",
        reason=f"llama-cpp-python is not installed: {INSTALL} (it compiles llama.cpp, ~10 min)",
    )


@pytest.fixture(scope="module")
def private_env(tmp_path_factory, demo_model: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUIWIZ_CACHE_DIR", str(demo_model.parent))
        mp.setenv("TUIWIZ_DATA_DIR", str(tmp_path_factory.mktemp("gguf-data")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def run(demo_run, private_env) -> Path:
    """The shipped demo preset, trained once (its answers are good)."""
    return demo_run.path


@pytest.fixture(scope="module")
def exported(run: Path, tmp_path_factory) -> dict[str, Path]:
    """The run exported as f16 and q8_0, through the CLI."""
    from tuiwiz.cli import main

    folders = {}
    for fmt in ("f16", "q8_0"):
        folders[fmt] = tmp_path_factory.mktemp(f"export-{fmt}") / "model"
        assert main(["export", str(run), "--gguf", fmt, "--out", str(folders[fmt])]) == 0
    return folders


@pytest.fixture(scope="module")
def chat(run: Path):
    from tuiwiz.after.generate import load_for_chat

    return load_for_chat(run)


@pytest.fixture(scope="module")
def evaluation(run: Path):
    """What `tuiwiz eval` reports (the function it prints)."""
    from tuiwiz.after.evaluate import evaluate
    from tuiwiz.after.loading import finished_run

    return evaluate(finished_run(run))


def load(llama_cpp, folder: Path):
    return llama_cpp.Llama(
        str(folder / "model.gguf"), n_ctx=256, logits_all=True, verbose=False, n_threads=2
    )


def llama_cpp_perplexity(llm, run: Path) -> tuple[float, int]:
    """Perplexity over the answer tokens of the run's validation split, as `tuiwiz eval`
    scores them (tuiwiz.after.evaluate), from llama.cpp's logits."""
    import numpy as np

    from tuiwiz.after.evaluate import validation_examples
    from tuiwiz.after.loading import finished_run, load_tokenizer

    fr = finished_run(run)
    total, count = 0.0, 0
    for example in validation_examples(fr, load_tokenizer(fr)):
        ids, labels = example["input_ids"], example["labels"]
        llm.reset()
        llm.eval(ids)
        logits = np.asarray(llm.scores[: len(ids)], dtype=np.float64)
        for t in range(1, len(ids)):
            if labels[t] == -100:
                continue
            row = logits[t - 1]  # token t is predicted from the tokens before it
            top = row.max()
            total -= row[labels[t]] - top - math.log(np.exp(row - top).sum())
            count += 1
    return math.exp(total / count), count


# --- the export --------------------------------------------------------------------------------


def test_the_export_holds_the_gguf_file_the_modelfile_the_card_and_the_preset(
    exported: dict[str, Path], run: Path
):
    import gguf

    folder = exported["f16"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "Modelfile",
        "README.md",
        "model.gguf",
        "tuiwiz-preset.toml",
    ]
    assert [p.name for p in folder.parent.iterdir()] == ["model"]  # no partial folder left
    reader = gguf.GGUFReader(folder / "model.gguf")

    def value(key: str):
        return reader.fields[key].contents()

    assert value("general.architecture") == "llama"
    assert value("general.file_type") == gguf.LlamaFileType.MOSTLY_F16
    assert value("tokenizer.ggml.model") == "gpt2"
    from tuiwiz.demo.build import CHAT_TEMPLATE

    assert value("tokenizer.chat_template") == CHAT_TEMPLATE
    assert value("tokenizer.ggml.eos_token_id") == 2 and not value("tokenizer.ggml.add_bos_token")
    quantized = gguf.GGUFReader(exported["q8_0"] / "model.gguf")
    q8 = {t.name: t.tensor_type for t in quantized.tensors}
    assert q8["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert q8["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32

    modelfile = (folder / "Modelfile").read_text()
    assert "FROM ./model.gguf\n" in modelfile
    assert '{{ else if eq .Role "user" }}<|user|>{{ .Content }}<|end|>' in modelfile
    assert 'PARAMETER stop "<|end|>"' in modelfile and "SYSTEM" not in modelfile
    card = (folder / "README.md").read_text()
    assert "library_name: gguf" in card and "ollama create" in card
    assert (folder / "tuiwiz-preset.toml").read_text() == (run / "preset.toml").read_text()


def test_llama_cpp_tokenizes_every_held_out_prompt_as_training_does(
    llama_cpp, exported: dict[str, Path], chat
):
    llm = load(llama_cpp, exported["f16"])
    for row in heldout():
        text = chat.render(user_prompt(row))
        from tuiwiz.after.generate import prompt_ids

        assert llm.tokenize(text.encode(), add_bos=False, special=True) == prompt_ids(
            text, chat.tokenizer
        )


def test_llama_cpp_answers_the_held_out_words_as_tuiwiz_chat_does(
    llama_cpp, exported: dict[str, Path], chat, run: Path, capsys
):
    rows = heldout()
    llm = load(llama_cpp, exported["f16"])
    same = 0
    for row in rows:
        # The chat template inside the GGUF file renders the prompt, as llama.cpp users get it.
        reply = llm.create_chat_completion(
            [{"role": "user", "content": user_prompt(row)}], temperature=0.0, max_tokens=32
        )
        same += reply["choices"][0]["message"]["content"].strip() == chat.reply(user_prompt(row))
    assert same >= 22, f"{same} of {len(rows)} answers as tuiwiz chat"
    # The chat fixture answers as the command does.
    code, out, err = cli(capsys, "chat", str(run), "--prompt", user_prompt(rows[0]))
    assert code == 0, err
    assert out.strip() == chat.reply(user_prompt(rows[0]))


@pytest.mark.parametrize("fmt, tolerance", [("f16", 0.02), ("q8_0", 0.05)])
def test_llama_cpp_perplexity_matches_tuiwiz_eval(
    llama_cpp, exported: dict[str, Path], run: Path, evaluation, fmt: str, tolerance: float
):
    perplexity, tokens = llama_cpp_perplexity(load(llama_cpp, exported[fmt]), run)
    assert tokens == evaluation.tokens
    assert perplexity == pytest.approx(evaluation.tuned.perplexity, rel=tolerance)


def fake_llama_quantize(folder: Path, body: str) -> None:
    """A `llama-quantize` on PATH: the command line of llama.cpp's tool, doing `body`."""
    tool = folder / "llama-quantize"
    tool.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)


def test_k_quants_go_through_llama_quantize(llama_cpp, run: Path, tmp_path: Path, monkeypatch):
    from tuiwiz.cli import main

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # llama.cpp's own quantization (the library llama-quantize is built on).
    fake_llama_quantize(
        bin_dir,
        "import llama_cpp\n"
        "source, target, kind = sys.argv[1:4]\n"
        "params = llama_cpp.llama_model_quantize_default_params()\n"
        "params.ftype = getattr(llama_cpp, 'LLAMA_FTYPE_MOSTLY_' + kind)\n"
        "sys.exit(llama_cpp.llama_model_quantize(source.encode(), target.encode(), params))",
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "q4"
    assert main(["export", str(run), "--gguf", "q4_k_m", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "Modelfile",
        "README.md",
        "model.gguf",
        "tuiwiz-preset.toml",
    ]
    llm = load(llama_cpp, out)
    assert llm.metadata["general.file_type"] == str(llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M)
    reply = llm.create_chat_completion(
        [{"role": "user", "content": user_prompt(heldout()[0])}], temperature=0.0, max_tokens=32
    )
    assert reply["choices"][0]["message"]["content"]


# --- bad input ---------------------------------------------------------------------------------


def one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tuiwiz: error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


def test_an_unfinished_run_is_refused(run: Path, tmp_path: Path, capsys):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("preset.toml", "status.json", "events.jsonl"):
        shutil.copy(run / name, unfinished / name)
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, "export", str(unfinished), "--gguf", "--out", str(out))
    one_line_error(code, stdout, err, "has no finished adapter")
    assert not out.exists()


def test_an_output_folder_that_is_not_empty_is_refused(run: Path, tmp_path: Path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    code, out, err = cli(capsys, "export", str(run), "--gguf", "--out", str(tmp_path / "out"))
    one_line_error(code, out, err, "exists and is not empty")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_too_little_disk_space_is_refused_before_anything_is_written(
    run: Path, tmp_path: Path, capsys, monkeypatch
):
    from tuiwiz.after import gguf_export

    monkeypatch.setattr(gguf_export, "free_bytes", lambda folder: 100_000)
    out = tmp_path / "deeper" / "out"
    code, stdout, err = cli(capsys, "export", str(run), "--gguf", "f16", "--out", str(out))
    one_line_error(code, stdout, err, "not enough disk space", "100.0 KB is free")
    assert list(tmp_path.iterdir()) == []  # not even the parent folder


def test_k_quants_without_llama_quantize_say_how_to_get_it(
    run: Path, tmp_path: Path, capsys, monkeypatch
):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = cli(
        capsys, "export", str(run), "--gguf", "q4_k_m", "--out", str(tmp_path / "o")
    )
    one_line_error(code, out, err, "llama-quantize on PATH", "build llama.cpp")


def test_a_failing_llama_quantize_leaves_nothing_behind(
    run: Path, tmp_path: Path, capsys, monkeypatch
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_llama_quantize(
        bin_dir, "print('main: failed to quantize model', file=sys.stderr)\nsys.exit(1)"
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "exports" / "q4"
    code, stdout, err = cli(capsys, "export", str(run), "--gguf", "q4_k_m", "--out", str(out))
    assert code == 2 and err.strip().splitlines()[-1] == (
        "tuiwiz: error: llama-quantize failed: main: failed to quantize model"
    )
    # No partial folder, no 16-bit file, not even the folder the export made for itself.
    assert not (tmp_path / "exports").exists()


def test_an_unsupported_architecture_gets_one_line_naming_the_supported_ones(
    run: Path, tmp_path: Path, capsys
):
    from transformers import GPT2Config

    model = tmp_path / "gpt2-model"
    GPT2Config(n_layer=1, n_embd=64, n_head=2, architectures=["GPT2LMHeadModel"]).save_pretrained(
        model
    )
    other = tmp_path / "other-run"
    shutil.copytree(run, other, ignore=shutil.ignore_patterns("checkpoints"))
    preset = (other / "preset.toml").read_text()
    (other / "preset.toml").write_text(
        preset.replace('name_or_path = "tuiwiz:demo-model"', f'name_or_path = "{model}"')
    )
    code, out, err = cli(capsys, "export", str(other), "--gguf", "--out", str(tmp_path / "o"))
    one_line_error(code, out, err, "GPT2LMHeadModel", "Llama", "Mistral", "Qwen2", "Qwen3")


def test_gguf_and_merge_are_two_exports(run: Path, tmp_path: Path, capsys):
    code, out, err = cli(
        capsys, "export", str(run), "--gguf", "--merge", "--out", str(tmp_path / "o")
    )
    one_line_error(code, out, err, "--gguf and --merge")
