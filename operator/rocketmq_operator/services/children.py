"""Topics and consumer groups: create, observe, update and delete them for their CRs.

One ``ChildReconciler`` serves both kinds (``core.child_mapping.KindRules`` says what differs). The
rules every child kind shares (the walk of the instance's list, adoption, the create marker,
re-creation after drift, the finalizer's releases without a call) are ``services.child_lifecycle``'s;
this module owns what only topics and groups have.

Live CRs: nothing is done until the parent instance is RUNNING (``Reconciling``, reason
``InstanceNotReady``); a field the parent's engine does not have stalls the CR; everything else is
the shared lifecycle's, with the kind's create, update and mirrored fields.

Deleting CRs: what the shared lifecycle does not settle goes to the ``ChildBatcher`` (one call per
instance and kind for the deletions that arrive together), and the finalizer comes off only when a
consistent walk of the instance's list that started after the call was accepted no longer shows the
name; or the instance itself is gone. If the walk still shows it once the job the call answered has
ended, the deletion failed and is sent again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from rocketmq_operator.core import cloud, decisions
from rocketmq_operator.core.child_mapping import KindRules, Parent
from rocketmq_operator.core.child_resource import (
    ChildDeletionStatus,
    ChildStatus,
    RocketMQConsumerGroup,
    RocketMQTopic,
)
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.vocabulary import DeletionResult, EventType, Reason
from rocketmq_operator.ports import errors, protocol
from rocketmq_operator.services.batching import ChildBatcher, DeleteOutcome
from rocketmq_operator.services.child_lifecycle import (
    ChildLifecycle,
    Kind,
    backoff,
    from_error,
    parent_wait,
    release,
    waiting,
)
from rocketmq_operator.services.child_lifecycle import ChildStep as ChildStep  # where the wiring and tests look
from rocketmq_operator.services.child_lifecycle import Timing as Timing
from rocketmq_operator.services.child_observing import ChildObserver, ChildView
from rocketmq_operator.services.observing import Observation
from rocketmq_operator.services.tracking import ForgottenUids
from rocketmq_operator.services.turns import Turns

logger = logging.getLogger(__name__)

ChildCR = RocketMQTopic | RocketMQConsumerGroup


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
        self._life = ChildLifecycle(observer=observer, instances=instances, timing=timing, clock=clock)
        self._turns = Turns()
        self._accepted: dict[str, ChildDeletionStatus] = {}
        self._jobs: dict[tuple[str, str], float] = {}
        """When each job was last asked about."""
        self._ended: dict[tuple[str, str], float] = {}
        """When each job was first seen ended."""
        self._forgotten = ForgottenUids()

    def forget(self, uid: str) -> None:
        self._turns.drop(uid)
        self._accepted.pop(uid, None)
        self._forgotten.add(uid)

    def released(self, uid: str) -> bool:
        """Whether the CR ``uid`` was released (or seen gone) by this process: a later pass has a body
        from before that, and in full it would delete the name again or post a second Event."""
        return uid in self._forgotten

    def remembers(self, uid: str) -> bool:
        return uid in self._turns or uid in self._accepted

    # ------------------------------------------------------------------ live CRs

    async def reconcile(self, cr: ChildCR, rules: KindRules[Any], parent: Parent | None) -> ChildStep:
        async with self._turns.take(cr.metadata.uid):
            step = ChildStep(rules.empty_status())
            verdict = await self._reconcile(cr, rules, parent, step)
            self._life.finish(cr, verdict, step)
            return step

    async def _reconcile(self, cr: ChildCR, rules: KindRules[Any], parent: Parent | None, step: ChildStep) -> Verdict:
        wait = parent_wait(cr.metadata.namespace, cr.spec.instance_ref.name, parent, step, self._timing)
        if wait is not None:
            return wait
        assert parent is not None and parent.instance_id is not None
        instance_id = parent.instance_id
        engine = self._engine(parent)
        mismatch = cr.spec.engine_mismatch(engine)
        if mismatch is not None:
            return Verdict(ready=False, reason=Reason.FIELD_NOT_SUPPORTED, message=mismatch, stalled=True)

        async def present(view: ChildView, _taken: bool) -> Verdict:
            assert not isinstance(view, cloud.UserView)  # users are services.users'
            return await self._present(cr, rules, instance_id, engine, view, step)

        async def create() -> None:
            request = rules.create_request(cr, engine)
            if isinstance(request, cloud.CreateTopicRequest):
                await self._client.create_topic(instance_id, request)
            else:
                await self._client.create_group(instance_id, request)

        return await self._life.live(cr, _kind(rules), instance_id, step, present=present, create=create)

    async def _present(
        self,
        cr: ChildCR,
        rules: KindRules[Any],
        instance_id: str,
        engine: str | None,
        view: cloud.TopicView | cloud.GroupView,
        step: ChildStep,
    ) -> Verdict:
        """The object is this CR's: bring it to the spec, or mirror what the cloud shows."""
        noun, name = rules.noun, cr.cloud_name
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
        async with self._turns.take(cr.metadata.uid):
            step = ChildStep(rules.empty_status())
            verdict = await self._finalize(cr, rules, parent, step)
            if not step.released:
                self._life.finish(cr, verdict, step)
            return step

    async def _finalize(self, cr: ChildCR, rules: KindRules[Any], parent: Parent | None, step: ChildStep) -> Verdict:
        settled = self._life.settle(cr, rules.noun, parent, step)
        if settled is not None:
            return settled
        instance_id = cr.status.instance_id
        assert instance_id is not None  # settle released a CR without one
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
            return release(step, Reason.DELETED_WITH_INSTANCE, f"instance {instance_id} is gone, and {name} with it")
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
            return release(step, Reason.DELETED_WITH_INSTANCE, f"instance {instance_id} is gone, and {name} with it")
        except errors.CloudError as exc:
            return waiting(exc.reason, f"cannot confirm the deletion of {noun} {name} yet: {exc}")
        if listed.absent(name):
            return release(step, Reason.DELETED, f"{noun} {name} is gone from instance {instance_id}")
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


def _kind(rules: KindRules[Any]) -> Kind:
    return Kind(noun=rules.noun, listed=rules.kind, taken_hint=", or choose another spec.name")
