"""The one clock for Python time: `clock.monotonic()` for durations, deadlines and cache ages,
`clock.now()` for the wall-clock time (timezone-aware, UTC).

Code reads time through this module, never `time.monotonic()` or `datetime.now()` directly, so
that a test can swap the clock of the whole process (`with clock.use(fake): ...`) or hand one
component its own (`JwksCache(..., clock=fake)`). SQL keeps its own `now` parameter; this
clock is for what Python measures itself. `time.sleep` and `time.perf_counter` for log
timings stay as they are: nothing decides on them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM = SystemClock()
_current: Clock = SYSTEM


def get_clock() -> Clock:
    """The process's clock (the system clock unless a test swapped it)."""
    return _current


def monotonic() -> float:
    return _current.monotonic()


def now() -> datetime:
    return _current.now()


def set_clock(clock: Clock | None) -> Clock:
    """Make `clock` the process's clock (None: the system clock again); returns the previous."""
    global _current
    previous, _current = _current, clock or SYSTEM
    return previous


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """The process's clock is `clock` inside the block (tests)."""
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)
