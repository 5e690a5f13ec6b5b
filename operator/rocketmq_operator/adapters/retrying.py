"""When a failed cloud call may be sent again, and how long to wait first.

Why this is policy and not a loop: retrying is only safe when a repeat cannot act twice. A read can
always be repeated. Deleting one instance or the batch delete are idempotent by the API's semantics
(a second delete of a DELETING or gone instance changes nothing). But a create, an update, a resize,
a restart or a tag create whose outcome is unknown (read timeout, 5xx) must *not* be repeated here:
it is surfaced, and the layer above re-observes first (crossplane's "create incomplete" rule).

Every request, whatever its kind, may be repeated when the cloud surely did not process it: a 429
(or ``*.0308``) throttling answer, or a connection that failed before a byte of the request was sent
(connect error, connect timeout, no free pooled connection). A certificate verification failure is
never retried: it will fail the same way until someone changes the configuration.

Two limits keep a failing account from becoming a retry storm. A throttled call waits out the
account's pause once and is sent once more; a second 429 surfaces, so the layer above can say
``Throttled`` on the CR and reschedule it, rather than hold a handler in a hidden loop while the
shared bucket (``ratelimit``) slows the account down. And once the cloud refuses the account's
credentials, ``CredentialGate`` fails every call of the account at once, without sending it, for
an exponentially growing, capped time: a refused key fails every request the same way, and sending
them anyway (every CR, every poll interval) is how accounts get locked (provider-aws#1672).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from rocketmq_operator.adapters import failures
from rocketmq_operator.ports import errors


class Safety(enum.Enum):
    """What repeating a request may do."""

    READ = "read"
    """Nothing changes; repeat on any transient failure."""
    IDEMPOTENT = "idempotent"
    """A repeat has the same effect as one request; repeat on any transient failure."""
    UNSAFE = "unsafe"
    """A repeat may act twice; repeat only what the cloud surely did not process."""


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def surely_not_processed(error: errors.CloudError) -> bool:
    """True when the cloud cannot have acted on the request."""
    if isinstance(error, errors.Throttled):
        return True
    cause = error.__cause__
    return (
        isinstance(error, errors.TransportError)
        and isinstance(cause, _NOT_SENT)
        and failures.certificate_failure(cause) is None
    )


def retryable(safety: Safety, error: errors.CloudError) -> bool:
    """Whether a request of this safety may be sent again after this error."""
    if surely_not_processed(error):
        return True
    if safety is Safety.UNSAFE:
        return False
    if isinstance(error, errors.TransportError):
        return failures.certificate_failure(error) is None
    return isinstance(error, errors.ServerError)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, within how long, spaced how.

    Args:
        max_attempts: attempts per call, the first included (1 = never retry).
        deadline: seconds from the first attempt after which no further attempt starts.
        base_delay: the backoff before the second attempt, doubled for each one after.
        max_delay: the cap of the exponential backoff.
        max_throttled_retries: how many 429s one call waits out before the 429 surfaces.
    """

    max_attempts: int = 4
    deadline: float = 120.0
    base_delay: float = 0.5
    max_delay: float = 10.0
    max_throttled_retries: int = 1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_throttled_retries < 0:
            raise ValueError("max_throttled_retries must be at least 0")
        if self.deadline <= 0 or self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need deadline > 0 and 0 <= base_delay <= max_delay")

    def backoff(self, attempt: int, jitter: float) -> float:
        """Seconds before attempt ``attempt + 1``: exponential, capped, with "equal jitter".

        ``jitter`` is a number in [0, 1). Half the delay is fixed and half random, so that callers
        that failed together spread out, yet nobody retries immediately.
        """
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + ceiling / 2 * jitter

    def delay(self, error: errors.CloudError, attempt: int, jitter: float) -> float:
        """The wait before the next attempt: the cloud's Retry-After when it gave one."""
        if isinstance(error, errors.Throttled):
            return error.retry_after
        return self.backoff(attempt, jitter)


class CredentialGate:
    """Fails an account's calls without sending them while its credentials are known to be refused.

    The first refusal (``AuthFailed``) closes the gate for ``base`` seconds, each further one
    doubles that, up to ``cap``. When the time is up, one call goes through as a probe (the
    others keep failing for another ``base`` seconds while it runs): its refusal closes the gate
    for longer, any success opens it for good. The error a closed gate raises is the cloud's own
    refusal, saying it was not sent and when the next attempt will be.

    Args:
        base: seconds closed after the first refusal.
        cap: the most seconds it stays closed.
        clock: monotonic seconds.
    """

    def __init__(self, *, base: float = 30.0, cap: float = 900.0, clock: Callable[[], float]) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self._base = base
        self._cap = cap
        self._clock = clock
        self._refusal: errors.AuthFailed | None = None
        self._refusals = 0
        self._until = -math.inf

    @property
    def closed_until(self) -> float:
        """The clock reading before which calls fail without being sent (``-inf`` when open)."""
        return self._until if self._refusal is not None else -math.inf

    def check(self, operation: str) -> None:
        """Raise the last refusal, unsent, while the gate is closed; let a probe through after."""
        refusal = self._refusal
        if refusal is None:
            return
        now = self._clock()
        if now >= self._until:
            self._until = now + self._base  # this call is the probe; the others wait for its answer
            return
        # No moving numbers: CRs carry this text in their conditions, rewritten only when it changes.
        raise errors.AuthFailed(
            f"{refusal.message} (not sent: the cloud refused these credentials; they are tried again after "
            f"a pause that doubles up to {self._cap:g}s)",
            operation=operation,
            status=refusal.status,
            code=refusal.code,
        )

    def refused(self, error: errors.AuthFailed) -> None:
        now = self._clock()
        self._refusals += 1
        self._refusal = error
        self._until = now + min(self._cap, self._base * 2.0 ** min(self._refusals - 1, 32))

    def accepted(self) -> None:
        self._refusal = None
        self._refusals = 0
        self._until = -math.inf
