"""One step at a time per CR, without a lock kept for every CR that ever had a step.

Why: a CR's steps (a pass, a deletion, a timer's look) must not interleave, so each takes the CR's
lock. Kept for good, a lock per CR is small, but one that has once been waited for keeps its queue
(0.7 KiB), and at 10,000 CRs most CRs sit Ready between passes with no step running. A turn is made
when a step needs it and goes when the last step that held or awaited it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class _Turn:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
        """Steps that hold the lock or wait for it."""


class Turns:
    """A lock per key (a CR's uid), alive only while a step holds it or waits for it."""

    def __init__(self) -> None:
        self._turns: dict[str, _Turn] = {}

    @contextlib.asynccontextmanager
    async def take(self, key: str) -> AsyncIterator[None]:
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = _Turn()
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if turn.users == 0 and self._turns.get(key) is turn:
                del self._turns[key]

    def drop(self, key: str) -> None:
        """The CR is gone: a step still running keeps its turn; the next one starts a new one."""
        self._turns.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._turns

    def __len__(self) -> int:
        return len(self._turns)
