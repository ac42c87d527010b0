"""GGUF quantizations beyond q8_0 (q4_k_m, q5_k_m, ...), through llama.cpp's own `llama-quantize`.

The k-quants choose a type per tensor and need llama.cpp's C++ code: tuiwiz writes a 16-bit GGUF
file and lets `llama-quantize` (when it is on PATH) turn it into the chosen type.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tuiwiz.errors import TuiwizError

TOOL = "llama-quantize"
# tuiwiz's name -> llama-quantize's, and an upper bound of its bits per weight: the k-quant mixes
# keep some tensors in q6_k (6.5625 bits), the others in the named type.
TOOL_FORMATS = {
    "q2_k": ("Q2_K", 6.5625),
    "q3_k_m": ("Q3_K_M", 6.5625),
    "q4_0": ("Q4_0", 6.5625),
    "q4_k_s": ("Q4_K_S", 6.5625),
    "q4_k_m": ("Q4_K_M", 6.5625),
    "q5_0": ("Q5_0", 6.5625),
    "q5_k_s": ("Q5_K_S", 6.5625),
    "q5_k_m": ("Q5_K_M", 6.5625),
    "q6_k": ("Q6_K", 6.5625),
}
HOW_TO_GET = (
    "build llama.cpp (github.com/ggml-org/llama.cpp: cmake -B build && cmake --build build "
    "--target llama-quantize) or install it (brew install llama.cpp), and put llama-quantize "
    "on PATH; f16, bf16 and q8_0 need nothing more"
)


def tool() -> str:
    """The llama-quantize executable; TuiwizError saying how to get it when it is missing."""
    found = shutil.which(TOOL)
    if not found:
        raise TuiwizError(f"the k-quant GGUF types need llama.cpp's {TOOL} on PATH: {HOW_TO_GET}")
    return found


def upper_bound_bytes(parameters: int, fmt: str) -> int:
    return int(parameters * TOOL_FORMATS[fmt][1] / 8) + 2**20


def run(source: Path, target: Path, fmt: str, progress: Callable[[str], None]) -> None:
    """`llama-quantize SOURCE TARGET TYPE`; TuiwizError with its last words when it fails."""
    progress(f"quantizing to {fmt} with {TOOL}")
    try:
        done = subprocess.run(
            [tool(), str(source), str(target), TOOL_FORMATS[fmt][0]],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    except OSError as e:
        raise TuiwizError(f"{TOOL} could not be started: {e}") from None
    if done.returncode != 0 or not target.is_file():
        said = [line.strip() for line in done.stderr.splitlines() if line.strip()] or [
            line.strip() for line in done.stdout.splitlines() if line.strip()
        ]
        reason = said[-1] if said else f"exit status {done.returncode}"
        raise TuiwizError(f"{TOOL} failed: {reason}")
