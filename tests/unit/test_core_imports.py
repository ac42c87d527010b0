"""The headless core never imports the UI toolkit, and cheap modules stay cheap."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "tuiwiz.config",
    "tuiwiz.presets",
    "tuiwiz.explain",
    "tuiwiz.cli",
    "tuiwiz.data.prepare",
    "tuiwiz.train.jobs",
    "tuiwiz.train.events",
    "tuiwiz.train.rundir",
    "tuiwiz.demo",
    "tuiwiz.after.evaluate",
    "tuiwiz.after.generate",
    "tuiwiz.after.session",
    "tuiwiz.after.export",
    "tuiwiz.after.card",
    "tuiwiz.compat",
    "tuiwiz.doctor",
    "tuiwiz.doctor.software",
    "tuiwiz.doctor.hardware",
    "tuiwiz.doctor.environment",
]


def loaded_after(imports: list[str]) -> set[str]:
    code = (
        "import sys\n" + "".join(f"import {m}\n" for m in imports) + "print(' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_core_does_not_import_textual():
    assert "textual" not in loaded_after(CORE)


def test_config_and_cli_do_not_import_heavy_libraries():
    loaded = loaded_after(["tuiwiz.config", "tuiwiz.presets", "tuiwiz.cli", "tuiwiz.doctor"])
    heavy = {"torch", "transformers", "peft", "bitsandbytes", "datasets", "trl"}
    assert not heavy & loaded
