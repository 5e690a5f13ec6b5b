"""The observer: one paged list walk per interval feeds every CR, and an unlisted instance is only
reported absent (gone or being deleted) when the walk could not have missed it.

Every test runs on a virtual clock (``fake_cloud.virtual_time``); the fake cloud logs the loop time
of each call and can change between the pages of one walk.
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from rocketmq_operator.core import cloud
from rocketmq_operator.core.vocabulary import Presence
from rocketmq_operator.ports import errors
from rocketmq_operator.services import observing
from rocketmq_operator.services.metrics import Metrics

from .fake_cloud import EPOCH, FakeCloud, instance, loop_clock, virtual_time

FIRST = EPOCH  # wall-clock start of the first walk, which begins at loop time 0


def now() -> float:
    return loop_clock()


@asynccontextmanager
async def running(
    fake: FakeCloud,
    *,
    interval: float = 30.0,
    min_gap: float = 1.0,
    page_size: int = 50,
    metrics: Metrics | None = None,
    pages_at_once: int = observing.PAGES_AT_ONCE,
) -> AsyncIterator[observing.Observer]:
    observer = observing.Observer(
        fake,
        interval=interval,
        min_gap=min_gap,
        page_size=page_size,
        metrics=metrics,
        clock=loop_clock,
        pages_at_once=pages_at_once,
    )
    await observer.start()
    try:
        yield observer
    finally:
        await observer.aclose()


def last_error_of(observer: observing.Observer) -> errors.CloudError | None:
    return observer.last_error


def walk_starts(fake: FakeCloud) -> list[float]:
    return [call.at for call in fake.calls_of("list_instances") if call.offset == 0]


def once(action: Callable[[], None], *, at_offset: int) -> Callable[[cloud.ListQuery], None]:
    """A ``before_list`` hook that changes the cloud once, just before the page at ``at_offset``."""
    done = False

    def hook(query: cloud.ListQuery) -> None:
        nonlocal done
        if query.offset == at_offset and not done:
            done = True
            action()

    return hook


def fails_at(offset: int, error: Exception) -> Callable[[cloud.ListQuery], None]:
    """A ``before_list`` hook that fails every page at ``offset`` with ``error``."""

    def hook(query: cloud.ListQuery) -> None:
        if query.offset == offset:
            raise error

    return hook


def _churn(fake: FakeCloud, rng: random.Random) -> Callable[[cloud.ListQuery], None]:
    """Deletions and creations anywhere in the (stable) order, before every page but the first."""
    created = 0

    def churn(query: cloud.ListQuery) -> None:
        nonlocal created
        if len(fake.calls_of("list_instances")) == 1:
            return
        live = list(fake.instances)
        fake.remove(*rng.sample(live, min(len(live), rng.choice([0, 0, 1, 5, 30, 49, 50, 70]))))
        items = list(fake.instances.items())
        for _ in range(rng.choice([0, 0, 0, 1, 3])):
            created += 1
            items.insert(rng.randint(0, len(items)), (f"i-new-{created}", instance(f"i-new-{created}")))
        fake.instances = dict(items)

    return churn


def stamped(fake: FakeCloud, count: int, *, newest_first: bool) -> list[str]:
    """``count`` instances listed by creation time, as the real list would order them; their ids in list order."""
    ids = [f"i-{n:04d}" for n in range(count)]
    # Epoch ms one second apart, the first id oldest; listed newest first or oldest first.
    views = [instance(i).model_copy(update={"created_at": 1_700_000_000_000 + n * 1000}) for n, i in enumerate(ids)]
    fake.add(*(reversed(views) if newest_first else views))
    return list(reversed(ids)) if newest_first else ids


def create_newest(fake: FakeCloud, instance_id: str, *, newest_first: bool) -> None:
    """An instance created now: where a list ordered by creation time puts it."""
    newest = max((view.created_at or 0) for view in fake.instances.values()) + 1000
    view = instance(instance_id).model_copy(update={"created_at": newest})
    fake.instances = {instance_id: view, **fake.instances} if newest_first else {**fake.instances, instance_id: view}


def list_offsets(fake: FakeCloud) -> list[int | None]:
    return [call.offset for call in fake.calls_of("list_instances")]


async def the_walk_after_the_first(observer: observing.Observer, fake: FakeCloud) -> observing.Snapshot | None:
    """Wait for the observer's first walk, forget its calls, and return the next walk's snapshot."""
    await observer.snapshot_after(now(), timeout=60)
    fake.calls.clear()
    return await observer.snapshot_after(now() + 1, timeout=60)


def _ordered_churn(fake: FakeCloud, rng: random.Random, *, newest_first: bool) -> Callable[[cloud.ListQuery], None]:
    """Deletions anywhere and creations where the order by creation time puts them, before one page
    in twenty, often balanced so that the count does not move."""
    created = 0

    def churn(query: cloud.ListQuery) -> None:
        nonlocal created
        if rng.random() < 0.95:
            return
        live = list(fake.instances)
        deleted = rng.choice([0, 1, 1, 2, 5, 60])
        fake.remove(*rng.sample(live, min(len(live) - 1, deleted)))
        for _ in range(rng.choice([0, deleted, deleted, 1])):
            created += 1
            create_newest(fake, f"i-new-{created}", newest_first=newest_first)

    return churn


class TestOneWalk:
    @virtual_time
    async def test_120_instances_with_pages_of_50_take_3_overlapping_calls(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(120)

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)

        assert snapshot is not None
        assert [(c.offset, c.limit) for c in fake.calls_of("list_instances")] == [(0, 50), (49, 50), (98, 50)]
        assert list(snapshot.instances) == ids
        assert snapshot.consistent
        assert snapshot.calls == 3
        assert snapshot.started_at == FIRST

    @pytest.mark.parametrize(("count", "calls"), [(0, 1), (1, 1), (50, 1), (99, 2), (120, 3), (1000, 21)])
    @virtual_time
    async def test_a_walk_costs_one_call_per_49_instances_plus_at_most_one(self, count: int, calls: int) -> None:
        fake = FakeCloud()
        fake.add_running(count)

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)

        assert snapshot is not None
        assert snapshot.consistent
        assert len(snapshot.instances) == count
        assert snapshot.calls == calls
        assert calls <= math.ceil(count / 50) + 1

    @virtual_time
    async def test_instances_whose_creation_failed_are_listed_and_reported(self) -> None:
        fake = FakeCloud()
        fake.add_running(2)
        fake.add(instance("i-broken", status=cloud.CREATEFAILED))

        async with running(fake) as observer:
            await observer.snapshot_after(FIRST, timeout=5)

            assert observer.lookup("i-broken").state == Presence.PRESENT
            assert [view.instance_id for view in observer.failed_instances()] == ["i-broken"]

    @virtual_time
    async def test_snapshots_and_the_instance_count_are_recorded(self) -> None:
        metrics = Metrics()
        fake = FakeCloud()
        fake.add_running(7)

        async with running(fake, metrics=metrics) as observer:
            await observer.snapshot_after(FIRST, timeout=5)

        registry = metrics.registry
        assert registry.get_sample_value("rocketmq_operator_observed_instances") == 7
        assert registry.get_sample_value("rocketmq_operator_observer_snapshots_total", {"outcome": "consistent"}) == 1

    async def test_an_unchanged_instance_keeps_the_last_walks_view_and_a_changed_one_gets_the_new(self) -> None:
        # The wire gives a new object per walk; only one copy of an unchanged view stays held.
        fake = FakeCloud()
        fake.add_running(120)
        listed = fake.list_instances

        async def as_parsed_anew(query: cloud.ListQuery) -> cloud.ListInstancesResponse:
            return (await listed(query)).model_copy(deep=True)

        fake.list_instances = as_parsed_anew  # type: ignore[method-assign]
        changed = next(iter(fake.instances))
        async with running(fake, interval=10.0) as observer:
            first = await observer.snapshot_after(FIRST, timeout=5)
            assert first is not None
            fake.instances[changed] = fake.instances[changed].model_copy(update={"status": cloud.RESTARTING})
            second = await observer.snapshot_after(first.started_at + 1, timeout=15)

        assert second is not None and second is not first
        assert second.instances[changed].status == cloud.RESTARTING
        same = [i for i in second.instances if i != changed]
        assert len(same) == 119 and all(second.instances[i] is first.instances[i] for i in same)


class TestPagesAskedForAtOnce:
    @pytest.mark.parametrize(("pages_at_once", "seconds"), [(1, 21.0), (8, 4.0)])
    @virtual_time
    async def test_a_walk_of_1000_asks_for_up_to_8_pages_at_once_and_reads_them_in_list_order(
        self, pages_at_once: int, seconds: float
    ) -> None:
        fake = FakeCloud(latency=1.0)  # every call takes a second
        ids = fake.add_running(1000)

        async with running(fake, pages_at_once=pages_at_once) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=60)

        assert snapshot is not None
        assert list(snapshot.instances) == ids
        assert snapshot.consistent
        assert snapshot.calls == 21  # no page asked for that the count did not call for
        assert snapshot.finished_at - snapshot.started_at == pytest.approx(seconds)
        in_flight = collections.Counter(call.at for call in fake.calls_of("list_instances"))
        assert max(in_flight.values()) == pages_at_once

    @virtual_time
    async def test_a_page_failing_ahead_of_its_turn_fails_the_walk_and_no_page_is_left_asking(self) -> None:
        fake = FakeCloud(latency=1.0)
        fake.add_running(1000)
        fake.before_list = fails_at(98, errors.TransportError("connection reset"))
        async with running(fake) as observer:
            assert await observer.snapshot_after(FIRST, timeout=5) is None
            error = last_error_of(observer)
            asking = [task for task in asyncio.all_tasks() if "list_instances" in repr(task.get_coro())]

        assert isinstance(error, errors.TransportError)
        assert asking == []  # the pages beyond 98 were cancelled with the walk


class TestTheCloudChangingDuringAWalk:
    @virtual_time
    async def test_deletions_before_the_offset_are_repaired_by_stepping_back_and_nothing_is_skipped(
        self,
    ) -> None:
        fake = FakeCloud()
        ids = fake.add_running(120)
        # Two deletions before offset 49 shift everything left by two: ids[50] slides to index 48,
        # behind the next page. The page at 49 no longer overlaps page one, so the walk reads from
        # 0 again, which bridges the gap, and goes on after the page it stepped back from.
        fake.before_list = once(lambda: fake.remove(ids[0], ids[1]), at_offset=49)

        async with running(fake, pages_at_once=1) as observer:  # the order of calls, one at a time
            snapshot = await observer.snapshot_after(FIRST, timeout=5)

        assert snapshot is not None
        assert [call.offset for call in fake.calls_of("list_instances")] == [0, 49, 0, 98]
        assert snapshot.consistent
        assert set(ids) <= set(snapshot.instances)

    @virtual_time
    async def test_an_instance_deleted_mid_walk_is_absent_without_a_show(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(120)
        fake.before_list = once(lambda: fake.remove(ids[0], ids[1], ids[50]), at_offset=49)

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)
            assert snapshot is not None and observer.latest() is snapshot
            seen = observer.lookup(ids[50])

        assert snapshot.consistent
        assert set(ids) - {ids[0], ids[1], ids[50]} <= set(snapshot.instances)
        assert (seen.state, seen.observed_at) == (Presence.ABSENT, FIRST)
        assert fake.calls_of("show_instance") == []

    @virtual_time
    async def test_when_all_but_a_few_vanish_mid_walk_the_short_head_page_is_the_whole_list(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(400)
        fake.before_list = once(lambda: fake.remove(*ids[3:]), at_offset=49)

        async with running(fake, pages_at_once=1) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)
            seen = observer.lookup(ids[200])

        assert snapshot is not None
        assert [call.offset for call in fake.calls_of("list_instances")] == [0, 49, 0]
        assert snapshot.consistent
        assert set(ids[:3]) <= set(snapshot.instances)
        assert seen.state == Presence.ABSENT
        assert fake.calls_of("show_instance") == []

    @virtual_time
    async def test_a_deletion_of_more_than_a_page_steps_back_as_far_as_it_takes(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(200)
        fake.before_list = once(lambda: fake.remove(*ids[:60]), at_offset=98)

        metrics = Metrics()
        async with running(fake, metrics=metrics, pages_at_once=1) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)

        assert snapshot is not None
        # 98 and 49 no longer overlap the chain; 0 does, and with it both pages stepped back from.
        assert [call.offset for call in fake.calls_of("list_instances")] == [0, 49, 98, 49, 0]
        assert snapshot.consistent
        assert set(ids) <= set(snapshot.instances)
        assert metrics.registry.get_sample_value("rocketmq_operator_observer_page_rereads_total") == 2

    @virtual_time
    async def test_deletions_that_outrun_the_rereads_leave_it_inconsistent_and_absence_is_unknown(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(400)
        doomed = list(ids[:350])

        def delete_more(query: cloud.ListQuery) -> None:
            # More than a page's step vanishes before every page after the first.
            if query.offset > 0 and doomed:
                fake.remove(*doomed[:60])
                del doomed[:60]

        fake.before_list = delete_more

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)
            assert snapshot is not None
            assert not snapshot.consistent
            survivor = ids[-1]
            # Unlisted by a walk that may have skipped it: only a show call can tell.
            seen = observer.lookup("i-never-there")
            still = observer.lookup(survivor)

        assert survivor in snapshot.instances
        assert (seen.state, seen.observed_at) == (Presence.UNKNOWN, FIRST)
        assert still.state == Presence.PRESENT

    @virtual_time
    async def test_a_list_whose_order_changes_is_inconsistent_and_absence_is_unknown(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(120)

        def reverse() -> None:
            fake.instances = dict(reversed(fake.instances.items()))

        fake.before_list = once(reverse, at_offset=49)

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)
            assert snapshot is not None
            assert not snapshot.consistent
            # The reversal hid ids[71:] from the walk; unseen is not gone.
            assert ids[100] not in snapshot.instances
            assert observer.lookup(ids[100]).state == Presence.UNKNOWN
            assert observer.lookup("i-gone").state == Presence.UNKNOWN
            assert observer.lookup(ids[0]).state == Presence.PRESENT
            # A show call is what tells the hidden one from the gone one.
            seen = await observer.show(ids[100])
            gone = await observer.show("i-gone")

        assert seen.state == Presence.PRESENT
        assert gone.state == Presence.ABSENT
        # Nothing was deleted, so stepping back could not help: no page is read twice.
        assert [call.offset for call in fake.calls_of("list_instances")] == [0, 49, 98]

    @virtual_time
    async def test_creations_at_the_head_mid_walk_lose_nothing(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(120)

        def create_at_the_front() -> None:
            fresh = {view.instance_id: view for view in (instance("i-new-1"), instance("i-new-2"))}
            fake.instances = {**fresh, **fake.instances}

        fake.before_list = once(create_at_the_front, at_offset=49)

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)

        assert snapshot is not None
        assert set(ids) <= set(snapshot.instances)
        # Fewer listed than the cloud now counts: the new ones are behind the walk, so absence
        # is not vouched for.
        assert not snapshot.consistent

    @virtual_time
    async def test_an_instance_count_that_drifts_upward_with_nothing_new_listed_is_inconsistent(self) -> None:
        fake = FakeCloud()
        fake.add_running(120)
        original = fake.list_instances

        async def overcounting(query: cloud.ListQuery) -> cloud.ListInstancesResponse:
            page = await original(query)
            bump = 5 if query.offset >= 98 else 0
            return cloud.ListInstancesResponse(instances=page.instances, instance_num=page.instance_num + bump)

        fake.list_instances = overcounting  # type: ignore[method-assign]

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)

        assert snapshot is not None
        assert not snapshot.consistent

    @virtual_time
    async def test_an_instance_appended_mid_walk_is_listed_and_the_snapshot_holds(self) -> None:
        fake = FakeCloud()
        fake.add_running(120)
        fake.before_list = once(lambda: fake.add(instance("i-zzz-last")), at_offset=98)

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)

        assert snapshot is not None
        assert snapshot.consistent
        assert "i-zzz-last" in snapshot.instances

    @pytest.mark.parametrize("pages_at_once", [1, observing.PAGES_AT_ONCE])
    @virtual_time
    async def test_a_consistent_snapshot_never_misses_an_instance_that_lived_through_the_walk(
        self, pages_at_once: int
    ) -> None:
        consistent = 0
        for seed in range(60):
            rng = random.Random(seed)
            fake = FakeCloud()
            fake.add_running(rng.randint(60, 400))
            start = set(fake.instances)
            fake.before_list = _churn(fake, rng)

            async with running(fake, pages_at_once=pages_at_once) as observer:
                snapshot = await observer.snapshot_after(FIRST, timeout=5)

            assert snapshot is not None
            if snapshot.consistent:
                consistent += 1
                lived_through = start & set(fake.instances)
                assert lived_through <= set(snapshot.instances), f"seed {seed}"
        # Most walks under this churn still vouch for absence; the rest answer Unknown for the unlisted.
        assert consistent >= 15

    @virtual_time
    async def test_a_consistent_snapshot_is_trusted_for_absence_without_a_show(self) -> None:
        fake = FakeCloud()
        fake.add_running(3)

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)
            seen = observer.lookup("i-gone")

        assert snapshot is not None and snapshot.consistent
        assert (seen.state, seen.observed_at) == (Presence.ABSENT, FIRST)
        assert fake.calls_of("show_instance") == []


class TestAListThatStandsStill:
    """A walk that saw nothing move lets the next one read pages side by side, without overlap,
    where the list's order by creation time says at which end new instances appear."""

    @pytest.mark.parametrize(
        ("newest_first", "offsets"),
        [(True, [*range(50, 1000, 50), 0]), (False, [*range(0, 950, 50), 950])],
        ids=["newest first: the head last", "oldest first: the tail last"],
    )
    @virtual_time
    async def test_the_walk_after_a_still_one_takes_one_call_per_50_with_the_growing_end_read_last(
        self, newest_first: bool, offsets: list[int]
    ) -> None:
        fake = FakeCloud()
        ids = stamped(fake, 1000, newest_first=newest_first)

        metrics = Metrics()
        async with running(fake, metrics=metrics) as observer:
            second = await the_walk_after_the_first(observer, fake)
            seen = observer.lookup("i-gone")

        assert second is not None
        assert list_offsets(fake) == offsets
        assert second.calls == 20 == math.ceil(1000 / 50)
        assert list(second.instances) == ids
        assert second.consistent
        assert seen.state == Presence.ABSENT
        assert fake.calls_of("show_instance") == []
        tiled = "rocketmq_operator_observer_tiled_walks_total"
        assert metrics.registry.get_sample_value(tiled, {"outcome": "whole"}) == 1

    @virtual_time
    async def test_the_growing_end_is_asked_for_only_after_every_other_page_answered(self) -> None:
        fake = FakeCloud(latency=1.0)
        stamped(fake, 1000, newest_first=True)

        async with running(fake) as observer:
            second = await the_walk_after_the_first(observer, fake)

        assert second is not None and second.consistent
        *tiles, head = fake.calls_of("list_instances")
        assert head.offset == 0
        assert head.at >= max(call.at for call in tiles) + 1.0
        # 19 pages 8 at a time, then the head: 4 s, against 21 pages in 3 s overlapping.
        assert second.finished_at - second.started_at == pytest.approx(4.0)

    @pytest.mark.parametrize("newest_first", [True, False])
    @virtual_time
    async def test_a_creation_and_a_deletion_that_leave_the_count_alone_are_caught_at_the_growing_end(
        self, newest_first: bool
    ) -> None:
        fake = FakeCloud()
        ids = stamped(fake, 1000, newest_first=newest_first)

        def churn() -> None:
            # Before the page at 500: one created, one deleted ahead of that page, so everything
            # after the deletion shifts down by one and the count is unchanged.
            fake.remove(ids[100])
            create_newest(fake, "i-new", newest_first=newest_first)

        async with running(fake) as observer:
            await observer.snapshot_after(FIRST, timeout=5)
            fake.calls.clear()
            fake.before_list = once(churn, at_offset=500)
            second = await observer.snapshot_after(FIRST + 1, timeout=5)

        assert second is not None and second.consistent
        offsets = list_offsets(fake)
        # Every page side by side (no count moved), the growing end last and changed: then the
        # whole walk again, overlapping.
        assert offsets[:20] == ([*range(50, 1000, 50), 0] if newest_first else [*range(0, 950, 50), 950])
        assert offsets[20:23] == [0, 49, 98]
        assert second.calls == len(offsets)
        assert "i-new" in second.instances and ids[100] not in second.instances
        assert set(ids) - {ids[100]} <= set(second.instances)

    @virtual_time
    async def test_a_count_that_moves_stops_the_tiles_and_the_walk_starts_again_overlapping(self) -> None:
        fake = FakeCloud()
        ids = stamped(fake, 1000, newest_first=True)

        metrics = Metrics()
        async with running(fake, pages_at_once=1, metrics=metrics) as observer:
            await observer.snapshot_after(FIRST, timeout=5)
            fake.calls.clear()
            fake.before_list = once(lambda: fake.remove(ids[10]), at_offset=300)
            second = await observer.snapshot_after(FIRST + 1, timeout=5)
            unlisted = observer.lookup(ids[10])

        assert second is not None and second.consistent
        assert list_offsets(fake) == [*range(50, 350, 50), *range(0, 999, 49)]
        assert set(second.instances) == set(ids) - {ids[10]}
        assert unlisted.state == Presence.ABSENT
        assert fake.calls_of("show_instance") == []
        tiled = "rocketmq_operator_observer_tiled_walks_total"
        assert metrics.registry.get_sample_value(tiled, {"outcome": "moved"}) == 1

    @pytest.mark.parametrize(
        "stamps",
        [None, [1_700_000_000_000] * 1000, [1_700_000_000_000 + (n * 7919) % 1000 for n in range(1000)]],
        ids=["no created_at", "one created_at for all", "an order created_at does not explain"],
    )
    @virtual_time
    async def test_a_list_whose_order_created_at_does_not_explain_always_overlaps(
        self, stamps: list[int] | None
    ) -> None:
        fake = FakeCloud()
        ids = fake.add_running(1000)
        if stamps is not None:
            for instance_id, stamp in zip(ids, stamps, strict=True):
                fake.instances[instance_id] = fake.instances[instance_id].model_copy(update={"created_at": stamp})

        async with running(fake) as observer:
            second = await the_walk_after_the_first(observer, fake)

        assert second is not None and second.consistent
        assert second.calls == 21
        assert list_offsets(fake)[:3] == [0, 49, 98]

    @pytest.mark.parametrize("pages_at_once", [1, observing.PAGES_AT_ONCE])
    @pytest.mark.parametrize("newest_first", [True, False])
    @virtual_time
    async def test_a_consistent_snapshot_never_misses_an_instance_that_lived_through_the_walk(
        self, newest_first: bool, pages_at_once: int
    ) -> None:
        tiled = tiled_consistent = 0
        for seed in range(40):
            rng = random.Random(seed)
            fake = FakeCloud()
            stamped(fake, rng.randint(120, 600), newest_first=newest_first)
            async with running(fake, pages_at_once=pages_at_once) as observer:
                first = await observer.snapshot_after(now(), timeout=5)
                assert first is not None and first.anchor is not None
                fake.before_list = _ordered_churn(fake, rng, newest_first=newest_first)
                for walk in range(1, 6):
                    start = set(fake.instances)
                    calls_before = len(fake.calls_of("list_instances"))
                    snapshot = await observer.snapshot_after(now() + 1, timeout=5)
                    assert snapshot is not None
                    offsets = list_offsets(fake)[calls_before:]
                    was_tiled = len(offsets) > 1 and (offsets[0] != 0 or offsets[1] == 50)
                    tiled += was_tiled
                    if snapshot.consistent:
                        tiled_consistent += was_tiled
                        lived_through = start & set(fake.instances)
                        assert lived_through <= set(snapshot.instances), f"seed {seed}, walk {walk}"
        # The churn leaves many walks still: many are tiled, and most tiled walks hold.
        assert tiled >= 60
        assert tiled_consistent >= 30


