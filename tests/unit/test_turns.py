"""A CR's steps take turns; a CR with no step running or waiting keeps no lock."""

from __future__ import annotations

import asyncio

from rocketmq_operator.services.turns import Turns


async def _step(turns: Turns, key: str, log: list[str], name: str, release: asyncio.Event) -> None:
    async with turns.take(key):
        log.append(f"{name} starts")
        await release.wait()
        log.append(f"{name} ends")


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class TestTurns:
    async def test_steps_for_one_cr_run_one_at_a_time(self) -> None:
        turns, log = Turns(), []
        first, second = asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(_step(turns, "uid-1", log, n, e)) for n, e in (("a", first), ("b", second))]
        await _settle()
        assert log == ["a starts"]
        first.set()
        await _settle()
        assert log == ["a starts", "a ends", "b starts"]
        second.set()
        await asyncio.gather(*tasks)

    async def test_steps_for_different_crs_run_side_by_side(self) -> None:
        turns, log, release = Turns(), [], asyncio.Event()
        tasks = [asyncio.create_task(_step(turns, uid, log, uid, release)) for uid in ("uid-1", "uid-2")]
        await _settle()
        assert log == ["uid-1 starts", "uid-2 starts"]
        release.set()
        await asyncio.gather(*tasks)

    async def test_no_lock_is_kept_once_no_step_holds_or_awaits_it(self) -> None:
        turns, log, release = Turns(), [], asyncio.Event()
        tasks = [asyncio.create_task(_step(turns, "uid-1", log, n, release)) for n in ("a", "b")]
        await _settle()
        assert "uid-1" in turns and len(turns) == 1
        release.set()
        await asyncio.gather(*tasks)
        assert "uid-1" not in turns and len(turns) == 0

    async def test_a_step_arriving_while_another_waits_still_waits_its_turn(self) -> None:
        # The holder leaving must not drop the turn that a waiter is about to take.
        turns, log = Turns(), []
        a, b, c = asyncio.Event(), asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(_step(turns, "uid-1", log, "a", a))
        second = asyncio.create_task(_step(turns, "uid-1", log, "b", b))
        await _settle()
        a.set()
        await _settle()
        third = asyncio.create_task(_step(turns, "uid-1", log, "c", c))
        await _settle()
        assert log == ["a starts", "a ends", "b starts"]
        b.set()
        c.set()
        await asyncio.gather(first, second, third)
        assert log[-2:] == ["c starts", "c ends"]

    async def test_a_dropped_turn_does_not_hold_up_the_next_step(self) -> None:
        # The CR went (forget) while a step still runs: a later step is for a CR by the same uid
        # only in tests, but it must not wait on a lock nobody will look after.
        turns, log, stuck, free = Turns(), [], asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(_step(turns, "uid-1", log, "a", stuck))
        await _settle()
        turns.drop("uid-1")
        free.set()
        await asyncio.wait_for(_step(turns, "uid-1", log, "b", free), timeout=1)
        assert log == ["a starts", "b starts", "b ends"]
        stuck.set()
        await first
