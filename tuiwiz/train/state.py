"""The states a run is in, and the exit codes that say them to scripts.

status.json holds one of the written states; `crashed` is what readers conclude when a run says
it is running and its process is gone; `unknown` when status.json cannot tell.
"""

from __future__ import annotations

from enum import Enum


class RunState(str, Enum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    CRASHED = "crashed"  # never written: read as "running" with no process left
    UNKNOWN = "unknown"  # never written: no readable status

    def __str__(self) -> str:
        return self.value

    # Equal to its value (a str), so it must hash like it: dicts keyed by the plain strings
    # find it (Enum's own hash is of the member's name).
    __hash__ = str.__hash__

    @property
    def final(self) -> bool:
        """Whether a run in this state has ended (its outcome is written)."""
        return self in (RunState.FINISHED, RunState.FAILED, RunState.STOPPED)

    @property
    def exit_code(self) -> int:
        """What `tuiwiz run` and the training process exit with for a run that ended so."""
        return EXIT_CODES.get(self, EXIT_FAILED)


WRITTEN = (RunState.RUNNING, RunState.FINISHED, RunState.FAILED, RunState.STOPPED)

EXIT_FINISHED = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2  # TuiwizError.exit_code: refused before anything started
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130  # Ctrl-C before training started
EXIT_CODES = {
    RunState.FINISHED: EXIT_FINISHED,
    RunState.FAILED: EXIT_FAILED,
    RunState.STOPPED: EXIT_STOPPED,
}


def state_of(value: object) -> RunState:
    """A state read from a file (a string, or anything else when damaged)."""
    try:
        return RunState(value)
    except ValueError:
        return RunState.UNKNOWN
