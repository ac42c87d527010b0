"""Set-up of the processes that train: where their output goes, which signals stop them, and
the libraries' chatter kept out of the way. Shared by the launched process and the ranks, and
(quiet_libraries) by the commands that load models."""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any


def redirect_output(log: Path) -> None:
    """From here on, everything the process prints goes to `log` (appended)."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def on_stop(handler: Callable[[int, Any], None]) -> None:
    """SIGTERM and SIGINT (`tuiwiz stop`, Ctrl-C, Slurm before its time limit) call `handler`;
    SIGHUP is ignored: a dropped SSH session must not end training."""
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def quiet_libraries() -> None:
    """Keep the libraries' chatter (progress bars, deprecation notices, advisory warnings) out
    of logs and terminals: tuiwiz says what matters itself. Call before importing them."""
    warnings.simplefilter("ignore", FutureWarning)
    warnings.filterwarnings("ignore", module="bitsandbytes")
    # On CPUs with AVX512-BF16, bitsandbytes looks for the optional `kernels` package when it is
    # imported and logs a warning without it, then uses its own kernels: nothing to act on.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    # Progress bars would fill a log with carriage returns.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def quiet_transformers() -> None:
    """Only errors from transformers' own logger, and no progress bars (it is imported here)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def training_process() -> None:
    """What every training process does first: quiet libraries, owner-only files (a run may
    hold private data, on a shared server)."""
    quiet_libraries()
    os.umask(0o077)
