"""Whether this replica is the one that works: the background loops call the cloud only while it is.

Why: with two replicas, Kopf peering pauses all but one, so a standby handles no CR. But the
observer, the deletion confirmer and the sweeper are our own loops, not Kopf handlers: left alone,
a standby would walk the instance list every poll interval, and sweep, on the same account as the
replica that works. That doubles the list calls against the account's rate limit for nothing, and
two sweepers would both submit the same failed instances. So each loop waits here before every
round of calls; the wiring follows Kopf's pause and sets this.

What a loop has already started when the replica pauses (one list walk, one round of looks) is
finished, not cut: a pause is never a reason to leave a half-read list behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Activity:
    """Active or paused; loops ``await wait_active()`` before each round of cloud calls.

    Args:
        active: the state at start: ``True`` for a replica that runs alone, ``False`` for one that
            must wait until peering elects it.
        on_change: called with the new state on every change (the metrics gauge).
    """

    def __init__(self, *, active: bool = True, on_change: Callable[[bool], None] | None = None) -> None:
        self._active = asyncio.Event()
        if active:
            self._active.set()
        self._listeners: list[Callable[[bool], None]] = []
        if on_change is not None:
            self.watch(on_change)

    @property
    def active(self) -> bool:
        return self._active.is_set()

    def set(self, active: bool, *, why: str) -> None:
        """Change the state (no-op if unchanged); the change is logged with ``why``."""
        if active == self.active:
            return
        if active:
            self._active.set()
            logger.info("active: %s; listing, confirming and sweeping resume", why)
        else:
            self._active.clear()
            logger.info("paused: %s; no list, confirmation or sweep calls until this replica works again", why)
        for listener in list(self._listeners):
            listener(active)

    def watch(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener`` with the state now and on every change (each account's metrics gauge:
        the accounts share one activity, as they share one peering state)."""
        self._listeners.append(listener)
        listener(self.active)

    def unwatch(self, listener: Callable[[bool], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def wait_active(self) -> None:
        await self._active.wait()
