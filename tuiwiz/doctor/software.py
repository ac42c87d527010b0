"""Software checks: Python, the packages against their supported ranges, the library internals
tuiwiz relies on, torch's CUDA build against the driver, bitsandbytes and flash-attn on the GPU."""

from __future__ import annotations

import sys

from tuiwiz import compat
from tuiwiz.doctor import FAIL, OK, WARN, Check, Facts

PACKAGES = (
    *compat.TRAINING_PACKAGES,
    "textual",
    "textual-serve",
    "gguf",
    "nvidia-ml-py",
    "pyyaml",
    "rich",
)
TORCH_INSTALL = "https://pytorch.org/get-started/locally/"


def _version_text(parts: tuple[int, ...]) -> str:
    return ".".join(map(str, parts))


def python(facts: Facts) -> Check:
    (low, high), found = compat.PYTHON_TESTED, facts.python
    tested = f"tested: {_version_text(low)} to {_version_text(high)}"
    if tuple(found[:2]) > high:
        return Check(
            "python",
            WARN,
            f"Python {_version_text(found)} is newer than tuiwiz is tested with ({tested})",
            f"install tuiwiz with Python {_version_text(high)}: "
            f"uv tool install --python {_version_text(high)} tuiwiz",
        )
    if tuple(found[:2]) < low:
        return Check(
            "python",
            FAIL,
            f"Python {_version_text(found)} is older than tuiwiz supports ({tested})",
            f"install tuiwiz with Python {_version_text(high)}: "
            f"uv tool install --python {_version_text(high)} tuiwiz",
        )
    return Check("python", OK, f"Python {_version_text(found)} ({tested})")


def packages() -> list[Check]:
    names = PACKAGES + (("tomli",) if sys.version_info < (3, 11) else ())
    states = compat.package_states(names)
    if not compat.supported_ranges():
        return [
            Check(
                "packages",
                WARN,
                "tuiwiz's package metadata is missing, so versions cannot be checked",
                "install tuiwiz as a package (pip install . or pip install -e . in a checkout)",
            )
        ]
    checks = []
    for state in states:
        problem = state.problem(required=True)
        if problem is None:
            shown = state.version
            if state.name == "torch" and (build := compat.torch_build()) is not None:
                shown = f"{build.version}, {build.label} build"
            checks.append(Check(state.name, OK, f"{shown} (supported: {state.spec or 'any'})"))
        else:
            detail, _, fix = problem.partition("; ")
            checks.append(Check(state.name, FAIL, detail, fix))
    return checks


def internals(quick: bool = False) -> list[Check]:
    """The transformers (and textual-serve) internals tuiwiz patches or reads, from source."""
    if compat.installed("transformers") is None:
        return []  # the packages check already says it is missing
    from tuiwiz.importing import hf_names
    from tuiwiz.training_fields import training_fields

    try:
        problems = compat.trainer_source_problems() + compat.quantizer_source_problems()
        training_fields()
    except compat.IncompatibleError as e:
        problems = [str(e)]
    problems = [compat.with_version("transformers", p) for p in problems]
    serve = not quick and compat.installed("textual-serve") is not None
    if serve:
        problems += [
            compat.with_version("textual-serve", p) for p in compat.textual_serve_problems()
        ]
    checks = [
        Check("internals", FAIL, p.split("; tuiwiz supports")[0], _internals_fix(p))
        for p in problems
    ]
    if not hf_names.optimizers() or not hf_names.schedulers():
        checks.append(
            Check(
                "internals",
                WARN,
                "transformers' OptimizerNames or SchedulerType is not where tuiwiz reads it: "
                "tuiwiz import cannot check optimizer and scheduler names",
                _internals_fix("transformers"),
            )
        )
    if not checks:
        what = "Trainer resume hooks, TrainingArguments, quantizer helpers"
        what += ", textual-serve's AppService" if serve else ""
        checks.append(Check("internals", OK, f"what tuiwiz relies on is in place ({what})"))
    return checks


def _internals_fix(problem: str) -> str:
    package = "textual-serve" if problem.startswith("textual-serve") else "transformers"
    return f"install a supported release: pip install '{package}{_range(package)}'"


def _range(package: str) -> str:
    return compat.supported_ranges().get(package, "")


