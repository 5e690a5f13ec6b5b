"""The simulator's notion of "now", injectable so tests can drive the state machine without sleeping.

Instance status is computed lazily from timestamps on every read (no background tasks), so the whole
state machine is a function of this clock: a test that swaps in a ``ManualClock`` and advances it gets
deterministic transitions. Request signatures are *not* checked against this clock: they are checked
against real time, because real clients sign with real time.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds

    def set(self, moment: float) -> None:
        self._now = moment