class TestSharingAndPacing:
    @virtual_time
    async def test_many_callers_asking_for_a_fresh_snapshot_share_one_walk(self) -> None:
        fake = FakeCloud()
        fake.add_running(10)

        async with running(fake, interval=60.0) as observer:
            await observer.snapshot_after(FIRST, timeout=5)
            await asyncio.sleep(10)
            asked_at = now()

            snapshots = await asyncio.gather(*(observer.snapshot_after(asked_at, timeout=5) for _ in range(100)))

        assert walk_starts(fake) == [0.0, 10.0]
        assert all(s is snapshots[0] for s in snapshots)
        assert snapshots[0] is not None and snapshots[0].started_at == asked_at

    @virtual_time
    async def test_walks_never_start_closer_than_min_gap(self) -> None:
        fake = FakeCloud()
        fake.add_running(10)

        async with running(fake, interval=60.0, min_gap=1.0) as observer:
            await asyncio.sleep(0.2)
            snapshot = await observer.snapshot_after(now(), timeout=5)

        assert walk_starts(fake) == [0.0, 1.0]
        assert snapshot is not None and snapshot.started_at == FIRST + 1.0

    @virtual_time
    async def test_a_walk_asked_for_later_is_not_started_sooner(self) -> None:
        fake = FakeCloud()
        fake.add_running(10)

        async with running(fake, interval=60.0, min_gap=1.0) as observer:
            await observer.snapshot_after(FIRST, timeout=5)
            snapshot = await observer.snapshot_after(now() + 8.0, timeout=20)

        assert walk_starts(fake) == [0.0, 8.0], "a caller pacing itself must not cost walks in between"
        assert snapshot is not None and snapshot.started_at == FIRST + 8.0

    @virtual_time
    async def test_an_existing_snapshot_that_is_fresh_enough_costs_nothing(self) -> None:
        fake = FakeCloud()
        fake.add_running(10)

        async with running(fake) as observer:
            first = await observer.snapshot_after(FIRST, timeout=5)
            await asyncio.sleep(5)
            again = await observer.snapshot_after(FIRST, timeout=5)

        assert first is again
        assert walk_starts(fake) == [0.0]

    @virtual_time
    async def test_walks_are_scheduled_by_their_start_times_so_they_do_not_drift(self) -> None:
        fake = FakeCloud(latency=2.0)  # a walk of 3 pages takes 6 s
        fake.add_running(120)

        async with running(fake, interval=30.0):
            await asyncio.sleep(65)

        assert walk_starts(fake) == [0.0, 30.0, 60.0]

    @virtual_time
    async def test_a_caller_that_cannot_wait_long_enough_gets_none(self) -> None:
        fake = FakeCloud()
        observer = observing.Observer(fake, interval=30.0, clock=loop_clock)  # never started

        assert await observer.snapshot_after(FIRST, timeout=2) is None

        assert now() == FIRST + 2
        assert observer.last_error is None  # no walk failed: none came in time
        assert fake.calls == []

    @virtual_time
    async def test_aclose_stops_the_loop_and_releases_waiters(self) -> None:
        fake = FakeCloud()
        fake.add_running(1)
        observer = observing.Observer(fake, interval=30.0, clock=loop_clock)
        await observer.start()
        await asyncio.sleep(1)

        waiting = asyncio.create_task(observer.snapshot_after(now() + 1000, timeout=5000))
        await asyncio.sleep(10)
        await observer.aclose()

        assert await waiting is None
        calls = len(fake.calls)
        await asyncio.sleep(100)
        assert len(fake.calls) == calls


