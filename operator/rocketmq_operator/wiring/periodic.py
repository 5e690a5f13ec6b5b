"""The periodic passes of one kind, wired to kopf: what replaced a kopf timer per CR.

Each kind (instances, topics, consumer groups, users, both account kinds) gets the same three pieces:

- the ``follow`` event handler, which holds every CR's latest body (``services.passes.HeldBodies``)
  until its deletion starts, and, once it is gone from the API server, has the services forget it;
- one ``services.passes.PeriodicPasses`` loop, made at startup, that runs the kind's step for every
  held CR each poll interval;
- the write of a pass's result (``pass_one``), once the CR's create handlers have finished: the
  status patch first, with the resourceVersion of the body it decided on
  (``wiring.status_patches``), then the Events, only once the status is written. A pass that the
  CR overtook (409) or that found it gone writes and posts nothing; the next round decides again
  on the newer body.
- ``soon``: a CR's pass ahead of the next round, once its create handlers' end has reached its
  held body (what ``pass_one`` waits for): a new instance CR's create is handed over this way, so
  that it queues as a uid rather than as a handler in a kopf worker (``services.passes`` says why).
  A soon pass that a newer body overtook runs again shortly, on the newer body.

The loop starts with the kind's first watch event, not at startup, so that it runs in kopf's context
of object processing: ``kopf.event`` needs the queue that kopf sets there, and the passes' Events go
to it like a handler's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import kopf

from rocketmq_operator.core.resource import GROUP, VERSION
from rocketmq_operator.core.status import Step
from rocketmq_operator.services.activity import Activity
from rocketmq_operator.services.passes import HeldBodies, PeriodicPasses
from rocketmq_operator.wiring import bodies, lean_watch
from rocketmq_operator.wiring.status_patches import StatusPatches

logger = logging.getLogger(__name__)

StepOf = Callable[[kopf.Body, kopf.Patch], Awaitable[Step[Any] | None]]
"""The pass of one CR: its step (``None`` when it has none, e.g. its account cannot be used and the
refusal is already in the patch); it may raise kopf's errors as a handler would."""
MakeStep = Callable[[kopf.Memo, Mapping[str, Any]], StepOf]
"""Builds a kind's step at startup from the memo and the startup's kwargs (kopf's indexes)."""


class Periodic:
    """One kind's periodic passes.

    Args:
        plural: the kind's plural (its status subresource is written).
        prefix: names the loop and the follow handler (``{prefix}-passes``, ``{prefix}-follow``).
        interval: seconds between rounds (the poll interval).
        make_step: the kind's step, built at startup.
        on_gone: what the services forget of a CR gone from the API server.
        soon_concurrency: soon passes at once (``soon``); a kind that asks for none needs one worker.
    """

    def __init__(
        self,
        *,
        plural: str,
        prefix: str,
        interval: float,
        make_step: MakeStep,
        on_gone: Callable[[kopf.Memo, str], None],
        soon_concurrency: int = 1,
    ) -> None:
        self.plural = plural
        self.prefix = prefix
        self.held = HeldBodies()
        self._interval = interval
        self._soon_concurrency = soon_concurrency
        self._make_step = make_step
        self._on_gone = on_gone
        self._passes: PeriodicPasses | None = None
        self._unlisten: Callable[[], None] | None = None
        self._diffbase: kopf.DiffBaseStorage | None = None
        self._due: set[str] = set()  # asked for soon; passed once the held body has a last handled spec

    def register(self, registry: kopf.OperatorRegistry) -> None:
        @kopf.on.event(GROUP, VERSION, self.plural, id=f"{self.prefix}-follow", registry=registry)
        async def follow(event: kopf.RawEvent, uid: str | None, memo: kopf.Memo, **_: Any) -> None:
            await self.follow(event, uid, memo)

    async def follow(self, event: kopf.RawEvent, uid: str | None, memo: kopf.Memo) -> None:
        if not uid:
            return
        raw = event["object"]
        gone = event.get("type") == "DELETED"
        if gone or raw.get("metadata", {}).get("deletionTimestamp"):
            self.held.drop(uid)  # a CR being deleted is its deletion handler's
            self._due.discard(uid)
        else:
            self.held.hold(uid, raw)
        if gone:
            # Gone by whatever path (released here or by another replica, the finalizer removed by
            # hand, ...): what the services kept for it goes too.
            self._on_gone(memo, uid)
        if self._passes is not None:
            await self._passes.start()  # once; see the module's docstring for why from here
            if uid in self._due and self._handled(raw):
                self._due.discard(uid)
                self._passes.soon(uid)

    def soon(self, uid: str) -> None:
        """Pass the CR ``uid`` ahead of the next round, as soon as its held body shows that its create
        handlers have ended: now if it does, else once the event of their last write reaches ``follow``."""
        raw = self.held.get(uid)
        if raw is not None and self._handled(raw) and self._passes is not None:
            self._passes.soon(uid)
        else:
            self._due.add(uid)

    def _handled(self, raw: Mapping[str, Any]) -> bool:
        return self._diffbase is not None and handled(raw, self._diffbase)

    def start(
        self, memo: kopf.Memo, kwargs: Mapping[str, Any], activity: Activity, diffbase: kopf.DiffBaseStorage
    ) -> None:
        """Make the loop (from the startup handler); it runs from the kind's first watch event.
        ``diffbase``: where kopf keeps the last handled spec (``settings.persistence``)."""
        writer = StatusPatches(lambda: memo.get("api_endpoint"), group=GROUP, version=VERSION, plural=self.plural)
        step = self._make_step(memo, kwargs)
        self._diffbase = diffbase

        async def run_one(raw: dict[str, Any]) -> float | None:
            return await pass_one(raw, step, writer, diffbase)

        self._passes = PeriodicPasses(
            self.held,
            run_one,
            interval=self._interval,
            activity=activity,
            soon_concurrency=self._soon_concurrency,
            name=f"{self.prefix}-passes",
        )
        self._unlisten = lean_watch.listen(self.plural, lambda event: self.watched(event, memo))

    def watched(self, event: Any, memo: kopf.Memo) -> None:
        """A watch event as it arrives, ahead of kopf's worker for its CR: a CR gone from the API server
        is forgotten now. That worker may be busy for minutes with a deletion pass that waits for the
        cloud's proof; forgetting ends that wait (``services.confirming``). ``follow`` sees the same
        event later and forgets again, which is harmless."""
        if not isinstance(event, Mapping) or event.get("type") != "DELETED":
            return
        raw = event.get("object")
        uid = raw.get("metadata", {}).get("uid") if isinstance(raw, Mapping) else None
        if uid:
            self.held.drop(uid)
            self._due.discard(uid)
            self._on_gone(memo, uid)

    async def aclose(self) -> None:
        unlisten, self._unlisten = self._unlisten, None
        if unlisten is not None:
            unlisten()
        passes, self._passes = self._passes, None
        if passes is not None:
            await passes.aclose()

    def failure(self) -> str | None:
        return self._passes.failure() if self._passes is not None else None


