"""Start-up at 10,000 CRs: kopf's index toggles counted, not re-scanned.

Why: an operator with index handlers holds every handler until every object is indexed. kopf does it
with one ``ToggleSet(all)``: the watcher adds a toggle per object, each object's worker drops its own
after indexing and then waits for the whole set. ``ToggleSet`` wakes *every* waiter on each add and
drop (``notify_all``), and every woken waiter re-evaluates ``all(...)`` over the whole set. With N
objects listed at start that is N wake-ups of up to N waiters, each scanning up to N toggles. Measured
(``bench/toggles.py``): 4,000 objects took 29 s of pure CPU, and an operator restarted against 10,000
CRs sent no cloud call in 20 minutes, 69% of its CPU in ``ToggleSet.make_toggle`` -> ``notify_all``.

The fix keeps, per set, the number of its toggles that are off, so ``is_on`` is O(1) for ``all`` and
``any`` (the only functions kopf uses; any other falls back to kopf's scan), and an add or a drop
notifies only when it changes the set's overall state (for ``all``; an ``any`` set, kopf's pause, still
notifies on each, see ``_settled``). A toggle's own ``turn_to`` still notifies
every waiter, as kopf does, since it wakes waiters on that toggle too. The set stays kopf's class (a
subclass replaces ``aiotoggles.ToggleSet``, which kopf looks up at run time), so nothing else changes.
``install`` refuses, at start-up, a kopf minor release other than the one this was written for, and a
``ToggleSet`` or ``Toggle`` that no longer has the attributes and methods used here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from kopf._cogs.aiokits import aiotoggles

from rocketmq_operator.wiring.kopf_guard import KopfGuard, kopf_version

WRITTEN_FOR = "1.45"
"""The kopf minor release whose ``kopf._cogs.aiokits.aiotoggles`` this was checked against; pyproject.toml
pins kopf to it. Move both only after re-reading that module in the new release."""

_MODULE = "kopf._cogs.aiokits.aiotoggles"
_ORIGINAL: type[aiotoggles.ToggleSet] = aiotoggles.ToggleSet  # kopf's own, before install replaces it


class CountedToggle(aiotoggles.Toggle):
    """A toggle made by a :class:`CountedToggleSet`; it tells the set when its state flips."""

    def __init__(self, state: bool, *, name: str | None, condition: asyncio.Condition, owner: CountedToggleSet):
        super().__init__(state, name=name, condition=condition)
        self._owner = owner

    async def turn_to(self, __state: bool) -> None:
        async with self._condition:
            was, self._state = self._state, bool(__state)
            if was != self._state and self in self._owner:
                self._owner._off += 1 if was else -1
            self._condition.notify_all()  # as kopf: waiters on this toggle share the condition


class CountedToggleSet(aiotoggles.ToggleSet):
    """kopf's ``ToggleSet`` with a count of its off toggles, waking waiters only on a change of state."""

    def __init__(self, fn: Callable[[Iterable[bool]], bool]) -> None:
        super().__init__(fn)
        self._off = 0

    def is_on(self) -> bool:
        if self._fn is all:
            return self._off == 0
        if self._fn is any:
            return len(self._toggles) > self._off
        return bool(super().is_on())

    async def make_toggle(self, __val: bool = False, *, name: str | None = None) -> aiotoggles.Toggle:
        toggle = CountedToggle(__val, name=name, condition=self._condition, owner=self)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            self._off += toggle.is_off()
            self._settled(before)
        return toggle

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        await self.drop_toggles([toggle])

    async def drop_toggles(self, toggles: Iterable[aiotoggles.Toggle]) -> None:
        async with self._condition:
            before = self.is_on()
            for toggle in toggles:
                if toggle in self._toggles:
                    self._toggles.discard(toggle)
                    self._off -= toggle.is_off()
            self._settled(before)

    def _settled(self, before: bool) -> None:
        # Only the ``all`` set (index pre-population, one toggle per object) is quiet on adds and
        # drops that change nothing. The ``any`` set is kopf's pause, with a toggle per peering
        # object: ``wiring.peering`` waits on its condition for which toggles exist, not only for
        # its state, and there are a handful of them.
        if self._fn is not all or self.is_on() != before:
            self._condition.notify_all()


def check_kopf() -> None:
    """Raise ``RuntimeError`` unless the installed kopf's toggles are the ones this was written for."""
    guard = KopfGuard(
        kopf_version(), "the counted index toggles (rocketmq_operator.wiring.toggles) cannot be installed"
    )
    guard.release(
        WRITTEN_FOR,
        f"the counted-toggles workaround that replaces {_MODULE}.ToggleSet",
        "rocketmq_operator.wiring.toggles",
    )
    probe: Any = _ORIGINAL(all)
    for attribute in ("_toggles", "_fn", "_condition"):
        if not hasattr(probe, attribute):
            guard.fail(f"{_MODULE}.ToggleSet has no {attribute} any more")
    for method in ("make_toggle", "drop_toggle", "drop_toggles", "wait_for", "is_on"):
        if not callable(getattr(_ORIGINAL, method, None)):
            guard.fail(f"{_MODULE}.ToggleSet.{method} is missing")
    guard.parameters(aiotoggles.Toggle.__init__, f"{_MODULE}.Toggle", {"name", "condition"})
    if not hasattr(aiotoggles.Toggle(False), "_state"):
        guard.fail(f"{_MODULE}.Toggle has no _state any more")


def install() -> None:
    """Replace kopf's ``ToggleSet`` (idempotent); raise ``RuntimeError`` first if kopf is not the one written for."""
    check_kopf()
    aiotoggles.ToggleSet = CountedToggleSet  # type: ignore[misc]
