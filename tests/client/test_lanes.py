"""Two lanes: a waiter in the first goes before every waiter in the second; none is lost to a cancel."""

from __future__ import annotations

import asyncio

import pytest

from rocketmq_operator.adapters.lanes import Lanes


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_places_are_taken_at_once_while_free() -> None:
    lanes = Lanes(2)
    await lanes.acquire()
    await lanes.acquire(first=True)
    third = asyncio.create_task(lanes.acquire())
    await _settle()
    assert not third.done()
    lanes.release()
    await _settle()
    assert third.done()


async def _served(*arrivals: list[str]) -> list[str]:
    """The order in which waiters got a one-place lane held meanwhile; each list arrives after the
    one before it has queued. Names starting with "page" ask for the first lane."""
    lanes = Lanes(1)
    order: list[str] = []
    await lanes.acquire()

    async def waiter(name: str) -> None:
        async with lanes.hold(first=name.startswith("page")):
            order.append(name)

    tasks: list[asyncio.Task[None]] = []
    for names in arrivals:
        tasks += [asyncio.create_task(waiter(name)) for name in names]
        await _settle()
    lanes.release()
    await asyncio.gather(*tasks)
    return order


async def test_a_first_lane_waiter_goes_before_every_second_lane_waiter() -> None:
    assert await _served(["show-0", "show-1", "show-2"], ["page"]) == ["page", "show-0", "show-1", "show-2"]


async def test_each_lane_is_served_in_arrival_order() -> None:
    assert await _served(["show-a", "page-1", "show-b", "page-2"]) == ["page-1", "page-2", "show-a", "show-b"]


async def test_a_waiter_cancelled_while_queued_leaves_no_place_behind_it() -> None:
    lanes = Lanes(1)
    await lanes.acquire()
    gone = asyncio.create_task(lanes.acquire())
    await _settle()
    gone.cancel()
    await _settle()
    lanes.release()
    # The place is free again: a newcomer takes it without waiting for a release that never comes.
    await asyncio.wait_for(lanes.acquire(), timeout=1.0)


async def test_a_waiter_cancelled_before_its_task_resumes_is_skipped_not_served() -> None:
    lanes = Lanes(1)
    await lanes.acquire()
    gone = asyncio.create_task(lanes.acquire())
    next_in_line = asyncio.create_task(lanes.acquire())
    await _settle()
    gone.cancel()
    lanes.release()  # before the cancelled task has run: the place goes to the next live waiter
    await _settle()
    assert next_in_line.done() and not next_in_line.cancelled()
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_a_place_handed_over_as_its_waiter_is_cancelled_passes_on() -> None:
    lanes = Lanes(1)
    await lanes.acquire()
    unlucky = asyncio.create_task(lanes.acquire())
    after = asyncio.create_task(lanes.acquire())
    await _settle()
    lanes.release()  # hands the place to `unlucky`, whose task has not resumed yet
    unlucky.cancel()
    await _settle()
    assert after.done() and not after.cancelled()


def test_a_lane_needs_a_place() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Lanes(0)
