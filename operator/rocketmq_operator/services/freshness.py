"""What a live CR may believe about its instance: the observer's snapshot, or a fresher show.

Why apart from the reconciler: the rules of trust are one job. The shared list walk answers for
every CR at no cost per CR, but it can be older than what the operator knows (a show right after a
create or an update is fresher; without remembering it, the next pass would re-apply a change the
cloud already took), and it can be too old to act on (``Observer.lookup`` says ``Unknown`` then).
Where the snapshot cannot tell, one show call answers, and a 404 is remembered for good (ids are
never reused). Nothing here is kept longer than the snapshot it stands in for may be trusted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from rocketmq_operator.core import cloud
from rocketmq_operator.core.decisions import Seen
from rocketmq_operator.core.settings import ObserveStrategy
from rocketmq_operator.core.vocabulary import Presence
from rocketmq_operator.services import observing

FIRST_WALK_PATIENCE = 300.0
"""Seconds a pass waits for the observer's first walk before it asks show instead. A first walk
ends, fails (the wait then ends at once, with the error), or is stuck; only a stuck one needs this
bound. It was the snapshot's trust (2 poll intervals, 20 s), but at 10,000 CRs the first walk of a
restarted operator takes about a minute while it takes on 10,000 resumed CRs, and the passes that
gave up after 20 s asked show: 9,311 of them in the 10,000-CR teardown's first minute."""


class FreshViews:
    """The observer's answers, overridden by fresher show calls, per instance id.

    Args:
        observer: the account's observer (its ``lookup`` never does I/O; ``show`` does one call).
        strategy: ``SHOW`` asks show on every pass, ignoring the list.
        max_age: seconds a show's answer stands in for the list: ``observing.STALE_INTERVALS`` poll
            intervals, the age past which the observer's own snapshot is not trusted either.
        clock: wall clock (epoch seconds), the observer's.
    """

    def __init__(
        self,
        observer: observing.Observer,
        *,
        strategy: ObserveStrategy,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._observer = observer
        self._strategy = strategy
        self._max_age = max_age
        self._clock = clock
        self._fresh: dict[str, tuple[float, cloud.InstanceView]] = {}
        self._gone: set[str] = set()  # show answered 404: ids are never reused, so it holds for good

    def seen(self, instance_id: str) -> Seen:
        """The instance as last seen, without I/O: ``Unknown`` where nothing fresh enough is known."""
        if self._strategy == ObserveStrategy.SHOW:
            return Seen.unknown()  # forces seen_now's show call: one per CR per pass
        observation = self._observer.lookup(instance_id)
        fresh = self._fresh.get(instance_id)
        if fresh is not None:
            at, view = fresh
            newer = observation.observed_at is None or at >= observation.observed_at
            if newer and self._clock() - at <= self._max_age:
                return Seen.present(view)
            del self._fresh[instance_id]
        return to_seen(observation)

    async def seen_now(self, instance_id: str) -> Seen:
        """Where the list cannot tell: one show call.

        Right after a create or an adoption the cache may not have the instance yet; a snapshot too
        old to trust says nothing. And an instance the list no longer shows is gone *or being
        deleted* (the real list hides deleting instances), so absence is checked with show before a
        CR is told its instance is missing. Not while the shared list walks fail (the observer then
        reports its error): one show per CR per pass would multiply the calls to a failing cloud
        by the number of CRs. Nor before the observer's first walk has ended: an operator starting
        with 10,000 CRs would ask show about each of them (1,693 calls per interval were measured)
        while the one walk that answers them all is under way; the pass waits for that walk instead.
        """
        seen = self.seen(instance_id)
        if seen.state == Presence.UNKNOWN and seen.error_reason is None and await self._first_walk():
            seen = self.seen(instance_id)
        if seen.state == Presence.PRESENT or (seen.state == Presence.UNKNOWN and seen.error_reason is not None):
            return seen
        if seen.state == Presence.ABSENT and instance_id in self._gone:
            return seen
        observation = await self._observer.show(instance_id)
        if observation.instance is not None:
            self.remember(observation.instance)
        elif observation.state == Presence.ABSENT:
            self._gone.add(instance_id)
        return to_seen(observation)

    async def _first_walk(self) -> bool:
        """Wait (at most ``FIRST_WALK_PATIENCE``) for the observer's first walk to end, if it has
        none yet; whether it waited (the walk may have failed: the caller looks again)."""
        if self._strategy == ObserveStrategy.SHOW:
            return False
        return await self._observer.first_walk(timeout=max(self._max_age, FIRST_WALK_PATIENCE))

    async def show(self, instance_id: str) -> cloud.InstanceView | None:
        """One show call after a change; the answer is remembered."""
        observation = await self._observer.show(instance_id)
        if observation.instance is not None:
            self.remember(observation.instance)
        return observation.instance

    def remember(self, view: cloud.InstanceView) -> None:
        """A view fresher than the last list walk (a show after a mutation)."""
        self._fresh[view.instance_id] = (self._clock(), view)

    def forget(self, instance_ids: Iterable[str]) -> None:
        for instance_id in instance_ids:
            self._fresh.pop(instance_id, None)
            self._gone.discard(instance_id)

    def remembers(self, instance_id: str) -> bool:
        return instance_id in self._fresh or instance_id in self._gone


def to_seen(observation: observing.Observation) -> Seen:
    if observation.state == Presence.PRESENT and observation.instance is not None:
        return Seen.present(observation.instance)
    if observation.state == Presence.ABSENT:
        return Seen.absent()
    error = observation.error
    if error is None:
        return Seen.unknown()
    return Seen.unknown(error.reason, str(error), terminal=error.terminal)