def handled(raw: Mapping[str, Any], diffbase: kopf.DiffBaseStorage) -> bool:
    """Whether the body records the end of the CR's create handlers (their last handled spec):
    what a pass waits for (``pass_one``), and a soon pass with it."""
    return diffbase.fetch(body=kopf.Body(cast(kopf.RawBody, raw))) is not None


OVERTAKEN_RETRY_SECONDS = 1.0
"""How soon a pass that a newer body overtook asks to run again: time for that body's event to arrive."""


async def pass_one(
    raw: dict[str, Any], step_of: StepOf, writer: StatusPatches, diffbase: kopf.DiffBaseStorage
) -> float | None:
    """One CR's periodic pass: its step, the status written if it changed, then its Events. Returns
    how soon the CR wants its next pass (its step's ``requeue_after``; ``OVERTAKEN_RETRY_SECONDS``
    when the CR changed under it), which a soon pass honours and a round does not.

    None for a CR whose body has no last handled spec yet: its create handler is under way (or its
    end has not reached the held body), and the create marker it writes must be on record before a
    pass sends the create. When the create was a handler's too, such a pass only repeated it: at
    1,000 CRs created at once (``bench/audit.py``), 463 status PATCHes 8 to 17 s after the CRs'
    creation, 210 of them the same status written twice, 253 refused as overtaken.
    """
    if not handled(raw, diffbase):
        return None
    body = kopf.Body(cast(kopf.RawBody, raw))
    patch = kopf.Patch()
    try:
        step = await step_of(body, patch)
    except kopf.PermanentError as exc:
        # The create and update handlers report it on the CR; once per interval here is noise.
        logger.debug("no periodic pass of %s/%s: %s", body.metadata.namespace, body.metadata.name, exc)
        return None
    except kopf.TemporaryError:
        return None  # e.g. waiting for its account (account_handlers.refuse): the next round looks again
    if step is not None:
        bodies.merge(step, patch)
    status = patch.get("status")
    if status:
        metadata = raw.get("metadata", {})
        written = await writer.patch(
            metadata.get("namespace", ""),
            metadata.get("name", ""),
            status,
            resource_version=metadata.get("resourceVersion"),
        )
        if written == "changed":
            return OVERTAKEN_RETRY_SECONDS
        if written != "written":
            return None
    if step is None:
        return None
    bodies.post(step, body)
    return step.requeue_after
