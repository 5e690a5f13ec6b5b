"""The deletion confirmer: proof, per instance, that an accepted deletion has finished.

Why it exists: ``success`` from the batch action means *accepted*. The finalizer may come off only
on proof that the instance is gone (``core.evidence``), and the real cloud's list hides an instance
as soon as its deletion starts, so the shared list walks cannot give that proof. This service asks
for it with as few calls as it can:

- **When**: the first look at an instance goes out when this account's deletions have typically
  finished (a running median of accepted -> confirmed), later ones at a quarter of the time elapsed.
  Most instances need exactly one look.
- **Cohorts**: deletions of one kind (forced or not) accepted within the same ``verify_interval``
  (one batch call, or a burst of them) are deleted alike. The oldest due instance of a cohort is
  looked at first; only when it is gone are the others asked about. While it is still DELETING
  they all wait for its next look.
- **The recycle bin**: non-forced deletions on an account whose bin is on end in the bin, and one
  recycle-bin list call (at most one per ``verify_interval``) confirms any number of them.
  Instances it keeps missing (a failed instance is never binned) are asked about with show.
- **For free**: an instance that a list walk started after the acceptance shows alive again (not
  DELETING) is a deletion the cloud undid; that needs no call at all.

Every call goes through the account's client, so its token bucket paces confirmations too: a 429
storm slows them (``Throttled.retry_after`` is honoured), it never fails or releases one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rocketmq_operator.core import cloud, evidence
from rocketmq_operator.core.evidence import Look, Sighting
from rocketmq_operator.core.vocabulary import Presence
from rocketmq_operator.ports import errors, protocol
from rocketmq_operator.services import observing
from rocketmq_operator.services.activity import Activity
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.supervision import SupervisedService

logger = logging.getLogger(__name__)

BIN_PATIENCE = 3.0
BIN_PATIENCE_FLOOR = 60.0
"""A non-forced deletion is looked for in the recycle bin until it has taken ``BIN_PATIENCE`` times
the usual duration, two ``max_gap`` and at least this many seconds; after that, show asks about it.
Such a deletion rarely ends in a 404 (an instance whose creation failed is never binned), so the
bin, one call for any number of deletions, is given its time."""
SETTLED_MEMORY_SECONDS = 3600.0
"""How long a settled answer is kept for a CR that has not come back for it."""


@dataclass
class _Pending:
    """One accepted deletion being confirmed."""

    instance_id: str
    accepted_at: float
    force: bool
    cohort: str
    due: float
    latest: Look = field(default_factory=evidence.unknown)
    last_deleting_at: float | None = None
    bin_misses: int = 0
    looks: int = 0
    settled_at: float | None = None
    news: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the deletion is decided, or when a look fails in a new way (a waiting pass has something
    to write then); replaced after a failure, so that later waiters wait for the next news."""


