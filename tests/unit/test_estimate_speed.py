"""The estimate of the speed and memory options: padding-free batches, Liger kernels, activation
offloading, unquantized weights kept in bf16, the dataset's real longest example, and the
ranking of suggestions (what keeps the result first)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tuiwiz import config as cfg
from tuiwiz import speed
from tuiwiz.cli import main
from tuiwiz.estimate import activations, estimate, layers, suggest
from tuiwiz.estimate.advice import CHANGES_DATA, KEEPS
from tuiwiz.estimate.lengths import TokenLengths
from tuiwiz.estimate.setup import from_config
from tuiwiz.inspect.lora import plan as lora_plan
from tuiwiz.inspect.model import summarize

ROOT = Path(__file__).resolve().parent.parent.parent
REFERENCE = ROOT / "tests" / "fixtures" / "reference-configs"
NVML = ROOT / "tests" / "fixtures" / "nvml"
LLAMA_8B = REFERENCE / "llama-3.1-8b"
GiB = 1 << 30
NO_EXTRAS = speed.Machine(cuda=True, liger=False, flash_attn=False)


def preset(model: Path = LLAMA_8B, **changes) -> dict:
    raw = {
        "model": {"name_or_path": str(model)},
        "data": {"path": "x.jsonl", "max_seq_length": 2048},
        "training": {"per_device_train_batch_size": 4, "bf16": True},
    }
    for key, value in changes.items():
        section, name = key.split("__")
        raw.setdefault(section, {})[name] = value
    return cfg.validate(raw)


def walk(config: dict):
    summary = summarize(config["model"]["name_or_path"])
    setup = from_config(config)
    plan = layers.plan_layers(summary)
    lora = lora_plan(summary, config["lora"])
    return activations.walk(setup, plan, layers.adapted_per_layer(plan, lora), True), setup


def test_padding_free_is_one_row_like_packing():
    padded = from_config(preset())
    free = from_config(preset(training__padding_free=True))
    assert padded.padded and not free.padded and free.one_row
    same = estimate(preset(data__packing=True), machine=NO_EXTRAS)
    assert estimate(preset(training__padding_free=True)).total == same.total
    # sdpa gets a block mask over the whole row; flash-attn the sequence bounds only
    sdpa = estimate(preset(training__padding_free=True))
    flash = estimate(
        preset(training__padding_free=True, model__attn_implementation="flash_attention_2")
    )
    assert sdpa.total > flash.total
    assert any("padding-free batches with sdpa" in n for n in sdpa.notes)


def test_liger_keeps_two_of_the_three_mlp_tensors():
    plain, _ = walk(preset(training__gradient_checkpointing=False))
    liger, setup = walk(
        preset(training__gradient_checkpointing=False, training__use_liger_kernel=True)
    )
    assert setup.liger
    # act(gate) is recomputed in backward from gate and up (LigerSiLUMulFunction)
    for a, b in zip(plain.per_layer, liger.per_layer):
        assert b["MLP activations"] * 3 == a["MLP activations"] * 2
    assert liger.per_layer[0]["norm inputs"] == plain.per_layer[0]["norm inputs"]  # float32 X
    off = estimate(preset(training__gradient_checkpointing=False))
    on = estimate(preset(training__gradient_checkpointing=False, training__use_liger_kernel=True))
    assert on.total < off.total


def test_liger_on_a_model_it_has_no_kernels_for_changes_nothing(tmp_path):
    raw = {"model_type": "gpt2", "n_embd": 256, "n_layer": 2, "n_head": 4, "vocab_size": 512}
    (tmp_path / "config.json").write_text(json.dumps(raw))
    plain = estimate(preset(tmp_path))
    liger = estimate(preset(tmp_path, training__use_liger_kernel=True))
    assert liger.total == plain.total
    assert any("Liger has no kernels for gpt2" in n for n in liger.notes)


def test_offloading_moves_the_layer_inputs_to_cpu_ram():
    long = {"data__max_seq_length": 16384, "training__per_device_train_batch_size": 1}
    kept = estimate(preset(**long))
    off = estimate(preset(**long, training__activation_offloading=True))
    acts, setup = walk(preset(**long))
    inputs = sum(acts.layer_inputs) * setup.tokens  # 32 layers x 16k tokens x 4096 x float32
    assert inputs == 32 * 16384 * 4096 * 4
    assert kept.component("activations") - off.component("activations") > 0.8 * inputs
    (note,) = [n for n in off.notes if "pinned CPU RAM" in n]
    offloaded = inputs + acts.final_norm * setup.tokens
    assert f"{offloaded / GiB:.1f} GiB" in note
    assert off.to_json()["assumptions"]["activation_offloading"] is True


def test_bf16_unquantized_weights_halve_them_and_the_residual_stream():
    fp32 = estimate(preset())
    bf16 = estimate(preset(quantization__upcast_unquantized=False))
    # Llama-3.1-8B: 2 x 128,256 x 4,096 embedding and LM head parameters, plus the norms
    assert fp32.component("weights_unquantized") == pytest.approx(3.92 * GiB, rel=0.01)
    assert bf16.component("weights_unquantized") * 2 == pytest.approx(
        fp32.component("weights_unquantized"), rel=0.001
    )
    acts32, _ = walk(preset())
    acts16, _ = walk(preset(quantization__upcast_unquantized=False))
    assert acts16.layer_inputs[0] * 2 == acts32.layer_inputs[0]


def test_the_longest_example_caps_the_batch_only_when_it_is_known():
    lengths = TokenLengths(tuple([100] * 90 + [700] * 10), examples=100)
    capped = estimate(preset(), lengths=lengths)
    assert capped.setup.seq == 700 and capped.total < estimate(preset()).total
    assert any("longest example is 700 tokens" in n for n in capped.notes)
    sampled = TokenLengths(lengths.lengths, examples=5000)  # a sample: the longest is unknown
    est = estimate(preset(), lengths=sampled)
    assert est.setup.seq == 2048
    assert any("measured on a sample of 100 of 5,000" in n for n in est.notes)
    packed = estimate(preset(data__packing=True), lengths=lengths, machine=NO_EXTRAS)
    assert packed.setup.seq == 2048  # packing fills rows to max_seq_length
    assert lengths.cut_phrase(512) == "cuts 10% of the examples"
    assert sampled.cut_phrase(50) == "cuts 100% of the examples (of a sample of 100)"
    assert lengths.cut_phrase(4096) == "cuts none of the examples"


def test_shorter_max_seq_length_says_what_it_cuts():
    config = preset(
        training__per_device_train_batch_size=16, training__gradient_checkpointing=False
    )
    lengths = TokenLengths(tuple(range(1, 2001)), examples=2000)
    found = suggest(config, 20 * GiB, machine=NO_EXTRAS, lengths=lengths)
    (shorter,) = [s for s in found if "max_seq_length" in s.title and "together" not in s.title]
    n = int(shorter.title.split("max_seq_length ")[1].split()[0])
    assert n < 2000  # starts below the longest example, not below max_seq_length
    share = sum(x > n for x in range(1, 2001)) / 2000
    assert f"cuts {100 * share:.0f}% of the examples" in shorter.title


def test_the_issues_example_first_keeps_the_examples_and_the_batch(capsys, tmp_path, monkeypatch):
    """Llama-3.1-8B at 4,096 tokens, batch 8, on a 12 GB card: the first suggestions train the
    same model (bf16 unquantized weights, activation offloading, the same effective batch in
    smaller steps), not max_seq_length 512."""
    path = tmp_path / "p.toml"
    path.write_text(
        f'[model]\nname_or_path = "{LLAMA_8B}"\n[data]\nmax_seq_length = 4096\n'
        "[training]\nper_device_train_batch_size = 8\ngradient_accumulation_steps = 2\n"
        "bf16 = true\n"
    )
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "rtx3060_12gb.json"))
    assert main(["estimate", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] is False
    found = data["suggestions"]
    costs = [s["cost"] for s in found]
    assert costs == sorted(costs) and costs[0] == KEEPS
    first = found[0]
    assert first["fits"] and "max_seq_length" not in " ".join(first["overrides"])
    titles = [s["title"] for s in found]
    assert any("activation offloading" in t for t in titles)
    assert any("unquantized weights" in t for t in titles)
    cut = next(i for i, s in enumerate(found) if "max_seq_length" in s["title"])
    assert found[cut]["cost"] == CHANGES_DATA
    assert all(s["cost"] == KEEPS for s in found[:3])
    # every suggestion is machine-applicable and its total is what the estimate says
    config = cfg.validate(
        cfg.apply_overrides(
            cfg.validate(
                {
                    "model": {"name_or_path": str(LLAMA_8B)},
                    "data": {"path": "x.jsonl", "max_seq_length": 4096},
                    "training": {
                        "per_device_train_batch_size": 8,
                        "gradient_accumulation_steps": 2,
                        "bf16": True,
                    },
                }
            ),
            first["overrides"],
        )
    )
    assert estimate(config).total == first["total_bytes"]


def test_suggestions_offer_liger_and_flash_attention_where_they_work():
    config = preset(
        training__per_device_train_batch_size=16, training__gradient_checkpointing=False
    )
    full = speed.Machine(cuda=True, liger=True, flash_attn=True)
    titles = [s.title for s in suggest(config, 20 * GiB, machine=full)]
    assert any(t.startswith("Liger kernels") for t in titles)
    assert any(t.startswith("flash_attention_2") for t in titles)
    titles = [s.title for s in suggest(config, 20 * GiB, machine=NO_EXTRAS)]
    assert not any("Liger" in t or "flash_attention_2" in t for t in titles)


def test_fast_is_estimated_as_it_resolves_on_the_machine():
    config = preset(training__speed="fast")
    est = estimate(config, machine=NO_EXTRAS)
    assert est.setup.padding_free and not est.setup.liger
    assert est.notes[0].startswith("speed = fast: padding-free batches, sdpa (Liger kernels off")
    full = estimate(config, machine=speed.Machine(cuda=True, liger=True, flash_attn=True))
    assert full.setup.liger and full.setup.attn == "flash_attention_2"


def load_bench():
    spec = importlib.util.spec_from_file_location(
        "gpu_memory_bench_pin", ROOT / "bench" / "gpu_memory.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_default_settings_still_match_the_30_measured_h200_points():
    """The options default to off: the estimate of every measured point stays within 7% of
    the NVML peak measured on the H200 (bench/results/gpu_memory-h200.json)."""
    bench = load_bench()
    rows = json.loads((ROOT / "bench" / "results" / "gpu_memory-h200.json").read_text())
    fields = {f.name for f in dataclasses.fields(bench.Point)}
    points = [bench.Point(**{k: v for k, v in row.items() if k in fields}) for row in rows]
    assert len(points) == 30
    bench.add_estimates(points)
    for p in points:
        assert abs(p.estimate - p.nvml) <= 0.07 * p.nvml, (p.model, p.batch, p.seq)
