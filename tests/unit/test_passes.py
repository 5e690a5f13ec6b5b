"""One loop passes over every CR each interval, a bounded number at once; CRs are held as compact JSON."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import pytest

from rocketmq_operator.services.activity import Activity
from rocketmq_operator.services.passes import HeldBodies, PeriodicPasses


def _body(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}"}, "status": status}


def _held(*names: str) -> HeldBodies:
    held = HeldBodies()
    for name in names:
        held.hold(f"uid-{name}", _body(name))
    return held


class Gauge:
    """A pass that takes a little while and counts how many ran at once; ``done`` once ``until`` ran."""

    def __init__(self, until: int = 0) -> None:
        self.seen: list[str] = []
        self.running = self.peak = 0
        self.until = until
        self.done = asyncio.Event()

    async def run_one(self, body: dict[str, Any]) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.001)
        self.running -= 1
        self.seen.append(body["metadata"]["name"])
        if len(self.seen) == self.until:
            self.done.set()


class TestHeldBodies:
    def test_the_latest_body_of_a_cr_is_what_a_pass_gets(self) -> None:
        held = HeldBodies()
        held.hold("uid-a", _body("a", phase="Creating"))
        held.hold("uid-a", _body("a", phase="Ready"))
        assert held.get("uid-a") == _body("a", phase="Ready")
        assert len(held) == 1 and "uid-a" in held

    def test_each_get_is_a_fresh_copy_that_a_pass_may_change(self) -> None:
        held = _held("a")
        first = held.get("uid-a")
        assert first is not None
        first["metadata"]["name"] = "changed"
        assert held.get("uid-a") == _body("a")

    def test_a_dropped_cr_is_gone(self) -> None:
        held = _held("a", "b")
        held.drop("uid-a")
        held.drop("uid-never-held")
        assert held.get("uid-a") is None and held.uids() == ["uid-b"]

    def test_a_body_is_kept_as_compact_json_not_as_decoded_dicts(self) -> None:
        held = _held("a")
        assert held._held["uid-a"] == b'{"metadata":{"namespace":"ns","name":"a","uid":"uid-a"},"status":{}}'


class TestRounds:
    async def test_a_round_passes_every_held_cr_once(self) -> None:
        seen: list[str] = []

        async def run_one(body: dict[str, Any]) -> None:
            seen.append(body["metadata"]["name"])

        passes = PeriodicPasses(_held("a", "b", "c"), run_one, interval=10, activity=Activity())
        assert await passes.round() == 3
        assert sorted(seen) == ["a", "b", "c"]

    async def test_no_more_than_the_concurrency_run_at_once(self) -> None:
        names = [f"cr{i}" for i in range(20)]
        gauge = Gauge()
        passes = PeriodicPasses(_held(*names), gauge.run_one, interval=10, activity=Activity(), concurrency=4)
        assert await passes.round() == 20
        assert gauge.peak == 4

    async def test_a_cr_dropped_while_the_round_runs_is_skipped(self) -> None:
        held = _held("a", "b")
        seen: list[str] = []

        async def run_one(body: dict[str, Any]) -> None:
            seen.append(body["metadata"]["name"])
            held.drop("uid-b")

        passes = PeriodicPasses(held, run_one, interval=10, activity=Activity(), concurrency=1)
        assert await passes.round() == 1
        assert seen == ["a"]

    async def test_a_failing_pass_is_logged_and_the_others_still_run(self, caplog: pytest.LogCaptureFixture) -> None:
        seen: list[str] = []

        async def run_one(body: dict[str, Any]) -> None:
            if body["metadata"]["name"] == "a":
                raise RuntimeError("boom")
            seen.append(body["metadata"]["name"])

        passes = PeriodicPasses(_held("a", "b"), run_one, interval=10, activity=Activity(), concurrency=1)
        with caplog.at_level(logging.ERROR):
            assert await passes.round() == 2
        assert seen == ["b"]
        assert "the periodic pass of ns/a failed" in caplog.text
        assert passes.failure() is None


class TestTheLoop:
    async def test_rounds_come_every_interval_the_first_after_one(self) -> None:
        rounds: list[float] = []
        third = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def run_one(body: dict[str, Any]) -> None:
            rounds.append(loop.time())
            if len(rounds) == 3:
                third.set()

        passes = PeriodicPasses(_held("a"), run_one, interval=0.05, activity=Activity())
        started = loop.time()
        await passes.start()
        try:
            await asyncio.wait_for(third.wait(), timeout=5)
        finally:
            await passes.aclose()
        assert rounds[0] - started >= 0.05
        assert all(later - earlier >= 0.05 for earlier, later in itertools.pairwise(rounds))

    @pytest.mark.parametrize("soon", [False, True], ids=["a round", "a soon pass"])
    async def test_no_pass_starts_while_this_replica_is_paused(self, soon: bool) -> None:
        ran = asyncio.Event()

        async def run_one(body: dict[str, Any]) -> None:
            ran.set()

        activity = Activity(active=False)
        passes = PeriodicPasses(_held("a"), run_one, interval=60 if soon else 0.01, activity=activity)
        if soon:
            passes.soon("uid-a")
        await passes.start()
        try:
            await asyncio.sleep(0.1)
            assert not ran.is_set()
            activity.set(True, why="elected")
            await asyncio.wait_for(ran.wait(), timeout=5)
        finally:
            await passes.aclose()
        assert passes.failure() is None

    def test_a_loop_needs_a_positive_interval_and_concurrency(self) -> None:
        async def run_one(body: dict[str, Any]) -> None:
            return None

        with pytest.raises(ValueError, match="interval"):
            PeriodicPasses(HeldBodies(), run_one, interval=0, activity=Activity())
        with pytest.raises(ValueError, match="concurrency"):
            PeriodicPasses(HeldBodies(), run_one, interval=1, activity=Activity(), concurrency=0)
        with pytest.raises(ValueError, match="concurrency"):
            PeriodicPasses(HeldBodies(), run_one, interval=1, activity=Activity(), soon_concurrency=0)


class TestSoonPasses:
    """A CR asked for soon is passed ahead of the next round, by a bounded number of workers of its own:
    how a new CR's create waits as a uid instead of as a handler with a kopf worker."""

    @staticmethod
    async def running(passes: PeriodicPasses) -> PeriodicPasses:
        await passes.start()
        return passes

    @staticmethod
    async def soon_until(passes: PeriodicPasses, done: asyncio.Event, *uids: str) -> None:
        """Ask for the soon passes of ``uids``, then run the loop until ``done``."""
        for uid in uids:
            passes.soon(uid)
        await passes.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=5)
        finally:
            await passes.aclose()

    async def test_is_passed_long_before_the_next_round(self) -> None:
        seen: list[str] = []
        done = asyncio.Event()

        async def run_one(body: dict[str, Any]) -> None:
            seen.append(body["metadata"]["name"])
            done.set()

        passes = await self.running(PeriodicPasses(_held("a", "b"), run_one, interval=60, activity=Activity()))
        try:
            passes.soon("uid-a")
            await asyncio.wait_for(done.wait(), timeout=5)
        finally:
            await passes.aclose()
        assert seen == ["a"]

    async def test_no_more_than_the_soon_concurrency_run_at_once_and_each_once(self) -> None:
        names = [f"cr{i}" for i in range(20)]
        gauge = Gauge(until=len(names))
        passes = PeriodicPasses(_held(*names), gauge.run_one, interval=60, activity=Activity(), soon_concurrency=4)
        for name in names:
            passes.soon(f"uid-{name}")
            passes.soon(f"uid-{name}")  # asked twice while waiting: passed once
        assert passes.waiting() == 20
        await passes.start()
        try:
            await asyncio.wait_for(gauge.done.wait(), timeout=5)
            await asyncio.sleep(0.05)
        finally:
            await passes.aclose()
        assert sorted(gauge.seen) == sorted(names)
        assert gauge.peak == 4 and passes.waiting() == 0

    async def test_one_that_asks_to_run_again_sooner_than_the_round_runs_again_after_that_delay(self) -> None:
        loop = asyncio.get_running_loop()
        times: list[float] = []
        twice = asyncio.Event()

        async def run_one(body: dict[str, Any]) -> float | None:
            times.append(loop.time())
            if len(times) == 2:
                twice.set()
                return 90.0  # longer than the interval: the rounds are soon enough
            return 0.05

        passes = await self.running(PeriodicPasses(_held("a"), run_one, interval=60, activity=Activity()))
        try:
            passes.soon("uid-a")
            await asyncio.wait_for(twice.wait(), timeout=5)
            await asyncio.sleep(0.1)
            assert passes.waiting() == 0
        finally:
            await passes.aclose()
        assert len(times) == 2 and times[1] - times[0] >= 0.05

    async def test_a_cr_gone_before_its_turn_is_skipped(self) -> None:
        held = _held("a", "b")
        seen: list[str] = []
        done = asyncio.Event()

        async def run_one(body: dict[str, Any]) -> None:
            seen.append(body["metadata"]["name"])
            done.set()

        passes = PeriodicPasses(held, run_one, interval=60, activity=Activity())
        passes.soon("uid-a")
        held.drop("uid-a")
        await self.soon_until(passes, done, "uid-b")
        assert seen == ["b"]

    async def test_a_failing_one_is_logged_and_the_next_still_runs(self, caplog: pytest.LogCaptureFixture) -> None:
        seen: list[str] = []
        done = asyncio.Event()

        async def run_one(body: dict[str, Any]) -> None:
            if body["metadata"]["name"] == "a":
                raise RuntimeError("boom")
            seen.append(body["metadata"]["name"])
            done.set()

        passes = PeriodicPasses(_held("a", "b"), run_one, interval=60, activity=Activity(), soon_concurrency=1)
        with caplog.at_level(logging.ERROR):
            await self.soon_until(passes, done, "uid-a", "uid-b")
        assert seen == ["b"]
        assert "the pass of ns/a failed" in caplog.text
        assert passes.failure() is None

    async def test_a_round_leaves_a_cr_waiting_for_its_soon_pass_to_it(self) -> None:
        seen: list[str] = []

        async def run_one(body: dict[str, Any]) -> None:
            seen.append(body["metadata"]["name"])

        passes = PeriodicPasses(_held("a", "b", "c"), run_one, interval=60, activity=Activity())
        passes.soon("uid-a")
        passes.soon("uid-b", delay=30)
        assert await passes.round() == 1
        assert seen == ["c"]
        await passes.aclose()

    async def test_a_round_leaves_a_cr_whose_soon_pass_runs_now_to_it(self) -> None:
        seen: list[str] = []
        inside = asyncio.Event()
        release = asyncio.Event()

        async def run_one(body: dict[str, Any]) -> None:
            seen.append(body["metadata"]["name"])
            if len(seen) == 1:
                inside.set()
                await release.wait()

        passes = await self.running(PeriodicPasses(_held("a", "b"), run_one, interval=60, activity=Activity()))
        try:
            passes.soon("uid-a")
            await asyncio.wait_for(inside.wait(), timeout=5)
            assert await passes.round() == 1
            release.set()
        finally:
            await passes.aclose()
        assert seen == ["a", "b"]
