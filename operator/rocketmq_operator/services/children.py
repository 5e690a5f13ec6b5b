"""Topics and consumer groups: create, observe, update and delete them for their CRs.

One ``ChildReconciler`` serves both kinds (``core.child_mapping.KindRules`` says what differs).

Live CRs: nothing is done until the parent instance is RUNNING (``Reconciling``, reason
``InstanceNotReady``); a field the parent's engine does not have stalls the CR; everything else is
decided from one shared walk of the instance's list (``ChildObserver``), never a show per object.
A name that exists in the cloud but is not this CR's is adopted only with ``spec.adopt``. Before the
first create a marker goes into status, so a name that appears after a crash between the create
call and the status write is recognised as ours and not refused as someone else's. An object of
ours that disappears is created again, with a Warning Event.

Deleting CRs: ``Orphan`` releases at once. A child of an instance that is being deleted with policy
Delete makes no call: it is released once that instance is proven gone (its CR released, and the
instance observer's consistent list no longer shows it). Otherwise the deletion goes to the
``ChildBatcher`` (one call per instance and kind for the deletions that arrive together), and the
finalizer comes off only when a consistent walk of the instance's list that started after the call
was accepted no longer shows the name; or the instance itself is gone. If the walk still shows it
once the job the call answered has ended, the deletion failed and is sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rocketmq_operator.core import cloud, conditions, decisions
from rocketmq_operator.core.child_mapping import KindRules, Parent
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
from rocketmq_operator.core.vocabulary import DeletionResult, EventType, Presence, Reason
from rocketmq_operator.ports import errors, protocol
from rocketmq_operator.services.batching import ChildBatcher, DeleteOutcome
from rocketmq_operator.services.child_observing import ChildObserver
from rocketmq_operator.services.observing import Observation

logger = logging.getLogger(__name__)

ChildCR = RocketMQTopic | RocketMQConsumerGroup


ChildStep = Step[ChildStatus]
"""What one step of a topic or group wants written, posted, and when it wants to run again."""


@dataclass(frozen=True)
class Timing:
    poll_interval: float
    verify_interval: float


class ChildReconciler:
    def __init__(
        self,
        *,
        client: protocol.ChildOperations,
        observer: ChildObserver,
        batcher: ChildBatcher,
        instances: Callable[[str], Observation],
        timing: Timing,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``instances``: the instance observer's lookup (no I/O), for a parent's engine and its absence."""
        self._client = client
        self._observer = observer
        self._batcher = batcher
        self._instances = instances
        self._timing = timing
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._accepted: dict[str, ChildDeletionStatus] = {}
        self._jobs: dict[tuple[str, str], float] = {}
        """When each job was last asked about."""
        self._ended: dict[tuple[str, str], float] = {}
        """When each job was first seen ended."""

    def forget(self, uid: str) -> None:
        self._locks.pop(uid, None)
        self._accepted.pop(uid, None)

    def remembers(self, uid: str) -> bool:
        return uid in self._locks or uid in self._accepted

    # ------------------------------------------------------------------ live CRs

    async def reconcile(self, cr: ChildCR, rules: KindRules[Any], parent: Parent | None) -> ChildStep:
        async with self._locks.setdefault(cr.metadata.uid, asyncio.Lock()):
            step = ChildStep(rules.empty_status())
            verdict = await self._reconcile(cr, rules, parent, step)
            self._finish(cr, verdict, step)
            return step

    async def _reconcile(self, cr: ChildCR, rules: KindRules[Any], parent: Parent | None, step: ChildStep) -> Verdict:
        noun = rules.noun
        wait = parent_wait(cr.metadata.namespace, cr.spec.instance_ref.name, parent, step, self._timing)
        if wait is not None:
            return wait
        assert parent is not None and parent.instance_id is not None
        instance_id = parent.instance_id
        engine = self._engine(parent)
        mismatch = cr.spec.engine_mismatch(engine)
        if mismatch is not None:
            return Verdict(ready=False, reason=Reason.FIELD_NOT_SUPPORTED, message=mismatch, stalled=True)
        moved = cr.status.instance_id is not None and cr.status.instance_id != instance_id
        if cr.status.instance_id != instance_id:
            step.status.instance_id = instance_id
        owned = bool(cr.status.owned) and not moved
        name = cr.cloud_name
        if cr.status.cloud_name != name:
            step.status.cloud_name = name
        try:
            listed = await self._observer.view(
                instance_id, rules.kind, newer_than=self._clock() - self._timing.poll_interval, about=name
            )
        except errors.CloudError as exc:
            return from_error(exc, step, f"listing the {noun}s of instance {instance_id}")
        view = listed.lookup(name)
        assert not isinstance(view, cloud.UserView)  # users are services.users'
        if view is not None:
            return await self._present(cr, rules, instance_id, engine, view, owned and not moved, step)
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
        return await self._create(cr, rules, instance_id, engine, step)

    async def _present(
        self,
        cr: ChildCR,
        rules: KindRules[Any],
        instance_id: str,
        engine: str | None,
        view: cloud.TopicView | cloud.GroupView,
        owned: bool,
        step: ChildStep,
    ) -> Verdict:
        noun, name = rules.noun, cr.cloud_name
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
                    "resource's; set spec.adopt: true to manage it, or choose another spec.name",
                    stalled=True,
                )
        if cr.status.creation is not None:
            step.status.creation = None
        update = rules.update_request(cr, view, engine)
        if update is not None:
            try:
                await self._update(rules, instance_id, name, update)
            except errors.CloudError as exc:
                return from_error(exc, step, f"updating {noun} {name}")
            self._observer.changed(instance_id, rules.kind, name)
            step.event(EventType.NORMAL, Reason.UPDATED, f"updated {noun} {name}")
            step.requeue_after = self._timing.verify_interval
            return waiting(Reason.UPDATING, f"updated {noun} {name}; waiting to see the change listed")
        observed = rules.observed(view)
        for key in type(observed).model_fields:
            if key in ChildStatus.model_fields:
                continue
            value = getattr(observed, key)
            if getattr(cr.status, key) != value:
                setattr(step.status, key, value)
        return Verdict(ready=True, reason=Reason.AVAILABLE, message=f"{noun} {name} exists in instance {instance_id}")

    async def _create(
        self, cr: ChildCR, rules: KindRules[Any], instance_id: str, engine: str | None, step: ChildStep
    ) -> Verdict:
        noun, name = rules.noun, cr.cloud_name
        request = rules.create_request(cr, engine)
        try:
            if isinstance(request, cloud.CreateTopicRequest):
                await self._client.create_topic(instance_id, request)
            else:
                await self._client.create_group(instance_id, request)
        except errors.NameConflict:
            # Listed absent a moment ago: created since, by our own earlier attempt or by someone else.
            self._observer.changed(instance_id, rules.kind, name)
            step.requeue_after = self._timing.verify_interval
            return waiting(Reason.OBSERVING, f"{noun} {name} appeared in instance {instance_id}; looking again")
        except errors.CloudError as exc:
            return from_error(exc, step, f"creating {noun} {name}")
        self._observer.changed(instance_id, rules.kind, name)
        step.status.owned = True
        step.status.creation = None
        step.event(EventType.NORMAL, Reason.CREATED, f"created {noun} {name} in instance {instance_id}")
        return Verdict(ready=True, reason=Reason.CREATED, message=f"created {noun} {name} in instance {instance_id}")

    async def _update(
        self,
        rules: KindRules[Any],
        instance_id: str,
        name: str,
        update: cloud.UpdateTopicRequest | cloud.UpdateGroupRequest,
    ) -> None:
        if isinstance(update, cloud.UpdateTopicRequest):
            await self._client.update_topic(instance_id, name, update)
        else:
            await self._client.update_group(instance_id, name, update)

    def _engine(self, parent: Parent) -> str | None:
        if parent.engine_version is not None or parent.instance_id is None:
            return parent.engine_version
        # An adopted instance's spec need not say its engine; the cloud's view does.
        seen = self._instances(parent.instance_id).instance
        return seen.engine_version if seen is not None else None

    # ------------------------------------------------------------------ CRs being deleted

    async def finalize(self, cr: ChildCR, rules: KindRules[Any], parent: Parent | None) -> ChildStep:
        async with self._locks.setdefault(cr.metadata.uid, asyncio.Lock()):
            step = ChildStep(rules.empty_status())
            verdict = await self._finalize(cr, rules, parent, step)
            if not step.released:
                self._finish(cr, verdict, step)
            return step

    async def _finalize(self, cr: ChildCR, rules: KindRules[Any], parent: Parent | None, step: ChildStep) -> Verdict:
        noun, name = rules.noun, cr.cloud_name
        instance_id = cr.status.instance_id
        if cr.spec.deletion_policy == DeletionPolicy.ORPHAN:
            return self._release(step, Reason.ORPHANED, f"{noun} {name} left in the cloud (deletionPolicy Orphan)")
        if instance_id is None or not (cr.status.owned or cr.status.creation is not None):
            return self._release(step, Reason.NOTHING_TO_DELETE, f"no {noun} of this resource exists in the cloud")
        step.requeue_after = self._timing.verify_interval
        if parent is not None and parent.instance_id == instance_id and parent.deleting and parent.deletes_instance:
            self._record(cr, step, result=DeletionResult.WITH_INSTANCE, instance_id=instance_id)
            return waiting(
                Reason.DELETING_WITH_INSTANCE,
                f"instance {instance_id} is being deleted ({parent.ref}) and takes {name} with it",
            )
        if parent is None or parent.instance_id != instance_id:
            # The instance CR is gone (or holds another instance): is the instance itself still there?
            seen = self._instances(instance_id)
            if seen.state == Presence.ABSENT:
                return self._release(
                    step, Reason.DELETED_WITH_INSTANCE, f"instance {instance_id} is gone, and {name} with it"
                )
            if seen.state == Presence.UNKNOWN:
                return waiting(Reason.DELETING, f"waiting to learn whether instance {instance_id} still exists")
        accepted = self._accepted.get(cr.metadata.uid) or _accepted_in(cr.status.deletion, instance_id)
        if accepted is not None:
            return await self._confirm(cr, rules, instance_id, accepted, step)
        return await self._submit(cr, rules, instance_id, step)

    async def _submit(self, cr: ChildCR, rules: KindRules[Any], instance_id: str, step: ChildStep) -> Verdict:
        name = cr.cloud_name
        outcome = await self._batcher.submit(instance_id, rules.kind, name)
        attempts = (cr.status.deletion.attempts if cr.status.deletion else 0) + 1
        record = _record_of(outcome, instance_id, attempts)
        step.status.deletion = record
        if outcome.result == DeletionResult.ACCEPTED:
            self._accepted[cr.metadata.uid] = record
            step.event(EventType.NORMAL, Reason.DELETE_ACCEPTED, f"{rules.noun} {name}: {outcome.message}")
            return waiting(Reason.DELETE_ACCEPTED, f"{rules.noun} {name}: {outcome.message}")
        if outcome.result == DeletionResult.NOT_FOUND:
            return self._release(
                step, Reason.DELETED_WITH_INSTANCE, f"instance {instance_id} is gone, and {name} with it"
            )
        if outcome.result == DeletionResult.WITH_INSTANCE:
            return waiting(
                Reason.DELETING_WITH_INSTANCE, f"instance {instance_id} is being deleted and takes {name} with it"
            )
        step.requeue_after = backoff(attempts)
        step.event(EventType.WARNING, Reason.DELETE_FAILED, f"{rules.noun} {name}: {outcome.message}")
        reason = outcome.error.reason if outcome.error is not None else Reason.DELETE_FAILED
        return waiting(reason, f"{rules.noun} {name}: {outcome.message}")

    async def _confirm(
        self, cr: ChildCR, rules: KindRules[Any], instance_id: str, accepted: ChildDeletionStatus, step: ChildStep
    ) -> Verdict:
        noun, name = rules.noun, cr.cloud_name
        since = decisions.epoch(accepted.submitted_at) if accepted.submitted_at else 0.0
        job = (instance_id, accepted.job_id) if accepted.job_id else None
        ended_at = self._ended.get(job) if job is not None else None
        try:
            if job is not None and ended_at is None:
                # The job first: a list that no longer shows a name proves nothing while the job
                # that deletes it may still fail (the cloud's list hides deleting instances, too).
                if not await self._job_ended(*job):
                    return waiting(Reason.DELETING, f"{noun} {name}: deletion accepted, job {job[1]} running")
                ended_at = self._ended[job]
            # Only a walk that started after the job was seen ended can judge it.
            newer_than = max(since, ended_at or 0.0, self._clock() - 1.0)
            listed = await self._observer.view(instance_id, rules.kind, newer_than=newer_than, about=name)
        except errors.InstanceNotFound:
            return self._release(
                step, Reason.DELETED_WITH_INSTANCE, f"instance {instance_id} is gone, and {name} with it"
            )
        except errors.CloudError as exc:
            return waiting(exc.reason, f"cannot confirm the deletion of {noun} {name} yet: {exc}")
        if listed.absent(name):
            return self._release(step, Reason.DELETED, f"{noun} {name} is gone from instance {instance_id}")
        if ended_at is not None and listed.consistent:
            # Still listed after its job ended: the cloud did not delete it. Send it again.
            self._accepted.pop(cr.metadata.uid, None)
            message = f"{noun} {name} is still listed after job {accepted.job_id} ended; deleting it again"
            step.status.deletion = accepted.model_copy(update={"result": DeletionResult.FAILED, "last_error": message})
            step.event(EventType.WARNING, Reason.DELETE_FAILED, message)
            step.requeue_after = 0.0
            return waiting(Reason.DELETE_FAILED, message)
        return waiting(Reason.DELETING, f"{noun} {name}: deletion accepted, still listed")

    async def _job_ended(self, instance_id: str, job_id: str) -> bool:
        """Whether the job has ended, asked at most once per verify interval per job (all its CRs share it);
        when it has, the time it was first seen so is kept in ``_ended``."""
        key = (instance_id, job_id)
        if key in self._ended:
            return True
        now = self._clock()
        asked = self._jobs.get(key)
        if asked is not None and now - asked < self._timing.verify_interval:
            return False
        self._jobs[key] = now
        try:
            task = await self._client.show_task(instance_id, job_id)
        except errors.InstanceNotFound:
            raise
        except errors.NotFound:
            # That the cloud tracks these jobs at GET .../tasks/{id} is inferred, not documented. If it
            # does not know the job, the job cannot be waited for: the list alone decides, from now on.
            logger.info("job %s of instance %s is unknown to the cloud; the list decides", job_id, instance_id)
            self._ended[key] = self._clock()
            return True
        except errors.CloudError as exc:
            logger.info("job %s of instance %s: %s", job_id, instance_id, exc)
            return False
        for old, at in list(self._jobs.items()):
            if now - at > 10 * self._timing.poll_interval:
                self._jobs.pop(old, None)
                self._ended.pop(old, None)
        if task.finished:
            self._ended[key] = self._clock()
        return task.finished

    def _record(self, cr: ChildCR, step: ChildStep, *, result: DeletionResult, instance_id: str) -> None:
        previous = cr.status.deletion
        if previous is None or previous.result != result:
            step.status.deletion = ChildDeletionStatus(instance_id=instance_id, result=result)

    def _release(self, step: ChildStep, reason: str, message: str) -> Verdict:
        step.released = True
        step.requeue_after = None
        step.event(EventType.NORMAL, reason, message)
        return Verdict(ready=False, reason=reason, message=message)

    # ------------------------------------------------------------------ common

    def _finish(self, cr: ChildCR, verdict: Verdict, step: ChildStep) -> None:
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


