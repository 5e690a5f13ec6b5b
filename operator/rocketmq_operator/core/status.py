"""What one step writes into a CR's status, and the Events it posts: pure rendering.

Why pure: the services decide *when* to write (after which cloud call), this module decides *what*:
the cloud's view mirrored into status, the conditions rebuilt from a verdict, a deletion record.
Each rule is a row in a table test, without a cloud or a clock.

The patch is a ``RocketMQInstanceStatus`` with only the fields a step sets (``None`` clears one):
built by field name, so a misspelled field is an error, never a camelCase key that silently lands
nowhere; written as a JSON merge patch by ``to_patch``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from rocketmq_operator.core import cloud, conditions
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.mapping import endpoints
from rocketmq_operator.core.resource import (
    CreationStatus,
    DeletionStatus,
    Endpoints,
    RocketMQInstance,
    RocketMQInstanceStatus,
    StatusModel,
)
from rocketmq_operator.core.vocabulary import DeletionResult, DeletionTrigger, EventType, Reason

_FAILED_STATUSES = (cloud.CREATEFAILED, cloud.ERROR, cloud.EXTENDEDFAILED)


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


S = TypeVar("S", bound=StatusModel)


@dataclass
class Step(Generic[S]):
    """What a step wants written and when it wants to run again, for a resource of any kind."""

    status: S
    """The status patch: only the fields set on it are written."""
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    released: bool = False

    def event(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    @property
    def patch(self) -> dict[str, Any]:
        """The status patch as the API server receives it (camelCase; ``null`` clears a field)."""
        return self.status.to_patch()


@dataclass
class StepResult(Step[RocketMQInstanceStatus]):
    """A RocketMQInstance's step."""

    status: RocketMQInstanceStatus = field(default_factory=RocketMQInstanceStatus)

    def sets(self, name: str) -> bool:
        """Whether the patch sets the field ``name`` (snake_case); an unknown name is an error."""
        if name not in RocketMQInstanceStatus.model_fields:
            raise KeyError(f"status has no field {name!r}")
        return name in self.status.model_fields_set


def creation_marker(name: str, *, pending_since: str) -> CreationStatus:
    """The create-pending marker, written before the create call."""
    return CreationStatus(name=name, pending_since=pending_since, attempts=0)


def mirror(cr: RocketMQInstance, view: cloud.InstanceView, result: StepResult) -> None:
    """The instance as the cloud shows it, into the patch; an Event for a change of its cloud status.

    Only for the CR's own instance (the one the patch or the status records): a view of another
    one (an adoption candidate) mirrors nothing.
    """
    status = result.status
    recorded = status.instance_id if result.sets("instance_id") else cr.status.instance_id
    if recorded != view.instance_id:
        return
    status.instance_name = view.name or None
    status.cloud_status = view.status or None
    # Only the endpoints the cloud reports: one it stops reporting is left as it was.
    reported = endpoints(view).to_wire()
    status.endpoints = Endpoints.model_validate(reported) if reported else None
    status.storage_space = view.total_storage_space if view.total_storage_space is not None else view.storage_space
    status.broker_num = view.broker_num
    status.product_id = view.product_id
    previous = cr.status.cloud_status
    # CREATING -> RUNNING is what our create asked for: its Event ("Created") was posted then, and the
    # Ready condition's transition records the moment. Every other change is news to someone.
    expected = previous == cloud.CREATING and view.status == cloud.RUNNING
    if previous is not None and previous != view.status and not expected:
        result.event(
            EventType.WARNING if view.status in _FAILED_STATUSES else EventType.NORMAL,
            f"Cloud{(view.status or 'Unknown').title()}",
            f"instance {view.instance_id}: {previous} -> {view.status}",
        )
    failed = cr.status.failed_instance_ids or []
    if view.status == cloud.CREATEFAILED and view.instance_id not in failed:
        status.failed_instance_ids = [*failed, view.instance_id]


def note_instance_missing(cr: RocketMQInstance, verdict: Verdict, result: StepResult) -> None:
    """A cloud-side transition like any other, though no status was seen: one Warning, on the way in."""
    if verdict.reason == Reason.INSTANCE_MISSING and conditions.ready_reason(cr.status.conditions) != verdict.reason:
        result.event(EventType.WARNING, Reason.INSTANCE_MISSING, verdict.message)


def throttled(verdict: Verdict, note: str | None) -> Verdict:
    """While the cloud throttles the account, work still under way says so (reason Throttled).

    The client absorbs most 429s (one wait, then a slower pace for the whole account), so a CR
    whose create or delete is merely slowed would otherwise never show why it takes so long.
    """
    if note is None or verdict.ready or verdict.stalled or not verdict.reconciling:
        return verdict
    return replace(verdict, reason=Reason.THROTTLED, message=f"{verdict.message}; slowed down: {note}")


def set_conditions(cr: RocketMQInstance, verdict: Verdict, result: StepResult, *, now: str) -> None:
    """The three conditions from ``verdict``, written only when they say something new.

    ``observedGeneration`` too: health checks (kstatus, Flux) compare it with
    ``metadata.generation``, while deleting as well.
    """
    generation = cr.metadata.generation or None
    merged = conditions.merge(cr.status.conditions, verdict.conditions(generation=generation, now=now))
    if not conditions.same(cr.status.conditions, merged):
        result.status.conditions = merged
    if cr.status.observed_generation != generation:
        result.status.observed_generation = generation


def deletion_record(
    *,
    instance_id: str,
    batch_id: str,
    batch_size: int,
    submitted_at: str,
    result: DeletionResult,
    message: str,
    attempts: int,
    force_delete: bool,
    trigger: DeletionTrigger,
) -> DeletionStatus:
    """``status.deletion`` for a request the batcher sent; every field set, so none lingers from the last."""
    return DeletionStatus(
        instance_id=instance_id,
        batch_id=batch_id,
        batch_size=batch_size,
        submitted_at=submitted_at,
        result=result,
        attempts=attempts,
        last_error=None if result == DeletionResult.ACCEPTED else message,
        force_delete=force_delete,
        trigger=trigger,
    )


def amended_deletion(cr: RocketMQInstance, **changes: Any) -> DeletionStatus:
    """The CR's ``status.deletion`` with ``changes``; what it recorded before is kept."""
    previous = cr.status.deletion
    kept = {name: value for name, value in previous if value is not None} if previous is not None else {}
    return DeletionStatus(**{**kept, **changes})


def without_noop(cr: RocketMQInstance, patch: RocketMQInstanceStatus) -> RocketMQInstanceStatus:
    """The patch without the fields whose value the CR already has, so a quiet pass writes nothing."""
    current = cr.status.to_wire()
    wire = patch.to_patch()
    kept = RocketMQInstanceStatus()
    for name in patch.model_fields_set:
        alias = RocketMQInstanceStatus.model_fields[name].alias or name
        if current.get(alias) != wire[alias]:
            setattr(kept, name, getattr(patch, name))
    return kept
