"""GPU readings through NVML (nvidia-ml-py, imported as pynvml), with a fake backend.

`read_gpus()` returns a GpuStatus: one GpuReading per visible GPU (name, memory total / used /
free, utilization, temperature, power, processes), or, when there is no NVIDIA driver or GPU, no
readings and one line saying why. That is a normal state, never an exception.

TUIWIZ_FAKE_NVML=path.json replaces NVML with recorded readings, so the TUI, the CLI and the tests
work on machines without a GPU. The file is what `tuiwiz gpus --json` prints (one snapshot; the
driver's `cuda_driver` and each GPU's `compute_capability` may be left out), or
{"samples": [snapshot, ...]} to replay a sequence, one snapshot per call, the last one repeating.
A snapshot with "error" and no GPUs stands for a machine without a driver.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FAKE_ENV = "TUIWIZ_FAKE_NVML"


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str
    used_bytes: int | None  # None when the driver does not say (e.g. inside containers)


@dataclass(frozen=True)
class GpuReading:
    index: int
    name: str
    uuid: str
    total_bytes: int
    used_bytes: int
    free_bytes: int
    utilization_gpu: int | None = None  # percent of time a kernel ran, last sample period
    utilization_memory: int | None = None  # percent of time memory was read or written
    temperature_c: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    processes: list[GpuProcess] = field(default_factory=list)
    compute_capability: str | None = None  # "9.0": bf16 from 8.0 (Ampere), None when unknown


@dataclass(frozen=True)
class GpuStatus:
    gpus: list[GpuReading]
    driver: str | None = None
    error: str | None = None  # one line, when there is no usable GPU
    source: str = "nvml"
    cuda_driver: str | None = None  # the newest CUDA version the driver runs, e.g. "12.4"

    @property
    def available(self) -> bool:
        return bool(self.gpus)

    def to_json(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "error": self.error,
            "source": self.source,
            "cuda_driver": self.cuda_driver,
            "gpus": [asdict(g) for g in self.gpus],
        }


def _visible(gpus: list[GpuReading]) -> list[GpuReading]:
    """Filter by CUDA_VISIBLE_DEVICES (indices or UUID prefixes), as the training process sees
    them. Indices follow NVML's (PCI bus) order, which is CUDA's order with
    CUDA_DEVICE_ORDER=PCI_BUS_ID."""
    spec = os.environ.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return gpus
    chosen: list[GpuReading] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            break
        match = [
            g
            for g in gpus
            if (item.isdigit() and g.index == int(item))
            or (not item.isdigit() and g.uuid.startswith(item))
        ]
        if not match:
            break  # CUDA stops at the first invalid entry
        chosen += [g for g in match if g not in chosen]
    return chosen


# --- fake backend ----------------------------------------------------------------------------

_fake_calls: dict[str, int] = {}
_fake_lock = threading.Lock()


def _reading(data: dict[str, Any]) -> GpuReading:
    procs = [
        GpuProcess(int(p["pid"]), str(p.get("name", "")), p.get("used_bytes"))
        for p in data.get("processes", [])
    ]
    return GpuReading(**{**data, "processes": procs})


def read_fake(path: str | Path) -> GpuStatus:
    """Readings from a recorded JSON file (see the module docstring)."""
    path = Path(path)
    source = f"fake:{path}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return GpuStatus(
            [], error=f"{FAKE_ENV}={path}: cannot read recorded readings ({e})", source=source
        )
    if isinstance(data, dict) and "samples" in data:
        samples = data["samples"] or [{}]
        with _fake_lock:
            n = _fake_calls.get(str(path), 0)
            _fake_calls[str(path)] = n + 1
        data = samples[min(n, len(samples) - 1)]
    try:
        gpus = [_reading(g) for g in data.get("gpus", [])]
    except (TypeError, KeyError, ValueError) as e:
        return GpuStatus(
            [], error=f"{FAKE_ENV}={path}: not a recorded reading ({e})", source=source
        )
    error = data.get("error") if not gpus else None
    return GpuStatus(_visible(gpus), data.get("driver"), error, source, data.get("cuda_driver"))


# --- NVML ------------------------------------------------------------------------------------


def _no_driver_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    lowered = text.lower()
    if "not found" in lowered or "library" in lowered:
        return "no NVIDIA GPU: the NVIDIA driver (libnvidia-ml) is not installed"
    if "driver not loaded" in lowered or "driver" in lowered:
        return "no NVIDIA GPU: the NVIDIA driver is not loaded"
    if "permission" in lowered:
        return "no NVIDIA GPU: no permission to query the NVIDIA driver"
    return f"no NVIDIA GPU: NVML is not usable ({text})"


def _optional(fn, *args):
    """One NVML query that a GPU may not support (power on some boards, processes in
    containers): None instead of an error."""
    import pynvml

    try:
        return fn(*args)
    except pynvml.NVMLError:
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _processes(nv, handle) -> list[GpuProcess]:
    found: dict[int, GpuProcess] = {}
    for query in (
        nv.nvmlDeviceGetComputeRunningProcesses,
        nv.nvmlDeviceGetGraphicsRunningProcesses,
    ):
        for p in _optional(query, handle) or []:
            used = getattr(p, "usedGpuMemory", None)
            name = _optional(nv.nvmlSystemGetProcessName, p.pid)
            found[p.pid] = GpuProcess(int(p.pid), _text(name) if name else "", used)
    return list(found.values())


def _cuda_version(nv) -> str | None:
    """The newest CUDA version the driver supports ("12.4" from NVML's 12040)."""
    query = getattr(nv, "nvmlSystemGetCudaDriverVersion_v2", None) or getattr(
        nv, "nvmlSystemGetCudaDriverVersion", None
    )
    found = _optional(query) if query else None
    return f"{found // 1000}.{found % 1000 // 10}" if isinstance(found, int) and found else None


def _capability(nv, handle) -> str | None:
    found = _optional(nv.nvmlDeviceGetCudaComputeCapability, handle)
    return f"{found[0]}.{found[1]}" if found else None


def read_nvml() -> GpuStatus:
    try:
        import pynvml as nv
    except ImportError:
        return GpuStatus([], error="no NVIDIA GPU readings: nvidia-ml-py is not installed")
    try:
        nv.nvmlInit()
    except nv.NVMLError as e:
        return GpuStatus([], error=_no_driver_line(e))
    try:
        driver = _optional(nv.nvmlSystemGetDriverVersion)
        cuda = _cuda_version(nv)
        gpus: list[GpuReading] = []
        for index in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(index)
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            util = _optional(nv.nvmlDeviceGetUtilizationRates, h)
            power = _optional(nv.nvmlDeviceGetPowerUsage, h)  # milliwatts
            limit = _optional(nv.nvmlDeviceGetEnforcedPowerLimit, h)
            gpus.append(
                GpuReading(
                    index=index,
                    name=_text(nv.nvmlDeviceGetName(h)),
                    uuid=_text(_optional(nv.nvmlDeviceGetUUID, h) or ""),
                    total_bytes=int(mem.total),
                    used_bytes=int(mem.used),
                    free_bytes=int(mem.free),
                    utilization_gpu=util.gpu if util else None,
                    utilization_memory=util.memory if util else None,
                    temperature_c=_optional(
                        nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU
                    ),
                    power_w=power / 1000 if power is not None else None,
                    power_limit_w=limit / 1000 if limit is not None else None,
                    processes=_processes(nv, h),
                    compute_capability=_capability(nv, h),
                )
            )
    except nv.NVMLError as e:
        return GpuStatus([], error=_no_driver_line(e))
    finally:
        _optional(nv.nvmlShutdown)
    driver = _text(driver) if driver else None
    if not gpus:
        return GpuStatus([], driver, "no NVIDIA GPU found", cuda_driver=cuda)
    visible = _visible(gpus)
    error = None if visible else "no visible NVIDIA GPU (CUDA_VISIBLE_DEVICES hides them all)"
    return GpuStatus(visible, driver, error, cuda_driver=cuda)


def read_gpus() -> GpuStatus:
    """Readings of the visible GPUs, from NVML or from $TUIWIZ_FAKE_NVML."""
    fake = os.environ.get(FAKE_ENV)
    if fake:
        return read_fake(fake)
    return read_nvml()
