"""One token bucket per cloud account, shared by every caller of that account.

Why: the gateway throttles per account (429 / ``*.0308``), not per coroutine. If each caller backed
off on its own, the other callers would keep hitting the limit while one waits. So all calls of an
account draw from one bucket (steady ``rate`` per second, bursts up to ``burst``), and a 429's
Retry-After ``pause``s the whole bucket: every caller of the account waits it out together, and
afterwards traffic resumes with a single token rather than with a stampede of saved-up ones.

Waiters are served first come, first served (one ``asyncio.Lock`` held across the wait), which also
means only one coroutine sleeps at a time. The clock and the sleep are injectable (loop time by
default), so tests run on a fake clock without real sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class TokenBucket:
    """An async token bucket with a shared pause.

    Args:
        rate: tokens added per second; must be positive.
        burst: the bucket's capacity, i.e. how many calls may go at once after a quiet period.
        clock: monotonic seconds; the running loop's ``time()`` by default.
        sleep: how to wait; ``asyncio.sleep`` by default.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = _loop_time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp: float | None = None  # when _tokens was last brought up to date
        self._paused_until = float("-inf")
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate}, burst={self.burst})"

    @property
    def paused_until(self) -> float:
        """The clock reading before which nobody may proceed (``-inf`` when not paused)."""
        return self._paused_until

    def _refill(self, now: float) -> None:
        if self._stamp is None:
            self._stamp = now
        elif now > self._stamp:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def pause(self, seconds: float) -> None:
        """Stop every caller for ``seconds`` from now (a later pause extends, an earlier never cuts).

        The bucket is drained: when the pause ends, one call may go and the rest follow at ``rate``.
        """
        until = self._clock() + max(0.0, seconds)
        if until > self._paused_until:
            self._paused_until = until
            self._tokens = 1.0
            self._stamp = until

    async def acquire(self) -> None:
        """Wait until this caller may send one request."""
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                self._refill(now)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await self._sleep((1.0 - self._tokens) / self.rate)