class TestFailedWalks:
    @virtual_time
    async def test_a_failed_walk_keeps_the_previous_snapshot_and_records_the_error(self) -> None:
        metrics = Metrics()
        fake = FakeCloud()
        fake.add_running(3)

        async with running(fake, interval=30.0, metrics=metrics) as observer:
            first = await observer.snapshot_after(FIRST, timeout=5)
            broken = errors.ServerError("boom", status=500)
            fake.call_errors["list_instances"] = [broken]
            await asyncio.sleep(31)

            assert observer.latest() is first
            assert observer.last_error is broken
            assert observer.lookup("i-0000").state == Presence.PRESENT

            await asyncio.sleep(30)

            assert observer.latest() is not first
            assert last_error_of(observer) is None  # a function call: mypy keeps no narrowing

        assert walk_starts(fake) == [0.0, 30.0, 60.0]
        snapshots = "rocketmq_operator_observer_snapshots_total"
        assert metrics.registry.get_sample_value(snapshots, {"outcome": "error"}) == 1

    @virtual_time
    async def test_a_malformed_page_fails_the_whole_walk_rather_than_dropping_items(self) -> None:
        fake = FakeCloud()
        fake.add_running(120)
        fake.before_list = fails_at(49, errors.MalformedResponse("instances[3]: instance_id missing"))

        async with running(fake) as observer:
            assert await observer.snapshot_after(FIRST, timeout=5) is None

            assert observer.latest() is None
            assert isinstance(observer.last_error, errors.MalformedResponse)
            assert observer.lookup("i-0000").state == Presence.UNKNOWN

    @virtual_time
    async def test_waiters_of_a_failed_walk_learn_at_once_with_the_error(self) -> None:
        fake = FakeCloud(call_errors={"list_instances": [errors.TransportError("reset")]})

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=60)
            answered_at = now()
            seen = observer.lookup("i-1")

        assert snapshot is None
        assert answered_at == FIRST
        assert (seen.state, seen.observed_at) == (Presence.UNKNOWN, None)
        assert isinstance(seen.error, errors.TransportError)
        assert len(fake.calls) == 1

    @virtual_time
    async def test_throttling_holds_every_walk_back_for_at_least_retry_after(self) -> None:
        fake = FakeCloud()
        fake.add_running(3)

        async with running(fake, interval=30.0, min_gap=1.0) as observer:
            await observer.snapshot_after(FIRST, timeout=5)
            fake.call_errors["list_instances"] = [errors.Throttled("slow down", retry_after=20.0)]
            await asyncio.sleep(31)  # the walk at 30 s is throttled
            assert isinstance(observer.last_error, errors.Throttled)

            snapshot = await observer.snapshot_after(now(), timeout=60)

        assert snapshot is not None
        assert walk_starts(fake)[:2] == [0.0, 30.0]
        assert 50.0 <= walk_starts(fake)[2] <= 60.0

    @virtual_time
    async def test_an_unexpected_exception_does_not_kill_the_loop(self) -> None:
        fake = FakeCloud()
        fake.add_running(3)
        fake.before_list = once(lambda: (_ for _ in ()).throw(RuntimeError("bug")), at_offset=0)

        async with running(fake, interval=30.0) as observer:
            await asyncio.sleep(1)
            assert observer.last_error is not None and "bug" in str(observer.last_error)

            snapshot = await observer.snapshot_after(FIRST + 1, timeout=60)

        assert snapshot is not None and len(snapshot.instances) == 3

    @virtual_time
    async def test_refused_credentials_back_off_long_exponentially_and_capped(self) -> None:
        refused = errors.AuthFailed("signature does not match", status=401, code="APIGW.0301")
        fake = FakeCloud(call_errors={"list_instances": [refused] * 20})

        async with running(fake, interval=1.0, min_gap=0.5) as observer:
            await asyncio.sleep(3600)
            assert observer.last_error is refused

        # gaps of 30, 60, 120, ... s doubling up to 900 s: 8 walks in an hour, not 3600
        assert walk_starts(fake) == [0.0, 30.0, 90.0, 210.0, 450.0, 930.0, 1830.0, 2730.0]

    @virtual_time
    async def test_a_snapshot_is_trusted_through_one_failed_walk_but_not_once_stale(self) -> None:
        fake = FakeCloud()
        fake.add_running(1)
        broken = errors.ServerError("boom", status=500)

        async with running(fake, interval=10.0) as observer:
            await observer.snapshot_after(FIRST, timeout=5)
            fake.call_errors["list_instances"] = [broken] * 100
            await asyncio.sleep(11)  # the walk at 10 s failed
            assert observer.lookup("i-0000").state == Presence.PRESENT

            await asyncio.sleep(10)  # 21 s old, walks failing since 10 s: no longer vouched for
            seen = observer.lookup("i-0000")
            assert (seen.state, seen.error) == (Presence.UNKNOWN, broken)

            fake.call_errors["list_instances"] = []
            await observer.snapshot_after(now(), timeout=60)
            assert observer.lookup("i-0000").state == Presence.PRESENT

    @virtual_time
    async def test_a_snapshot_older_than_two_intervals_is_not_trusted_even_with_no_walk_failing(self) -> None:
        fake = FakeCloud()
        fake.add_running(1)

        async with running(fake, interval=10.0) as observer:
            await observer.snapshot_after(FIRST, timeout=5)
            await observer.aclose()  # the loop is gone: nothing fails, nothing refreshes
            await asyncio.sleep(20)
            young = observer.lookup("i-0000")
            await asyncio.sleep(1)
            old = observer.lookup("i-0000")

        assert young.state == Presence.PRESENT
        assert (old.state, old.instance, old.error) == (Presence.UNKNOWN, None, None)

    @virtual_time
    async def test_after_a_terminal_failure_the_snapshot_is_not_trusted_at_once(self) -> None:
        fake = FakeCloud()
        fake.add_running(1)
        refused = errors.AuthFailed("refused", status=401)

        async with running(fake, interval=10.0) as observer:
            await observer.snapshot_after(FIRST, timeout=5)
            fake.call_errors["list_instances"] = [refused]
            await asyncio.sleep(10.5)

            seen = observer.lookup("i-0000")

        assert (seen.state, seen.error) == (Presence.UNKNOWN, refused)


