"""`tuiwiz inspect` and tuiwiz.inspect.model: exact counts from config.json alone, the summary
cache, and bad input as one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tuiwiz.cli import main
from tuiwiz.inspect import model as inspect_model

REFERENCE = Path(__file__).resolve().parent.parent / "fixtures" / "reference-configs"


def write_config(folder: Path, **config) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def gpt2_dir(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "gpt2",
        model_type="gpt2",
        vocab_size=300,
        n_embd=64,
        n_layer=2,
        n_head=4,
        n_positions=64,
    )


def exact_counts(path: Path) -> tuple[int, dict]:
    config = inspect_model.load_config(str(path))
    meta = inspect_model.build_meta_model(config)
    return sum(p.numel() for p in meta.parameters()), dict(inspect_model.linear_modules(meta))


def inspect_json(capsys, *args: str) -> dict:
    assert main(["inspect", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", ["smollm2-135m", "qwen2.5-0.5b", "tinyllama-1.1b-chat-v1.0"])
def test_reference_models_exact_counts(capsys, name):
    data = inspect_json(capsys, str(REFERENCE / name))
    total, linears = exact_counts(REFERENCE / name)
    assert data["total_params"] == total
    assert {
        k: {"count": v["count"], "params": v["params"]} for k, v in data["linear_modules"].items()
    } == linears


def test_published_sizes(capsys):
    """The counts the model cards publish (SmolLM2-135M: 134,515,008; Qwen2.5-0.5B: 494M with
    tied embeddings; TinyLlama: 1,100,048,384)."""
    sizes = {
        n: inspect_json(capsys, str(REFERENCE / n))["total_params"]
        for n in ("smollm2-135m", "qwen2.5-0.5b", "tinyllama-1.1b-chat-v1.0")
    }
    assert sizes == {
        "smollm2-135m": 134_515_008,
        "qwen2.5-0.5b": 494_032_768,
        "tinyllama-1.1b-chat-v1.0": 1_100_048_384,
    }


def test_gpt2_conv1d_through_the_meta_path_then_the_cache(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(tmp_path / "cache"))
    path = gpt2_dir(tmp_path)
    first = inspect_json(capsys, str(path))
    assert first["source"] == "meta"
    total, linears = exact_counts(path)
    assert first["total_params"] == total
    assert set(first["linear_modules"]) == {"c_attn", "c_proj", "c_fc"} == set(linears)
    assert first["architecture"]["tied_embeddings"] is True
    again = inspect_json(capsys, str(path))
    assert again["source"] == "cache"
    assert {k: v for k, v in again.items() if k != "source"} == {
        k: v for k, v in first.items() if k != "source"
    }


def test_cache_is_keyed_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(tmp_path / "cache"))
    path = gpt2_dir(tmp_path)
    small = inspect_model.summarize(str(path)).total_params
    write_config(
        path, model_type="gpt2", vocab_size=300, n_embd=64, n_layer=3, n_head=4, n_positions=64
    )
    bigger = inspect_model.summarize(str(path))
    assert bigger.source == "meta" and bigger.total_params > small


def test_json_report_shape(capsys):
    data = inspect_json(capsys, str(REFERENCE / "smollm2-135m"), "--r", "8")
    assert isinstance(data["total_params"], int)
    q = data["linear_modules"]["q_proj"]
    assert (q["count"], q["in_features"], q["out_features"]) == (30, 576, 576)
    assert q["lora_params"] == 30 * 8 * (576 + 576)
    arch = data["architecture"]
    assert (arch["layers"], arch["heads"], arch["kv_heads"], arch["vocab_size"]) == (
        30,
        9,
        3,
        49152,
    )
    assert arch["context_length"] == 8192 and arch["tied_embeddings"] is True
    lora = data["lora_all_linear"]
    assert lora["trainable_params"] == sum(
        e["lora_params"] for e in data["linear_modules"].values()
    )


def test_table_output(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["inspect", str(REFERENCE / "qwen2.5-0.5b")]) == 0
    out = capsys.readouterr().out
    assert "qwen2 (Qwen2ForCausalLM)" in out and "494,032,768" in out and "gate_proj" in out


def bad(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("tuiwiz: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_missing_directory(capsys, tmp_path):
    assert "no such model directory" in bad(capsys, "inspect", str(tmp_path / "nope"))


def test_directory_without_config(capsys, tmp_path):
    assert "no config.json" in bad(capsys, "inspect", str(tmp_path))


def test_config_not_json(capsys, tmp_path):
    (tmp_path / "config.json").write_text("{broken")
    assert "not valid JSON" in bad(capsys, "inspect", str(tmp_path))


def test_config_without_model_type(capsys, tmp_path):
    write_config(tmp_path, hidden_size=8)
    assert "has no model_type" in bad(capsys, "inspect", str(tmp_path))


def test_unknown_architecture(capsys, tmp_path):
    write_config(tmp_path, model_type="not-a-real-arch", hidden_size=8)
    assert "transformers cannot read architecture 'not-a-real-arch'" in bad(
        capsys, "inspect", str(tmp_path)
    )


def test_not_a_causal_lm(capsys, tmp_path):
    write_config(
        tmp_path,
        model_type="t5",
        vocab_size=50,
        d_model=16,
        num_layers=1,
        num_heads=2,
        d_ff=32,
        d_kv=8,
    )
    assert "cannot build a causal language model" in bad(capsys, "inspect", str(tmp_path))


def test_hub_id_offline(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    err = bad(capsys, "inspect", "some-org/some-model")
    assert "cannot fetch config.json from the Hugging Face Hub" in err


def test_bad_rank(capsys):
    assert "--r must be > 0" in bad(capsys, "inspect", str(REFERENCE / "smollm2-135m"), "--r", "0")


def test_unknown_architecture_in_a_real_process(tmp_path):
    write_config(tmp_path, model_type="not-a-real-arch")
    result = subprocess.run(
        [sys.executable, "-m", "tuiwiz", "inspect", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("tuiwiz: error: ")


def test_hub_id_without_network_in_a_real_process(tmp_path):
    """No HF_HUB_OFFLINE: the name lookup fails at once and gives one line, not huggingface_hub's
    retries (on a machine with network this asks the Hub for a repo that does not exist)."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "HF_HUB_OFFLINE"}
    env["HF_HOME"] = str(tmp_path / "hf")
    result = subprocess.run(
        [sys.executable, "-m", "tuiwiz", "inspect", "tuiwiz-test/no-such-model-4f2a"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "cannot fetch config.json from the Hugging Face Hub" in result.stderr


def test_check_target_modules_accepts_dotted_suffixes():
    inspect_model.check_target_modules(["self_attn.q_proj", "v_proj"], ["q_proj", "v_proj"])
    with pytest.raises(inspect_model.ModelError, match="has no w_pack"):
        inspect_model.check_target_modules(["w_pack"], ["q_proj"])


def test_the_fast_path_imports_no_heavy_library(tmp_path):
    """inspect and estimate of a Llama-family config must not pay for torch / transformers
    (seconds on a small machine): the whole command runs on config.json and the standard
    library (speed itself is measured in bench/estimate_speed.py)."""
    write_config(
        tmp_path,
        model_type="llama",
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=100,
    )
    code = (
        "import sys\n"
        "from tuiwiz.cli import main\n"
        f"main(['inspect', {str(tmp_path)!r}, '--json'])\n"
        "heavy = {'torch', 'transformers', 'peft', 'bitsandbytes', 'datasets', 'trl'}\n"
        "print(sorted(heavy & set(sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout)["source"] == "config"
    assert result.stderr.strip().splitlines()[-1] == "[]"


# --- absurd or wrong-typed values in config.json: one line naming the key and the file ----------

SMOLLM = json.loads((REFERENCE / "smollm2-135m" / "config.json").read_text())


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("vocab_size", 1e12, "whole number"),  # a float: JSON 1e12
        ("vocab_size", -5, "at least 1"),
        ("vocab_size", 0, "at least 1"),
        ("vocab_size", 1.5, "whole number"),
        ("vocab_size", "abc", "whole number"),
        ("vocab_size", True, "whole number"),
        ("vocab_size", 10**12, "at most"),
        ("hidden_size", 10**9, "at most"),
        ("num_hidden_layers", 10**7, "at most"),  # the fast path would loop for minutes
        ("num_attention_heads", 0, "at least 1"),
        ("intermediate_size", -1, "at least 1"),
    ],
)
def test_absurd_config_values_are_one_line(capsys, tmp_path, key, value, needle):
    folder = write_config(tmp_path / "m", **{**SMOLLM, key: value})
    err = bad(capsys, "inspect", str(folder))
    assert f"{folder / 'config.json'}: " in err and key in err and needle in err, err


def test_absurd_values_on_the_exact_path_too(capsys, tmp_path):
    """gpt2 goes through transformers (the meta device): the check comes first there too."""
    folder = gpt2_dir(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "n_layer": -2}))
    err = bad(capsys, "inspect", str(folder))
    assert "n_layer" in err and "at least 1" in err and str(folder / "config.json") in err


def test_a_nested_text_config_is_checked(tmp_path):
    from tuiwiz.errors import ModelError

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "x", "text_config": {"vocab_size": -1}}))
    with pytest.raises(ModelError, match=r"text_config\.vocab_size"):
        inspect_model.read_raw_config(path)


def test_null_and_real_values_are_accepted(tmp_path):
    path = tmp_path / "config.json"
    raw = {**SMOLLM, "head_dim": None, "num_key_value_heads": None, "vocab_size": 262144}
    path.write_text(json.dumps(raw))
    assert inspect_model.read_raw_config(path)["vocab_size"] == 262144
