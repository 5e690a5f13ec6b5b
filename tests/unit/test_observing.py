"""The observer: one paged list walk per interval feeds every CR, and absence is only trusted when
the walk could not have missed anything.

Every test runs on a virtual clock (``fake_cloud.virtual_time``); the fake cloud logs the loop time
of each call and can change between the pages of one walk.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from rocketmq_operator.core import cloud
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
) -> AsyncIterator[observing.Observer]:
    observer = observing.Observer(
        fake, interval=interval, min_gap=min_gap, page_size=page_size, metrics=metrics, clock=loop_clock
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

            assert observer.lookup("i-broken").state == observing.PRESENT
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


class TestTheCloudChangingDuringAWalk:
    @virtual_time
    async def test_deleting_earlier_items_mid_walk_makes_it_inconsistent_and_absence_is_confirmed_by_show(
        self,
    ) -> None:
        fake = FakeCloud()
        ids = fake.add_running(120)
        # Two deletions before offset 49 shift everything left by two: ids[50] slides to index 48,
        # behind the next page, and the walk never sees it.
        fake.before_list = once(lambda: fake.remove(ids[0], ids[1]), at_offset=49)

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)
            assert snapshot is not None
            assert not snapshot.consistent
            assert ids[50] not in snapshot.instances
            assert observer.lookup(ids[50]).state == observing.UNKNOWN

            seen = await observer.observe_fresh(ids[50], since=FIRST, timeout=5)

        assert seen.state == observing.PRESENT
        assert seen.instance is not None and seen.instance.instance_id == ids[50]
        assert [call.ids for call in fake.calls_of("show_instance")] == [(ids[50],)]

    @virtual_time
    async def test_an_instance_really_gone_is_absent_after_the_confirming_show(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(120)
        fake.before_list = once(lambda: fake.remove(ids[0], ids[1], ids[50]), at_offset=49)

        async with running(fake) as observer:
            seen = await observer.observe_fresh(ids[50], since=FIRST, timeout=5)

        assert seen.state == observing.ABSENT
        assert len(fake.calls_of("show_instance")) == 1

    @virtual_time
    async def test_one_deletion_mid_walk_is_caught_by_the_overlap_and_nothing_is_lost(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(120)
        fake.before_list = once(lambda: fake.remove(ids[0]), at_offset=49)

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)

        assert snapshot is not None
        assert not snapshot.consistent
        assert set(ids) <= set(snapshot.instances)

    @virtual_time
    async def test_creations_mid_walk_make_it_inconsistent_but_lose_nothing(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(120)

        def create_at_the_front() -> None:
            fresh = {view.instance_id: view for view in (instance("i-new-1"), instance("i-new-2"))}
            fake.instances = {**fresh, **fake.instances}

        fake.before_list = once(create_at_the_front, at_offset=49)

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)

        assert snapshot is not None
        assert not snapshot.consistent
        assert set(ids) <= set(snapshot.instances)

    @virtual_time
    async def test_a_changed_instance_count_alone_makes_it_inconsistent(self) -> None:
        fake = FakeCloud()
        fake.add_running(120)
        fake.before_list = once(lambda: fake.add(instance("i-zzz-last")), at_offset=98)

        async with running(fake) as observer:
            snapshot = await observer.snapshot_after(FIRST, timeout=5)

        assert snapshot is not None
        assert not snapshot.consistent
        assert "i-zzz-last" in snapshot.instances

    @virtual_time
    async def test_a_consistent_snapshot_is_trusted_for_absence_without_a_show(self) -> None:
        fake = FakeCloud()
        fake.add_running(3)

        async with running(fake) as observer:
            seen = await observer.observe_fresh("i-gone", since=FIRST, timeout=5)

            assert observer.lookup("i-gone").state == observing.ABSENT

        assert (seen.state, seen.observed_at) == (observing.ABSENT, FIRST)
        assert fake.calls_of("show_instance") == []


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
        seen = await observer.observe_fresh("i-1", since=FIRST, timeout=2)

        assert seen.state == observing.UNKNOWN
        assert seen.error is not None and "within 2s" in str(seen.error)

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
            assert observer.lookup("i-0000").state == observing.PRESENT

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

        def malformed(query: cloud.ListQuery) -> None:
            if query.offset == 49:
                raise errors.MalformedResponse("instances[3]: instance_id missing")

        fake.before_list = malformed

        async with running(fake) as observer:
            assert await observer.snapshot_after(FIRST, timeout=5) is None

            assert observer.latest() is None
            assert isinstance(observer.last_error, errors.MalformedResponse)
            assert observer.lookup("i-0000").state == observing.UNKNOWN

    @virtual_time
    async def test_waiters_of_a_failed_walk_learn_at_once_with_the_error(self) -> None:
        fake = FakeCloud(call_errors={"list_instances": [errors.TransportError("reset")]})

        async with running(fake) as observer:
            seen = await observer.observe_fresh("i-1", since=FIRST, timeout=60)

        assert seen.state == observing.UNKNOWN
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
            assert observer.lookup("i-0000").state == observing.PRESENT

            await asyncio.sleep(10)  # 21 s old, walks failing since 10 s: no longer vouched for
            seen = observer.lookup("i-0000")
            assert (seen.state, seen.error) == (observing.UNKNOWN, broken)

            fake.call_errors["list_instances"] = []
            await observer.snapshot_after(now(), timeout=60)
            assert observer.lookup("i-0000").state == observing.PRESENT

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

        assert (seen.state, seen.error) == (observing.UNKNOWN, refused)


class TestReadingOneInstance:
    @virtual_time
    async def test_lookup_before_the_first_snapshot_is_unknown(self) -> None:
        observer = observing.Observer(FakeCloud(), interval=30.0, clock=loop_clock)

        seen = observer.lookup("i-1")

        assert (seen.state, seen.instance, seen.observed_at) == (observing.UNKNOWN, None, None)
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
        assert seen.state == observing.PRESENT
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

        assert (present.state, present.observed_at) == (observing.PRESENT, EPOCH + 3)
        assert (absent.state, absent.instance) == (observing.ABSENT, None)
        assert unknown.state == observing.UNKNOWN
        assert isinstance(unknown.error, errors.ServerError)
