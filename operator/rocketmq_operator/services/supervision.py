"""The endless background task of a service, watched so that its death does not go unnoticed.

Why: the observer, the deletion confirmer and the sweeper each run one loop for the life of the
process. Each loop catches what it expects, but one that dies anyway (a bug lets an exception
escape, or something cancels it) leaves a process that looks healthy and never lists, confirms or
sweeps again: CRs trust an ever older snapshot and finalizers are never released. So a death is
logged when it happens and reported by ``failure()`` for as long as the process lives; the
liveness probe fails on it and Kubernetes restarts the pod, which starts every loop afresh. A loop
stopped on purpose (``aclose``) is not a death.

``SupervisedService`` is what those services have in common: one such loop behind ``start``,
``aclose`` and ``failure``, so that the runtime starts, stops and probes each of them alike.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class BackgroundLoop:
    """One named task running ``run()``; started once, stopped by ``aclose``, reported if it ends otherwise."""

    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
            self._task.add_done_callback(self._ended)

    async def aclose(self) -> None:
        # Forgotten before it is cancelled: this cancellation is the one that is not a death.
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    @property
    def running(self) -> bool:
        task = self._task
        return task is not None and not task.done()

    def failure(self) -> str | None:
        """Why the loop is not running although nobody stopped it; ``None`` while it runs (or was stopped)."""
        task = self._task
        if task is None or not task.done():
            return None
        if task.cancelled():
            return f"{self.name} was cancelled"
        error = task.exception()
        if error is not None:
            return f"{self.name} died: {type(error).__name__}: {error}"
        return f"{self.name} ended"

    def _ended(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()  # retrieved even when stopped on purpose
        if task is not self._task:
            return
        logger.error("background loop %s; the liveness probe fails from now on", self.failure(), exc_info=error)


class SupervisedService(abc.ABC):
    """A service whose work is one ``BackgroundLoop`` running ``_run``, named ``loop_name``."""

    def __init__(self, loop_name: str) -> None:
        self._background = BackgroundLoop(loop_name, self._run)

    async def start(self) -> None:
        self._background.start()

    async def aclose(self) -> None:
        await self._background.aclose()

    @property
    def running(self) -> bool:
        return self._background.running

    def failure(self) -> str | None:
        """Why the background loop is dead, if it is; ``None`` while it runs, and once stopped on purpose."""
        return self._background.failure()

    @abc.abstractmethod
    async def _run(self) -> None:
        """The endless loop. It catches what it expects: whatever escapes it is a death."""
