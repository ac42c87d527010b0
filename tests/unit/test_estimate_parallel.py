"""Multi-GPU estimates (tuiwiz.estimate.parallel): per GPU, for DDP and FSDP over several
processes; single-process estimates are unchanged; `tuiwiz estimate` checks every GPU the run
uses and suggests FSDP when DDP does not fit."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from tuiwiz import config as cfg
from tuiwiz.cli import main
from tuiwiz.errors import ConfigError
from tuiwiz.estimate import estimate, suggest
from tuiwiz.estimate.parallel import DDP_BUCKET_CAP_MB, ddp_bucket_bytes, nccl_bytes
from tuiwiz.inspect.model import summarize
from tuiwiz.launch import Launch, launch_of

REFERENCE = Path(__file__).resolve().parent.parent / "fixtures" / "reference-configs"
NVML = Path(__file__).resolve().parent.parent / "fixtures" / "nvml"
GiB = 1 << 30
MiB = 1 << 20
# free memory of the fixture cards (tests/fixtures/nvml): an idle H100 80GB, and the 40 GB A100
# and 24 GB RTX 4090 of two_gpus_busy.json when nothing else runs on them
H100_FREE = 84967161856
A100_TOTAL = 42949672960
RTX4090_TOTAL = 25757220864

LLAMA3_70B = {  # bench/estimate_speed.py's Llama-3-70B-shaped config
    "model_type": "llama",
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
}


def tinyllama(**training) -> dict:
    return cfg.validate(
        {
            "model": {"name_or_path": str(REFERENCE / "tinyllama-1.1b-chat-v1.0")},
            "data": {"path": "x.jsonl", "max_seq_length": 1024},
            "training": {"bf16": True, **training},
        }
    )


def with_launch(config: dict, **launch) -> dict:
    """The config with a [launch] section (set directly: the estimate reads it defensively)."""
    out = copy.deepcopy(config)
    out["launch"] = {**(out.get("launch") or {}), **launch}
    return out


def by_name(est) -> dict[str, int]:
    return {c.name: c.bytes for c in est.components}


def test_one_process_is_the_single_gpu_estimate():
    config = tinyllama()
    single = estimate(config)
    assert (single.world_size, single.strategy) == (1, "single")
    # nproc_per_node 1 is one process whatever the strategy: no DDP or FSDP terms
    for strategy in ("ddp", "fsdp"):
        one = estimate(with_launch(config, nproc_per_node=1, strategy=strategy))
        assert by_name(one) == by_name(single) and one.total == single.total
    data = single.to_json()
    assert data["launch"] == {
        "strategy": "single",
        "world_size": 1,
        "nproc_per_node": 1,
        "nnodes": 1,
        "node_rank": 0,
        "per_gpu": True,
    }
    assert data["assumptions"]["effective_batch_size"] == 4 * 4


@pytest.mark.parametrize("world", [2, 4, 8])
def test_ddp_per_gpu_is_the_single_estimate_plus_ddp_terms(world):
    """DDP: every GPU holds the whole single-process run, plus DDP's gradient buckets (one
    more copy of the trainable gradients: gradient_as_bucket_view is off by default) and
    NCCL's communicator buffers."""
    config = tinyllama()
    single = estimate(config)
    ddp = estimate(with_launch(config, nproc_per_node=world, strategy="ddp"))
    assert (ddp.world_size, ddp.strategy) == (world, "ddp")
    terms, base = by_name(ddp), by_name(single)
    buckets, nccl = terms.pop("ddp_gradient_buckets"), terms.pop("nccl_buffers")
    assert terms == base
    assert ddp.total == single.total + buckets + nccl
    assert nccl == nccl_bytes(Launch("ddp", world))
    grads = single.component("gradients")
    # the same bytes as the gradients, rounded per bucket instead of per tensor
    assert grads - len(single.lora.tensors) * 512 <= buckets <= grads
    assert f"ddp over {world} GPUs" in " ".join(ddp.notes)


