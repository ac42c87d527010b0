"""The two slow facts of `tuiwiz doctor`, each bounded in time: whether the Hugging Face Hub
answers, and what torch, bitsandbytes and flash-attn do on the real GPUs (in a subprocess: it
imports torch, and a broken CUDA setup can crash or hang a process)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

HUB_TIMEOUT = 3.0  # seconds: a reachable Hub answers well within this
PROBE_TIMEOUT = 120.0  # seconds: CUDA's first initialization can take tens of seconds

OFFLINE_VALUES = ("1", "true", "yes", "on")


def offline(environ: Mapping[str, str]) -> bool:
    return environ.get("HF_HUB_OFFLINE", "").strip().lower() in OFFLINE_VALUES


def _why(error: BaseException, host: str) -> str:
    reason = getattr(error, "reason", error)
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve {host}"
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"{host} did not answer within {HUB_TIMEOUT:.0f} s"
    text = str(getattr(reason, "strerror", None) or reason).strip()
    return f"{host}: {text or type(error).__name__}"


def hub_unreachable(environ: Mapping[str, str], timeout: float = HUB_TIMEOUT) -> str | None:
    """Why the Hub (HF_ENDPOINT) cannot be reached, or None when it answers. Any HTTP answer
    counts; proxies come from the environment (HTTPS_PROXY), as huggingface_hub uses them. The
    name lookup has no timeout of its own, so the whole attempt runs in a thread that is given
    `timeout` (+1 s) and then abandoned."""
    endpoint = environ.get("HF_ENDPOINT") or "https://huggingface.co"
    host = urlsplit(endpoint).hostname or endpoint
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout)
            outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)  # an HTTP error is an answer: the Hub is there
        except (OSError, ValueError) as e:
            outcome.append(_why(e, host))

    thread = threading.Thread(target=attempt, daemon=True, name="tuiwiz-doctor-hub")
    thread.start()
    thread.join(timeout + 1)
    return outcome[0] if outcome else f"{host} did not answer within {timeout:.0f} s"


# Runs in a fresh interpreter; prints one JSON object. Each part is tried on its own, so that
# one failure (say, bitsandbytes without its CUDA library) does not hide the others.
PROBE = r"""
import json

def first_line(e):
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")

out = {}
try:
    import torch
    out["cuda_available"] = bool(torch.cuda.is_available())
    if out["cuda_available"]:
        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()
except Exception as e:
    out["cuda_available"] = False
    out["cuda_error"] = first_line(e)
if out.get("cuda_available"):
    try:
        import bitsandbytes.functional as F
        weights = torch.randn(64, 64, device="cuda", dtype=torch.float16)
        packed, state = F.quantize_4bit(weights, quant_type="nf4")
        F.dequantize_4bit(packed, state)
        torch.cuda.synchronize()
        out["bnb"] = "ok"
    except ModuleNotFoundError as e:
        out["bnb"] = None if e.name == "bitsandbytes" else first_line(e)
    except Exception as e:
        out["bnb"] = first_line(e)
try:
    import flash_attn
    out["flash_attn"] = getattr(flash_attn, "__version__", "installed")
except ModuleNotFoundError as e:
    out["flash_attn"] = None
    if e.name != "flash_attn":
        out["flash_attn_error"] = first_line(e)
except Exception as e:
    out["flash_attn"] = None
    out["flash_attn_error"] = first_line(e)
print(json.dumps(out))
"""


def cuda_probe(timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """torch's CUDA, a bitsandbytes 4-bit round trip and the flash-attn import, on the real GPUs.

    Returns {"cuda_available", "cuda_error", "bnb" ("ok", an error line, or None when not
    installed), "flash_attn" (its version or None), "flash_attn_error"}, or {"probe_error"}."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return {"probe_error": f"no answer within {timeout:.0f} s"}
    except OSError as e:
        return {"probe_error": str(e)}
    lines = done.stdout.strip().splitlines()
    try:
        found = json.loads(lines[-1]) if lines else None
    except ValueError:
        found = None
    if not isinstance(found, dict):
        tail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return {"probe_error": f"the check crashed: {tail}"}
    return found
