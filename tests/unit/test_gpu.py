"""tuiwiz.gpu and `tuiwiz gpus`: NVML readings, the no-driver state, and the fake backend.

The fixtures in tests/fixtures/nvml are in the format `tuiwiz gpus --json` prints (hand-written
from real cards' NVML values: no GPU is attached to the machines these tests run on).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuiwiz import gpu
from tuiwiz.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nvml"


@pytest.fixture(autouse=True)
def fresh_fake_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gpu.FAKE_ENV, raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpu, "_fake_calls", {})


def fake(monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    path = FIXTURES / name
    monkeypatch.setenv(gpu.FAKE_ENV, str(path))
    return path


def test_fake_backend_reads_every_field(monkeypatch):
    fake(monkeypatch, "two_gpus_busy.json")
    status = gpu.read_gpus()
    assert status.available and status.error is None
    assert status.driver == "535.183.01" and status.source.startswith("fake:")
    a100, rtx = status.gpus
    assert (a100.index, a100.name) == (0, "NVIDIA A100-SXM4-40GB")
    assert a100.total_bytes == a100.used_bytes + a100.free_bytes
    assert (a100.utilization_gpu, a100.temperature_c, a100.power_w) == (97, 63, 311.4)
    assert a100.processes == [gpu.GpuProcess(21734, "python", 30601641984)]
    assert rtx.power_w is None and rtx.processes[0].used_bytes is None


@pytest.mark.parametrize(
    ("visible", "indices"),
    [("1", [1]), ("1,0", [1, 0]), ("GPU-9f8e", [1]), ("", []), ("0,7,1", [0])],
)
def test_cuda_visible_devices_selects_and_orders(monkeypatch, visible, indices):
    fake(monkeypatch, "two_gpus_busy.json")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert [g.index for g in gpu.read_gpus().gpus] == indices


def test_samples_replay_in_order_then_repeat_the_last(monkeypatch):
    fake(monkeypatch, "training_samples.json")
    used = [gpu.read_gpus().gpus[0].used_bytes for _ in range(4)]
    assert used == [402653184, 6710886400, 9797894144, 9797894144]


def test_recorded_no_driver_state_is_one_line(monkeypatch):
    fake(monkeypatch, "no_driver.json")
    status = gpu.read_gpus()
    assert not status.available
    assert status.error == "no NVIDIA GPU: the NVIDIA driver (libnvidia-ml) is not installed"


def test_unreadable_fixture_is_an_error_line_not_an_exception(monkeypatch, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setenv(gpu.FAKE_ENV, str(bad))
    status = gpu.read_gpus()
    assert not status.available and "cannot read recorded readings" in status.error


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        ("NVMLError_LibraryNotFound", "the NVIDIA driver (libnvidia-ml) is not installed"),
        ("NVMLError_DriverNotLoaded", "the NVIDIA driver is not loaded"),
        ("NVMLError_NoPermission", "no permission to query the NVIDIA driver"),
    ],
)
def test_nvml_failures_become_one_line(monkeypatch, exception, expected):
    import pynvml

    def fail():
        raise getattr(pynvml, exception)()

    monkeypatch.setattr(pynvml, "nvmlInit", fail)
    status = gpu.read_nvml()
    assert status.gpus == [] and status.error == f"no NVIDIA GPU: {expected}"


def test_nvml_readings_with_a_stub_library(monkeypatch):
    """read_nvml against stand-ins for the pynvml calls: units (mW -> W), optional queries that
    a board does not support, processes merged from the compute and graphics lists."""
    from types import SimpleNamespace

    import pynvml

    def unsupported(*_):
        raise pynvml.NVMLError_NotSupported()

    calls = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: "550.1",
        "nvmlDeviceGetCount": lambda: 1,
        "nvmlDeviceGetHandleByIndex": lambda i: f"h{i}",
        "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(total=100, used=30, free=70),
        "nvmlDeviceGetUtilizationRates": lambda h: SimpleNamespace(gpu=55, memory=12),
        "nvmlDeviceGetPowerUsage": lambda h: 123456,
        "nvmlDeviceGetEnforcedPowerLimit": unsupported,
        "nvmlDeviceGetName": lambda h: b"Stub GPU",
        "nvmlDeviceGetUUID": lambda h: "GPU-stub",
        "nvmlDeviceGetTemperature": lambda h, _sensor: 44,
        "nvmlDeviceGetComputeRunningProcesses": lambda h: [
            SimpleNamespace(pid=7, usedGpuMemory=20)
        ],
        "nvmlDeviceGetGraphicsRunningProcesses": unsupported,
        "nvmlSystemGetProcessName": lambda pid: b"python",
    }
    for name, fn in calls.items():
        monkeypatch.setattr(pynvml, name, fn)
    status = gpu.read_nvml()
    (g,) = status.gpus
    assert (g.name, g.total_bytes, g.used_bytes, g.free_bytes) == ("Stub GPU", 100, 30, 70)
    assert (g.power_w, g.power_limit_w, g.utilization_gpu) == (123.456, None, 55)
    assert g.processes == [gpu.GpuProcess(7, "python", 20)]
    assert status.driver == "550.1"


def test_gpus_command_json_round_trips_through_the_fake_backend(monkeypatch, capsys, tmp_path):
    fake(monkeypatch, "two_gpus_busy.json")
    assert main(["gpus", "--json"]) == 0
    recorded = tmp_path / "recorded.json"
    recorded.write_text(capsys.readouterr().out)
    monkeypatch.setenv(gpu.FAKE_ENV, str(recorded))
    assert gpu.read_gpus().gpus == gpu.read_fake(FIXTURES / "two_gpus_busy.json").gpus


def test_gpus_command_table(monkeypatch, capsys):
    fake(monkeypatch, "two_gpus_busy.json")
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["gpus"]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA A100-SXM4-40GB" in out and "NVIDIA GeForce RTX 4090" in out
    assert "29.0/40.0" in out and "python 28.5G" in out and "Xorg" in out


def test_gpus_command_without_a_driver_prints_one_line(monkeypatch, capsys):
    fake(monkeypatch, "no_driver.json")
    assert main(["gpus"]) == 0
    out = capsys.readouterr().out
    assert out == "tuiwiz: no NVIDIA GPU: the NVIDIA driver (libnvidia-ml) is not installed\n"
    assert main(["gpus", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gpus"] == []
