"""The start of a run, between the training process and the one that launched it (`tuiwiz run`,
the wizard): one JSON line of configuration in, progress lines and one last line (ready, or
error) out, and the launcher's acknowledgement of that last line. tuiwiz.train.jobs is the
launcher's side."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

HANDSHAKE = "TUIWIZ-HANDSHAKE "
ACK = "ack"
ACK_TIMEOUT = 10.0  # seconds a launcher has to acknowledge the last handshake line


class Handshake:
    """This process's end: progress lines and one last line (ready, or error) on stdout, and
    the launcher's acknowledgement of that last line on stdin.

    The launcher can vanish at any moment (a dropped SSH connection): writing to it then fails,
    and this process carries on without it. Whether the launcher saw the last line is what the
    acknowledgement tells: a run that could not start, and whose reason nobody saw, leaves that
    reason where `tuiwiz runs` shows it (tuiwiz.train.main).
    """

    def __init__(self, plain: bool = False) -> None:
        self.plain = plain  # no launcher (--prepare in a batch script): plain lines on stderr
        self.gone = False

    def say(self, kind: str, **fields: Any) -> None:
        if self.plain:
            if "message" in fields:
                prefix = "error: " if kind == "error" else ""
                print(f"tuiwiz: {prefix}{fields['message']}", file=sys.stderr, flush=True)
            return
        if self.gone:
            return
        try:
            sys.stdout.write(HANDSHAKE + json.dumps({"kind": kind, **fields}) + "\n")
            sys.stdout.flush()
        except OSError:  # BrokenPipeError: the launcher is gone
            self._lost()

    def _lost(self) -> None:
        self.gone = True
        # Later writes (and the interpreter's last flush) must not fail on the broken pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)

    def read_config(self) -> Any:
        """The configuration the launcher sends first: one JSON line."""
        return json.loads(sys.stdin.readline())

    def acknowledged(self) -> bool:
        """Whether the launcher acknowledged the last line (False once it is gone)."""
        import select

        if self.plain:
            return True
        if self.gone:
            return False
        try:
            readable, _, _ = select.select([sys.stdin], [], [], ACK_TIMEOUT)
            return bool(readable) and sys.stdin.readline().strip() == ACK
        except (OSError, ValueError):
            return False

    def progress(self, message: str) -> None:
        self.say("progress", message=message)
