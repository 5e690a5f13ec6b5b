"""What counts as proof that a deleted instance is gone, and when to look for it: pure rules.

Why its own module: the finalizer is the user's only guarantee that nothing is leaked, and the real
cloud makes the obvious check wrong. Its list stops showing an instance as soon as the deletion
*starts* (Huawei's Terraform provider, the Kafka batch-action resource on the same endpoint, says so
and confirms each instance with show until it answers 404), so "no longer listed" only means "gone or
still being deleted". Proof is one of: show answers 404 ``DMS.00404022``; show answers status
``RECYCLE``; the recycle-bin list has the instance. Everything else is a reason to look again.

The schedule rules are here too, so that their arithmetic is tested with tables on plain numbers:
the first look at an instance is sent when deletions of this account have typically finished (a
running median of how long they took), then looks follow at a quarter of the time elapsed.
"""

from __future__ import annotations

import enum
import statistics
from collections import deque
from dataclasses import dataclass

from rocketmq_operator.core import cloud


class Sighting(enum.StrEnum):
    """What one look at the cloud said about an instance whose deletion was asked for."""

    GONE = "Gone"
    """Show answered 404 ``DMS.00404022``: proof."""
    RECYCLED = "Recycled"
    """Show answered status ``RECYCLE``, or the recycle-bin list has the instance: proof."""
    DELETING = "Deleting"
    """Show (or a list that shows deleting instances) answered ``DELETING``: look again later."""
    PRESENT = "Present"
    """The cloud answered another status (``view`` says which)."""
    UNLISTED = "Unlisted"
    """A list walk did not show it: gone, or still deleting. Not proof of anything."""
    UNKNOWN = "Unknown"
    """No answer (an error, a timeout, nothing asked yet)."""


PROOF = frozenset({Sighting.GONE, Sighting.RECYCLED})

SETTLE_SECONDS = 2.0
"""A look sent this soon after the cloud accepted a deletion may predate it: it proves no failure."""


@dataclass(frozen=True)
class Look:
    """One look at an instance: what it showed, when, and why it failed if it did."""

    sighting: Sighting
    observed_at: float | None = None
    """Wall-clock epoch seconds at which the look was asked for (``None`` when nothing was seen). The
    client may send it later (a retry after a 429): a lower bound, which only ever makes a look count
    as older, never as proof of a failure it did not see."""
    view: cloud.InstanceView | None = None
    error_reason: str | None = None
    error_message: str | None = None
    error_terminal: bool = False
    retry_after: float | None = None
    """With a throttled look: the least seconds before the next one."""

    @property
    def proves_gone(self) -> bool:
        return self.sighting in PROOF

    @property
    def status(self) -> str | None:
        return self.view.status if self.view is not None else None


def from_show(view: cloud.InstanceView | None, *, at: float) -> Look:
    """The look a show call gives: ``None`` is its 404."""
    if view is None:
        return Look(Sighting.GONE, at)
    return from_status(view, at=at)


def from_status(view: cloud.InstanceView, *, at: float) -> Look:
    """The look of an instance seen with a status, by show or by a list."""
    if view.status == cloud.RECYCLE:
        return Look(Sighting.RECYCLED, at, view)
    if view.status == cloud.DELETING:
        return Look(Sighting.DELETING, at, view)
    return Look(Sighting.PRESENT, at, view)


def unknown(
    reason: str | None = None,
    message: str | None = None,
    *,
    terminal: bool = False,
    retry_after: float | None = None,
) -> Look:
    return Look(Sighting.UNKNOWN, None, None, reason, message, terminal, retry_after)


def failed_after_acceptance(look: Look, *, accepted_at: float, settle: float = SETTLE_SECONDS) -> bool:
    """The cloud accepted the deletion, and a later look shows the instance alive again.

    A look sent within ``settle`` seconds of the acceptance is not trusted for this: it may have
    been answered before the cloud switched the instance to DELETING. ``CREATING`` is never a
    failure (an instance cannot go back to it; the look predates the acceptance).
    """
    if look.sighting != Sighting.PRESENT or look.observed_at is None:
        return False
    if look.status == cloud.CREATING:
        return False
    return look.observed_at >= accepted_at + settle


def next_gap(elapsed: float, *, least: float, most: float) -> float:
    """Seconds until the next look at a deletion that has taken ``elapsed`` seconds so far.

    A quarter of the time elapsed, within ``[least, most]``: a release lags the cloud by at most a
    quarter of the deletion's duration, and a deletion that takes an hour costs a log-spaced handful
    of looks, not one every few seconds.
    """
    return min(most, max(least, elapsed / 4.0))


class DurationEstimate:
    """How long this account's deletions take: the median of the most recent ``size`` samples.

    A sample is what a confirmation tells: bracketed by a look that still saw ``DELETING`` and the
    one that saw it gone, the middle of the two; gone at the first look, a little less than the
    time elapsed (the deletion ended some time before it), so that an estimate that has grown too
    long shrinks again instead of never learning that deletions got faster.

    Gone at the first look, the time counted is at most when that look was due (``due``), not when
    it went out: a look that left late (a busy event loop, a queue of looks before it) would teach
    the estimate its own lateness. Each sample would then be 0.9 times (the estimate plus the
    lateness), which settles at nine times the lateness, not at the deletions' length.
    """

    SHRINK = 0.9

    def __init__(self, *, initial: float, size: int = 31) -> None:
        self._initial = initial
        self._samples: deque[float] = deque(maxlen=size)

    def record(self, *, elapsed: float, last_still_deleting: float | None, due: float | None = None) -> None:
        """``elapsed``: from the acceptance to the look that proved it gone; ``due``: from the
        acceptance to when that look was due, if it was scheduled."""
        if elapsed < 0:
            return
        if last_still_deleting is not None and 0 <= last_still_deleting <= elapsed:
            self._samples.append((last_still_deleting + elapsed) / 2.0)
        else:
            first_look = min(elapsed, due) if due is not None and due > 0 else elapsed
            self._samples.append(first_look * self.SHRINK)

    @property
    def seconds(self) -> float:
        return statistics.median(self._samples) if self._samples else self._initial

    @property
    def samples(self) -> int:
        return len(self._samples)
