"""kopf's index toggles, counted: the same answers as kopf's ``ToggleSet``, with waiters woken only
when the set's state changes, so an operator restarted against 10,000 CRs gets going.

kopf holds every handler until every object listed at start is indexed: a toggle per object in one
``ToggleSet(all)``, dropped by the object's worker, which then waits for the whole set. kopf's set
wakes every waiter on each add and drop and each re-scans the set; the counted one does neither.
On a kopf it was not written for, the replacement refuses to start.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable

import pytest
from kopf._cogs.aiokits import aiotoggles

from rocketmq_operator.wiring import toggles
from rocketmq_operator.wiring.toggles import CountedToggleSet

KOPF_TOGGLE_SET = toggles._ORIGINAL


def counting_notifications(toggle_set: aiotoggles.ToggleSet) -> list[int]:
    """A one-item list holding how many times ``toggle_set`` woke its waiters."""
    woken = [0]
    notify_all = toggle_set._condition.notify_all

    def counted() -> None:
        woken[0] += 1
        notify_all()

    toggle_set._condition.notify_all = counted  # type: ignore[method-assign]
    return woken


class TestSameAnswersAsKopf:
    @pytest.mark.parametrize("fn", [all, any], ids=["all", "any"])
    async def test_every_state_after_random_adds_drops_and_flips_is_kopfs(
        self, fn: Callable[[Iterable[bool]], bool]
    ) -> None:
        counted = CountedToggleSet(fn)
        rng = random.Random(16)
        live: list[aiotoggles.Toggle] = []
        dropped: list[aiotoggles.Toggle] = []
        for _ in range(2_000):
            action = rng.choice(["make", "make", "drop", "drop_many", "flip", "flip_dropped"])
            if action == "make":
                live.append(await counted.make_toggle(rng.random() < 0.5))
            elif action == "drop" and live:
                toggle = live.pop(rng.randrange(len(live)))
                await counted.drop_toggle(toggle)
                await counted.drop_toggle(toggle)  # twice: kopf ignores a toggle it no longer has
                dropped.append(toggle)
            elif action == "drop_many" and live:
                some = [live.pop(rng.randrange(len(live))) for _ in range(min(3, len(live)))]
                await counted.drop_toggles(some)
                dropped.extend(some)
            elif action == "flip" and live:
                await rng.choice(live).turn_to(rng.random() < 0.5)
            elif action == "flip_dropped" and dropped:
                await rng.choice(dropped).turn_to(rng.random() < 0.5)  # a dropped toggle counts no more
            assert counted.is_on() == fn(toggle.is_on() for toggle in counted), action
            assert counted.is_off() == (not counted.is_on())
        assert len(counted) == len(live)

    @pytest.mark.parametrize(("fn", "on_when_empty"), [(all, True), (any, False)], ids=["all", "any"])
    async def test_an_empty_set_is_what_kopf_says(
        self, fn: Callable[[Iterable[bool]], bool], on_when_empty: bool
    ) -> None:
        assert CountedToggleSet(fn).is_on() is on_when_empty is KOPF_TOGGLE_SET(fn).is_on()

    async def test_another_function_falls_back_to_kopfs_scan(self) -> None:
        def exactly_one(states: Iterable[bool]) -> bool:
            return sum(states) == 1

        counted = CountedToggleSet(exactly_one)
        await counted.make_toggle(True)
        assert counted.is_on()
        await counted.make_toggle(True)
        assert counted.is_off()


class TestIndexPrePopulation:
    async def test_the_workers_wait_until_every_object_is_indexed_then_all_go(self) -> None:
        indexed = CountedToggleSet(all)
        blocker = await indexed.make_toggle(name="orchestration blocker")
        objects = [await indexed.make_toggle(name=f"object {i}") for i in range(100)]

        async def worker(own: aiotoggles.Toggle) -> None:
            await indexed.drop_toggle(own)
            await indexed.wait_for(True)

        workers = [asyncio.create_task(worker(own)) for own in objects]
        await asyncio.sleep(0.01)
        assert not any(task.done() for task in workers), "the blocker still holds them"
        await indexed.drop_toggle(blocker)
        await asyncio.wait_for(asyncio.gather(*workers), timeout=5)

    async def test_adding_and_dropping_1000_objects_wakes_the_waiters_twice_where_kopf_wakes_them_2002_times(
        self,
    ) -> None:
        async def wake_ups(kind: type[aiotoggles.ToggleSet]) -> int:
            indexed = kind(all)
            woken = counting_notifications(indexed)
            blocker = await indexed.make_toggle()  # on -> off
            objects = [await indexed.make_toggle() for _ in range(1_000)]
            for own in objects:
                await indexed.drop_toggle(own)
            await indexed.drop_toggle(blocker)  # off -> on
            return woken[0]

        assert await wake_ups(CountedToggleSet) == 2
        assert await wake_ups(KOPF_TOGGLE_SET) == 2_002

    async def test_the_pause_set_still_wakes_its_waiters_when_a_toggle_is_made_or_dropped(self) -> None:
        # wiring.peering follows kopf's pause by which peering toggles exist, not only by its state.
        paused = CountedToggleSet(any)
        woken = counting_notifications(paused)
        peer = await paused.make_toggle(False, name="peering object")
        await paused.drop_toggle(peer)
        assert woken[0] == 2

    async def test_a_paused_operator_resumes_when_its_toggle_turns_off(self) -> None:
        paused = CountedToggleSet(any)  # kopf's operator_paused: peering conflicts, a missing peering CRD
        conflict = await paused.make_toggle(True, name="peering conflict")
        resumed = asyncio.create_task(paused.wait_for(False))
        on_the_toggle = asyncio.create_task(conflict.wait_for(False))
        await asyncio.sleep(0.01)
        assert not resumed.done()
        await conflict.turn_to(False)
        await asyncio.wait_for(asyncio.gather(resumed, on_the_toggle), timeout=5)
        assert paused.is_off()


class TestInstall:
    @pytest.fixture
    def kopfs_class_restored(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(aiotoggles, "ToggleSet", aiotoggles.ToggleSet)

    @pytest.mark.usefixtures("kopfs_class_restored")
    def test_kopf_builds_counted_sets_once_installed_and_install_is_idempotent(self) -> None:
        toggles.install()
        toggles.install()
        assert aiotoggles.ToggleSet is CountedToggleSet
        assert isinstance(aiotoggles.ToggleSet(all), KOPF_TOGGLE_SET), "still kopf's class for every type check"

    @pytest.mark.usefixtures("kopfs_class_restored")
    def test_another_minor_release_stops_start_up_naming_the_version_and_the_replaced_class(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        before = aiotoggles.ToggleSet
        monkeypatch.setattr(toggles, "kopf_version", lambda: "1.46.0")
        with pytest.raises(RuntimeError, match=r"kopf 1\.46\.0 .*aiotoggles\.ToggleSet.*written for kopf 1\.45\.x"):
            toggles.install()
        assert aiotoggles.ToggleSet is before, "nothing may be replaced when install refuses"

    @pytest.mark.usefixtures("kopfs_class_restored")
    @pytest.mark.parametrize("method", ["make_toggle", "drop_toggle", "drop_toggles", "wait_for"])
    def test_a_missing_method_stops_start_up_naming_it(self, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delattr(KOPF_TOGGLE_SET, method)
        with pytest.raises(
            RuntimeError, match=rf"kopf \S+: kopf\._cogs\.aiokits\.aiotoggles\.ToggleSet\.{method} is missing"
        ):
            toggles.install()
