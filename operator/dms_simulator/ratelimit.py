"""Per-access-key throttling, answered the way Huawei's API gateway answers it (429 APIGW.0308).

The operator promises one token bucket per account and to honour ``Retry-After``; the only way to
prove it is a server that actually throttles. Off by default; ``rate_limit_rps`` turns it on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dms_simulator.clock import Clock


@dataclass
class _Bucket:
    tokens: float
    updated: float


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

    def acquire(self, key: str) -> float | None:
        """Take one token for ``key``: ``None`` when allowed, else seconds until a token is due."""
        if self._rate is None:
            return None
        now = self._clock.now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self._burst), now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self._burst), bucket.tokens + elapsed * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self._rate


def retry_after_header(wait_seconds: float) -> str:
    """Whole seconds, rounded up and at least 1, as ``Retry-After`` requires."""
    return str(max(1, math.ceil(wait_seconds)))


def limit_text(rate: float) -> str:
    return str(int(rate)) if float(rate).is_integer() else f"{rate:g}"
