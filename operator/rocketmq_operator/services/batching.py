"""The deletion batcher: deletions that arrive together leave as one batch action call.

Why it exists: a ``kubectl delete`` of many CRs, a namespace teardown, a GitOps prune or the sweep
of failed instances produce many deletions within moments. Sending each as its own call spends the
account's rate limit N times over; the cloud offers ``POST /v2/{project_id}/instances/action``,
which deletes a list of instances in one call and reports one result per instance. The batcher
collects the ids submitted within a short window, sends them in one call, and hands each caller
the result of its own instance.

Shape (kopf's ``poster``): producers only enqueue and wait on a future; the network is touched
only by flush tasks, so a producer never waits for another producer's call and several calls may
be in flight at once (the client's token bucket paces them). One batcher serves one account; its
pending ids are grouped by ``force_delete``, so each group is one key ``(account, force_delete)``
of the design.

What the results mean: ``Accepted`` is *accepted*, not gone; the caller releases its CR only once
observation shows the instance absent. Every submitted future is resolved exactly once, whatever
happens: per-instance results, a failed call, cancellation, or ``aclose``.

The window, the size cap, the splitting of refused calls and the futures are one machine,
``Coalescer``, keyed by what may share a call. ``DeletionBatcher`` keys instances by
``force_delete``; ``ChildBatcher`` keys topics and consumer groups by (instance, kind), as the cloud
deletes them per instance with ``POST .../instances/{id}/topics?action=delete`` (or ``groups``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rocketmq_operator.core import cloud
from rocketmq_operator.core.vocabulary import DeletionResult, DeletionTrigger
from rocketmq_operator.ports import errors, protocol
from rocketmq_operator.services.metrics import Metrics

logger = logging.getLogger(__name__)


K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class DeleteOutcome:
    """What became of one submitted instance id."""

    instance_id: str
    result: DeletionResult
    batch_id: str
    """Short id of the batch call that carried this id (the same for all ids of one call)."""
    batch_size: int
    """How many ids the call that carried this id had."""
    submitted_at: float
    """Wall-clock epoch seconds at which that call was sent."""
    error: errors.CloudError | None = None
    job_id: str | None = None
    """The cloud's job id, where the call answers one (topic and group batch deletes)."""
    noun: str = "instance"

    @property
    def message(self) -> str:
        """A sentence for a CR's status or an Event."""
        where = f"batch {self.batch_id} ({_count(self.batch_size, self.noun)})" if self.batch_id else "no batch call"
        if self.job_id:
            where += f", job {self.job_id}"
        if self.result == DeletionResult.ACCEPTED:
            return f"accepted in {where}"
        if self.result == DeletionResult.FAILED:
            return f"failed in {where}: the cloud reported 'failed' for this {self.noun}"
        if self.result == DeletionResult.NO_RESULT:
            return f"no result for this {self.noun} in {where}"
        if self.result == DeletionResult.WITH_INSTANCE:
            return f"not sent: its instance is being deleted and takes this {self.noun} with it"
        reason = {
            DeletionResult.NOT_FOUND: "not found",
            DeletionResult.WRONG_STATE: "refused in its current state",
        }.get(self.result, "error")
        detail = f": {self.error}" if self.error is not None else ""
        return f"{reason} in {where}{detail}"


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _instances(count: int) -> str:
    return _count(count, "instance")


def _new_batch_id() -> str:
    return f"b-{secrets.token_hex(4)}"


@dataclass
class _Waiter:
    """One pending id: the future all its submitters share, and why it was first submitted."""

    future: asyncio.Future[DeleteOutcome]
    trigger: DeletionTrigger
    sent_in: tuple[str, int, float] | None = None
    """(batch id, size, submitted at) of the call carrying it, once one does."""


@dataclass
class _Group(Generic[K]):
    """The pending ids of one key, in submission order."""

    key: K
    opened_at: float = 0.0
    waiters: dict[str, _Waiter] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    in_burst: bool = False
    """Opened within a window of a call of its key sent full: sent when full, or ``max_wait`` after its first id."""


@dataclass(frozen=True)
class Delivery:
    """What one batch call answered: a result per id it carried, and the job id if the cloud gave one."""

    results: Mapping[str, DeletionResult]
    job_id: str | None = None


