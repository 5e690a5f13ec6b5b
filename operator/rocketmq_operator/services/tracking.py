"""Per-CR memory of the services, and the one place that forgets it when the CR is gone.

Why: several services remember things per CR (its lock, when a stalled request may be retried, the
deletion status last written, fresh shows and 404s of its instance, a deletion being confirmed, a
sweep's outcome). A CR can disappear by paths this process never takes part in: someone removes
the finalizer by hand, the CR was released by another replica, its namespace went while the
operator was down. Whatever the path, the wiring calls ``forget(uid)`` once the API server reports
the CR gone, and every service that registered drops what it kept for it; the process does not
grow with every CR it ever saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rocketmq_operator.core.resource import RocketMQInstance

Forgetter = Callable[[str, frozenset[str]], None]
"""Called with a gone CR's uid and the instance ids it was seen with."""


class CrMemory:
    """Locks per CR, the instance ids each CR was seen with, and the fan-out of ``forget``."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._instances: dict[str, frozenset[str]] = {}
        self._forgetters: list[Forgetter] = []

    def lock(self, uid: str) -> asyncio.Lock:
        """The lock that serialises this process's steps for one CR (live and deleting alike)."""
        return self._locks.setdefault(uid, asyncio.Lock())

    def note(self, cr: RocketMQInstance) -> None:
        """Remember which instances this CR names, so that forgetting it can reach memory kept by id."""
        status = cr.status
        ids = {status.instance_id, cr.spec.instance_id, *(status.failed_instance_ids or ())}
        known = self._instances.get(cr.metadata.uid, frozenset())
        self._instances[cr.metadata.uid] = known | {i for i in ids if i}

    def on_forget(self, forgetter: Forgetter) -> None:
        self._forgetters.append(forgetter)

    def forget(self, uid: str) -> None:
        """Drop everything kept for the CR ``uid``, in every service that registered. Idempotent."""
        self._locks.pop(uid, None)
        instance_ids = self._instances.pop(uid, frozenset())
        for forgetter in self._forgetters:
            forgetter(uid, instance_ids)

    def tracks(self, uid: str) -> bool:
        return uid in self._locks or uid in self._instances
