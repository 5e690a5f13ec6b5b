"""Fault injection: the ways a real cloud misbehaves, switched on and off at runtime by tests.

A client is only as good as its handling of a slow, flaky or half-broken server, and a real cloud
cannot be made to fail on demand. Each fault kind can be scoped to operations ("create", "list", ...)
and fire on the next N matching calls, on a random share of them, or both (the count first). The
plan is replaced as a whole by ``PUT /_sim/faults`` so a test always knows exactly what is active.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

OPERATIONS: Final = (
    "create",
    "show",
    "list",
    "batch_action",
    "update",
    "delete",
    "resize",
    "restart",
    "tags",
    "recycle",
    "tasks",
    "quotas",
    "topic_create",
    "topic_list",
    "topic_show",
    "topic_update",
    "topic_delete",
    "topic_batch_delete",
    "group_create",
    "group_list",
    "group_show",
    "group_update",
    "group_batch_update",
    "group_delete",
    "group_batch_delete",
    "user_create",
    "user_list",
    "user_show",
    "user_update",
    "user_delete",
)
"""Every operation name the gateway assigns; fault scopes and the call log use these."""

DropPhase = Literal["before", "after"]
DeleteFailStatus = Literal["ERROR", "RUNNING"]
DELETE_FAIL_STATUSES: Final = ("ERROR", "RUNNING")


@dataclass
class FaultPlan:
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    latency_operations: list[str] | None = None
    error_status: int = 500
    error_code: str | None = None
    """Extension: the ``error_code`` of injected errors (default ``DMS.00<status>000``)."""
    error_rate: float = 0.0
    error_next: int = 0
    error_operations: list[str] | None = None
    drop_rate: float = 0.0
    drop_next: int = 0
    drop_operations: list[str] | None = None
    drop_phase: DropPhase = "before"
    """Extension: ``before`` drops without doing anything; ``after`` does the operation, then drops
    (the client cannot tell whether the cloud acted)."""
    malformed_rate: float = 0.0
    malformed_next: int = 0
    malformed_operations: list[str] | None = None
    failed_ids: list[str] = field(default_factory=list)
    hold_create_seconds: float = 0.0
    delete_fail_ids: list[str] = field(default_factory=list)
    """The next accepted deletion of each of these ids fails when its DELETING time is up. Accepting
    it removes the id from here, so a resubmission succeeds."""
    delete_fail_next: int = 0
    """The next N accepted deletions (of any id) fail the same way."""
    delete_fail_status: DeleteFailStatus = "ERROR"
    """What a failed deletion leaves the instance in."""
    topic_delete_fail_names: list[str] = field(default_factory=list)
    """A topic batch delete naming one of these is accepted, but that topic stays and the job ends
    FAILED; accepting it removes the name from here (one-shot, like ``delete_fail_ids``)."""
    group_delete_fail_names: list[str] = field(default_factory=list)
    """The same for consumer group batch deletes."""

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultPlan:
        unknown = sorted(set(data) - set(cls.keys()))
        if unknown:
            raise ValueError(f"unknown fault key(s): {', '.join(unknown)}; known: {', '.join(cls.keys())}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key.endswith("_operations"):
                values[key] = _operations(key, value)
            elif key.endswith("_rate"):
                values[key] = _share(key, value)
            elif key.endswith("_next"):
                values[key] = _count(key, value)
            elif key in ("latency_ms", "latency_jitter_ms", "hold_create_seconds"):
                values[key] = _non_negative(key, value)
            elif key == "error_status":
                if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
                    raise ValueError(f"error_status must be an HTTP error status (400-599), got {value!r}")
                values[key] = value
            elif key == "error_code":
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"error_code must be a string or null, got {value!r}")
                values[key] = value
            elif key == "drop_phase":
                if value not in ("before", "after"):
                    raise ValueError(f"drop_phase must be 'before' or 'after', got {value!r}")
                values[key] = value
            elif key == "delete_fail_status":
                if value not in DELETE_FAIL_STATUSES:
                    choices = " or ".join(repr(status) for status in DELETE_FAIL_STATUSES)
                    raise ValueError(f"delete_fail_status must be {choices}, got {value!r}")
                values[key] = value
            elif key in ("failed_ids", "delete_fail_ids", "topic_delete_fail_names", "group_delete_fail_names"):
                if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                    raise ValueError(f"{key} must be a list of strings, got {value!r}")
                values[key] = list(value)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _operations(key: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key} must be a list of operation names or null, got {value!r}")
    unknown = sorted(set(value) - set(OPERATIONS))
    if unknown:
        raise ValueError(f"{key}: unknown operation(s) {', '.join(unknown)}; known: {', '.join(OPERATIONS)}")
    return list(value)


def _share(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{key} must be a number between 0 and 1, got {value!r}")
    return float(value)


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be an integer >= 0, got {value!r}")
    return value


def _non_negative(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{key} must be a number >= 0, got {value!r}")
    return float(value)


def _applies(operations: list[str] | None, operation: str) -> bool:
    return operations is None or operation in operations


class Faults:
    """The active plan plus the decisions it implies; ``take_*`` consumes "next N" counters."""

    def __init__(self, rng: random.Random) -> None:
        self.plan = FaultPlan()
        self._rng = rng

    def replace(self, plan: FaultPlan) -> None:
        self.plan = plan

    def clear(self) -> None:
        self.plan = FaultPlan()

    def latency_seconds(self, operation: str) -> float:
        plan = self.plan
        if not _applies(plan.latency_operations, operation) or plan.latency_ms <= 0:
            return 0.0
        jitter = self._rng.uniform(0, plan.latency_jitter_ms) if plan.latency_jitter_ms > 0 else 0.0
        return (plan.latency_ms + jitter) / 1000.0

    def take_drop(self, operation: str, phase: DropPhase) -> bool:
        plan = self.plan
        if plan.drop_phase != phase or not _applies(plan.drop_operations, operation):
            return False
        if plan.drop_next > 0:
            plan.drop_next -= 1
            return True
        return plan.drop_rate > 0 and self._rng.random() < plan.drop_rate

    def take_error(self, operation: str) -> tuple[int, str] | None:
        """The (status, error_code) of an injected error for this call, or ``None``."""
        plan = self.plan
        if not _applies(plan.error_operations, operation):
            return None
        fire = False
        if plan.error_next > 0:
            plan.error_next -= 1
            fire = True
        elif plan.error_rate > 0 and self._rng.random() < plan.error_rate:
            fire = True
        if not fire:
            return None
        return plan.error_status, plan.error_code or f"DMS.00{plan.error_status}000"

    def take_malformed(self, operation: str) -> bool:
        plan = self.plan
        if not _applies(plan.malformed_operations, operation):
            return False
        if plan.malformed_next > 0:
            plan.malformed_next -= 1
            return True
        return plan.malformed_rate > 0 and self._rng.random() < plan.malformed_rate

    def is_failed_id(self, instance_id: str) -> bool:
        return instance_id in self.plan.failed_ids

    def take_delete_failure(self, instance_id: str) -> str | None:
        """For a deletion being accepted now: the status it will fail into, or ``None`` (it succeeds).

        Decided (and the fault consumed) at acceptance, so a plan changed while the instance is
        DELETING cannot touch a deletion already under way, and one fault fails exactly one deletion.
        """
        plan = self.plan
        if instance_id in plan.delete_fail_ids:
            plan.delete_fail_ids.remove(instance_id)
            return plan.delete_fail_status
        if plan.delete_fail_next > 0:
            plan.delete_fail_next -= 1
            return plan.delete_fail_status
        return None

    def take_topic_delete_failure(self, name: str) -> bool:
        """For a topic whose batch deletion is being accepted: does it fail? Spends the fault."""
        return _take_name(self.plan.topic_delete_fail_names, name)

    def take_group_delete_failure(self, name: str) -> bool:
        return _take_name(self.plan.group_delete_fail_names, name)

    def hold_seconds(self, operation: str) -> float:
        return self.plan.hold_create_seconds if operation == "create" else 0.0


def _take_name(names: list[str], name: str) -> bool:
    if name in names:
        names.remove(name)
        return True
    return False
