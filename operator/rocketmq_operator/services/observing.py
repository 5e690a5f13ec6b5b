"""The observer: one shared, list-based picture of an account's instances.

Why it exists: every CR needs to know whether its instance exists and in what status, but asking
the cloud once per CR per poll interval makes the cost grow with the number of CRs and spends the
account's rate limit. Instead one background loop walks the paged instance list once per interval
and every CR reads the resulting snapshot; show calls are kept for the few places where freshness
matters (right after a create, or when a live CR's instance is not listed).

Absence from a walk means only "not listed": gone, or being deleted (the real list hides an instance
as soon as its deletion starts, ../shared/reference/dms-rocketmq-api.md section 8), so it never
proves a deletion finished; ``confirming`` does that. It must still not be an artefact of paging: a
live CR whose instance is not listed costs a show call, and a walk that merely skipped instances
must not make every CR pay one. Offset paging skips items when instances are deleted mid-walk (a
deletion before the current offset shifts later items down), so the walk reads overlapping pages: a
page that shares an item with the pages before it leaves no gap (the list's order is stable, so
nothing that stayed can hide between them). A page that shares none means deletions shifted the
list; the walk steps back and reads again until the pages overlap. Only when that fails (too many
re-reads, or an unstable order) is the snapshot inconsistent, and ``lookup`` then answers
``Unknown``, not ``Absent``, for what it did not list.

A walk whose list did not move needs no overlap, and the next one may then tile: pages side by
side, with the page at the end where new instances appear (the head of a newest-first list, the
tail of an oldest-first one, as ``created_at`` shows) read last, after every other has answered,
and compared with the same page of the walk before. Counted from that earlier read, every page
reporting the same ``instance_num`` means as many instances were created as deleted by each read;
a growing end unchanged at the last read means none created is still there, so none of the earlier
ones was deleted either, and every read saw the list as it was: the pages tile it exactly. A walk
of 10,000 then takes 200 calls, not 205. Anything else (a count that moved, a different end, an
order ``created_at`` does not explain) ends the tiled walk where it is seen, and the walk starts
again with overlapping pages.

The pages after the first are asked for several at once (``pages_at_once``), as far as the latest
``instance_num`` says the list goes, and read in offset order as if one by one. At 10,000
instances a walk is 205 pages; one at a time on a busy event loop they went out at 1 to 3 a second,
a walk took minutes, and every CR whose snapshot had gone stale meanwhile asked show (4.9 shows per
CR while 10,000 were created). The overlap argument does not need the pages read in order: two
pages that share an item leave no gap between them whenever each was read, since the items that
live through the walk keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import math
import random
import time
import types
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass

from rocketmq_operator.core import cloud
from rocketmq_operator.core.vocabulary import Presence
from rocketmq_operator.ports import errors, protocol
from rocketmq_operator.services.activity import Activity
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.supervision import SupervisedService

logger = logging.getLogger(__name__)

_MAX_PAGE_SIZE = 50  # the list API's documented maximum ``limit``
_ERROR_BACKOFF_BASE = 1.0  # seconds before the first early re-walk after a failed walk
_TERMINAL_BACKOFF_BASE = 30.0  # after a terminal failure (refused credentials) walks wait this, doubling
_TERMINAL_BACKOFF_CAP = 900.0
STALE_INTERVALS = 2.0
"""A snapshot this many poll intervals old is not trusted, whatever kept the walks from refreshing it."""
_EXTRA_PAGES = 20  # pages beyond what instance_num explains before a walk is declared endless
_MAX_REPAIRS = 10  # pages one walk may read again to close gaps left by deletions, before giving up
PAGES_AT_ONCE = 8
"""List pages one walk asks for at a time; the rest of the account's pool is left to everything else."""


@dataclass(frozen=True)
class _Anchor:
    """One page read at the end of the list where new instances appear, with the count it came with."""

    count: int
    offset: int
    ids: tuple[str, ...]
    """The page's instances, in list order; the page reaches the growing end."""
    newest_first: bool