def test_ddp_buckets_follow_bucket_cap_mb():
    tensors = [((4096, 16), 2)] * 1000  # 1000 LoRA matrices of 128 KiB: 125 MiB in all
    total = sum(math.prod(s) * b for s, b in tensors)
    default = ddp_bucket_bytes(tensors, "cuda")
    assert total <= default < total + 512 * (total // (DDP_BUCKET_CAP_MB * MiB) + 2)
    assert ddp_bucket_bytes(tensors, "cuda", cap_mb=1) >= default  # more, smaller buckets
    assert ddp_bucket_bytes(tensors, "cpu") == total


@pytest.mark.parametrize("world", [2, 4, 8])
def test_fsdp_shards_scale_with_one_over_world_size(world):
    """FSDP full shard: weights, adapters, gradients and optimizer states are split across the
    GPUs; the 4-bit quantization constants, the gathered units and the activations are not."""
    config = tinyllama(optim="adamw_torch")
    two = by_name(estimate(with_launch(config, nproc_per_node=2, strategy="fsdp")))
    est = estimate(with_launch(config, nproc_per_node=world, strategy="fsdp"))
    terms = by_name(est)
    assert (est.world_size, est.strategy) == (world, "fsdp")
    for name in ("weights_unquantized", "lora_adapters", "gradients", "optimizer_states"):
        # x/world of the two-GPU figure x 2, up to the 512-byte rounding of every tensor shard
        assert terms[name] * world == pytest.approx(two[name] * 2, rel=0.01), name
    packed = sum(
        (m.in_features * m.out_features + 1) // 2 for m in est.summary.modules if m.quantizable
    )
    # the packed 4-bit values shrink with the world size, the per-block constants do not
    assert two["weights_quantized"] - terms["weights_quantized"] == pytest.approx(
        packed / 2 - packed / world, rel=0.01
    )
    for name in ("activations", "fsdp_gathered_params", "backward_buffers"):
        assert terms[name] == two[name], name
    assert "fsdp over" in " ".join(est.notes)


def test_fsdp_gathers_the_root_unit_and_two_layers():
    """At the peak (a layer's backward, BACKWARD_PRE): the root unit (embeddings, final norm,
    LM head, never freed between forward and backward), the current and the next decoder
    layer, and the current layer's gradients; floats gathered in bf16 (mixed precision)."""
    config = tinyllama()
    est = estimate(with_launch(config, nproc_per_node=4, strategy="fsdp"))
    s = est.summary
    root = 2 * (
        s.module("model.embed_tokens").own_numel()
        + s.module("lm_head").own_numel()
        + s.module("model.norm").own_numel()
    )
    layer0 = [m for m in s.modules if m.name.startswith("model.layers.0.")]
    packed = sum(m.own_numel() // 2 for m in layer0 if m.quantizable)
    norms = 2 * sum(m.own_numel() for m in layer0 if m.kind == "norm")
    lora = 2 * sum(math.prod(shape) for n, shape in est.lora.tensors if ".layers.0." in n)
    expected = root + 2 * (packed + norms + lora) + lora  # + the layer's bf16 gradients
    assert est.phase == "layer recompute + backward"
    assert est.component("fsdp_gathered_params") == pytest.approx(expected, abs=4 * 512)


def test_the_70b_preset_on_one_two_four_and_eight_gpus(tmp_path):
    """bench/estimate_speed.py's 70B preset: Llama-3-70B shape, 4-bit nf4, LoRA r16 on every
    linear layer, batch 1 x 2048 with checkpointing, paged_adamw_8bit, bf16.

    What the math says (per GPU): at batch 1 the QLoRA run fits one 80 GB H100 on its own
    (~51 GiB: 33 GiB of 4-bit weights, 8 GiB of float32 embeddings + LM head, 6.5 GiB of
    activations), so DDP works there too, at the same ~52 GiB on every GPU: DDP never shrinks
    what a GPU holds. On 40 GB A100s only FSDP fits: over 2 GPUs each holds half the 4-bit
    weights (~31 GiB); over 8 GPUs the run fits 24 GB cards (~17 GiB). Under FSDP tuiwiz's
    builders skip prepare_model_for_kbit_training, so embeddings, norms and the residual
    stream stay bf16 (half the float32 activations of the single-GPU run)."""
    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_70B))
    summary = summarize(str(tmp_path))
    config = cfg.validate(
        {
            "model": {"name_or_path": str(tmp_path)},
            "data": {"path": "x.jsonl", "max_seq_length": 2048},
            "training": {
                "per_device_train_batch_size": 1,
                "gradient_accumulation_steps": 16,
                "bf16": True,
            },
        }
    )

    def per_gpu(strategy: str, world: int, **training) -> int:
        c = with_launch(config, nproc_per_node=world, strategy=strategy)
        c["training"].update(training)
        return estimate(c, summary).total

    single = estimate(config, summary).total
    assert 48 * GiB < single < 54 * GiB and single < H100_FREE
    for world in (2, 4, 8):
        ddp = per_gpu("ddp", world)
        assert single < ddp < single + 1.5 * GiB  # a full copy, plus buckets and NCCL
        assert ddp > A100_TOTAL  # no 40 GB A100 holds it, however many there are
    fsdp = {world: per_gpu("fsdp", world) for world in (2, 4, 8)}
    assert fsdp[2] > fsdp[4] > fsdp[8]
    assert fsdp[2] < A100_TOTAL - 4 * GiB < single  # FSDP over 2 A100s fits
    assert fsdp[2] > RTX4090_TOTAL and fsdp[8] < RTX4090_TOTAL - 4 * GiB

    # With 6 sequences per GPU nothing fits one H100, and DDP cannot help; FSDP over 2, 4 or 8
    # H100s fits.
    assert per_gpu("ddp", 1, per_device_train_batch_size=6) > H100_FREE
    assert per_gpu("ddp", 8, per_device_train_batch_size=6) > H100_FREE
    for world in (2, 4, 8):
        assert per_gpu("fsdp", world, per_device_train_batch_size=6) < H100_FREE


