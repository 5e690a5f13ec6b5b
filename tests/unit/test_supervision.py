"""Background loops that die are reported (so the liveness probe can fail); loops stopped on purpose are not."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from rocketmq_operator.core.settings import SweepMode
from rocketmq_operator.services import supervision
from rocketmq_operator.services.batching import DeletionBatcher
from rocketmq_operator.services.confirming import DeletionConfirmer
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.observing import Observer
from rocketmq_operator.services.supervision import BackgroundLoop, SupervisedService
from rocketmq_operator.services.sweeping import Sweeper

from .fake_cloud import FakeCloud, loop_clock, virtual_time


async def forever() -> None:
    await asyncio.Event().wait()


async def fails_soon() -> None:
    await asyncio.sleep(1)
    raise RuntimeError("a bug outside the loop's own error handling")


async def returns_soon() -> None:
    await asyncio.sleep(1)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


class TestABackgroundLoop:
    @virtual_time
    async def test_that_runs_reports_nothing(self) -> None:
        loop = BackgroundLoop("watched", forever)
        assert loop.failure() is None, "not started yet"
        loop.start()
        await asyncio.sleep(10)
        assert loop.failure() is None
        await loop.aclose()

    @virtual_time
    async def test_an_escaped_exception_is_reported_for_good_and_logged_once_when_it_happens(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        loop = BackgroundLoop("watched", fails_soon)
        with caplog.at_level(logging.INFO, logger=supervision.__name__):
            loop.start()
            await asyncio.sleep(2)
            first = loop.failure()
            logged = errors_logged(caplog)
            await asyncio.sleep(60)
            assert loop.failure() == first
            await loop.aclose()
        assert first == "watched died: RuntimeError: a bug outside the loop's own error handling"
        assert len(logged) == 1 and first in logged[0], "logged when it died, before anyone asked"
        assert errors_logged(caplog) == logged, "and only then"
        assert caplog.records[0].exc_info is not None, "with the traceback"

    @virtual_time
    async def test_a_cancellation_by_anyone_but_aclose_is_a_death(self) -> None:
        loop = BackgroundLoop("watched", forever)
        loop.start()
        await asyncio.sleep(1)
        (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "watched"]
        task.cancel()
        await asyncio.sleep(1)
        assert loop.failure() == "watched was cancelled"
        await loop.aclose()

    @virtual_time
    async def test_an_endless_loop_that_returns_is_a_death_too(self) -> None:
        loop = BackgroundLoop("watched", returns_soon)
        loop.start()
        await asyncio.sleep(2)
        assert loop.failure() == "watched ended"
        await loop.aclose()

    @virtual_time
    async def test_stopped_by_aclose_is_no_death_and_logs_nothing(self, caplog: pytest.LogCaptureFixture) -> None:
        loop = BackgroundLoop("watched", forever)
        loop.start()
        await asyncio.sleep(1)
        with caplog.at_level(logging.INFO, logger=supervision.__name__):
            await loop.aclose()
        assert loop.failure() is None
        assert errors_logged(caplog) == []

    @virtual_time
    async def test_aclose_after_a_death_does_not_raise_the_loops_error(self) -> None:
        loop = BackgroundLoop("watched", fails_soon)
        loop.start()
        await asyncio.sleep(2)
        await loop.aclose()
        assert loop.failure() is None


def observer(fake: FakeCloud, metrics: Metrics) -> Observer:
    return Observer(fake, interval=10.0, metrics=metrics, clock=loop_clock)


def confirmer(fake: FakeCloud, metrics: Metrics) -> DeletionConfirmer:
    return DeletionConfirmer(fake, verify_interval=2.0, max_gap=10.0, metrics=metrics, clock=loop_clock)


def sweeper(fake: FakeCloud, metrics: Metrics) -> Sweeper:
    return Sweeper(
        client=fake,
        observer=observer(fake, metrics),
        batcher=DeletionBatcher(fake, window=0.5, max_size=50, metrics=metrics, clock=loop_clock),
        interval=60.0,
        mode=SweepMode.OWNED,
        cluster_id=lambda: "cluster-1",
        known_ids=lambda: (),
        metrics=metrics,
        clock=loop_clock,
    )


SERVICES: dict[str, tuple[str, Callable[[FakeCloud, Metrics], SupervisedService]]] = {
    "observer": ("instance-observer", observer),
    "confirmer": ("deletion-confirmer", confirmer),
    "sweeper": ("failed-instance-sweep", sweeper),
}


@asynccontextmanager
async def started(which: str) -> AsyncIterator[tuple[str, SupervisedService]]:
    task_name, build = SERVICES[which]
    service = build(FakeCloud(), Metrics())
    await service.start()
    try:
        yield task_name, service
    finally:
        await service.aclose()


@pytest.mark.parametrize("which", sorted(SERVICES))
class TestEachServiceLoop:
    @virtual_time
    async def test_is_reported_dead_once_something_cancels_it(self, which: str) -> None:
        async with started(which) as (task_name, service):
            await asyncio.sleep(5)
            assert service.failure() is None
            for task in asyncio.all_tasks():
                if task.get_name() == task_name:
                    task.cancel()
            await asyncio.sleep(1)
            assert service.failure() == f"{task_name} was cancelled"

    @virtual_time
    async def test_is_not_reported_once_stopped_on_purpose(self, which: str) -> None:
        async with started(which) as (_task_name, service):
            await asyncio.sleep(5)
        assert service.failure() is None