class TestReadingOneInstance:
    @virtual_time
    async def test_lookup_before_the_first_snapshot_is_unknown(self) -> None:
        observer = observing.Observer(FakeCloud(), interval=30.0, clock=loop_clock)

        seen = observer.lookup("i-1")

        assert (seen.state, seen.instance, seen.observed_at) == (Presence.UNKNOWN, None, None)
        assert observer.latest() is None
        assert observer.failed_instances() == []

    @virtual_time
    async def test_lookup_reads_the_latest_snapshot_without_any_call(self) -> None:
        fake = FakeCloud()
        [one] = fake.add_running(1)

        async with running(fake) as observer:
            await observer.snapshot_after(FIRST, timeout=5)
            calls = len(fake.calls)

            seen = observer.lookup(one)

            assert len(fake.calls) == calls
        assert seen.state == Presence.PRESENT
        assert seen.instance is not None and seen.instance.status == cloud.RUNNING
        assert seen.observed_at == FIRST

    @virtual_time
    async def test_show_asks_the_cloud_directly(self) -> None:
        fake = FakeCloud()
        [one] = fake.add_running(1)
        observer = observing.Observer(fake, interval=30.0, clock=loop_clock)
        await asyncio.sleep(3)

        present = await observer.show(one)
        absent = await observer.show("i-gone")
        fake.call_errors["show_instance"] = [errors.ServerError("boom", status=502)]
        unknown = await observer.show(one)

        assert (present.state, present.observed_at) == (Presence.PRESENT, EPOCH + 3)
        assert (absent.state, absent.instance) == (Presence.ABSENT, None)
        assert unknown.state == Presence.UNKNOWN
        assert isinstance(unknown.error, errors.ServerError)