class DeletionConfirmer(SupervisedService):
    """Confirms the accepted deletions of one account.

    Args:
        client: the cloud client of the account (its token bucket paces every look).
        verify_interval: the least seconds between two looks at one instance, and between two
            recycle-bin list calls.
        max_gap: the most seconds between two looks at one instance (the poll interval).
        initial_estimate: how long a deletion is assumed to take before any has been confirmed;
            default ``verify_interval``.
        listed: the observer's ``lookup``: free news of instances that a list walk shows again.
        concurrency: the confirmer's own show calls in flight at once (its proofs).
        look_concurrency: passes' show calls (``look``) in flight at once. Apart from the proofs, so
            that neither waits for the other: in a 10,000-CR teardown the passes' looks before
            submitting (0.72 per CR) and the proofs (1 per CR) queued for the same 8 slots, each show
            slowed by a loaded machine, and a proof (which lets a CR and its handler go) waited
            behind looks that start new work.
        clock: wall clock (epoch seconds); waits are measured on it too, so a virtual-time loop
            whose wall clock follows the loop drives this in tests.
        activity: looks go out only while it is active; what fell due meanwhile goes out on resume.
    """

    def __init__(
        self,
        client: protocol.ConfirmingClient,
        *,
        verify_interval: float,
        max_gap: float,
        initial_estimate: float | None = None,
        listed: Callable[[str], observing.Observation] | None = None,
        concurrency: int = 16,
        look_concurrency: int = 8,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        activity: Activity | None = None,
    ) -> None:
        if verify_interval <= 0 or max_gap < verify_interval:
            raise ValueError(f"need 0 < verify_interval <= max_gap, not {verify_interval!r}, {max_gap!r}")
        super().__init__("deletion-confirmer")
        self._client = client
        self._verify_interval = verify_interval
        self._max_gap = max_gap
        initial = verify_interval if initial_estimate is None else initial_estimate
        self._estimates = {force: evidence.DurationEstimate(initial=initial) for force in (True, False)}
        self._listed = listed
        self._shows = asyncio.Semaphore(concurrency)
        self._looks = asyncio.Semaphore(look_concurrency)
        self._metrics = metrics
        self._clock = clock
        self._activity = activity if activity is not None else Activity()
        self._entries: dict[str, _Pending] = {}
        # When each cohort's oldest instance is looked at next: an instance that joins the cohort
        # later (its CR came back for it later) waits for that look instead of making its own.
        self._cohort_due: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._bin_in_use: bool | None = None
        self._last_bin_call = -float("inf")
        self._bin_not_before = -float("inf")

    # ---- for the reconciler ------------------------------------------------------------------

    def estimate(self, *, force: bool) -> float:
        """Seconds a deletion of this kind is expected to take, as learned so far."""
        return self._estimates[force].seconds

    async def look(self, instance_id: str) -> Look:
        """One show call now: for an instance whose deletion was not (or no longer) accepted."""
        async with self._looks:
            return await self._show(instance_id)

    # The caller's budget is part of the contract, hence ASYNC109.
    async def confirm(
        self,
        instance_id: str,
        *,
        accepted_at: float,
        force: bool,
        timeout: float,  # noqa: ASYNC109
    ) -> Look:
        """Wait, at most ``timeout`` seconds, for the deletion accepted at ``accepted_at`` to be decided.

        Returns the proof (``GONE``, ``RECYCLED``), a ``PRESENT`` look showing the cloud undid the
        deletion, or the latest look (``DELETING``, ``UNKNOWN``) when time runs out first or when,
        with no sighting yet, the looks start failing in a new way (refused credentials should reach
        the CR's conditions now, not when a long wait ends). The confirmation goes on after a
        return; asking again joins it.
        """
        entry = self._entries.get(instance_id)
        if entry is None or entry.accepted_at < accepted_at:
            # A new acceptance (a resubmission after the cloud undid the last one) starts afresh.
            cohort = f"{'forced' if force else 'kept'}@{math.floor(accepted_at / self._verify_interval)}"
            entry = _Pending(
                instance_id=instance_id,
                accepted_at=accepted_at,
                force=force,
                cohort=cohort,
                due=max(accepted_at + self.estimate(force=force), self._cohort_due.get(cohort, -math.inf)),
            )
            self._entries[instance_id] = entry
            self._wake.set()
        if entry.settled_at is None:
            await _news_of(entry, timeout)
        return entry.latest

    async def wait(self, instance_id: str, *, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait, at most ``timeout`` seconds, for news of the deletion of ``instance_id`` being
        confirmed (what ``confirm`` waits for); ``False`` at once when none is being confirmed."""
        entry = self._entries.get(instance_id)
        if entry is None or entry.settled_at is not None:
            return False
        await _news_of(entry, timeout)
        return True

    def following_since(self, instance_id: str) -> float | None:
        """The acceptance time of the deletion of ``instance_id`` being confirmed, if one is."""
        entry = self._entries.get(instance_id)
        return entry.accepted_at if entry is not None and entry.settled_at is None else None

    def forget(self, instance_id: str) -> None:
        entry = self._entries.pop(instance_id, None)
        if entry is not None:
            # A pass still waiting (its CR went meanwhile: the finalizer removed by hand) has nothing
            # left to wait for, and must not hold its CR for the rest of a long wait.
            entry.news.set()

    def pending(self) -> int:
        return sum(1 for entry in self._entries.values() if entry.settled_at is None)

    # ---- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._activity.wait_active()
            self._wake.clear()
            now = self._clock()
            self._drop_old(now)
            waiting = [entry for entry in self._entries.values() if entry.settled_at is None]
            due = [entry for entry in waiting if entry.due <= now]
            if not due:
                delay = min((entry.due for entry in waiting), default=now + 3600.0) - now
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                continue
            try:
                await self._tick(due)
            except Exception:
                # The loop must go on (a CR waits on it); push what was due back by one gap.
                logger.exception("confirming deletions failed unexpectedly")
                for entry in due:
                    if entry.settled_at is None and entry.due <= now:
                        entry.due = now + self._verify_interval

    def _drop_old(self, now: float) -> None:
        for instance_id, entry in list(self._entries.items()):
            if entry.settled_at is not None and now - entry.settled_at > SETTLED_MEMORY_SECONDS:
                del self._entries[instance_id]
        waiting = {entry.cohort for entry in self._entries.values() if entry.settled_at is None}
        for cohort in self._cohort_due.keys() - waiting:
            del self._cohort_due[cohort]

    async def _tick(self, due: list[_Pending]) -> None:
        now = self._clock()
        unanswered = [entry for entry in due if not self._from_list_walk(entry)]
        binned = [entry for entry in unanswered if self._bin_worth_asking(entry, now)]
        shown = [entry for entry in unanswered if entry not in binned]
        if binned:
            shown.extend(await self._from_recycle_bin(binned))
        await asyncio.gather(*(self._probe(cohort) for cohort in _cohorts(shown)))

    def _bin_worth_asking(self, entry: _Pending, now: float) -> bool:
        if entry.force or self._bin_in_use is False:
            return False
        patience = max(BIN_PATIENCE * self.estimate(force=False), 2 * self._max_gap, BIN_PATIENCE_FLOOR)
        return entry.bin_misses == 0 or now - entry.accepted_at < patience

    def _from_list_walk(self, entry: _Pending) -> bool:
        """Settle or reschedule an entry on what the latest list walk says, if it says anything new."""
        if self._listed is None:
            return False
        observation = self._listed(entry.instance_id)
        if observation.state != Presence.PRESENT or observation.instance is None or observation.observed_at is None:
            return False
        if entry.latest.observed_at is not None and observation.observed_at <= entry.latest.observed_at:
            return False
        look = evidence.from_status(observation.instance, at=observation.observed_at)
        if look.sighting == Sighting.DELETING or evidence.failed_after_acceptance(look, accepted_at=entry.accepted_at):
            self._apply(entry, look, sentinel=False)
            return True
        return False

    async def _from_recycle_bin(self, entries: list[_Pending]) -> list[_Pending]:
        """One recycle-bin list for the due ones; returns those that now need a show instead.

        The answer covers every non-forced deletion waiting here, due or not: any it lists is
        settled too, for no extra call.
        """
        now = self._clock()
        not_before = max(self._last_bin_call + self._verify_interval, self._bin_not_before)
        if now < not_before:
            for entry in entries:
                entry.due = not_before
            return []
        self._last_bin_call = now
        try:
            answer = await self._client.list_recycle_bin()
        except errors.CloudError as exc:
            logger.info("listing the recycle bin failed (%s); confirming by show instead", exc)
            self._bin_not_before = now + (exc.retry_after if isinstance(exc, errors.Throttled) else self._max_gap)
            if isinstance(exc, errors.Throttled):
                for entry in entries:
                    entry.due = self._bin_not_before
                return []
            return entries
        if answer.default_use_recycle is not None:
            self._bin_in_use = answer.default_use_recycle
        binned = {item.instance_id: item for item in answer.recycle_instances}
        for entry in self._entries.values():
            item = binned.get(entry.instance_id)
            if item is not None and entry.settled_at is None and not entry.force:
                view = cloud.InstanceView(instance_id=item.instance_id, name=item.name, status=cloud.RECYCLE)
                self._apply(entry, Look(Sighting.RECYCLED, now, view), sentinel=True)
        needs_show: list[_Pending] = []
        for entry in entries:
            if entry.settled_at is not None:
                continue
            entry.bin_misses += 1
            # Not binned yet reads like "still deleting" for the estimate's bracket.
            entry.last_deleting_at = now
            if self._bin_in_use is False:
                needs_show.append(entry)
            else:
                self._reschedule(entry, now)
        return needs_show

    async def _probe(self, cohort: list[_Pending]) -> None:
        """Look at the cohort's oldest instance; the others only once it is no longer DELETING."""
        sentinel, *others = cohort
        async with self._shows:
            look = await self._show(sentinel.instance_id)
        self._apply(sentinel, look, sentinel=True)
        if look.sighting in (Sighting.DELETING, Sighting.UNKNOWN):
            self._cohort_due[sentinel.cohort] = sentinel.due
            for entry in others:
                entry.due = max(entry.due, sentinel.due)
            return
        self._cohort_due.pop(sentinel.cohort, None)
        await asyncio.gather(*(self._look_at(entry) for entry in others))

    async def _look_at(self, entry: _Pending) -> None:
        async with self._shows:
            look = await self._show(entry.instance_id)
        self._apply(entry, look, sentinel=False)

    async def _show(self, instance_id: str) -> Look:
        at = self._clock()
        try:
            view = await self._client.show_instance(instance_id)
        except errors.NotFound:
            return evidence.from_show(None, at=at)
        except errors.CloudError as exc:
            return evidence.unknown(
                exc.reason,
                f"confirming the deletion of {instance_id}: {exc}",
                terminal=exc.terminal,
                retry_after=exc.retry_after if isinstance(exc, errors.Throttled) else None,
            )
        return evidence.from_show(view, at=at)

    def _apply(self, entry: _Pending, look: Look, *, sentinel: bool) -> None:
        entry.looks += 1
        now = self._clock()
        if look.sighting == Sighting.UNKNOWN:
            # Keep the last real sighting; an error only delays the next look.
            if entry.latest.sighting == Sighting.UNKNOWN:
                # By kind: the message differs on every call (it carries the request id).
                failed_anew = look.error_reason != entry.latest.error_reason
                entry.latest = look
                if failed_anew:
                    entry.news.set()
                    entry.news = asyncio.Event()
            gap = self._gap(entry, now)
            entry.due = now + (max(gap, look.retry_after) if look.retry_after is not None else gap)
            return
        entry.latest = look
        undone = evidence.failed_after_acceptance(look, accepted_at=entry.accepted_at)
        if look.proves_gone or undone:
            if look.proves_gone and sentinel and look.observed_at is not None:
                last = entry.last_deleting_at
                self._estimates[entry.force].record(
                    elapsed=look.observed_at - entry.accepted_at,
                    last_still_deleting=None if last is None else last - entry.accepted_at,
                    due=entry.due - entry.accepted_at,  # (not rescheduled yet: the due of this look)
                )
            self._settle(entry, "undone" if undone else look.sighting.value.lower())
            return
        if look.sighting == Sighting.DELETING and look.observed_at is not None:
            entry.last_deleting_at = look.observed_at
        self._reschedule(entry, now)

    def _gap(self, entry: _Pending, now: float) -> float:
        return evidence.next_gap(now - entry.accepted_at, least=self._verify_interval, most=self._max_gap)

    def _reschedule(self, entry: _Pending, now: float) -> None:
        entry.due = now + self._gap(entry, now)

    def _settle(self, entry: _Pending, outcome: str) -> None:
        entry.settled_at = self._clock()
        entry.news.set()
        if self._metrics is not None:
            self._metrics.confirmations.labels(evidence=outcome).inc()
            self._metrics.confirmation_looks.observe(entry.looks)


async def _news_of(entry: _Pending, timeout: float) -> None:  # noqa: ASYNC109
    """The one bounded wait of ``confirm`` and ``wait``: for ``entry.news``, at most ``timeout`` seconds."""
    if timeout <= 0:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await entry.news.wait()


def _cohorts(entries: Iterable[_Pending]) -> list[list[_Pending]]:
    """The entries grouped by cohort, oldest first in each."""
    groups: dict[str, list[_Pending]] = {}
    for entry in entries:
        groups.setdefault(entry.cohort, []).append(entry)
    return [sorted(group, key=lambda e: (e.accepted_at, e.instance_id)) for group in groups.values()]