def waiting(reason: str, message: str) -> Verdict:
    return Verdict(ready=False, reason=reason, message=message, reconciling=True)


def from_error(exc: errors.CloudError, step: ChildStep, doing: str) -> Verdict:
    if exc.terminal:
        return Verdict(ready=False, reason=exc.reason, message=f"{doing}: {exc}", stalled=True)
    step.requeue_after = backoff(1)
    return waiting(exc.reason, f"{doing}: {exc}")


def _accepted_in(record: ChildDeletionStatus | None, instance_id: str) -> ChildDeletionStatus | None:
    if record is not None and record.result == DeletionResult.ACCEPTED and record.instance_id == instance_id:
        return record
    return None


def _record_of(outcome: DeleteOutcome, instance_id: str, attempts: int) -> ChildDeletionStatus:
    return ChildDeletionStatus(
        instance_id=instance_id,
        batch_id=outcome.batch_id or None,
        batch_size=outcome.batch_size or None,
        job_id=outcome.job_id,
        submitted_at=decisions.isoformat(outcome.submitted_at, precise=True),
        result=outcome.result,
        attempts=attempts,
        last_error=None if outcome.result == DeletionResult.ACCEPTED else outcome.message,
    )


def backoff(attempts: int) -> float:
    return float(min(60, 2 ** min(attempts, 6)))
