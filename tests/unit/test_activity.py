"""A standby replica's background loops make no cloud call; once it works, they catch up at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from rocketmq_operator.core import cloud
from rocketmq_operator.core.evidence import Sighting
from rocketmq_operator.core.settings import SweepMode
from rocketmq_operator.services.activity import Activity
from rocketmq_operator.services.batching import DeletionBatcher
from rocketmq_operator.services.confirming import DeletionConfirmer
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.observing import Observer
from rocketmq_operator.services.sweeping import Sweeper
from rocketmq_operator.wiring.runtime import Runtime

from .builders import make_settings
from .fake_cloud import FakeCloud, instance, loop_clock, virtual_time

POLL = 10.0


@dataclass
class Replica:
    activity: Activity
    observer: Observer
    confirmer: DeletionConfirmer
    sweeper: Sweeper
    batcher: DeletionBatcher


@asynccontextmanager
async def replica(fake: FakeCloud, *, active: bool) -> AsyncIterator[Replica]:
    """The three loops of one replica over ``fake``, gated by one ``Activity``."""
    activity = Activity(active=active)
    metrics = Metrics()
    observer = Observer(fake, interval=POLL, metrics=metrics, clock=loop_clock, activity=activity)
    confirmer = DeletionConfirmer(
        fake, verify_interval=2.0, max_gap=POLL, metrics=metrics, clock=loop_clock, activity=activity
    )
    batcher = DeletionBatcher(fake, window=0.5, max_size=50, metrics=metrics, clock=loop_clock)
    sweeper = Sweeper(
        client=fake,
        observer=observer,
        batcher=batcher,
        interval=2 * POLL,
        mode=SweepMode.OWNED,
        cluster_id=lambda: "cluster-1",
        known_ids=lambda: {"failed-1"},
        metrics=metrics,
        clock=loop_clock,
        activity=activity,
    )
    for service in (observer, confirmer, sweeper):
        await service.start()
    try:
        yield Replica(activity, observer, confirmer, sweeper, batcher)
    finally:
        for closing in (sweeper, batcher, confirmer, observer):
            await closing.aclose()


def a_failed_instance_and_a_deletion_to_prove() -> FakeCloud:
    fake = FakeCloud()
    fake.add(instance("failed-1", status=cloud.CREATEFAILED))
    return fake


class TestAStandby:
    @virtual_time
    async def test_lists_sweeps_and_confirms_nothing_over_many_intervals(self) -> None:
        fake = a_failed_instance_and_a_deletion_to_prove()
        async with replica(fake, active=False) as standby:
            # A deletion waiting for its proof (say, accepted before this replica was paused).
            waiting = asyncio.create_task(
                standby.confirmer.confirm("gone-1", accepted_at=loop_clock(), force=True, timeout=1000)
            )
            await asyncio.sleep(10 * POLL)
            assert fake.calls == []
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)

    @virtual_time
    async def test_lists_confirms_and_sweeps_as_soon_as_it_works(self) -> None:
        fake = a_failed_instance_and_a_deletion_to_prove()
        async with replica(fake, active=False) as standby:
            confirmed = asyncio.create_task(
                standby.confirmer.confirm("gone-1", accepted_at=loop_clock(), force=True, timeout=1000)
            )
            await asyncio.sleep(3 * POLL)
            standby.activity.set(True, why="elected")
            await asyncio.sleep(0.1)
            assert sorted(call.operation for call in fake.calls) == ["list_instances", "show_instance"], (
                "the walk and the look that fell due while paused go out at once"
            )
            assert (await confirmed).sighting == Sighting.GONE
            await asyncio.sleep(6 * POLL)
            assert [call.ids for call in fake.calls_of("delete_many")] == [("failed-1",)], "and the sweep"


class TestAReplicaPausedWhileItWorked:
    @virtual_time
    async def test_makes_no_call_after_the_pause(self) -> None:
        fake = a_failed_instance_and_a_deletion_to_prove()
        async with replica(fake, active=True) as working:
            await asyncio.sleep(0.5 * POLL)
            assert [call.operation for call in fake.calls] == ["list_instances"], "its walk listed failed-1"
            working.activity.set(False, why="a peer of higher priority appeared")
            await asyncio.sleep(10 * POLL)
            assert [call.operation for call in fake.calls] == ["list_instances"], (
                "no walk, and no sweep of what the walk before the pause listed"
            )


class TestTheRuntime:
    def active(self, runtime: Runtime) -> float | None:
        return runtime.metrics.registry.get_sample_value("rocketmq_operator_active")

    @virtual_time
    async def test_of_a_replica_alone_works_from_the_start(self) -> None:
        runtime = self.assemble(active=True)
        assert runtime.activity.active
        assert self.active(runtime) == 1

    @virtual_time
    async def test_of_a_replica_with_peers_waits_and_says_so_in_a_metric(self) -> None:
        runtime = self.assemble(active=False)
        assert not runtime.activity.active
        assert self.active(runtime) == 0
        runtime.activity.set(True, why="elected")
        assert self.active(runtime) == 1

    def assemble(self, *, active: bool) -> Runtime:
        return Runtime.assemble(
            make_settings(),
            client=FakeCloud(),
            metrics=Metrics(),
            cluster_id=lambda: "cluster-1",
            known_ids=lambda: (),
            active=active,
        )