def torch_driver(facts: Facts) -> Check:
    """torch's CUDA build against the CUDA version the NVIDIA driver supports."""
    torch, status = facts.torch, facts.gpus
    if torch is None:
        return Check(
            "cuda",
            WARN,
            "torch is not installed: nothing to compare with the driver",
            f"install PyTorch for this machine's CUDA ({TORCH_INSTALL})",
        )
    if torch.hip:
        return Check(
            "cuda",
            WARN,
            f"torch is a ROCm build ({torch.hip}): tuiwiz is tested on NVIDIA GPUs only",
            f"on NVIDIA GPUs, install a CUDA build ({TORCH_INSTALL})",
        )
    if not status.gpus:
        where = "no NVIDIA GPU here, so training runs on the CPU"
        if torch.cuda:
            return Check("cuda", OK, f"torch is built for CUDA {torch.cuda}; {where}")
        return Check("cuda", OK, f"torch is a CPU build; {where}")
    driver = status.cuda_driver
    if not torch.cuda:
        supported = f"CUDA {driver} or older" if driver else "this machine's CUDA driver"
        return Check(
            "cuda",
            FAIL,
            "torch is a CPU build, but this machine has NVIDIA GPUs: training would not use them",
            f"install a CUDA build of PyTorch for {supported} ({TORCH_INSTALL})",
        )
    if driver is None:
        return Check(
            "cuda",
            OK,
            f"torch is built for CUDA {torch.cuda} (the driver does not "
            "say which CUDA version it supports)",
        )
    built, runs = compat.release(torch.cuda)[:2], compat.release(driver)[:2]
    driver_text = f"the driver ({status.driver or 'unknown version'}) supports CUDA {driver}"
    fix = (
        f"update the NVIDIA driver to one for CUDA {torch.cuda} or newer, or install a PyTorch "
        f"build for CUDA {driver} or older ({TORCH_INSTALL})"
    )
    if built[:1] > runs[:1]:
        return Check(
            "cuda",
            FAIL,
            f"torch is built for CUDA {torch.cuda}, but {driver_text}: torch cannot use the GPUs",
            fix,
        )
    if built > runs:
        return Check(
            "cuda",
            WARN,
            f"torch is built for CUDA {torch.cuda}, but {driver_text}: it runs through CUDA's "
            "minor-version compatibility, but code compiled at run time (torch.compile, Triton "
            "kernels) can fail",
            fix,
        )
    return Check("cuda", OK, f"torch is built for CUDA {torch.cuda}; {driver_text}")


def cuda_stack(facts: Facts) -> list[Check]:
    """bitsandbytes' CUDA backend and flash-attn, tried on the real GPUs in a subprocess."""
    from tuiwiz.doctor.hardware import capable

    bnb = compat.installed("bitsandbytes")
    flash = compat.installed("flash-attn") or compat.installed("flash_attn")
    status, torch = facts.gpus, facts.torch
    if not status.gpus:
        cpu = "no GPU here: its CPU backend runs the demo's 4-bit training"
        checks = [Check("bnb backend", OK, f"bitsandbytes {bnb}: {cpu}")] if bnb else []
        note = f"installed ({flash}); it only runs on GPUs" if flash else "not installed (GPU only)"
        return [*checks, Check("flash-attn", OK, note)]
    if status.source != "nvml":
        fix = "unset TUIWIZ_FAKE_NVML to check the real GPUs"
        return [Check("bnb backend", WARN, "not tried: the GPUs are recorded readings", fix)]
    if torch is None or not torch.cuda:
        return []  # the cuda check already says what is wrong
    found = facts.cuda_probe()
    if "probe_error" in found:
        return [
            Check(
                "cuda probe",
                FAIL,
                f"starting torch on the GPU failed: {found['probe_error']}",
                "run python -c 'import torch; torch.zeros(1, device=\"cuda\")' to see the error",
            )
        ]
    if not found.get("cuda_available"):
        return [
            Check(
                "cuda probe",
                FAIL,
                f"torch cannot use the GPU ({found.get('cuda_error') or 'cuda is not available'})",
                f"check nvidia-smi, then install PyTorch for this driver's CUDA ({TORCH_INSTALL})",
            )
        ]
    checks = [_bnb_check(found.get("bnb"), bnb)]
    checks.append(_flash_check(found, any(capable(g, (8, 0)) for g in status.gpus)))
    return checks


def _bnb_check(outcome: str | None, version: str | None) -> Check:
    if outcome == "ok":
        return Check("bnb backend", OK, f"bitsandbytes {version}: 4-bit nf4 runs on the GPU")
    if outcome is None:
        return Check(
            "bnb backend", FAIL, "bitsandbytes is not installed", "pip install bitsandbytes"
        )
    return Check(
        "bnb backend",
        FAIL,
        f"bitsandbytes cannot run 4-bit on the GPU ({outcome})",
        "install a bitsandbytes built for torch's CUDA version (pip install -U bitsandbytes); "
        "python -m bitsandbytes says more",
    )


def _flash_check(found: dict, capable: bool) -> Check:
    if found.get("flash_attn"):
        return Check("flash-attn", OK, f"flash-attn {found['flash_attn']} imports")
    if found.get("flash_attn_error"):
        return Check(
            "flash-attn",
            WARN,
            f"flash-attn is installed but does not import ({found['flash_attn_error']}); "
            'attn_implementation = "flash_attention_2" would fail (sdpa works)',
            "reinstall it for this torch: pip install --force-reinstall --no-build-isolation "
            "flash-attn (or pip uninstall flash-attn)",
        )
    if capable:
        return Check(
            "flash-attn",
            OK,
            "not installed (optional: sdpa is used; pip install "
            'flash-attn --no-build-isolation for attn_implementation = "flash_attention_2")',
        )
    return Check("flash-attn", OK, "not installed (it needs GPUs of compute capability 8.0+)")