@dataclass(frozen=True)
class Snapshot:
    """One complete walk of the instance list."""

    started_at: float
    """Wall clock when the first page was requested: nothing older than this can be in it."""
    finished_at: float
    instances: Mapping[str, cloud.InstanceView]
    """By instance id, in list order; read-only."""
    consistent: bool
    """The pages lined up, so an instance missing from ``instances`` is really not listed."""
    calls: int
    """List calls the walk took."""
    anchor: _Anchor | None = None
    """Set when the list did not move during the walk: the next walk may tile against it."""


@dataclass(frozen=True)
class Observation:
    """What is known about one instance, and how fresh it is."""

    state: Presence
    instance: cloud.InstanceView | None
    observed_at: float | None
    """``started_at`` of the snapshot it came from, or the time of the show call."""
    error: errors.CloudError | None = None


class Observer(SupervisedService):
    """Keeps a snapshot of one account's instances fresh, with one paged walk per interval.

    Args:
        client: the cloud client of the account.
        interval: seconds between the starts of regular walks.
        min_gap: the least seconds between the starts of two walks, however many callers ask for
            a fresh snapshot; callers within the gap share the next walk.
        page_size: list page size (2 to 50): pages overlap by one item, so a walk of N instances
            takes ceil((N - 1) / (page_size - 1)) calls; ceil(N / page_size) once the list stands
            still and its order shows where new instances go.
        metrics: where to count snapshots and the number of instances seen.
        clock: wall clock (epoch seconds) for the ``started_at`` / ``observed_at`` stamps. Walks
            are scheduled on the event loop's clock, so a virtual-time loop drives them in tests.
        activity: walks start only while it is active (a standby replica lists nothing).
        pages_at_once: pages of one walk asked for at a time (1: one after another).
    """

    def __init__(
        self,
        client: protocol.ExternalClient,
        *,
        interval: float,
        min_gap: float = 1.0,
        page_size: int = 50,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        activity: Activity | None = None,
        pages_at_once: int = PAGES_AT_ONCE,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, not {interval!r}")
        if min_gap < 0:
            raise ValueError(f"min_gap must be >= 0, not {min_gap!r}")
        # One item of overlap per page: a page of one would never advance.
        if not 2 <= page_size <= _MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be within 2..{_MAX_PAGE_SIZE}, not {page_size!r}")
        if pages_at_once < 1:
            raise ValueError(f"pages_at_once must be >= 1, not {pages_at_once!r}")
        super().__init__("instance-observer")
        self._pages_at_once = pages_at_once
        self._client = client
        self._interval = interval
        self._min_gap = min_gap
        self._page_size = page_size
        self._metrics = metrics
        self._clock = clock
        self._activity = activity if activity is not None else Activity()
        self._latest: Snapshot | None = None
        self._last_error: errors.CloudError | None = None
        self._closed = False
        self._waiters: list[tuple[float, asyncio.Future[Snapshot | None]]] = []
        self._wake = asyncio.Event()
        self._last_walk_start: float | None = None  # loop time
        self._not_before = -math.inf  # loop time; set after a failed walk
        self._failures = 0
        self._random = random.Random()

    async def start(self) -> None:
        """Start the background loop: a walk at once, then one every ``interval``."""
        if self._closed:
            raise RuntimeError("the observer is closed")
        await super().start()

    async def aclose(self) -> None:
        """Stop the loop; whoever waits for a snapshot gets ``None``."""
        self._closed = True
        await super().aclose()
        waiters, self._waiters = self._waiters, []
        for _, future in waiters:
            if not future.done():
                future.set_result(None)

    def latest(self) -> Snapshot | None:
        return self._latest

    @property
    def last_error(self) -> errors.CloudError | None:
        """Why the last walk failed; ``None`` once a walk succeeds."""
        return self._last_error

    def lookup(self, instance_id: str) -> Observation:
        """The instance as the latest snapshot saw it, without any I/O.

        Absence is reported only from a consistent snapshot; otherwise it is ``Unknown``. While
        walks fail, the last snapshot is still used for a while (one failed walk is no news), but
        not after a terminal failure, nor once ``STALE_INTERVALS`` intervals have passed since its
        walk ended, whatever the reason (walks failing, the loop dead or stuck, a walk throttled to
        a crawl): then the answer is ``Unknown``, with the error if walks fail, so every CR says why
        it cannot be observed, and a reconciler that wants an answer asks show rather than act on
        old data.
        """
        snapshot = self._latest
        error = self._last_error
        if snapshot is None:
            return Observation(Presence.UNKNOWN, None, None, error=error)
        # Counted from the walk's end: at 10,000 instances a walk is 200 pages (the API's limit is
        # 50) and can take longer than the interval. Counted from its start, a snapshot could go
        # stale before the next walk ended, and every CR's pass would then ask show instead.
        stale = self._clock() - snapshot.finished_at > STALE_INTERVALS * self._interval
        if stale or (error is not None and error.terminal):
            return Observation(Presence.UNKNOWN, None, snapshot.started_at, error=error)
        instance = snapshot.instances.get(instance_id)
        if instance is not None:
            return Observation(Presence.PRESENT, instance, snapshot.started_at)
        if snapshot.consistent:
            return Observation(Presence.ABSENT, None, snapshot.started_at)
        return Observation(Presence.UNKNOWN, None, snapshot.started_at)

    def failed_instances(self) -> list[cloud.InstanceView]:
        """Instances whose creation failed, as the latest snapshot listed them."""
        snapshot = self._latest
        if snapshot is None:
            return []
        return [view for view in snapshot.instances.values() if view.status == cloud.CREATEFAILED]

    # The timeout is part of the contract (callers pass their own budget), hence ASYNC109.
    async def snapshot_after(self, t: float, *, timeout: float) -> Snapshot | None:  # noqa: ASYNC109
        """A snapshot whose walk started at or after ``t`` (wall clock).

        Asks the loop to walk early, but walks never start closer than ``min_gap`` apart, so
        concurrent callers share one walk. Returns ``None`` on timeout, when the walk that would
        have served the caller failed (see ``last_error``), or when the observer closes.
        """
        snapshot = self._latest
        if snapshot is not None and snapshot.started_at >= t:
            return snapshot
        if self._closed:
            return None
        future: asyncio.Future[Snapshot | None] = asyncio.get_running_loop().create_future()
        entry = (t, future)
        self._waiters.append(entry)
        self._wake.set()
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    async def first_walk(self, *, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait, at most ``timeout`` seconds, for the first walk to end, if none has yet; whether it
        waited (the walk may have failed or timed out: the caller looks again). One walk answers
        every CR at once: a pass that asked show meanwhile would cost a call per CR. Not while the
        loop is not running (not started yet, or stopped): no walk is coming."""
        if self._latest is not None or not self.running:
            return False
        await self.snapshot_after(0.0, timeout=timeout)
        return True

    async def show(self, instance_id: str) -> Observation:
        """One show call, where freshness matters more than cost: right after a create, or for an unlisted instance."""
        observed_at = self._clock()
        try:
            view = await self._client.show_instance(instance_id)
        except errors.NotFound:
            return Observation(Presence.ABSENT, None, observed_at)
        except errors.CloudError as exc:
            return Observation(Presence.UNKNOWN, None, None, error=exc)
        return Observation(Presence.PRESENT, view, observed_at)

    # The loop.

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            await self._until_due(next_tick)
            # A walk due while paused waits for the resume and goes out then: the snapshot is stale.
            await self._activity.wait_active()
            started = loop.time()
            self._last_walk_start = started
            await self._walk_once()
            # From the start, not the end, of this walk: walk durations do not accumulate.
            next_tick = started + self._interval

    async def _until_due(self, next_tick: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            due = next_tick
            if self._waiters and self._last_walk_start is not None:
                # Early, for the waiter that wants the soonest walk, but not before the time it
                # asked for (a caller pacing itself asks for a walk in the future) nor min_gap.
                wanted = min(t for t, _ in self._waiters) - self._clock() + loop.time()
                due = min(due, max(self._last_walk_start + self._min_gap, wanted))
            due = max(due, self._not_before)
            delay = due - loop.time()
            if delay <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _walk_once(self) -> None:
        """One walk; failures are recorded and logged, never raised (the loop must go on)."""
        started_at = self._clock()
        try:
            snapshot = await self._walk(started_at)
        except errors.CloudError as exc:
            self._failed(exc, started_at)
        except Exception as exc:
            logger.exception("Listing instances failed unexpectedly")
            self._failed(
                errors.CloudError(f"unexpected {type(exc).__name__}: {exc}", operation="list_instances"),
                started_at,
            )
        else:
            self._succeeded(snapshot)

    async def _walk(self, started_at: float) -> Snapshot:
        latest = self._latest
        if latest is not None and latest.anchor is not None and latest.anchor.count > self._page_size:
            tiled, spent = await self._walk_tiled(started_at, latest.anchor)
            if self._metrics is not None:
                self._metrics.tiled_walks.labels(outcome="moved" if tiled is None else "whole").inc()
            if tiled is not None:
                return tiled
            # The list moved under the tiles, which may have missed what it shifted: walk again
            # with overlapping pages, which repair shifts, rather than answer Unknown for the gaps
            # (a show call each, 416 of them at the start of a 10,000-CR teardown).
            snapshot = await self._walk_overlapping(self._clock())
            return dataclasses.replace(snapshot, calls=snapshot.calls + spent)
        return await self._walk_overlapping(started_at)

    async def _walk_overlapping(self, started_at: float) -> Snapshot:
        page_size = self._page_size
        collected: dict[str, cloud.InstanceView] = {}
        # An instance unchanged since the last walk keeps that walk's view: the new parse is dropped
        # with its page, so one copy of each view is held, not two (the snapshot and the walk that
        # replaces it). Views were the largest part of the operator's heap after the CR bodies.
        previous = self._latest.instances if self._latest is not None else {}
        chain = _Chain()
        counts: list[int] = []
        doubts: list[str] = []
        calls = repairs = 0
        stepped_back_from: list[tuple[int, list[cloud.InstanceView]]] = []
        offset = 0
        first: list[cloud.InstanceView] = []
        pages = _Pages(self._client, page_size, self._pages_at_once, step=page_size - 1)
        try:
            while True:
                page = await pages.read(offset)
                calls += 1
                items = list(page.instances)
                if calls == 1:
                    first = items
                counts.append(page.instance_num)
                for item in items:
                    known = previous.get(item.instance_id)
                    collected[item.instance_id] = known if known == item else item
                if offset == 0 and len(items) < page_size:
                    # The whole list at one moment (a walk's first page, or a step back after mass
                    # deletions): whatever lived through the walk is on it.
                    break
                if chain.extend(items, at_head=offset == 0):
                    # Pages a repair stepped back from join once they overlap the chain: resume after the
                    # furthest of them instead of reading them again.
                    joined = chain.join(stepped_back_from)
                    if joined is not None:
                        offset, items = joined
                    stepped_back_from.clear()
                elif offset > 0 and repairs < _MAX_REPAIRS and not doubts and counts[-1] < max(counts):
                    # No overlap, and the count fell: instances before this offset were deleted since the
                    # last page, the list shifted down and items may have slid past unseen. Step back and
                    # read again; a page that overlaps the chain covers the gap. Without a fall in the
                    # count, deletions are not the cause (the order is not stable): re-reading would only
                    # cost calls on every walk, and once in doubt it cannot help.
                    repairs += 1
                    stepped_back_from.append((offset, items))
                    offset = max(0, offset - (page_size - 1))
                    continue
                else:
                    doubts.append(f"page at offset {offset} does not line up with the pages before it")
                    chain.force(items)
                    stepped_back_from.clear()
                # The end: a short page; or a full one that, on a walk with nothing moving, brings the
                # count exactly to what the cloud reports (saves a call that could only come back empty).
                still = len(set(counts)) == 1
                if len(items) < page_size or (still and not doubts and len(collected) == counts[-1]):
                    break
                if calls - repairs > max(counts) // (page_size - 1) + _EXTRA_PAGES:
                    raise errors.MalformedResponse(
                        f"the instance list did not end after {calls} full pages (instance_num {max(counts)})",
                        operation="list_instances",
                    )
                offset += page_size - 1
                pages.ahead(offset, end=counts[-1])
        finally:
            await pages.aclose()
        # Deletions during a walk leave more listed than the final count, never fewer; with nothing
        # moving the two agree. Fewer means the list hid something (or gained it where we had been).
        if len(collected) < counts[-1] or (len(set(counts)) == 1 and len(collected) != counts[-1]):
            doubts.append(f"{len(collected)} instances listed, instance_num says {counts[-1]}")
        if doubts:
            logger.info("Instance list snapshot is inconsistent (absence not trusted): %s", "; ".join(doubts))
        if self._metrics is not None and repairs:
            self._metrics.list_repairs.inc(repairs)
        anchor = None
        if not doubts and not repairs and len(set(counts)) == 1 and len(collected) == counts[-1]:
            # Nothing moved: the walk's first page (the head) and its last (the tail) are each the
            # list as one read saw it, so either can anchor a tiled walk.
            anchor = _anchor_of(list(collected.values()), head=first, tail=(offset, items), count=counts[-1])
        return Snapshot(
            started_at=started_at,
            finished_at=self._clock(),
            instances=types.MappingProxyType(collected),
            consistent=not doubts,
            calls=pages.asked,
            anchor=anchor,
        )

    async def _walk_tiled(self, started_at: float, anchor: _Anchor) -> tuple[Snapshot | None, int]:
        """Pages side by side, the growing end last (the module's docstring says why that holds);
        ``None`` as soon as the list shows it moved, with the calls spent."""
        page_size, count = self._page_size, anchor.count
        if anchor.newest_first:
            last, tiles = 0, range(page_size, count, page_size)
        else:
            last = page_size * ((count - 1) // page_size)
            tiles = range(0, last, page_size)
        read: list[cloud.InstanceView] = []
        pages = _Pages(self._client, page_size, self._pages_at_once, step=page_size)
        try:
            pages.ahead(tiles.start, end=tiles.stop)
            for offset in tiles:
                page = await pages.read(offset)
                if page.instance_num != count:
                    return self._moved(f"instance_num {page.instance_num} at offset {offset}, {count} before", pages)
                read.extend(page.instances)
                pages.ahead(offset + page_size, end=tiles.stop)
            # Asked only now, after every other page answered: this read is the last one.
            page = await pages.read(last)
        finally:
            await pages.aclose()
        end_page = list(page.instances)
        if page.instance_num != count:
            return self._moved(f"instance_num {page.instance_num} at offset {last}, {count} before", pages)
        if not _same_end(anchor, last, end_page):
            return self._moved("instances were created at the end of the list", pages)
        ordered = [*end_page, *read] if anchor.newest_first else [*read, *end_page]
        previous = self._latest.instances if self._latest is not None else {}
        collected: dict[str, cloud.InstanceView] = {}
        for item in ordered:
            known = previous.get(item.instance_id)
            collected[item.instance_id] = known if known == item else item
        views = list(collected.values())
        if len(collected) != count or len(ordered) != count:
            return self._moved(f"{len(collected)} instances on {len(ordered)} places of {count}", pages)
        if _newest_first(views) is not anchor.newest_first:
            return self._moved("the list's order no longer follows created_at", pages)
        snapshot = Snapshot(
            started_at=started_at,
            finished_at=self._clock(),
            instances=types.MappingProxyType(collected),
            consistent=True,
            calls=pages.asked,
            anchor=_anchor_of(views, head=end_page, tail=(last, end_page), count=count),
        )
        return snapshot, pages.asked

    @staticmethod
    def _moved(why: str, pages: _Pages) -> tuple[None, int]:
        logger.info("Instance list moved during a tiled walk (%s); walking it again with overlapping pages", why)
        return None, pages.asked

    def _succeeded(self, snapshot: Snapshot) -> None:
        if self._latest is None:
            logger.info(
                "First instance list snapshot: %d instances in %d calls",
                len(snapshot.instances),
                snapshot.calls,
            )
        self._latest = snapshot
        self._last_error = None
        self._failures = 0
        self._not_before = -math.inf
        if self._metrics is not None:
            self._metrics.snapshots.labels(outcome="consistent" if snapshot.consistent else "inconsistent").inc()
            self._metrics.observed_instances.set(len(snapshot.instances))
        self._serve_waiters(snapshot.started_at, snapshot)

    def _failed(self, exc: errors.CloudError, started_at: float) -> None:
        self._last_error = exc
        self._failures += 1
        # Early walks (asked for by waiters) back off exponentially up to the interval, so a broken
        # cloud is not hammered at min_gap; throttling also honours the cloud's own Retry-After.
        delay = min(self._interval, max(self._min_gap, _ERROR_BACKOFF_BASE) * 2 ** min(self._failures - 1, 16))
        if exc.terminal:
            # Refused credentials do not heal by walking again next interval: back off long.
            base = max(self._interval, _TERMINAL_BACKOFF_BASE)
            delay = min(_TERMINAL_BACKOFF_CAP, base * 2 ** min(self._failures - 1, 16))
        if isinstance(exc, errors.Throttled):
            delay = max(delay, exc.retry_after) * self._random.uniform(1.0, 1.5)
        self._not_before = asyncio.get_running_loop().time() + delay
        if self._metrics is not None:
            self._metrics.snapshots.labels(outcome="error").inc()
        logger.warning(
            "Listing instances failed (%s); keeping the previous snapshot, next walk in >= %.1fs",
            exc,
            delay,
        )
        # Whoever this walk was meant to serve learns now, rather than at its timeout.
        self._serve_waiters(started_at, None)

    def _serve_waiters(self, started_at: float, snapshot: Snapshot | None) -> None:
        remaining: list[tuple[float, asyncio.Future[Snapshot | None]]] = []
        for t, future in self._waiters:
            if t <= started_at:
                if not future.done():
                    future.set_result(snapshot)
            else:
                remaining.append((t, future))
        self._waiters = remaining


def _newest_first(views: list[cloud.InstanceView]) -> bool | None:
    """Whether ``created_at`` falls along the list (True) or rises (False); None if it shows neither.

    The real list's order is undocumented; only an order by creation time says where an instance
    created during a walk will appear, which a tiled walk must know.
    """
    stamps = [view.created_at for view in views if view.created_at is not None]
    if len(stamps) < 2 or len(stamps) != len(views):
        return None
    pairs = list(itertools.pairwise(stamps))
    if all(a >= b for a, b in pairs) and any(a > b for a, b in pairs):
        return True
    if all(a <= b for a, b in pairs) and any(a < b for a, b in pairs):
        return False
    return None


def _anchor_of(
    views: list[cloud.InstanceView],
    *,
    head: list[cloud.InstanceView],
    tail: tuple[int, list[cloud.InstanceView]],
    count: int,
) -> _Anchor | None:
    """The page a tiled walk will compare its last read with, if the order says where lists grow."""
    newest_first = _newest_first(views)
    if newest_first is None:
        return None
    if newest_first:
        return _Anchor(count, 0, tuple(view.instance_id for view in head), True)
    offset, items = tail
    if offset + len(items) != count:
        return None
    return _Anchor(count, offset, tuple(view.instance_id for view in items), False)


def _same_end(anchor: _Anchor, offset: int, items: list[cloud.InstanceView]) -> bool:
    """The page read last shows the growing end as the anchor did, over every place both cover."""
    ids = tuple(view.instance_id for view in items)
    if anchor.newest_first:
        return ids == anchor.ids
    if offset + len(ids) != anchor.count:
        return False
    start = max(offset, anchor.offset)
    return ids[start - offset :] == anchor.ids[start - anchor.offset :]


class _Chain:
    """The pages of one walk that are known to follow each other without a gap, in list order.

    The list's order is stable (newest first), so instances that exist throughout a walk keep their
    order whatever else is created or deleted. A page continues the chain when the instances it
    shares with the chain come first on the page, in the chain's order, and the rest are new: then
    everything that stayed between the two is on one or the other. A head page (offset 0) may
    start with instances created since. Anything else (no overlap, overlap in the middle, another
    order) does not line up, and absence can no longer be vouched for.
    """

    def __init__(self) -> None:
        self._position: dict[str, int] = {}

    def _first_new(self, items: list[cloud.InstanceView], *, at_head: bool) -> int | None:
        """Where the page's new instances start if it lines up, else ``None``."""
        if not self._position:
            return 0 if at_head else None
        known = [i for i, item in enumerate(items) if item.instance_id in self._position]
        if not known or (known[0] != 0 and not at_head):
            return None
        end = known[0] + len(known)
        if known != list(range(known[0], end)):
            return None
        positions = [self._position[items[i].instance_id] for i in known]
        if any(a >= b for a, b in itertools.pairwise(positions)):
            return None
        return end

    def extend(self, items: list[cloud.InstanceView], *, at_head: bool) -> bool:
        """Add the page if it lines up; say whether it did."""
        first_new = self._first_new(items, at_head=at_head)
        if first_new is None:
            return False
        # Instances before the known ones on a head page were created since: they precede the
        # chain rather than follow it, and no later page of this walk can hold them.
        self.force(items[first_new:])
        return True

    def force(self, items: list[cloud.InstanceView]) -> None:
        """Add the page after the chain, lined up or not (the walk goes on, marked inconsistent)."""
        for item in items:
            if item.instance_id not in self._position:
                self._position[item.instance_id] = len(self._position)

    def join(self, pages: list[tuple[int, list[cloud.InstanceView]]]) -> tuple[int, list[cloud.InstanceView]] | None:
        """Add every page that now lines up (each may let another in); the furthest of them."""
        furthest: tuple[int, list[cloud.InstanceView]] | None = None
        waiting = list(pages)
        progress = True
        while progress:
            progress = False
            for page in list(waiting):
                if self.extend(page[1], at_head=False):
                    waiting.remove(page)
                    progress = True
                    if furthest is None or page[0] > furthest[0]:
                        furthest = page
        return furthest


class _Pages:
    """The pages of one walk, asked for ahead of their reading, at most ``at_once`` in flight.

    A page asked for ahead is read as it was when it came, which may be before a page of lower
    offset; the chain checks each page against the others whenever it was read.
    """

    def __init__(self, client: protocol.ExternalClient, page_size: int, at_once: int, *, step: int) -> None:
        self._client = client
        self._page_size = page_size
        self._at_once = at_once
        self._step = step  # between the offsets of neighbouring pages: page_size - 1 where they overlap
        self._ahead: dict[int, asyncio.Task[cloud.ListInstancesResponse]] = {}
        self._dropped: list[asyncio.Task[cloud.ListInstancesResponse]] = []
        self.asked = 0
        """List calls asked for, read or not (the walk's cost)."""

    def _ask(self, offset: int) -> Coroutine[None, None, cloud.ListInstancesResponse]:
        self.asked += 1
        return self._client.list_instances(cloud.ListQuery(limit=self._page_size, offset=offset))

    async def read(self, offset: int) -> cloud.ListInstancesResponse:
        """The page at ``offset``: the one asked for ahead, or a new call."""
        task = self._ahead.pop(offset, None)
        if task is None:
            return await self._ask(offset)
        return await task

    def ahead(self, offset: int, *, end: int) -> None:
        """Ask for the pages from ``offset`` on that can hold an instance before ``end``; drop those behind."""
        for behind in [o for o in self._ahead if o < offset]:
            task = self._ahead.pop(behind)
            task.cancel()
            self._dropped.append(task)  # its failure, if it came, is collected by aclose
        if self._at_once < 2:
            return
        # A page holds something new only if the list goes past what it shares with the page before.
        step = self._step
        shared = self._page_size - step
        at = offset
        while len(self._ahead) < self._at_once and at + shared < end:
            if at not in self._ahead:
                self._ahead[at] = asyncio.ensure_future(self._ask(at))
            at += step

    async def aclose(self) -> None:
        """Cancel what the walk did not read (it ended, or failed), and wait for it to stop."""
        tasks = [*self._ahead.values(), *self._dropped]
        self._ahead.clear()
        self._dropped.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
