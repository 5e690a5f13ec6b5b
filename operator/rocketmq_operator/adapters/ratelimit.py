"""One token bucket per cloud account, shared by every caller of that account.

Why: the gateway throttles per account (429 / ``*.0308``), not per coroutine. If each caller backed
off on its own, the other callers would keep hitting the limit while one waits. So all calls of an
account draw from one bucket (steady ``rate`` per second, bursts up to ``burst``), and a 429's
Retry-After ``pause``s the whole bucket: every caller of the account waits it out together, and
afterwards traffic resumes with a single token rather than with a stampede of saved-up ones.

A pause alone is not enough when the account's real limit is below the configured rate: after
every pause the bucket would again send faster than the gateway allows, collect another round of
429s, pause again, and so on for as long as the work lasts. So a 429 (``throttled``) also *lowers
the rate*: to half of what was really being sent over the last seconds, at most once per
throttling episode. Without another 429 the rate then doubles back every ``recovery_seconds``, but
only up to the rate that drew the 429 (the ceiling); beyond it, it probes: 10% above the ceiling
one period later, then the excess doubles each period, up to the configured rate. That is CUBIC's
shape (TCP's, and the AWS SDKs' adaptive mode's): fast back to the last known limit, slow near it,
faster again away from it. And while slowed down, a quiet spell saves up at most one second's
calls, not the whole ``burst``, which would go out at once at a pace the 429 has just refused.

Measured: the reliability suite's 429 storm (gateway 4/s, burst 4; operator 20/s, burst 20) on a
loaded machine sent 3.81, 3.92 and 4.20 requests/s after its first 10 s when the rate doubled
straight past the ceiling and the burst refilled in full; 3.06 to 3.43 in five runs with both
changes.

Waiters are served first come, first served (one place, ``lanes.Lanes(1)``, held across the wait),
which also means only one coroutine sleeps at a time; a caller that asks to go ``first`` (a call
that serves many CRs) goes before every waiter that did not. The clock and the sleep are injectable
(loop time by default), so tests run on a fake clock without real sleeping.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Awaitable, Callable

from rocketmq_operator.adapters.lanes import Lanes

_MEASURE_SECONDS = 2.0
"""The window over which the rate really sent is measured when a 429 arrives."""

_PROBE = 0.1
"""How far above the ceiling the rate is one recovery period after reaching it, as its fraction."""


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class TokenBucket:
    """An async token bucket with a shared pause.

    Args:
        rate: tokens added per second, the most ever allowed; must be positive.
        burst: the bucket's capacity, i.e. how many calls may go at once after a quiet period.
        clock: monotonic seconds; the running loop's ``time()`` by default.
        sleep: how to wait; ``asyncio.sleep`` by default.
        min_rate: the least a 429 may lower the rate to.
        recovery_seconds: after a 429 lowered it, the rate doubles this often, up to the ceiling
            (the rate that drew the 429); beyond it the excess starts at 10% and doubles this often.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = _loop_time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        min_rate: float = 0.2,
        recovery_seconds: float = 10.0,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        if min_rate <= 0 or recovery_seconds <= 0:
            raise ValueError("min_rate and recovery_seconds must be positive")
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._min_rate = min(float(min_rate), self.rate)
        self._recovery = float(recovery_seconds)
        self._tokens = float(burst)
        self._stamp: float | None = None  # when _tokens was last brought up to date
        self._paused_until = float("-inf")
        self._turn = Lanes(1)
        self._sent: collections.deque[float] = collections.deque()  # acquisition times, last few seconds
        self._lowered_to: float | None = None  # the rate a 429 set, while recovering from it
        self._ceiling = float("inf")  # the rate that drew that 429
        self._lowered_at = float("-inf")  # when that rate took effect (the end of its pause)

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate}, burst={self.burst})"

    def retune(self, rate: float, burst: int) -> None:
        """A new rate and burst from now on (an account's spec changed); a 429's pause still holds."""
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = float(rate)
        self.burst = burst
        self._min_rate = min(self._min_rate, self.rate)
        self._tokens = min(self._tokens, float(burst))

    def current_rate(self, now: float | None = None) -> float:
        """Tokens per second now: ``rate``, or less while recovering from a 429."""
        if self._lowered_to is None:
            return self.rate
        at = self._clock() if now is None else now
        periods = min(max(0.0, at - self._lowered_at) / self._recovery, 64.0)
        to_ceiling = math.log2(max(1.0, self._ceiling / self._lowered_to))
        if periods <= to_ceiling:
            recovered = self._lowered_to * math.pow(2.0, periods)
        else:
            recovered = self._ceiling * (1.0 + _PROBE * (math.pow(2.0, periods - to_ceiling) - 1.0))
        if recovered >= self.rate:
            self._lowered_to = None
            return self.rate
        return recovered

    @property
    def paused_until(self) -> float:
        """The clock reading before which nobody may proceed (``-inf`` when not paused)."""
        return self._paused_until

    def slowed_down(self, now: float | None = None) -> bool:
        """True while a 429 keeps the rate below ``rate`` (paused, or still recovering)."""
        at = self._clock() if now is None else now
        return at < self._paused_until or self.current_rate(at) < self.rate

    def _refill(self, now: float) -> None:
        if self._stamp is None:
            self._stamp = now
        elif now > self._stamp:
            rate = self.current_rate(now)
            # While slowed down, a quiet spell saves up at most one second's calls: a full burst
            # after it would go out at the very pace the 429 said the account cannot take.
            room = float(self.burst) if self._lowered_to is None else max(1.0, min(float(self.burst), rate))
            self._tokens = min(room, self._tokens + (now - self._stamp) * rate)
            self._stamp = now

    def _forget_sent_before(self, now: float) -> None:
        while self._sent and self._sent[0] < now - _MEASURE_SECONDS:
            self._sent.popleft()

    def _sent_rate(self, now: float) -> float:
        self._forget_sent_before(now)
        return len(self._sent) / _MEASURE_SECONDS

    def throttled(self, retry_after: float) -> None:
        """The cloud answered 429: pause everyone for ``retry_after``, and send slower afterwards.

        Only the first 429 of an episode lowers the rate (the others were sent at the same pace
        and arrive while the pause is already in force): to half the rate really sent over the
        last ``_MEASURE_SECONDS``, never below ``min_rate``. The lowered rate starts when the pause
        ends and doubles every ``recovery_seconds`` without another 429 up to ``base``, then probes
        beyond it (see the module's docstring).
        """
        now = self._clock()
        new_episode = now >= self._paused_until
        self.pause(retry_after)
        if not new_episode:
            return
        sent = self._sent_rate(now)
        base = min(self.current_rate(now), sent) if sent > 0 else self.current_rate(now)
        self._lowered_to = max(self._min_rate, base / 2.0)
        self._ceiling = max(self._lowered_to, base)
        self._lowered_at = self._paused_until

    def pause(self, seconds: float) -> None:
        """Stop every caller for ``seconds`` from now (a later pause extends, an earlier never cuts).

        The bucket is drained: when the pause ends, one call may go and the rest follow at ``rate``.
        """
        until = self._clock() + max(0.0, seconds)
        if until > self._paused_until:
            self._paused_until = until
            self._tokens = 1.0
            self._stamp = until

    async def acquire(self, *, first: bool = False) -> None:
        """Wait until this caller may send one request; ``first``: before every caller that is not."""
        async with self._turn.hold(first=first):
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                self._refill(now)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    self._sent.append(now)
                    self._forget_sent_before(now)  # keeps the record to the measuring window
                    return
                await self._sleep((1.0 - self._tokens) / self.current_rate(now))
