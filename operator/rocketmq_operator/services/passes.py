"""The periodic pass over every CR of a kind: one loop for all of them, not a kopf timer per CR.

Why: kopf runs a timer as a daemon per object for the object's whole life: a task, its stopper, the
coroutines of its loop, a logger, and the live body kopf keeps fresh for it. At 2,000 CRs that was the
largest holder of the operator's memory (``bench/memory.py --census``), and at 10,000 CRs a thousand
timer handlers a second competed with the list walk for one event loop. Here a CR costs one compact
copy of its latest body, and one loop takes every CR in turn each interval, a bounded number at once.

What the pass of one CR does is the caller's (``run_one``): this module holds the bodies and paces the
rounds. A pass that fails is logged and the CR is taken again next round; nothing is dropped.

A CR can also be passed soon (``PeriodicPasses.soon``), ahead of the next round, by a bounded number
of workers of its own: the create of a new CR goes this way (``wiring.handlers``), as controller-runtime
queues a key for a bounded pool of reconcilers. Why: done in kopf's create handler, every new CR
held a kopf worker, its parsed model and a handler's coroutines while it queued for the cloud; at
10,000 CRs created at once that was most of the operator's peak memory (490 to 520 MiB). Queued
here, a CR waits as its uid.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from rocketmq_operator.services.activity import Activity
from rocketmq_operator.services.supervision import SupervisedService

logger = logging.getLogger(__name__)

Body = dict[str, Any]

RunOne = Callable[[Body], Awaitable[float | None]]
"""The pass of one CR, given its decoded body; it returns how soon that CR wants its next pass, in
seconds, when that is sooner than the next round (a soon pass honours it; a round does not), else None."""


class HeldBodies:
    """The latest body of every CR, as compact JSON bytes.

    Why bytes: a decoded body is a tree of dicts and strings several times the size of its JSON, and a
    pass reads it once per interval; decoding it then costs far less than keeping it decoded.
    """

    def __init__(self) -> None:
        self._held: dict[str, bytes] = {}

    def hold(self, uid: str, body: Mapping[str, Any]) -> None:
        self._held[uid] = json.dumps(body, separators=(",", ":")).encode()

    def drop(self, uid: str) -> None:
        self._held.pop(uid, None)

    def get(self, uid: str) -> Body | None:
        raw = self._held.get(uid)
        return None if raw is None else cast(Body, json.loads(raw))  # a fresh dict on every call

    def uids(self) -> list[str]:
        return list(self._held)

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, uid: object) -> bool:
        return uid in self._held


class PeriodicPasses(SupervisedService):
    """Every ``interval`` seconds (the first after one interval), ``run_one`` for every held body.

    Args:
        bodies: what the rounds take; a CR dropped while a round runs is skipped by it.
        run_one: the pass of one CR, given its decoded body. What it raises is logged, never fatal.
        interval: seconds from the end of one round to the start of the next (kopf's timers count
            from the end of a run too, so a slow round never piles up on the next).
        activity: rounds start only while this replica works (peering).
        concurrency: passes in flight at once. Without a bound, a round of 10,000 CRs would hold
            10,000 passes (and their bodies) at once: the peak this loop is here to avoid.
        soon_concurrency: soon passes in flight at once (``soon``), beside the round's.
    """

    def __init__(
        self,
        bodies: HeldBodies,
        run_one: RunOne,
        *,
        interval: float,
        activity: Activity,
        concurrency: int = 32,
        soon_concurrency: int = 32,
        name: str = "periodic-passes",
    ) -> None:
        if interval <= 0 or concurrency < 1 or soon_concurrency < 1:
            raise ValueError(
                f"need interval > 0 and concurrency >= 1, not {interval!r}, {concurrency!r}, {soon_concurrency!r}"
            )
        super().__init__(name)
        self._bodies = bodies
        self._run_one = run_one
        self._interval = interval
        self._activity = activity
        self._concurrency = concurrency
        self._soon_concurrency = soon_concurrency
        self._soon: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()  # in ``_soon``: a CR asked for twice waits once
        self._timers: dict[str, asyncio.TimerHandle] = {}  # soon passes asked for later
        self._running: set[str] = set()  # soon passes under way

    def soon(self, uid: str, *, delay: float = 0.0) -> None:
        """Pass the CR ``uid`` as soon as a soon worker is free (after ``delay`` seconds), not at the
        next round. A CR already waiting waits once; one whose pass runs now is passed again after it."""
        if uid in self._queued:
            return
        if delay > 0:
            if uid not in self._timers:
                self._timers[uid] = asyncio.get_running_loop().call_later(delay, self._enqueue, uid)
            return
        self._enqueue(uid)

    def _enqueue(self, uid: str) -> None:
        timer = self._timers.pop(uid, None)
        if timer is not None:
            timer.cancel()
        if uid not in self._queued:
            self._queued.add(uid)
            self._soon.put_nowait(uid)

    def waiting(self) -> int:
        """CRs waiting for a soon pass, now or later."""
        return len(self._queued) + len(self._timers)

    async def aclose(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await super().aclose()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:  # one worker's death ends them all: the probe sees it
            group.create_task(self._rounds())
            for _ in range(self._soon_concurrency):
                group.create_task(self._soon_worker())

    async def _rounds(self) -> None:
        await asyncio.sleep(self._interval)
        while True:
            await self._activity.wait_active()
            await self.round()
            await asyncio.sleep(self._interval)

    async def _soon_worker(self) -> None:
        while True:
            uid = await self._soon.get()
            await self._activity.wait_active()
            self._queued.discard(uid)
            body = self._bodies.get(uid)
            if body is None:
                continue  # gone, or being deleted, since it was asked for
            self._running.add(uid)
            try:
                again = await self._run_one(body)
            except Exception:
                logger.exception("the pass of %s failed; it runs again next round", _named(body))
                continue
            finally:
                self._running.discard(uid)
            if again is not None and again < self._interval:
                self.soon(uid, delay=again)

    async def round(self) -> int:
        """One pass of every CR held when the round starts and not waiting for a soon pass; returns how
        many ran."""
        uids = iter(self._bodies.uids())
        ran = 0
        started = time.monotonic()

        async def worker() -> None:
            nonlocal ran
            # The workers share one iterator: each takes the next CR when its last pass ends.
            for uid in uids:
                if uid in self._queued or uid in self._timers or uid in self._running:
                    # Its soon pass comes first, or runs now. Two would repeat each other, and the
                    # second one's write, decided on the same body, would be refused (409): when the
                    # round's came first, the soon pass's Events (a create's "Created") were lost.
                    continue
                body = self._bodies.get(uid)
                if body is None:
                    continue  # gone since the round began
                ran += 1
                try:
                    await self._run_one(body)
                except Exception:
                    logger.exception("the periodic pass of %s failed; it runs again next round", _named(body))

        await asyncio.gather(*(worker() for _ in range(self._concurrency)))
        took = time.monotonic() - started
        if took > self._interval:
            # Each CR is then looked at every interval plus this, not every interval.
            logger.info("a round of %d passes took %.1fs, longer than the interval of %.1fs", ran, took, self._interval)
        else:
            logger.debug("a round of %d passes took %.1fs", ran, took)
        return ran


def _named(body: Body) -> str:
    metadata = body.get("metadata")
    if not isinstance(metadata, Mapping):
        return "a CR"
    return f"{metadata.get('namespace')}/{metadata.get('name')}"
