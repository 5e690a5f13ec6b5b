"""Follow Kopf's peering pause, so that a standby replica makes no cloud call of its own.

Why: with peering, Kopf pauses every replica but the one of highest priority: it stops their
watches, handlers, daemons and timers. Our observer, deletion confirmer and sweeper are not Kopf
handlers, so they would go on calling the cloud from every standby (``services.activity``).
They must stop exactly when Kopf pauses and start exactly when it resumes.

Kopf has no public signal for that. Its daemons are stopped on a pause, but a daemon lives on one
object, and Kopf puts its finalizer on that object: ours, on Kopf's own peering object. So this
module reads the pause where Kopf keeps it: ``kopf._core.reactor.orchestration.adjust_tasks``
gets the ``Ensemble`` that holds the pause toggles (``operator_paused``, one toggle per peering
object in ``conflicts_found``, each on while a peer of higher priority lives; all notify one
``asyncio.Condition``, ``ToggleSet._condition``, on every change). A wrapper hands
that ensemble to the ``Follower`` of the operator that runs it (found through a context variable,
so nothing is global), once Kopf has listed namespaces and resources (before that, a decision is
made on half the picture).

The replica works while no toggle is on and at least one peering toggle exists. That second
condition is ours: a replica that serves listed namespaces of which none exists yet has no peering
object at all, and Kopf then pauses nothing (it has nothing to serve), but two such replicas
would both list and sweep. Until Kopf has decided, a replica with peering waits.

kopf's private modules promise nothing between releases, so ``install`` refuses, at start-up, a
kopf minor release other than the one this was written for, and one whose internals used here are
missing or take other arguments (the pattern of ``wiring.namespaces``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from kopf._cogs.aiokits import aiotoggles
from kopf._core.reactor import orchestration

from rocketmq_operator.services.activity import Activity
from rocketmq_operator.services.supervision import BackgroundLoop
from rocketmq_operator.wiring.kopf_guard import KopfGuard, kopf_version

logger = logging.getLogger(__name__)

WRITTEN_FOR = "1.45"
"""The kopf minor release whose ``kopf._core.reactor.orchestration`` this was checked against;
pyproject.toml pins kopf to it. Move both only after re-reading that module in the new release."""

_MODULE = "kopf._core.reactor.orchestration"
_MARK = "_rocketmq_follows_the_peering_pause"
_ADJUST_ARGUMENTS = frozenset({"processor", "insights", "settings", "identity", "ensemble"})
_ENSEMBLE_FIELDS = frozenset({"operator_paused", "conflicts_found"})

_current: contextvars.ContextVar[Follower | None] = contextvars.ContextVar("rocketmq_peering_follower", default=None)


class Follower:
    """Turns one operator's ``Activity`` on and off as Kopf's peering pauses and resumes it."""

    def __init__(self) -> None:
        self._ensemble: asyncio.Future[Any] | None = None
        self._activity: Activity | None = None
        self._background = BackgroundLoop("peering-follower", self._run)

    @contextlib.contextmanager
    def bound(self) -> Iterator[None]:
        """Within: this is the follower of the operator started here (``kopf.operator``)."""
        token = _current.set(self)
        try:
            yield
        finally:
            _current.reset(token)

    def start(self, activity: Activity) -> None:
        self._activity = activity
        if not activity.active:
            logger.info(
                "waiting for Kopf peering to elect this replica; no list, confirmation or sweep call until then"
            )
        self._background.start()

    async def aclose(self) -> None:
        await self._background.aclose()

    def failure(self) -> str | None:
        """Why the loop is dead, if it is: then the replica may be paused or working for ever."""
        return self._background.failure()

    def _decided(self, ensemble: Any) -> None:
        if self._ensemble is None:
            self._ensemble = asyncio.get_running_loop().create_future()
        if not self._ensemble.done():
            self._ensemble.set_result(ensemble)

    async def _run(self) -> None:
        assert self._activity is not None
        activity = self._activity
        if self._ensemble is None:
            self._ensemble = asyncio.get_running_loop().create_future()
        ensemble = await self._ensemble
        paused = ensemble.operator_paused
        # Every toggle of the set shares this condition; Kopf notifies it on every turn, and when a
        # toggle is made or dropped. Waiting for a state (not for a turn) misses no short flip.
        changed = paused._condition

        def works() -> bool:
            return bool(paused.is_off() and ensemble.conflicts_found)

        while True:
            async with changed:
                await changed.wait_for(lambda: works() != activity.active)
                now = works()
                on = sorted(str(toggle.name) for toggle in paused if toggle.is_on())
            if now:
                activity.set(True, why="Kopf peering elected this replica")
            elif on:
                activity.set(False, why=f"Kopf peering paused this replica ({', '.join(on)})")
            else:
                activity.set(False, why="Kopf peering has no peering object to elect this replica by")


def _wrap(original: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(original)
    async def adjust_tasks(*, insights: Any, ensemble: Any, **kwargs: Any) -> None:
        # Kopf's picture is complete once both initial listings are in; an adjustment started
        # after that has made every peering toggle there is to make.
        complete = insights.ready_namespaces.is_set() and insights.ready_resources.is_set()
        await original(insights=insights, ensemble=ensemble, **kwargs)
        follower = _current.get()
        if complete and follower is not None:
            follower._decided(ensemble)

    setattr(adjust_tasks, _MARK, True)
    return adjust_tasks


def check_kopf() -> None:
    """Raise ``RuntimeError`` unless the installed kopf is the one this was written for."""
    guard = KopfGuard(
        kopf_version(), "a standby replica cannot follow the peering pause (rocketmq_operator.wiring.peering)"
    )
    guard.release(
        WRITTEN_FOR,
        f"following the peering pause (which wraps {_MODULE}.adjust_tasks)",
        "rocketmq_operator.wiring.peering",
    )
    adjust = getattr(orchestration, "adjust_tasks", None)
    ensemble = getattr(orchestration, "Ensemble", None)
    if adjust is None or ensemble is None:
        guard.fail(f"{_MODULE}.{'adjust_tasks' if adjust is None else 'Ensemble'} is missing")
    guard.parameters(adjust, f"{_MODULE}.adjust_tasks", _ADJUST_ARGUMENTS)
    if not isinstance(getattr(aiotoggles.ToggleSet(any), "_condition", None), asyncio.Condition):
        guard.fail("kopf._cogs.aiokits.aiotoggles.ToggleSet keeps no _condition any more")
    fields = {f.name for f in dataclasses.fields(ensemble)} if dataclasses.is_dataclass(ensemble) else set()
    missing_fields = _ENSEMBLE_FIELDS - fields
    if missing_fields:
        guard.fail(f"{_MODULE}.Ensemble has no {', '.join(sorted(missing_fields))} any more")


def install() -> None:
    """Wrap kopf once (idempotent); raise ``RuntimeError`` first if kopf is not what this was written for."""
    check_kopf()
    adjust: Any = orchestration.adjust_tasks
    if not getattr(adjust, _MARK, False):
        orchestration.adjust_tasks = _wrap(adjust)  # type: ignore[assignment]