class Coalescer(Generic[K]):
    """Coalesces deletions that may share a call (the same key) into batch calls.

    Subclasses say how one call is made (``_deliver``) and which refusals cannot tell which id is
    to blame (``ambiguous``), so a multi-id call refused so is split in halves to isolate it.

    Args:
        window: how long a group waits for more ids: it is sent ``window`` seconds after its latest
            id arrived (a burst that the API server delivers over several seconds still leaves
            as one call), but never later than ``max_wait`` after its first id.
        max_wait: the cap, so a steady trickle cannot delay a call forever; default 5 x window.
            A group opened right after a call of its key that left full is in a burst: a pause
            longer than ``window`` in it (kubectl or the watch stalling under load) does not send
            it part-filled; it is sent full, or ``max_wait`` after its first id.
        max_size: ids per call; a group reaching it is sent at once.
        metrics: where to record batch sizes and per-id results.
        trigger_label: the ``trigger`` label of this batcher's batch size observations.
        clock: wall clock (epoch seconds) for ``DeleteOutcome.submitted_at``. The window itself is
            measured on the event loop's clock, so a virtual-time loop drives it in tests.
    """

    ambiguous: tuple[type[errors.CloudError], ...] = (errors.InvalidRequest,)
    operation = "delete_many"

    def __init__(
        self,
        *,
        window: float,
        max_size: int,
        max_wait: float | None = None,
        metrics: Metrics | None = None,
        trigger_label: str = "delete",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window < 0:
            raise ValueError(f"window must be >= 0, not {window!r}")
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, not {max_size!r}")
        self._window = window
        self._max_wait = max(window, 5 * window if max_wait is None else max_wait)
        self._max_size = max_size
        self._effective_max_size = max_size
        self._metrics = metrics
        self._trigger_label = trigger_label
        self._clock = clock
        self._groups: dict[K, _Group[K]] = {}
        self._sent_full_at: dict[K, float] = {}  # loop time of each key's last call that left full
        self._in_flight: set[asyncio.Task[None]] = set()
        self._closed = False
        self._limit_warned = False

    @property
    def effective_max_size(self) -> int:
        """The size limit in force: ``max_size``, or lower once the cloud showed it refuses more."""
        return self._effective_max_size

    def queue_depth(self) -> int:
        """Ids waiting for their call to be sent (not those already in flight)."""
        return sum(len(group.waiters) for group in self._groups.values())

    async def _submit(self, key: K, item: str, trigger: DeletionTrigger) -> DeleteOutcome:
        """Queue one id for deletion and wait for its own result.

        Submitting an id that is already pending joins its existing future; submitting it after
        its call was sent starts a new one (a repeated delete is harmless). Cancelling the caller
        does not withdraw the id: others may share its future, and the deletion was asked for.
        """
        if self._closed:
            return DeleteOutcome(
                instance_id=item,
                result=DeletionResult.ERROR,
                batch_id="",
                batch_size=0,
                submitted_at=self._clock(),
                error=errors.CloudError("the deletion batcher is closed", operation=self.operation),
                noun=self._noun(key),
            )
        future = self._enqueue(key, item, trigger=trigger)
        # Shielded: one submitter giving up must not cancel the result its twins are waiting for.
        return await asyncio.shield(future)

    async def _deliver(self, key: K, ids: list[str]) -> Delivery:
        """Send ``ids`` as one call; raise ``CloudError`` when the call as a whole is refused."""
        raise NotImplementedError

    def _describe(self, key: K) -> str:
        return str(key)

    def _noun(self, key: K) -> str:
        return "instance"

    async def aclose(self) -> None:
        """Stop: pending ids get an ``Error`` outcome, in-flight calls are cancelled and do too."""
        self._closed = True
        closed = errors.CloudError("the deletion batcher closed before sending this id", operation=self.operation)
        for key in list(self._groups):
            group = self._groups.pop(key)
            if group.timer is not None:
                group.timer.cancel()
            now = self._clock()
            for instance_id, waiter in group.waiters.items():
                self._resolve(
                    waiter,
                    DeleteOutcome(instance_id, DeletionResult.ERROR, "", 0, now, error=closed, noun=self._noun(key)),
                )
        self._report_depth()
        tasks = list(self._in_flight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # Producer side: never awaits anything but the future.

    def _enqueue(self, key: K, instance_id: str, *, trigger: DeletionTrigger) -> asyncio.Future[DeleteOutcome]:
        loop = asyncio.get_running_loop()
        group = self._groups.get(key)
        now = loop.time()
        if group is None:
            full_at = self._sent_full_at.pop(key, None)
            group = _Group(key=key, opened_at=now, in_burst=full_at is not None and now - full_at <= self._window)
            self._groups[key] = group
        # Slide the window with each arrival, capped at max_wait from the group's first id.
        if group.timer is not None:
            group.timer.cancel()
        capped = group.opened_at + self._max_wait
        due = capped if group.in_burst else min(now + self._window, capped)
        group.timer = loop.call_at(due, self._flush, key)
        waiter = group.waiters.get(instance_id)
        if waiter is None:
            waiter = _Waiter(future=loop.create_future(), trigger=trigger)
            group.waiters[instance_id] = waiter
            self._report_depth()
        if len(group.waiters) >= self._effective_max_size:
            self._sent_full_at[key] = now
            self._flush(key)
        return waiter.future

    def _flush(self, key: K) -> None:
        group = self._groups.pop(key, None)
        if group is None:
            return
        if group.timer is not None:
            group.timer.cancel()
        self._report_depth()
        items = list(group.waiters.items())
        # A group can outgrow the limit only if the limit was lowered while it was pending.
        size = self._effective_max_size
        loop = asyncio.get_running_loop()
        for start in range(0, len(items), size):
            chunk = dict(items[start : start + size])
            task = loop.create_task(self._send(chunk, key), name="delete-batch")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    # Flush side: the only code that talks to the cloud.

    async def _send(self, waiters: dict[str, _Waiter], key: K) -> None:
        try:
            await self._call(waiters, key)
        finally:
            # Reached with unresolved waiters only when cancelled mid-call (aclose): the call may
            # or may not have reached the cloud, so the outcome is unknown and the caller retries.
            interrupted = errors.CloudError(
                "the batch call was interrupted before its answer arrived; outcome unknown",
                operation=self.operation,
            )
            for instance_id, waiter in waiters.items():
                if not waiter.future.done():
                    batch_id, size, submitted_at = waiter.sent_in or ("", 0, self._clock())
                    outcome = DeleteOutcome(
                        instance_id,
                        DeletionResult.ERROR,
                        batch_id,
                        size,
                        submitted_at,
                        error=interrupted,
                        noun=self._noun(key),
                    )
                    self._resolve(waiter, outcome)

    async def _call(self, waiters: dict[str, _Waiter], key: K) -> bool:
        """Send ``waiters`` as one call and resolve them; True if the cloud took it as one call."""
        ids = list(waiters)
        batch_id = _new_batch_id()
        submitted_at = self._clock()
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self._metrics is not None:
            self._metrics.batch_size.labels(trigger=self._trigger_label).observe(len(ids))

        def outcome(
            instance_id: str,
            result: DeletionResult,
            error: errors.CloudError | None = None,
            job_id: str | None = None,
        ) -> DeleteOutcome:
            return DeleteOutcome(
                instance_id, result, batch_id, len(ids), submitted_at, error=error, job_id=job_id, noun=self._noun(key)
            )

        for waiter in waiters.values():
            waiter.sent_in = (batch_id, len(ids), submitted_at)
        try:
            delivery = await self._deliver(key, ids)
        except errors.CloudError as exc:
            self._log_call(batch_id, waiters, key, loop.time() - started, error=exc)
            if len(ids) > 1 and isinstance(exc, self.ambiguous):
                await self._split(waiters, key, cause=exc)
            else:
                result = _result_of_refusal(exc)
                for instance_id, waiter in waiters.items():
                    self._resolve(waiter, outcome(instance_id, result, exc))
            return False
        except Exception as exc:
            # A bug below us must not strand the waiters; they get an error they can retry on.
            logger.exception("batch %s: %s raised an unexpected error", batch_id, self.operation)
            wrapped = errors.CloudError(f"unexpected {type(exc).__name__}: {exc}", operation=self.operation)
            for instance_id, waiter in waiters.items():
                self._resolve(waiter, outcome(instance_id, DeletionResult.ERROR, wrapped))
            return False

        routed = delivery.results
        self._log_call(batch_id, waiters, key, loop.time() - started, routed=routed, job_id=delivery.job_id)
        for instance_id, waiter in waiters.items():
            result = routed.get(instance_id, DeletionResult.NO_RESULT)
            self._resolve(waiter, outcome(instance_id, result, job_id=delivery.job_id))
        return True

    async def _split(self, waiters: dict[str, _Waiter], key: K, *, cause: errors.CloudError) -> None:
        items = list(waiters.items())
        middle = (len(items) + 1) // 2
        # In sequence, not concurrently: a refused batch often means more refusals are coming,
        # and doubling the calls in flight would only spend the rate limit faster.
        left_ok = await self._call(dict(items[:middle]), key)
        right_ok = await self._call(dict(items[middle:]), key)
        if isinstance(cause, errors.InvalidRequest) and left_ok and right_ok:
            # The whole was refused and both halves were taken: the size was the problem.
            self._learn_limit(middle, cause)

    def _learn_limit(self, size: int, cause: errors.CloudError) -> None:
        if size >= self._effective_max_size:
            return
        self._effective_max_size = size
        log = logger.info if self._limit_warned else logger.warning
        self._limit_warned = True
        log(
            "The cloud refused a batch delete that it accepted in halves of %d ids (%s); "
            "sending at most %d ids per call from now on (configured: %d)",
            size,
            cause,
            size,
            self._max_size,
        )

    def _resolve(self, waiter: _Waiter, outcome: DeleteOutcome) -> None:
        if waiter.future.done():
            return
        waiter.future.set_result(outcome)
        if self._metrics is not None:
            self._metrics.batch_results.labels(result=outcome.result).inc()

    def _report_depth(self) -> None:
        """The queue depth gauge is the instance batcher's; the child batchers do not report one."""

    def _log_call(
        self,
        batch_id: str,
        waiters: Mapping[str, _Waiter],
        key: K,
        seconds: float,
        *,
        routed: Mapping[str, DeletionResult] | None = None,
        error: errors.CloudError | None = None,
        job_id: str | None = None,
    ) -> None:
        triggers: dict[str, int] = {}
        for waiter in waiters.values():
            triggers[waiter.trigger] = triggers.get(waiter.trigger, 0) + 1
        why = ",".join(f"{name}={count}" for name, count in sorted(triggers.items()))
        if error is not None:
            logger.warning(
                "batch %s: delete of %s (%s, %s) refused as a whole after %.3fs: %s",
                batch_id,
                _count(len(waiters), self._noun(key)),
                self._describe(key),
                why,
                seconds,
                error,
            )
            return
        counts = dict.fromkeys((DeletionResult.ACCEPTED, DeletionResult.FAILED, DeletionResult.NO_RESULT), 0)
        for result in (routed or {}).values():
            counts[result] = counts.get(result, 0) + 1
        logger.info(
            "batch %s: delete of %s (%s, %s%s): %d accepted, %d failed, %d without result in %.3fs",
            batch_id,
            _count(len(waiters), self._noun(key)),
            self._describe(key),
            why,
            f", job {job_id}" if job_id else "",
            counts[DeletionResult.ACCEPTED],
            counts[DeletionResult.FAILED],
            counts[DeletionResult.NO_RESULT],
            seconds,
        )


class DeletionBatcher(Coalescer[bool]):
    """Instance deletions of one account, one group per ``force_delete`` value.

    Args:
        client: the cloud client of the account.
        max_wait, window, max_size, metrics, trigger_label, clock: as ``Coalescer``'s.
    """

    # The instance batch API answers per id, so a refusal of the whole call (not found, wrong
    # state, invalid) cannot say which id is to blame, or the cloud has a batch size limit below
    # ours (undocumented): split to isolate it.
    ambiguous = (errors.InvalidRequest, errors.NotFound, errors.WrongState)

    def __init__(
        self,
        client: protocol.ExternalClient,
        *,
        window: float,
        max_size: int,
        max_wait: float | None = None,
        metrics: Metrics | None = None,
        trigger_label: str = "delete",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            window=window,
            max_size=max_size,
            max_wait=max_wait,
            metrics=metrics,
            trigger_label=trigger_label,
            clock=clock,
        )
        self._client = client

    async def submit(
        self, instance_id: str, *, force_delete: bool, trigger: DeletionTrigger = DeletionTrigger.CR_DELETED
    ) -> DeleteOutcome:
        """Queue one instance for deletion and wait for its own result (see ``Coalescer._submit``)."""
        return await self._submit(force_delete, instance_id, trigger)

    async def _deliver(self, key: bool, ids: list[str]) -> Delivery:
        results = await self._client.delete_many(ids, force_delete=key)
        return Delivery(_route(ids, results))

    def _describe(self, key: bool) -> str:
        return f"force_delete={key}"

    def _report_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(self.queue_depth())


class ChildBatcher(Coalescer[tuple[str, protocol.ChildKind]]):
    """Topic and consumer-group deletions of one account, one group per (instance, kind).

    The cloud answers a batch only with a job id, never per name, so every name of an accepted
    call is ``Accepted`` with that job id; proof that each is gone comes from the list. A call
    refused as a whole for the instance (gone, or not RUNNING) is the same answer for every name,
    so only an invalid request (a size limit below ours) is split.

    Args:
        client: the cloud client of the account.
        withhold: asked when a call is due, per instance id: True when that instance is itself
            being deleted, and takes its topics and groups with it, so no call is made for them
            (their outcome is ``WithInstance``). Asked at flush time, not at submit time: in a
            namespace teardown the instance's deletion may be seen a moment after its children's.
        window, max_size, max_wait, metrics, clock: as ``Coalescer``'s.
    """

    operation = "delete_children"

    def __init__(
        self,
        client: protocol.ChildOperations,
        *,
        window: float,
        max_size: int,
        max_wait: float | None = None,
        metrics: Metrics | None = None,
        withhold: Callable[[str], bool] = lambda _instance_id: False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            window=window, max_size=max_size, max_wait=max_wait, metrics=metrics, trigger_label="children", clock=clock
        )
        self._client = client
        self._withhold = withhold

    async def submit(self, instance_id: str, kind: protocol.ChildKind, name: str) -> DeleteOutcome:
        """Queue one topic or group for deletion and wait for its own result."""
        return await self._submit((instance_id, kind), name, DeletionTrigger.CR_DELETED)

    async def _call(self, waiters: dict[str, _Waiter], key: tuple[str, protocol.ChildKind]) -> bool:
        if self._withhold(key[0]):
            now = self._clock()
            for name, waiter in waiters.items():
                self._resolve(
                    waiter, DeleteOutcome(name, DeletionResult.WITH_INSTANCE, "", 0, now, noun=self._noun(key))
                )
            logger.info(
                "%s of instance %s not deleted by a call: the instance is being deleted with them",
                _count(len(waiters), key[1]),
                key[0],
            )
            return True
        return await super()._call(waiters, key)

    async def _deliver(self, key: tuple[str, protocol.ChildKind], ids: list[str]) -> Delivery:
        instance_id, kind = key
        job_id = await self._client.delete_children(instance_id, kind, ids)
        return Delivery(dict.fromkeys(ids, DeletionResult.ACCEPTED), job_id=job_id or None)

    def _describe(self, key: tuple[str, protocol.ChildKind]) -> str:
        return f"instance {key[0]}"

    def _noun(self, key: tuple[str, protocol.ChildKind]) -> str:
        return key[1]


def _route(ids: Sequence[str], results: Sequence[cloud.BatchActionResult]) -> dict[str, DeletionResult]:
    """Each sent id's result, by its own ``results[]`` entry; the first entry wins if repeated."""
    by_id: dict[str, cloud.BatchActionResult] = {}
    for entry in results:
        by_id.setdefault(entry.instance, entry)
    unexpected = by_id.keys() - set(ids)
    if unexpected:
        logger.debug("batch response reported on ids it was not sent: %s", sorted(unexpected))
    routed: dict[str, DeletionResult] = {}
    for instance_id in ids:
        own = by_id.get(instance_id)
        if own is None:
            routed[instance_id] = DeletionResult.NO_RESULT
        else:
            routed[instance_id] = DeletionResult.ACCEPTED if own.accepted else DeletionResult.FAILED
    return routed


def _result_of_refusal(exc: errors.CloudError) -> DeletionResult:
    """The result of a call refused as a whole, for each id it carried."""
    if isinstance(exc, errors.NotFound):
        return DeletionResult.NOT_FOUND
    if isinstance(exc, errors.WrongState):
        return DeletionResult.WRONG_STATE
    return DeletionResult.ERROR
