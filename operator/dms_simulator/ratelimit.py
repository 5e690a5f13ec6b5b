"""Per-access-key throttling, answered the way Huawei's API gateway answers it (429 APIGW.0308).

The operator promises one token bucket per account and to honour ``Retry-After``; the only way to
prove it is a server that actually throttles. Off by default; ``rate_limit_rps`` turns it on for
every key, and an account or token may carry its own ``RateLimit``, so a multi-account operator can
show that one account's throttling leaves the others alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dms_simulator.clock import Clock


@dataclass(frozen=True)
class RateLimit:
    """One principal's own policy; it replaces the global ``rate_limit_rps``/``rate_limit_burst``."""

    rps: float
    burst: int | None = None
    """Bucket size; ``None`` = the rate rounded up (at least 1), as for the global policy."""

    def __post_init__(self) -> None:
        if isinstance(self.rps, bool) or not isinstance(self.rps, int | float):
            raise ValueError(f"the rate limit must be a number of requests per second, got {self.rps!r}")
        if not math.isfinite(self.rps) or self.rps <= 0:
            raise ValueError(f"the rate limit must be > 0 requests per second, got {self.rps!r}")
        burst = self.burst
        if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int) or burst < 1):
            raise ValueError(f"the burst must be an integer >= 1, got {burst!r}")
        # One spelling of a policy, so 5 and 5.0 are the same bucket and list the same way.
        object.__setattr__(self, "rps", float(self.rps))

    @property
    def effective_burst(self) -> int:
        return self.burst if self.burst is not None else max(1, math.ceil(self.rps))

    @classmethod
    def parse(cls, rps: str, burst: str | None = None) -> RateLimit:
        """From the text of a CLI form (``...:RPS[:BURST]``)."""
        try:
            rate = float(rps)
        except ValueError:
            raise ValueError(f"the rate limit must be a number of requests per second, got {rps!r}") from None
        if burst is None:
            return cls(rate)
        try:
            size = int(burst)
        except ValueError:
            raise ValueError(f"the burst must be an integer >= 1, got {burst!r}") from None
        return cls(rate, size)


@dataclass
class _Bucket:
    tokens: float
    updated: float
    policy: tuple[float, int]


class RateLimiter:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._rate: float | None = None
        self._burst = 1

    def configure(self, rate: float | None, burst: int) -> None:
        if (rate, burst) != (self._rate, self._burst):
            # A changed policy starts every key with a full bucket, so tests are not haunted by history.
            self._buckets.clear()
        self._rate = rate
        self._burst = burst

    def reset(self) -> None:
        self._buckets.clear()

    def forget(self, key: str) -> None:
        """Drop one key's bucket: a replaced or removed account starts afresh, like a new one."""
        self._buckets.pop(key, None)

    def policy(self, own: RateLimit | None = None) -> tuple[float, int] | None:
        """(rate, burst) that applies to a key with ``own`` policy; ``None`` = not throttled."""
        if own is not None:
            return own.rps, own.effective_burst
        if self._rate is None:
            return None
        return self._rate, self._burst

    def acquire(self, key: str, own: RateLimit | None = None) -> float | None:
        """Take one token for ``key``: ``None`` when allowed, else seconds until a token is due."""
        policy = self.policy(own)
        if policy is None:
            return None
        rate, burst = policy
        now = self._clock.now()
        bucket = self._buckets.get(key)
        if bucket is None or bucket.policy != policy:
            # A key whose own policy changed starts full, as every key does when the global one does.
            bucket = self._buckets[key] = _Bucket(float(burst), now, policy)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(burst), bucket.tokens + elapsed * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate


def retry_after_header(wait_seconds: float) -> str:
    """Whole seconds, rounded up and at least 1, as ``Retry-After`` requires."""
    return str(max(1, math.ceil(wait_seconds)))


def limit_text(rate: float) -> str:
    return str(int(rate)) if float(rate).is_integer() else f"{rate:g}"
