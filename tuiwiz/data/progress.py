"""Progress of data preparation: rows done, rows per second and the time left.

`prepare.prepare` and `examples.load` report a `Progress` through a callback at most every
`Meter.every` seconds. `StatusProgress` writes it into a run's status.json (the dashboard and
`tuiwiz run` read it back with `from_status`), and `line()` is how train.log says it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from tuiwiz.units import duration

PHASES = {"reading": "reading", "tokenizing": "tokenizing"}


@dataclass(frozen=True)
class Progress:
    phase: str  # "reading" (rows into examples) or "tokenizing"
    done: int  # rows (reading) or examples (tokenizing) so far
    total: int | None  # None while reading: the number of rows is known only at the end
    rows_per_second: float
    eta_seconds: float | None
    fraction: float  # of the whole phase, 0 to 1

    def line(self) -> str:
        """One line for a log or a terminal: "tokenizing 340,000 / 1,000,000 examples (34%),
        5,210/s, 2m07s left"."""
        return f"{self.phase} {self.counts()}"

    def counts(self) -> str:
        """The line without its phase: "340,000 / 1,000,000 examples (34%), 5,210/s, ..."."""
        unit = "rows" if self.phase == "reading" else "examples"
        count = f"{self.done:,} / {self.total:,}" if self.total else f"{self.done:,}"
        parts = [f"{count} {unit} ({self.fraction:.0%})"]
        if self.rows_per_second > 0:
            parts.append(f"{self.rows_per_second:,.0f}/s")
        if self.eta_seconds is not None and self.fraction < 1:
            parts.append(f"{duration(self.eta_seconds)} left")
        return ", ".join(parts)

    def as_status(self) -> dict[str, Any]:
        return asdict(self)


class Meter:
    """Turns counts into Progress at most every `every` seconds (and always at the end)."""

    def __init__(
        self,
        phase: str,
        callback: Callable[[Progress], None] | None,
        total: int | None = None,
        every: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.phase, self.callback, self.total, self.every = phase, callback, total, every
        self.clock = clock
        self.started = clock()
        self.last: float | None = None

    def update(self, done: int, fraction: float | None = None, final: bool = False) -> None:
        """`fraction` of the phase done, when it is not done / total (reading: bytes read)."""
        if self.callback is None:
            return
        now = self.clock()
        if not final and self.last is not None and now - self.last < self.every:
            return
        self.last = now
        self.callback(self.progress(done, fraction, now, final))

    def progress(self, done: int, fraction: float | None, now: float, final: bool) -> Progress:
        if final:
            fraction = 1.0
        elif fraction is None:
            fraction = done / self.total if self.total else 0.0
        fraction = min(1.0, max(0.0, fraction))
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        return Progress(self.phase, done, self.total, rate, 0.0 if final else eta, fraction)


class Throttled:
    """A callback called at most every `every` seconds, and whenever a phase ends; `quiet_start`:
    not at once either (a log that already said what starts); `only_if_slow`: nothing at all for
    work done within `every` seconds (a terminal that need not hear of a small dataset)."""

    def __init__(
        self,
        callback: Callable[[Progress], None],
        every: float,
        clock: Callable[[], float] = time.monotonic,
        quiet_start: bool = False,
        only_if_slow: bool = False,
    ) -> None:
        self.callback, self.every, self.clock = callback, every, clock
        self.last: float | None = clock() if quiet_start or only_if_slow else None
        self.only_if_slow, self.said = only_if_slow, False

    def __call__(self, progress: Progress) -> None:
        now = self.clock()
        quick = self.last is not None and now - self.last < self.every
        if quick and (progress.fraction < 1 or (self.only_if_slow and not self.said)):
            return
        self.last, self.said = now, True
        self.callback(progress)


class StatusProgress:
    """Writes preparation progress into a run's status.json (`prepare`), for the dashboard and
    `tuiwiz run`: `prepare.prepare(..., progress=StatusProgress(run))`."""

    def __init__(self, run: Any, every: float = 2.0) -> None:
        self.run = run
        self._throttled = Throttled(self._write, every)

    def __call__(self, progress: Progress) -> None:
        self._throttled(progress)

    def _write(self, progress: Progress) -> None:
        # Progress is a courtesy: a full disk must not stop the preparation.
        with contextlib.suppress(OSError):
            self.run.write_status(prepare=progress.as_status())


def from_status(status: dict[str, Any]) -> Progress | None:
    """The preparation progress a status.json holds, or None (none, or not readable)."""
    raw = status.get("prepare")
    if not isinstance(raw, dict):
        return None
    number = (int, float)
    try:
        phase, done, total = raw["phase"], raw["done"], raw.get("total")
        rate, eta, fraction = raw["rows_per_second"], raw.get("eta_seconds"), raw["fraction"]
    except KeyError:
        return None
    ok = (
        phase in PHASES
        and isinstance(done, int)
        and (total is None or isinstance(total, int))
        and isinstance(rate, number)
        and (eta is None or isinstance(eta, number))
        and isinstance(fraction, number)
    )
    if not ok or any(isinstance(v, bool) for v in (done, total, rate, eta, fraction)):
        return None
    return Progress(phase, done, total, float(rate), eta, float(fraction))


def status_line(status: dict[str, Any]) -> str | None:
    """What to show for a run whose phase is "preparing": "preparing data: tokenizing ...", or
    None when it is not preparing or has written no progress yet."""
    if status.get("phase") != "preparing":
        return None
    progress = from_status(status)
    return f"preparing data: {progress.line()}" if progress else None


class PrepareWatcher:
    """For whatever follows a run (`tuiwiz run`): call poll() often; `show` gets the run's
    preparation line (status_line) when it changed, at most every `every` seconds."""

    def __init__(
        self,
        status: Callable[[], dict[str, Any]],
        show: Callable[[str], None],
        every: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.status, self.show, self.every, self.clock = status, show, every, clock
        self.shown: str | None = None
        self.last: float | None = None

    def poll(self) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < self.every:
            return
        self.last = now
        line = status_line(self.status())
        if line is not None and line != self.shown:
            self.shown = line
            self.show(line)
