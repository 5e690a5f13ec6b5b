"""A semaphore with two lanes: a waiter in the first goes before every waiter in the second.

Why: an account's calls queue twice, for a token of its rate limit and for one of its connections,
and both queues were first come, first served. A call whose answer serves many CRs (a list page
answers for 50 instances, a batch deletes 50) then waited behind every call that serves one. Measured
with 4,000 CRs being created: thousands of shows queued ahead of each page of the shared list walk,
so 19 pages went out in 250 s, the walk never finished, every snapshot went stale, and each CR's
pass asked show instead (2.5 shows per CR): the shows starved the one call that would have made
them unnecessary. In the first lane such a call waits only for the calls already sent.

The second lane cannot starve: what goes in the first (one page of a walk at a time, one batch
call per window) is a few calls a second at most. No library was used: ``asyncio`` has no priority
semaphore, and the few here are simpler than a dependency for them.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Lanes:
    """``capacity`` holders at once; waiters are served first lane first, each lane in arrival order."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._free = capacity
        self._first: collections.deque[asyncio.Future[None]] = collections.deque()
        self._second: collections.deque[asyncio.Future[None]] = collections.deque()

    @asynccontextmanager
    async def hold(self, *, first: bool = False) -> AsyncIterator[None]:
        await self.acquire(first=first)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, *, first: bool = False) -> None:
        if self._free > 0 and not self._waiting(self._first) and not self._waiting(self._second):
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._first if first else self._second).append(future)
        try:
            await future
        except asyncio.CancelledError:
            # Handed the place just as it was cancelled: pass it on, not lose it. A future cancelled
            # while still queued stays there: release skips it, and _waiting drops it from the head.
            if future.done() and not future.cancelled():
                self.release()
            raise

    @staticmethod
    def _waiting(queue: collections.deque[asyncio.Future[None]]) -> bool:
        """Whether a live waiter heads the queue (a cancelled one there is dropped first: a newcomer
        queued behind it with a place free would wait for a release that may never come)."""
        while queue and queue[0].done():
            queue.popleft()
        return bool(queue)

    def release(self) -> None:
        """Hand the place to the next waiter (the first lane's before the second's), else free it."""
        for queue in (self._first, self._second):
            while queue:
                future = queue.popleft()
                if not future.done():  # (cancelled, its task not yet resumed to leave the queue)
                    future.set_result(None)
                    return
        self._free += 1