def test_suggests_fsdp_when_ddp_does_not_fit_but_several_gpus_are_there():
    config = tinyllama(per_device_train_batch_size=8, gradient_checkpointing=False)
    config["data"]["max_seq_length"] = 2048
    ddp = with_launch(config, nproc_per_node=2, strategy="ddp")
    base = estimate(ddp)
    free = 16 * GiB
    assert base.total > free
    advice = suggest(ddp, free, base=base, gpus_free=[free, free])
    (fsdp,) = [s for s in advice if "FSDP" in s.title]
    assert fsdp.overrides == ['launch.strategy="fsdp"']
    assert (
        fsdp.total_bytes == estimate(with_launch(config, nproc_per_node=2, strategy="fsdp")).total
    )
    assert "same effective batch" not in fsdp.title  # the world size is unchanged
    # every other suggestion keeps the DDP launch and is estimated per GPU
    batch = next(s for s in advice if "per-device batch" in s.title)
    assert "same effective batch of 64" in batch.title  # 8 x 4 accumulation x 2 GPUs


def test_one_process_with_two_gpus_is_offered_fsdp_over_both():
    config = tinyllama(per_device_train_batch_size=8, gradient_checkpointing=False)
    config["data"]["max_seq_length"] = 2048
    advice = suggest(config, 16 * GiB, gpus_free=[16 * GiB, 20 * GiB])
    (fsdp,) = [s for s in advice if "FSDP" in s.title]
    # accumulation 4 over 2 processes becomes 2: the effective batch stays 8 x 4 = 32
    assert fsdp.overrides == [
        'launch.strategy="fsdp"',
        "launch.nproc_per_node=2",
        "training.gradient_accumulation_steps=2",
    ]
    assert "same effective batch of 32" in fsdp.title
    # no second GPU: nothing to shard over
    assert not [s for s in suggest(config, 16 * GiB, gpus_free=[16 * GiB]) if "FSDP" in s.title]


