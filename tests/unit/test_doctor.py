"""`tuiwiz doctor` on fake machines: recorded NVML readings, an injected torch build, disk and
CUDA probe; and the real command on this machine (no GPU, no network)."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from tuiwiz import doctor
from tuiwiz.cli import main
from tuiwiz.compat import TorchBuild
from tuiwiz.doctor import FAIL, OK, WARN, Facts, probe
from tuiwiz.gpu import read_fake

NVML = Path(__file__).resolve().parents[1] / "fixtures" / "nvml"
GiB = 1 << 30
HEALTHY_PROBE = {"cuda_available": True, "bnb": "ok", "flash_attn": "2.7.4"}


def real_gpus(name: str, **changes):
    """Recorded readings, presented as the real NVML (so that the CUDA probe runs)."""
    return dataclasses.replace(read_fake(NVML / name), source="nvml", **changes)


def facts(tmp_path: Path, **given) -> Facts:
    base = {
        "gpus": real_gpus("h100_idle.json"),  # driver 550.90.07: CUDA 12.4, compute 9.0
        "torch": TorchBuild("2.13.0+cu124", cuda="12.4"),
        "environ": {
            "HF_HOME": str(tmp_path / "hf"),
            "HF_TOKEN": "hf_secretsecret123",
            "TUIWIZ_CACHE_DIR": str(tmp_path / "cache"),
        },
        "cwd": tmp_path,
        "disk_usage": lambda path: SimpleNamespace(free=500 * GiB),
        "hub": lambda: None,
        "cuda_probe": lambda: dict(HEALTHY_PROBE),
        "which": lambda name: f"/usr/bin/{name}" if name == "tmux" else None,
    }
    return Facts(**{**base, **given})


def by_name(checks) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


def test_a_healthy_gpu_server(tmp_path):
    checks = doctor.run_checks(facts(tmp_path))
    named = by_name(checks)
    assert doctor.exit_code(checks) == 0
    assert [c for c in checks if c.status == FAIL] == []
    assert named["gpu 0"].status == OK
    assert "NVIDIA H100 80GB HBM3, 80 GiB" in named["gpu 0"].detail
    assert "compute 9.0: bf16 and flash-attention 2" in named["gpu 0"].detail
    assert named["cuda"].status == OK and "CUDA 12.4" in named["cuda"].detail
    assert named["bnb backend"].status == OK and "runs on the GPU" in named["bnb backend"].detail
    assert named["flash-attn"].detail == "flash-attn 2.7.4 imports"
    assert all(c.fix for c in checks if c.status != OK)  # every ! and ✗ says what to do


def test_a_driver_older_than_torchs_cuda_build(tmp_path):
    newer_minor = by_name(
        doctor.run_checks(facts(tmp_path, torch=TorchBuild("2.13.0", cuda="12.8")))
    )["cuda"]
    assert newer_minor.status == WARN
    assert "built for CUDA 12.8, but the driver (550.90.07) supports CUDA 12.4" in (
        newer_minor.detail
    )
    assert "CUDA 12.4 or older" in newer_minor.fix and "update the NVIDIA driver" in newer_minor.fix
    checks = doctor.run_checks(facts(tmp_path, torch=TorchBuild("2.13.0", cuda="13.0")))
    newer_major = by_name(checks)["cuda"]
    assert newer_major.status == FAIL and "torch cannot use the GPUs" in newer_major.detail
    assert doctor.exit_code(checks) == 1


def test_a_cpu_build_of_torch_on_a_gpu_machine(tmp_path):
    checks = doctor.run_checks(facts(tmp_path, torch=TorchBuild("2.13.0+cpu")))
    cuda = by_name(checks)["cuda"]
    assert cuda.status == FAIL and "CPU build, but this machine has NVIDIA GPUs" in cuda.detail
    assert "CUDA 12.4 or older" in cuda.fix
    assert doctor.exit_code(checks) == 1


def test_a_full_disk(tmp_path):
    checks = doctor.run_checks(
        facts(tmp_path, disk_usage=lambda path: SimpleNamespace(free=200 << 20))
    )
    disk = [c for c in checks if c.name == "disk"]
    assert len(disk) == 1  # runs, the Hub cache and tuiwiz's cache share one filesystem here
    assert disk[0].status == FAIL
    assert "0.2 GiB free (runs, Hugging Face cache, tuiwiz cache)" in disk[0].detail
    assert "--output-dir DIR" in disk[0].fix and "HF_HOME=DIR" in disk[0].fix
    assert doctor.exit_code(checks) == 1


def test_a_tight_disk_is_a_note(tmp_path):
    disk = by_name(
        doctor.run_checks(facts(tmp_path, disk_usage=lambda path: SimpleNamespace(free=5 * GiB)))
    )["disk"]
    assert disk.status == WARN and "tight for runs, Hugging Face cache" in disk.detail


def test_no_gpu_is_calm(tmp_path):
    no_gpu = read_fake(NVML / "no_driver.json")
    probed = []
    checks = doctor.run_checks(
        facts(
            tmp_path,
            gpus=dataclasses.replace(no_gpu, source="nvml"),
            torch=TorchBuild("2.13.0+cpu"),
            cuda_probe=lambda: probed.append(1) or {},
        )
    )
    named = by_name(checks)
    assert doctor.exit_code(checks) == 0
    assert named["gpu"].status == WARN
    assert "the NVIDIA driver (libnvidia-ml) is not installed; training runs on the CPU" in (
        named["gpu"].detail
    )
    assert named["cuda"].status == OK and "CPU build" in named["cuda"].detail
    assert probed == []  # nothing to try torch on


def test_an_older_gpu_gets_the_float16_settings(tmp_path):
    status = real_gpus("h100_idle.json")
    t4 = dataclasses.replace(status.gpus[0], name="Tesla T4", compute_capability="7.5")
    gpu = by_name(doctor.run_checks(facts(tmp_path, gpus=dataclasses.replace(status, gpus=[t4]))))
    assert gpu["gpu 0"].status == WARN and "no bf16" in gpu["gpu 0"].detail
    assert "--set training.fp16=true" in gpu["gpu 0"].fix
    assert gpu["flash-attn"].status == OK  # installed and fine (the probe says so)


def test_bitsandbytes_without_its_cuda_backend(tmp_path):
    broken = {"cuda_available": True, "bnb": "RuntimeError: libcudart.so.12 not found"}
    named = by_name(doctor.run_checks(facts(tmp_path, cuda_probe=lambda: broken)))
    assert named["bnb backend"].status == FAIL
    assert "libcudart.so.12 not found" in named["bnb backend"].detail
    assert named["flash-attn"].status == OK and "not installed" in named["flash-attn"].detail


def test_flash_attn_that_does_not_import(tmp_path):
    broken = {**HEALTHY_PROBE, "flash_attn": None, "flash_attn_error": "ImportError: undefined"}
    check = by_name(doctor.run_checks(facts(tmp_path, cuda_probe=lambda: broken)))["flash-attn"]
    assert check.status == WARN and "--force-reinstall" in check.fix


def test_recorded_gpus_are_not_probed(tmp_path):
    checks = doctor.run_checks(facts(tmp_path, gpus=read_fake(NVML / "h100_idle.json")))
    named = by_name(checks)
    assert named["bnb backend"].status == WARN
    assert "recorded readings" in named["bnb backend"].detail
    assert "(recorded readings)" in named["gpu 0"].detail


def test_hub_token_and_multiplexer(tmp_path):
    unreachable = by_name(
        doctor.run_checks(facts(tmp_path, hub=lambda: "cannot resolve huggingface.co"))
    )
    assert unreachable["hub"].status == WARN and "HF_HUB_OFFLINE=1" in unreachable["hub"].fix
    environ = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    offline = facts(tmp_path, environ=environ, hub=lambda: pytest.fail("asked"))
    offline.which = lambda name: None
    named = by_name(doctor.run_checks(offline))
    assert named["hub"].status == OK and "offline mode" in named["hub"].detail
    assert named["hf token"].status == WARN and "export HF_TOKEN" in named["hf token"].fix
    assert named["multiplexer"].status == OK
    assert "training survives a dropped SSH session" in named["multiplexer"].detail


def test_the_token_is_never_shown(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_secretsecret123")
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "h100_idle.json"))
    main(["doctor"])
    main(["doctor", "--json"])
    out = capsys.readouterr().out
    assert "a Hugging Face token is set (HF_TOKEN)" in out
    assert "hf_secretsecret123" not in out


def test_quick_checks_skip_the_slow_ones(tmp_path):
    quick = facts(tmp_path, hub=lambda: pytest.fail("hub"), cuda_probe=lambda: pytest.fail("p"))
    checks = doctor.run_checks(quick, quick=True)
    assert {"hub", "bnb backend"}.isdisjoint(c.name for c in checks)
    assert doctor.problems_line(checks) is None
    cpu = doctor.run_checks(dataclasses.replace(quick, torch=TorchBuild("2.13.0")), quick=True)
    assert doctor.problems_line(cpu) == (
        "✗ torch is a CPU build, but this machine has NVIDIA GPUs: training would not use them "
        "· `tuiwiz doctor` says how to fix it"
    )


def test_the_hub_check_is_bounded_and_counts_any_answer():
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)  # any HTTP answer means the Hub is there
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}"
        assert probe.hub_unreachable({"HF_ENDPOINT": endpoint}) is None
    finally:
        server.shutdown()
    closed = probe.hub_unreachable({"HF_ENDPOINT": endpoint}, timeout=1.0)
    assert closed is not None and closed.startswith("127.0.0.1")


def test_the_cuda_probe_runs_on_this_machine():
    """The probe script itself: on a machine without CUDA it says so instead of crashing."""
    found = probe.cuda_probe(timeout=120)
    assert "probe_error" not in found, found
    import torch

    assert found["cuda_available"] == torch.cuda.is_available()


def test_the_command_on_this_machine_without_torch(tmp_path):
    """As a user runs it: one line per check, JSON for scripts, exit 0 on a CPU-only machine
    (no ✗), and torch is never imported."""
    code = (
        "import sys, json; from tuiwiz.cli import main; rc = main(['doctor', '--json']); "
        "print('torch' in sys.modules, rc, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "TUIWIZ_FAKE_NVML": str(NVML / "no_driver.json")},
    )
    report = json.loads(done.stdout)
    imported, rc = done.stderr.split()[-2:]
    assert imported == "False"
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["gpu"] == "warn" and statuses["cuda"] == "ok"
    assert (report["problems"], int(rc)) == (0, 0)  # CPU-only is a setup, not a problem
    assert all(c["symbol"] in "✓!✗" for c in report["checks"])
