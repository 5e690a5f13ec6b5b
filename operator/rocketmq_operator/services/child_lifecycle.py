"""The life of a child CR, the same for every child kind: topics and groups (``services.children``)
and ACL users (``services.users``).

Why one module: these rules decide what the operator may create, adopt or leave behind, so a kind
that copied them could drift from the others. A kind brings only what differs: its ``Kind`` (noun,
listed kind, what to suggest when a name is someone else's) and two callbacks, what to do with an
object that is there (update it, mirror it) and how to create one.

Live CRs (``ChildLifecycle.live``, once the kind found the parent ready): decided from one shared
walk of the instance's list (``ChildObserver``), never a show per object. A name that exists in the
cloud but is not this CR's is adopted only with ``spec.adopt``. Before the first create a marker
goes into status, so a name that appears after a crash between the create call and the status write
is recognised as ours and not refused as someone else's. An object of ours that disappears is
created again, with a Warning Event.

Deleting CRs (``ChildLifecycle.settle``): ``Orphan`` releases at once, so does a CR that never had
an object. A child of an instance that is being deleted with policy Delete makes no call: it is
released once that instance is proven gone (its CR released, and the instance observer's consistent
list no longer shows it). Anything else is the kind's to delete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rocketmq_operator.core import cloud, conditions, decisions
from rocketmq_operator.core.child_mapping import Parent
from rocketmq_operator.core.child_resource import (
    ChildCreationStatus,
    ChildDeletionStatus,
    ChildStatus,
    RocketMQConsumerGroup,
    RocketMQTopic,
)
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.resource import DeletionPolicy
from rocketmq_operator.core.status import Step
from rocketmq_operator.core.user_resource import RocketMQUser
from rocketmq_operator.core.vocabulary import DeletionResult, EventType, Presence, Reason
from rocketmq_operator.ports import errors
from rocketmq_operator.ports.protocol import ListedKind
from rocketmq_operator.services.child_observing import ChildObserver, ChildView
from rocketmq_operator.services.observing import Observation

AnyChildCR = RocketMQTopic | RocketMQConsumerGroup | RocketMQUser

ChildStep = Step[ChildStatus]
"""What one step of a child CR wants written, posted, and when it wants to run again."""

Present = Callable[[ChildView, bool], Awaitable[Verdict]]
"""What a kind does with its object once it is known to be this CR's: update it or mirror it. The flag
says it was taken just now (adopted, or found after a create whose answer was lost)."""

Create = Callable[[], Awaitable[Verdict | None]]
"""Creates the object (raising the cloud's errors), or says why it cannot be asked yet (a Verdict)."""


@dataclass(frozen=True)
class Timing:
    poll_interval: float
    verify_interval: float


@dataclass(frozen=True)
class Kind:
    """What the shared messages and lists need to know of a kind."""

    noun: str
    listed: ListedKind
    taken_hint: str
    """Appended to the refusal of a name that is someone else's, after "set spec.adopt: true to manage it"."""


class ChildLifecycle:
    def __init__(
        self,
        *,
        observer: ChildObserver,
        instances: Callable[[str], Observation],
        timing: Timing,
        clock: Callable[[], float],
    ) -> None:
        """``instances``: the instance observer's lookup (no I/O), for a parent's absence."""
        self._observer = observer
        self._instances = instances
        self._timing = timing
        self._clock = clock

    # ------------------------------------------------------------------ live CRs

    async def live(
        self,
        cr: AnyChildCR,
        kind: Kind,
        instance_id: str,
        step: ChildStep,
        *,
        present: Present,
        create: Create,
    ) -> Verdict:
        """The CR's object in the instance (its parent RUNNING): adopted, refused, created or handed to
        ``present``."""
        noun = kind.noun
        moved = cr.status.instance_id is not None and cr.status.instance_id != instance_id
        if cr.status.instance_id != instance_id:
            step.status.instance_id = instance_id
        owned = bool(cr.status.owned) and not moved
        name = cr.cloud_name
        if cr.status.cloud_name != name:
            step.status.cloud_name = name
        try:
            listed = await self._observer.view(
                instance_id, kind.listed, newer_than=self._clock() - self._timing.poll_interval, about=name
            )
        except errors.CloudError as exc:
            return from_error(exc, step, f"listing the {noun}s of instance {instance_id}")
        view = listed.lookup(name)
        if view is not None:
            return await self._present(cr, kind, instance_id, view, owned, step, present)
        if not listed.absent(name):
            step.requeue_after = self._timing.verify_interval
            return waiting(Reason.OBSERVING, f"the {noun} list of instance {instance_id} changed while read")
        if owned:
            step.event(
                EventType.WARNING,
                Reason.RECREATED_AFTER_DRIFT,
                f"{noun} {name} was deleted from instance {instance_id} outside the operator; creating it again",
            )
        elif cr.status.creation is None or moved:
            # The marker first, in its own write: a create that lands before a crash is then ours.
            step.status.creation = ChildCreationStatus(pending_since=decisions.isoformat(self._clock(), precise=True))
            step.status.owned = False
            step.requeue_after = 0.0
            return waiting(Reason.CREATING, f"creating {noun} {name} in instance {instance_id}")
        return await self._create(cr, kind, instance_id, step, create)

    async def _present(
        self,
        cr: AnyChildCR,
        kind: Kind,
        instance_id: str,
        view: ChildView,
        owned: bool,
        step: ChildStep,
        present: Present,
    ) -> Verdict:
        noun, name = kind.noun, cr.cloud_name
        if not owned:
            if cr.status.creation is not None:
                # Our create landed, though its answer did not reach the status (a crash, a timeout).
                step.status.owned = True
            elif cr.spec.adopt:
                step.status.owned = True
                step.status.adopted = True
                step.event(
                    EventType.NORMAL, Reason.ADOPTED, f"adopted the existing {noun} {name} of instance {instance_id}"
                )
            else:
                return Verdict(
                    ready=False,
                    reason=Reason.ALREADY_EXISTS,
                    message=f"a {noun} named {name} already exists in instance {instance_id} and is not this "
                    f"resource's; set spec.adopt: true to manage it{kind.taken_hint}",
                    stalled=True,
                )
        if cr.status.creation is not None:
            step.status.creation = None
        return await present(view, not owned)

    async def _create(self, cr: AnyChildCR, kind: Kind, instance_id: str, step: ChildStep, create: Create) -> Verdict:
        noun, name = kind.noun, cr.cloud_name
        try:
            refused = await create()
        except errors.NameConflict:
            # Listed absent a moment ago: created since, by our own earlier attempt or by someone else.
            self._observer.changed(instance_id, kind.listed, name)
            step.requeue_after = self._timing.verify_interval
            return waiting(Reason.OBSERVING, f"{noun} {name} appeared in instance {instance_id}; looking again")
        except errors.CloudError as exc:
            return from_error(exc, step, f"creating {noun} {name}")
        if refused is not None:
            return refused
        self._observer.changed(instance_id, kind.listed, name)
        step.status.owned = True
        step.status.creation = None
        step.event(EventType.NORMAL, Reason.CREATED, f"created {noun} {name} in instance {instance_id}")
        return Verdict(ready=True, reason=Reason.CREATED, message=f"created {noun} {name} in instance {instance_id}")

    # ------------------------------------------------------------------ CRs being deleted

    def settle(self, cr: AnyChildCR, noun: str, parent: Parent | None, step: ChildStep) -> Verdict | None:
        """What a deleting CR comes to without a call of its own (released, or waiting for its instance),
        or None: the kind deletes the object from ``cr.status.instance_id`` (then set)."""
        name = cr.cloud_name
        instance_id = cr.status.instance_id
        if cr.spec.deletion_policy == DeletionPolicy.ORPHAN:
            return release(step, Reason.ORPHANED, f"{noun} {name} left in the cloud (deletionPolicy Orphan)")
        if instance_id is None or not (cr.status.owned or cr.status.creation is not None):
            return release(step, Reason.NOTHING_TO_DELETE, f"no {noun} of this resource exists in the cloud")
        step.requeue_after = self._timing.verify_interval
        if parent is not None and parent.instance_id == instance_id and parent.deleting and parent.deletes_instance:
            previous = cr.status.deletion
            if previous is None or previous.result != DeletionResult.WITH_INSTANCE:
                step.status.deletion = ChildDeletionStatus(instance_id=instance_id, result=DeletionResult.WITH_INSTANCE)
            return waiting(
                Reason.DELETING_WITH_INSTANCE,
                f"instance {instance_id} is being deleted ({parent.ref}) and takes {name} with it",
            )
        if parent is None or parent.instance_id != instance_id:
            # The instance CR is gone (or holds another instance): is the instance itself still there?
            seen = self._instances(instance_id)
            if seen.state == Presence.ABSENT:
                return release(
                    step, Reason.DELETED_WITH_INSTANCE, f"instance {instance_id} is gone, and {name} with it"
                )
            if seen.state == Presence.UNKNOWN:
                return waiting(Reason.DELETING, f"waiting to learn whether instance {instance_id} still exists")
        return None

    # ------------------------------------------------------------------ common

    def finish(self, cr: AnyChildCR, verdict: Verdict, step: ChildStep) -> None:
        """The verdict into the conditions, and the generation it answers; only what changed is written."""
        generation = cr.metadata.generation or None
        now = decisions.isoformat(self._clock())
        merged = conditions.merge(cr.status.conditions, verdict.conditions(generation=generation, now=now))
        if not conditions.same(cr.status.conditions, merged):
            step.status.conditions = merged
        if cr.status.observed_generation != generation:
            step.status.observed_generation = generation


def parent_wait(namespace: str, name: str, parent: Parent | None, step: ChildStep, timing: Timing) -> Verdict | None:
    """Why a child of ``namespace/name`` must wait for its parent (no call is made), or None: it runs."""
    if parent is None:
        step.requeue_after = timing.verify_interval
        return waiting(
            Reason.INSTANCE_NOT_READY, f"waiting for RocketMQInstance {namespace}/{name}, which does not exist"
        )
    if parent.deleting:
        return waiting(Reason.INSTANCE_DELETING, f"RocketMQInstance {parent.ref} is being deleted")
    if parent.instance_id is None or parent.cloud_status != cloud.RUNNING:
        step.requeue_after = timing.verify_interval
        state = parent.cloud_status or "not created yet"
        return waiting(Reason.INSTANCE_NOT_READY, f"waiting for RocketMQInstance {parent.ref} to be RUNNING ({state})")
    return None


def release(step: ChildStep, reason: str, message: str) -> Verdict:
    """The finalizer comes off: the step says so, with a Normal Event saying why."""
    step.released = True
    step.requeue_after = None
    step.event(EventType.NORMAL, reason, message)
    return Verdict(ready=False, reason=reason, message=message)


def waiting(reason: str, message: str) -> Verdict:
    return Verdict(ready=False, reason=reason, message=message, reconciling=True)


def from_error(exc: errors.CloudError, step: ChildStep, doing: str) -> Verdict:
    if exc.terminal:
        return Verdict(ready=False, reason=exc.reason, message=f"{doing}: {exc}", stalled=True)
    step.requeue_after = backoff(1)
    return waiting(exc.reason, f"{doing}: {exc}")


def backoff(attempts: int) -> float:
    return float(min(60, 2 ** min(attempts, 6)))