def test_launch_is_built_once_from_the_validated_section():
    assert launch_of({}) == Launch()
    assert launch_of({"launch": {"nproc_per_node": "auto"}}, gpus=0).nproc_per_node == 1
    assert launch_of({"launch": {"nproc_per_node": "auto"}}, gpus=3).world_size == 3
    two_nodes = launch_of({"launch": {"nproc_per_node": 4, "nnodes": 2, "strategy": "fsdp"}})
    assert (two_nodes.world_size, two_nodes.describe()) == (
        8,
        "fsdp over 8 GPUs (4 per node x 2 nodes)",
    )
    # The section's rules are checked in one place, with the rest of the configuration.
    for bad in ({"strategy": "zero3"}, {"nproc_per_node": 0}, {"nnodes": "two"}):
        with pytest.raises(ConfigError, match=r"\[launch\]"):
            cfg.validate({"model": {"name_or_path": "m"}, "data": {"path": "d"}, "launch": bad})


# --- tuiwiz estimate -------------------------------------------------------------------------


@pytest.fixture
def launch_preset(tmp_path, monkeypatch):
    """A preset file, and the [launch] section each test sets (applied when it is loaded)."""
    from tuiwiz import presets

    path = tmp_path / "p.toml"
    path.write_text(
        "schema_version = 1\nname = 'tiny'\n"
        f"[model]\nname_or_path = '{REFERENCE / 'tinyllama-1.1b-chat-v1.0'}'\n"
        "[data]\npath = 'x.jsonl'\nmax_seq_length = 2048\n"
        "[training]\nper_device_train_batch_size = 8\ngradient_accumulation_steps = 2\n"
        "gradient_checkpointing = false\nbf16 = true\n"
    )
    load = presets.load
    launch: dict = {}

    def load_with_launch(preset, overrides=(), **options):
        config, where = load(preset, list(overrides), **options)
        if launch:
            config = with_launch(config, **launch)
        return config, where

    monkeypatch.setattr(presets, "load", load_with_launch)
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "two_gpus_busy.json"))
    return str(path), launch


def report_json(capsys, *argv: str) -> dict:
    assert main(["estimate", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_checks_every_gpu_the_run_uses(capsys, launch_preset):
    preset, launch = launch_preset
    single = report_json(capsys, preset)
    assert single["gpus_used"] == [0] and [g["used"] for g in single["gpus"]] == [True, False]
    launch.update(nproc_per_node=2, strategy="fsdp")
    data = report_json(capsys, preset)
    assert data["launch"]["strategy"] == "fsdp" and data["launch"]["world_size"] == 2
    assert data["gpus_used"] == [0, 1] and all(g["used"] for g in data["gpus"])
    total = data["memory"]["total_bytes"]
    assert [g["fits"] for g in data["gpus"]] == [g["free_bytes"] >= total for g in data["gpus"]]
    # the tightest used GPU (the busy A100, 11 GiB free) decides
    assert data["headroom_bytes"] == min(g["free_bytes"] for g in data["gpus"]) - total
    assert data["assumptions"]["effective_batch_size"] == 8 * 2 * 2


def test_cli_table_is_per_gpu_with_a_verdict_per_gpu(capsys, launch_preset, monkeypatch):
    preset, launch = launch_preset
    monkeypatch.setenv("COLUMNS", "200")
    launch.update(nproc_per_node=2, strategy="ddp")
    assert main(["estimate", preset]) == 0
    out = capsys.readouterr().out
    assert "Per GPU, for ddp over 2 GPUs" in out and "total per GPU" in out
    assert "effective batch 32 = 8 per device x 2 accumulation x 2 GPUs" in " ".join(out.split())
    assert "GPU 0 NVIDIA A100-SXM4-40GB" in out and "GPU 1 NVIDIA GeForce RTX 4090" in out
    assert out.count("does not fit") + out.count("fits") >= 2
    assert "--set 'launch.strategy=\"fsdp\"'" in out  # FSDP is suggested


def test_cli_more_processes_than_gpus_does_not_fit(capsys, launch_preset):
    preset, launch = launch_preset
    launch.update(nproc_per_node=4, strategy="fsdp")
    data = report_json(capsys, preset, "--set", "data.max_seq_length=256")
    assert data["gpus_missing"] == 2 and data["fits"] is False
