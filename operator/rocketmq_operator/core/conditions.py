"""Status conditions in the KEP-1623 shape, built fresh on every pass.

Why rebuild (as ACK does): the conditions describe what this pass observed and decided, so a
stale "Reconciling" cannot linger. ``merge`` keeps ``lastTransitionTime`` when a condition's
status did not change, so time stamps still mean "since when".

The three types are the ones kstatus, Flux and Argo CD read without custom code:
- ``Ready``: True when the instance is RUNNING and matches the spec;
- ``Reconciling``: True while the operator or the cloud is still working toward the spec;
- ``Stalled``: True when progress needs a person (terminal errors, failed creation, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rocketmq_operator.core.resource import Condition, ConditionStatus
from rocketmq_operator.core.vocabulary import ConditionType


@dataclass(frozen=True)
class Verdict:
    """What one pass concluded, in the terms of the three conditions."""

    ready: bool
    reason: str
    message: str
    reconciling: bool = False
    stalled: bool = False

    def conditions(self, *, generation: int | None, now: str) -> list[Condition]:
        def cond(kind: ConditionType, status: bool) -> Condition:
            value: ConditionStatus = "True" if status else "False"
            condition = Condition(
                type=kind, status=value, reason=self.reason, message=self.message, last_transition_time=now
            )
            if generation is not None:
                # Set only when known: a status patch writes set fields, and a null one is noise.
                condition.observed_generation = generation
            return condition

        return [
            cond(ConditionType.READY, self.ready),
            cond(ConditionType.RECONCILING, self.reconciling),
            cond(ConditionType.STALLED, self.stalled),
        ]


def merge(previous: Iterable[Condition] | None, fresh: Sequence[Condition]) -> list[Condition]:
    """``fresh`` conditions, keeping the previous transition time where the status is unchanged."""
    before = {c.type: c for c in previous or ()}
    merged = []
    for condition in fresh:
        old = before.get(condition.type)
        if old is not None and old.status == condition.status:
            condition = condition.model_copy(update={"last_transition_time": old.last_transition_time})
        merged.append(condition)
    # Conditions of other types (set by someone else) are kept as they are.
    fresh_types = {c.type for c in fresh}
    merged.extend(c for c in (previous or ()) if c.type not in fresh_types)
    return merged


def find(conditions: Iterable[Condition] | None, kind: ConditionType) -> Condition | None:
    return next((c for c in conditions or () if c.type == kind), None)


def ready_reason(conditions: Iterable[Condition] | None) -> str | None:
    """The reason of the Ready condition, if there is one."""
    ready = find(conditions, ConditionType.READY)
    return ready.reason if ready is not None else None


def same(a: Iterable[Condition] | None, b: Iterable[Condition] | None) -> bool:
    """Equal apart from transition times (so a pass that changes nothing writes nothing)."""

    def key(conditions: Iterable[Condition] | None) -> list[tuple[str, str, str, str, int | None]]:
        return sorted((c.type, c.status, c.reason, c.message, c.observed_generation) for c in conditions or ())

    return key(a) == key(b)
