"""Per-CR memory of the services, and the one place that forgets it when the CR is gone.

Why: several services remember things per CR (its lock, when a stalled request may be retried, the
deletion status last written, fresh shows and 404s of its instance, a deletion being confirmed, a
sweep's outcome). A CR can disappear by paths this process never takes part in: someone removes
the finalizer by hand, the CR was released by another replica, its namespace went while the
operator was down. Whatever the path, the wiring calls ``forget(uid)`` once the API server reports
the CR gone, and every service that registered drops what it kept for it; the process does not
grow with every CR it ever saw.

A step still running for the CR when it goes (a deletion waiting for its proof) would keep what it
learns after the fan-out; ``step`` forgets the CR again when such a step ends.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

from rocketmq_operator.core.resource import RocketMQInstance
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.turns import Turns

Forgetter = Callable[[str, frozenset[str]], None]
"""Called with a gone CR's uid and the instance ids it was seen with."""


FORGOTTEN_KEPT = 10_000
"""How many forgotten uids are kept, to recognise a step that ends after its CR went."""


class ForgottenUids:
    """The uids of the CRs forgotten last (released, or gone from the API server), the oldest dropped
    beyond ``kept``: a deletion pass on a body from before its CR's release must not start over, and a
    uid is never reused, so being forgotten is for good."""

    def __init__(self, kept: int = FORGOTTEN_KEPT) -> None:
        self._kept = kept
        self._uids: OrderedDict[str, None] = OrderedDict()

    def add(self, uid: str) -> None:
        self._uids[uid] = None
        self._uids.move_to_end(uid)
        while len(self._uids) > self._kept:
            self._uids.popitem(last=False)

    def __contains__(self, uid: object) -> bool:
        return uid in self._uids


class CrMemory:
    """Locks per CR, the instance ids each CR was seen with, and the fan-out of ``forget``."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self._turns = Turns()
        self._instances: dict[str, frozenset[str]] = {}
        self._forgetters: list[Forgetter] = []
        self._forgotten = ForgottenUids()

    @contextlib.asynccontextmanager
    async def step(self, cr: RocketMQInstance) -> AsyncIterator[None]:
        """One step for ``cr``: serialised with its other steps (live and deleting alike), and
        forgotten again at its end if the CR went while it ran."""
        uid = cr.metadata.uid
        async with self._turns.take(uid):
            self.note(cr)
            try:
                yield
            finally:
                if uid in self._forgotten:
                    self.forget(uid)

    def note(self, cr: RocketMQInstance) -> None:
        """Remember which instances this CR names, so that forgetting it can reach memory kept by id."""
        status = cr.status
        ids = {status.instance_id, cr.spec.instance_id, *(status.failed_instance_ids or ())}
        known = self._instances.get(cr.metadata.uid, frozenset())
        self._instances[cr.metadata.uid] = known | {i for i in ids if i}
        self._count()

    def on_forget(self, forgetter: Forgetter) -> None:
        self._forgetters.append(forgetter)

    def forget(self, uid: str) -> None:
        """Drop everything kept for the CR ``uid``, in every service that registered. Idempotent."""
        self._turns.drop(uid)
        instance_ids = self._instances.pop(uid, frozenset())
        for forgetter in self._forgetters:
            forgetter(uid, instance_ids)
        self._forgotten.add(uid)
        self._count()

    def forgotten(self, uid: str) -> bool:
        """Whether ``uid`` was forgotten (released, or gone from the API server), as far back as kept."""
        return uid in self._forgotten

    def tracks(self, uid: str) -> bool:
        return uid in self._turns or uid in self._instances

    def _count(self) -> None:
        if self._metrics is not None:
            self._metrics.remembered_crs.set(len(self._instances))
