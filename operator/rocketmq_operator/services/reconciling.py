"""Carries out the core's decisions for one CR: the only place that acts on a RocketMQInstance.

Why a service apart from the kopf handlers: it is plain asyncio over the cloud port, the observer
and the batcher, so it is tested without kopf; handlers only turn a ``StepResult`` into a status
patch, events, and "run me again in N seconds".

Each call does at most one mutating step and returns. Steps that must be persisted before the
next one (the create-pending marker before the create call; the batch result before the
finalizer goes) are separate calls, so a crash between them loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rocketmq_operator.core import cloud, conditions, decisions, evidence
from rocketmq_operator.core.decisions import Seen
from rocketmq_operator.core.mapping import (
    endpoints,
    has_owner_tags,
    owned_by_cr,
    owner_tags,
)
from rocketmq_operator.core.resource import DeletionPolicy, DeletionStatus, RocketMQInstance
from rocketmq_operator.core.settings import ObserveStrategy, OperatorSettings
from rocketmq_operator.ports import errors
from rocketmq_operator.ports.protocol import ReconcilingClient
from rocketmq_operator.services import batching, confirming, observing
from rocketmq_operator.services.metrics import Metrics

logger = logging.getLogger(__name__)

_RETAG_INTERVALS = 5  # poll intervals between two attempts to restore missing owner tags
CREATE_CLOCK_SKEW_SECONDS = 120.0
"""An untagged instance with our pending name, created at most this long before the marker, is ours."""

TERMINAL_RETRY_SECONDS = 600.0
"""How long a CR stalled on a terminal cloud error waits before the same request is tried again."""


class NameHeldByDeletingInstance(errors.CloudError):
    """A create was refused for its name, and no live instance the list shows has that name.

    The real list hides instances being deleted, so the holder is one of them: the name frees up
    when its deletion ends. Not terminal: the create is tried again later; the instance being
    deleted is never adopted.
    """

    reason = "NameHeldByDeletingInstance"


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class StepResult:
    """What a step wants written and when it wants to run again."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    released: bool = False

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))


def _now_iso(clock: Callable[[], float]) -> str:
    return decisions.isoformat(clock())


class Reconciler:
    """Acts for every RocketMQInstance of one account."""

    def __init__(
        self,
        *,
        client: ReconcilingClient,
        observer: observing.Observer,
        batcher: batching.DeletionBatcher,
        confirmer: confirming.DeletionConfirmer,
        settings: OperatorSettings,
        cluster_id: Callable[[], str | None],
        metrics: Metrics,
        sweep_outcomes: Callable[[str], batching.DeleteOutcome | None] = lambda _id: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._observer = observer
        self._batcher = batcher
        self._confirmer = confirmer
        self._settings = settings
        self._cluster_id = cluster_id
        self._metrics = metrics
        self._sweep_outcomes = sweep_outcomes
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        # A show after a mutation is fresher than the last list walk; remember it so the next pass
        # does not re-apply a change the cloud already took.
        self._fresh: dict[str, tuple[float, cloud.InstanceView]] = {}
        self._stalled_until: dict[str, tuple[float, int]] = {}
        self._retagged_at: dict[str, float] = {}
        self._deletions: dict[str, DeletionStatus] = {}  # uid -> the status.deletion we last wrote
        # Instances show answered 404 for: ids are never reused, so one answer holds for good.
        self._gone: set[str] = set()

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    def forget(self, cr: RocketMQInstance) -> None:
        """Drop per-CR memory once the CR is gone."""
        self._locks.pop(cr.metadata.uid, None)
        self._stalled_until.pop(cr.metadata.uid, None)
        self._retagged_at.pop(cr.metadata.uid, None)
        self._deletions.pop(cr.metadata.uid, None)
        for instance_id in filter(None, {cr.status.instance_id, cr.spec.instance_id}):
            self._fresh.pop(instance_id, None)
            self._gone.discard(instance_id)
            self._confirmer.forget(instance_id)

    # ---- observation ------------------------------------------------------------------------

    def _seen(self, instance_id: str) -> Seen:
        if self._settings.observe_strategy == ObserveStrategy.SHOW:
            return Seen.unknown()  # forces _seen_now's show call: one per CR per pass
        observation = self._observer.lookup(instance_id)
        fresh = self._fresh.get(instance_id)
        if fresh is not None and (observation.observed_at is None or fresh[0] >= observation.observed_at):
            return Seen.present(fresh[1])
        if fresh is not None:
            self._fresh.pop(instance_id, None)
        return _to_seen(observation)

    async def _seen_now(self, instance_id: str) -> Seen:
        """Where the list cannot tell: one show call.

        Right after a create or an adoption the cache may not have the instance yet. And an
        instance the list no longer shows is gone *or being deleted* (the real list hides deleting
        instances), so absence is checked with show before a CR is told its instance is missing.
        Not while the shared list walks fail (the observer then reports its error): one show per
        CR per pass would multiply the calls to a failing cloud by the number of CRs.
        """
        seen = self._seen(instance_id)
        if seen.state == decisions.PRESENT or (seen.state == decisions.UNKNOWN and seen.error_reason is not None):
            return seen
        if seen.state == decisions.ABSENT and instance_id in self._gone:
            return seen
        observation = await self._observer.show(instance_id)
        if observation.instance is not None:
            self._fresh[instance_id] = (self._clock(), observation.instance)
        elif observation.state == observing.ABSENT:
            self._gone.add(instance_id)
        return _to_seen(observation)

    # ---- live CRs ---------------------------------------------------------------------------

    async def prepare(self, cr: RocketMQInstance) -> StepResult:
        """First create step: persist the pending marker (and nothing else) if a create is due."""
        async with self._lock(cr.metadata.uid):
            if cr.status.instance_id or cr.spec.instance_id or cr.status.creation is not None or cr.paused:
                return StepResult()
            action = decisions.decide(cr, Seen.unknown())
            return self._status_for(cr, action, None, StepResult())

    async def reconcile(self, cr: RocketMQInstance) -> StepResult:
        async with self._lock(cr.metadata.uid):
            instance_id = cr.status.instance_id
            original_failed = cr.status.failed_instance_ids or []
            if instance_id and instance_id not in original_failed and self._sweep_outcomes(instance_id):
                # The sweep deleted it before a pass of ours saw CREATEFAILED: still a failed create.
                failed = [*original_failed, instance_id]
                cr = cr.model_copy(update={"status": cr.status.model_copy(update={"failed_instance_ids": failed})})
            seen = await self._seen_now(instance_id) if instance_id else Seen.unknown()
            action = decisions.decide(cr, seen)
            result = StepResult()
            self._metrics.reconciles.labels(action=type(action).__name__).inc()
            view = seen.instance
            if self._stalled(cr, action):
                return result
            if isinstance(action, decisions.Create) and self._cluster_id() is None:
                return self._awaiting_cluster_id(cr, view)
            try:
                view = await self._act(cr, action, seen, result) or view
            except errors.CloudError as exc:
                return self._failed(cr, action, exc, view)
            if view is not None and self._owner_tags_due(cr, view):
                await self._ensure_owner_tags(cr, view.instance_id, result, restoring=True)
            if seen.state == decisions.ABSENT:
                # Proven gone (show answered 404): the status it last had is no longer the cloud's.
                result.status["cloudStatus"] = None
            self._note_sweep(cr, result)
            result = self._status_for(cr, action, view, result)
            if (cr.status.failed_instance_ids or []) != original_failed and "failedInstanceIds" not in result.status:
                result.status["failedInstanceIds"] = cr.status.failed_instance_ids
            return result

    def _stalled(self, cr: RocketMQInstance, action: decisions.Action) -> bool:
        """Don't repeat a request that failed terminally, or one whose retry is not due, until the spec
        changes or the time passes."""
        if not isinstance(action, decisions.Create | decisions.Update | decisions.Adopt):
            return False
        until = self._stalled_until.get(cr.metadata.uid)
        if until is None:
            return False
        deadline, generation = until
        if generation != cr.metadata.generation or self._clock() >= deadline:
            del self._stalled_until[cr.metadata.uid]
            return False
        return True

    async def _act(
        self, cr: RocketMQInstance, action: decisions.Action, seen: Seen, result: StepResult
    ) -> cloud.InstanceView | None:
        if isinstance(action, decisions.MarkCreatePending | decisions.Observe):
            return None
        if isinstance(action, decisions.Create):
            return await self._create(cr, action, result)
        if isinstance(action, decisions.Adopt):
            return await self._adopt(cr, action.instance_id, result)
        if isinstance(action, decisions.Update):
            return await self._update(cr, action, seen, result)
        if isinstance(action, decisions.Recreate):
            result.status.update(
                {
                    "instanceId": None,
                    "instanceName": None,
                    "creation": None,
                    "cloudStatus": None,
                    "endpoints": None,
                }
            )
            result.event("Normal", "Recreating", action.verdict.message)
            result.requeue_after = 0.0
            return None
        raise AssertionError(f"unhandled action {action!r}")

    async def _create(
        self, cr: RocketMQInstance, action: decisions.Create, result: StepResult
    ) -> cloud.InstanceView | None:
        assert action.request is not None
        assert cr.status.creation is not None
        request = action.request
        try:
            instance_id = await self._client.create_instance(request)
        except errors.NameConflict:
            view, others = await self._name_holders(cr, request.name)
            if view is None and not others:
                raise NameHeldByDeletingInstance(
                    f"the name {request.name} is taken by an instance that the cloud's list no longer "
                    "shows, one that is being deleted; creating once the name is free",
                    operation="create_instance",
                ) from None
            if view is None:
                raise
            result.event(
                "Normal",
                "Adopted",
                f"found instance {view.instance_id} ({request.name}) created by an "
                "earlier attempt; adopting it instead of creating another",
            )
            instance_id = view.instance_id
        else:
            result.event("Normal", "Created", f"cloud accepted creation of instance {instance_id} ({request.name})")
        result.status.update({"instanceId": instance_id, "instanceName": request.name, "creation": None})
        await self._ensure_owner_tags(cr, instance_id, result)
        return await self._show_fresh(instance_id)

    async def _find_own(self, cr: RocketMQInstance, name: str) -> cloud.InstanceView | None:
        """The instance named ``name`` if it is this CR's (by owner tag, or untagged and new enough)."""
        own, _others = await self._name_holders(cr, name)
        return own

    async def _name_holders(
        self, cr: RocketMQInstance, name: str
    ) -> tuple[cloud.InstanceView | None, list[cloud.InstanceView]]:
        """This CR's instance named ``name``, if listed, and the other listed live ones of that name.

        An instance being deleted is never this CR's to adopt, nor a live holder of the name: a
        cloud whose list shows deleting instances must not make the operator adopt one.
        """
        page = await self._client.list_instances(cloud.ListQuery(name=name, exact_match_name=True))
        marker = cr.status.creation
        since = decisions.epoch(marker.pending_since) if marker else 0.0
        own: cloud.InstanceView | None = None
        others: list[cloud.InstanceView] = []
        for view in page.instances:
            if view.name != name or view.status in (cloud.DELETING, cloud.RECYCLE):
                continue
            created = (view.created_at or 0) / 1000.0
            ours = owned_by_cr(view, cr.metadata.uid) or (
                # untagged (tagging failed after our create) and created after our marker
                not (view.tags and has_owner_tags(view))
                and marker is not None
                and created >= since - CREATE_CLOCK_SKEW_SECONDS
            )
            if ours and own is None:
                own = view
            else:
                others.append(view)
        return own, others

    def _owner_tags_due(self, cr: RocketMQInstance, view: cloud.InstanceView) -> bool:
        """Our instance shows no owner tags (tagging failed after the create): tag it again.

        Without them the sweep would never clean it up if its creation failed, and a re-adoption
        after a crash could not tell it is ours. Only instances this CR created, only when they
        carry no owner tags at all (someone else's are never overwritten), and at most once per
        few poll intervals, so a cloud whose list leaves tags out costs little.
        """
        if cr.spec.instance_id or cr.status.adopted or view.instance_id != cr.status.instance_id:
            return False
        if has_owner_tags(view) or view.status == cloud.DELETING:
            return False
        last = self._retagged_at.get(cr.metadata.uid)
        return last is None or self._clock() - last >= _RETAG_INTERVALS * self._settings.poll_interval_seconds

    def _awaiting_cluster_id(self, cr: RocketMQInstance, view: cloud.InstanceView | None) -> StepResult:
        """A create waits for the cluster id rather than tag its instance with a made-up one.

        The sweep deletes failed instances carrying this cluster's id; a stand-in shared by every
        cluster that cannot tell its id would let each one's sweep delete the others' instances. In
        practice no create waits (kopf fills the namespace index before any handler runs): only
        where kube-system cannot be read and DMS_CLUSTER_ID is unset, which the condition and the
        Event ask a person to fix.
        """
        reason = "ClusterIdUnknown"
        message = (
            "waiting to create the instance: the cluster id for its owner tags is not known; set "
            "DMS_CLUSTER_ID, or let the operator read the kube-system namespace"
        )
        result = StepResult(requeue_after=self._settings.poll_interval_seconds)
        if _ready_reason(cr) != reason:
            result.event("Warning", reason, message)
        verdict = conditions.Verdict(ready=False, reason=reason, message=message, reconciling=True)
        return self._status_for(cr, decisions.Observe(verdict), view, result)

    async def _ensure_owner_tags(
        self, cr: RocketMQInstance, instance_id: str, result: StepResult, *, restoring: bool = False
    ) -> None:
        self._retagged_at[cr.metadata.uid] = self._clock()
        cluster_id = self._cluster_id()
        if cluster_id is None:
            # Only if the id was lost since the create was let through: the instance stays untagged
            # for now, and _owner_tags_due tags it once the id is back (never with a made-up one).
            logger.warning("%s: not tagging instance %s yet: the cluster id is not known", cr.ref, instance_id)
            return
        try:
            await self._client.create_tags(instance_id, owner_tags(cr, cluster_id))
            if cr.spec.tags and not restoring:
                await self._client.create_tags(
                    instance_id, [cloud.Tag(key=k, value=v) for k, v in sorted(cr.spec.tags.items())]
                )
        except errors.CloudError as exc:
            # The id is recorded already, so nothing is lost: a later pass sees the tags missing
            # and tries again (spec tags through the diff, owner tags through _owner_tags_due).
            logger.warning("tagging instance %s failed: %s", instance_id, exc)
            result.event("Warning", "TaggingFailed", f"could not tag instance {instance_id}: {exc}")
        else:
            if restoring:
                result.event("Normal", "OwnerTagsRestored", f"instance {instance_id} had no owner tags; tagged it")

    async def _show_fresh(self, instance_id: str) -> cloud.InstanceView | None:
        observation = await self._observer.show(instance_id)
        if observation.instance is not None:
            self._fresh[instance_id] = (self._clock(), observation.instance)
        return observation.instance

    async def _adopt(self, cr: RocketMQInstance, instance_id: str, result: StepResult) -> cloud.InstanceView | None:
        try:
            view = await self._client.show_instance(instance_id)
        except errors.NotFound as exc:
            raise errors.InvalidRequest(
                f"instance {instance_id} named in spec.instanceId does not exist in project "
                f"{self._client.account.project_id}",
                operation="adopt",
                status=exc.status,
                code=exc.code,
            ) from exc
        self._fresh[instance_id] = (self._clock(), view)
        result.status.update({"instanceId": instance_id, "instanceName": view.name, "adopted": True})
        result.event("Normal", "Adopted", f"adopted existing instance {instance_id} ({view.name})")
        return view

    async def _update(
        self, cr: RocketMQInstance, action: decisions.Update, seen: Seen, result: StepResult
    ) -> cloud.InstanceView | None:
        instance_id = cr.status.instance_id
        assert instance_id
        delta = action.delta
        try:
            if not delta.update.is_empty():
                await self._client.update_instance(instance_id, delta.update)
            if delta.tags_to_delete:
                await self._client.delete_tags(instance_id, delta.tags_to_delete)
            if delta.tags_to_create:
                await self._client.create_tags(instance_id, delta.tags_to_create)
            if delta.resize is not None:
                await self._client.resize_instance(instance_id, delta.resize)
        except errors.WrongState as exc:
            # The cloud is busy with this instance (another task running): try on a later pass.
            result.event("Normal", "UpdateDeferred", f"cloud refused the change for now: {exc}")
            result.requeue_after = self._settings.poll_interval_seconds
            return seen.instance
        result.event("Normal", "Resizing" if delta.resize else "Updated", f"applied {', '.join(delta.fields)}")
        return await self._show_fresh(instance_id)

    def _failed(
        self,
        cr: RocketMQInstance,
        action: decisions.Action,
        exc: errors.CloudError,
        view: cloud.InstanceView | None,
    ) -> StepResult:
        result = StepResult()
        verb = type(action).__name__.lower()
        if isinstance(exc, errors.NameConflict):
            message = (
                f"an instance named {cr.status.creation.name if cr.status.creation else '?'} already exists "
                "and is not owned by this CR; set spec.name to another name"
            )
            reason, terminal = "NameConflict", True
        else:
            message, reason, terminal = f"{verb} failed: {exc}", exc.reason, exc.terminal
        if terminal:
            self._stalled_until[cr.metadata.uid] = (
                self._clock() + TERMINAL_RETRY_SECONDS,
                cr.metadata.generation,
            )
            verdict = conditions.Verdict(ready=False, reason=reason, message=message, stalled=True)
            result.event("Warning", reason, message)
        else:
            verdict = conditions.Verdict(ready=False, reason=reason, message=message, reconciling=True)
            retry = exc.retry_after if isinstance(exc, errors.Throttled) else self._settings.poll_interval_seconds
            result.requeue_after = retry
            if isinstance(exc, NameHeldByDeletingInstance):
                # Not before the retry is due, whatever wakes the CR first (the observe timer).
                self._stalled_until[cr.metadata.uid] = (self._clock() + retry, cr.metadata.generation)
                if _ready_reason(cr) != reason:
                    result.event("Normal", reason, message)
        logger.warning("%s: %s", cr.ref, message)
        return self._status_for(cr, decisions.Observe(verdict), view, result)

    def _note_sweep(self, cr: RocketMQInstance, result: StepResult) -> None:
        """Record on the CR what the sweep did with its failed instance."""
        for instance_id in [cr.status.instance_id, *(cr.status.failed_instance_ids or [])]:
            if not instance_id:
                continue
            outcome = self._sweep_outcomes(instance_id)
            if outcome is None:
                continue
            previous = cr.status.deletion
            if previous is not None and previous.batch_id == outcome.batch_id and previous.instance_id == instance_id:
                continue
            result.status["deletion"] = _deletion_status(
                outcome, attempts=1, trigger="SweepCreateFailed", force_delete=True
            )
            result.event(
                "Normal" if outcome.result == batching.ACCEPTED else "Warning",
                "SweptCreateFailed",
                f"failed instance {instance_id}: {outcome.message}",
            )

    def _status_for(
        self,
        cr: RocketMQInstance,
        action: decisions.Action,
        view: cloud.InstanceView | None,
        result: StepResult,
    ) -> StepResult:
        status = result.status
        now = _now_iso(self._clock)
        if isinstance(action, decisions.MarkCreatePending):
            pending_since = decisions.isoformat(self._clock(), precise=True)
            status["creation"] = {"name": action.name, "pendingSince": pending_since, "attempts": 0}
            result.requeue_after = 0.0
            result.event("Normal", "Creating", f"creating cloud instance {action.name}")
        if view is not None and (status.get("instanceId", cr.status.instance_id) == view.instance_id):
            previous_status = cr.status.cloud_status
            status.update(
                {
                    "instanceName": view.name or None,
                    "cloudStatus": view.status or None,
                    "endpoints": endpoints(view).to_wire() or None,
                    "storageSpace": view.total_storage_space
                    if view.total_storage_space is not None
                    else view.storage_space,
                    "brokerNum": view.broker_num,
                    "productId": view.product_id,
                }
            )
            if previous_status != view.status and previous_status is not None:
                kind = "Warning" if view.status in (cloud.CREATEFAILED, cloud.ERROR, cloud.EXTENDEDFAILED) else "Normal"
                result.event(
                    kind,
                    f"Cloud{(view.status or 'Unknown').title()}",
                    f"instance {view.instance_id}: {previous_status} -> {view.status}",
                )
            if view.status == cloud.CREATEFAILED and view.instance_id not in (cr.status.failed_instance_ids or []):
                status["failedInstanceIds"] = [*(cr.status.failed_instance_ids or []), view.instance_id]
        if action.verdict.reason == decisions.INSTANCE_MISSING and _ready_reason(cr) != decisions.INSTANCE_MISSING:
            # A cloud-side transition like any other, though no status was seen: once, on the way in.
            result.event("Warning", decisions.INSTANCE_MISSING, action.verdict.message)
        generation = cr.metadata.generation or None
        fresh = self._throttled(action.verdict).conditions(generation=generation, now=now)
        merged = conditions.merge(cr.status.conditions, fresh)
        if not conditions.same(cr.status.conditions, merged):
            status["conditions"] = [c.to_wire() for c in merged]
        if cr.status.observed_generation != generation:
            status["observedGeneration"] = generation
        return _without_noop(cr, result)

    # ---- CRs being deleted ------------------------------------------------------------------

    async def finalize(
        self, cr: RocketMQInstance, *, namespace_policy: str | None, default_policy: DeletionPolicy
    ) -> StepResult:
        async with self._lock(cr.metadata.uid):
            cr = self._with_remembered_deletion(cr)
            choice = decisions.resolve_policy(cr, namespace_policy, default_policy)
            result = StepResult()
            if choice.warning:
                result.event("Warning", "UnknownDeletionPolicy", choice.warning)
            instance_id = cr.status.instance_id or cr.spec.instance_id
            look = (
                await self._deletion_look(cr, instance_id)
                if choice.policy == DeletionPolicy.DELETE
                else evidence.unknown()
            )
            step = decisions.decide_deletion(cr, choice, look)
            try:
                await self._deletion_step(cr, step, result)
            except errors.CloudError as exc:
                result.requeue_after = _backoff(cr.status.deletion.attempts if cr.status.deletion else 0, exc)
                self._deleting_conditions(cr, result, "DeleteFailed", f"{type(step).__name__}: {exc}", ok=False)
            if result.status.get("deletion"):
                self._deletions[cr.metadata.uid] = DeletionStatus.model_validate(result.status["deletion"])
            return result

    def _with_remembered_deletion(self, cr: RocketMQInstance) -> RocketMQInstance:
        """The CR with the deletion status this process wrote last, if its body predates that write.

        Kopf waits only so long (``consistency_timeout``) for its own patch to come back through
        the watch; on a loaded API server it then hands over the older body. Without this, a CR whose
        deletion the cloud already accepted would look unsubmitted and be sent again: a wasted call
        that the cloud answers "failed" (the instance is already gone), and a false DeleteFailed.
        """
        remembered = self._deletions.get(cr.metadata.uid)
        if remembered is None:
            return cr
        current = cr.status.deletion
        if current is not None and current.attempts >= remembered.attempts:
            return cr
        logger.info(
            "%s/%s: the CR body predates our last deletion status (attempt %s); using what we wrote",
            cr.metadata.namespace,
            cr.metadata.name,
            remembered.attempts,
        )
        return cr.model_copy(update={"status": cr.status.model_copy(update={"deletion": remembered})})

    async def _deletion_look(self, cr: RocketMQInstance, instance_id: str | None) -> evidence.Look:
        """The latest look at the instance of a CR being deleted.

        An accepted deletion waits (a bounded, shared wait: no thread, no call of its own) for the
        confirmer's proof. Otherwise the instance is about to be submitted: a list walk that shows
        it says in what status; one that does not (gone, or deleting already) is checked by show.
        """
        if not instance_id:
            return evidence.unknown()
        deletion = cr.status.deletion
        wait = self._settings.delete_confirm_wait_seconds
        if deletion is not None and deletion.result == batching.ACCEPTED and deletion.instance_id == instance_id:
            return await self._confirmer.confirm(
                instance_id,
                accepted_at=decisions.epoch(deletion.submitted_at or ""),
                force=bool(deletion.force_delete),
                timeout=wait,
            )
        since = self._confirmer.following_since(instance_id)
        if since is not None:
            return await self._confirmer.confirm(
                instance_id, accepted_at=since, force=cr.spec.force_delete, timeout=wait
            )
        observation = self._observer.lookup(instance_id)
        if observation.instance is not None and observation.observed_at is not None:
            return evidence.from_status(observation.instance, at=observation.observed_at)
        look = await self._confirmer.look(instance_id)
        if look.sighting == evidence.Sighting.DELETING and look.observed_at is not None:
            # Deleting already, though no acceptance of ours is on record (deleted out of band, or
            # our status write was lost in a crash): follow it like our own, paced, not a show a pass.
            return await self._confirmer.confirm(
                instance_id, accepted_at=look.observed_at, force=cr.spec.force_delete, timeout=wait
            )
        return look

    async def _deletion_step(self, cr: RocketMQInstance, step: decisions.DeletionStep, result: StepResult) -> None:
        if isinstance(step, decisions.Release):
            result.released = True
            result.event("Normal", step.reason, step.message)
            return
        if isinstance(step, decisions.FindByName):
            view = await self._find_own(cr, step.name)
            if view is None:
                result.released = True
                result.event("Normal", "NothingToDelete", f"no instance named {step.name} exists; nothing to delete")
                return
            result.status.update({"instanceId": view.instance_id, "instanceName": view.name, "creation": None})
            result.event("Normal", "Adopted", f"found instance {view.instance_id} created before a crash")
            result.requeue_after = 0.0
            return
        if isinstance(step, decisions.HoldBack):
            result.status["deletion"] = {
                **_previous_deletion(cr),
                "instanceId": step.instance_id,
                "result": "HeldBack",
                "lastError": step.message,
            }
            self._deleting_conditions(cr, result, "WaitingForCreate", step.message, ok=True)
            result.requeue_after = min(self._settings.poll_interval_seconds, 30.0)
            return
        if isinstance(step, decisions.Undone):
            previous = _previous_deletion(cr)
            result.status["deletion"] = {**previous, "result": batching.FAILED, "lastError": step.message}
            result.status["cloudStatus"] = step.cloud_status or None
            result.event("Warning", "DeleteFailed", step.message)
            self._deleting_conditions(cr, result, "DeleteFailed", step.message, ok=False)
            self._confirmer.forget(step.instance_id)
            result.requeue_after = _backoff(int(previous.get("attempts", 0)), None)
            return
        if isinstance(step, decisions.AwaitGone):
            self._deleting_conditions(cr, result, "Deleting", step.message, ok=True)
            result.requeue_after = self._settings.verify_interval_seconds
            return
        assert isinstance(step, decisions.Submit)
        self._deleting_conditions(cr, result, "Deleting", step.message, ok=True)
        outcome = await self._batcher.submit(step.instance_id, force_delete=step.force_delete)
        attempts = (cr.status.deletion.attempts if cr.status.deletion else 0) + 1
        result.status["deletion"] = _deletion_status(
            outcome, attempts=attempts, trigger="CRDeleted", force_delete=step.force_delete
        )
        if outcome.result == batching.ACCEPTED:
            result.event("Normal", "DeleteAccepted", f"instance {step.instance_id}: {outcome.message}")
            self._deleting_conditions(cr, result, "DeleteAccepted", outcome.message, ok=True)
            result.requeue_after = 0.0
        elif outcome.result == batching.NOT_FOUND:
            result.event("Normal", "DeleteNotFound", f"instance {step.instance_id} is already gone")
            self._deleting_conditions(cr, result, "Deleting", outcome.message, ok=True)
            result.requeue_after = 0.0
        else:
            reason = "DeleteHeldBack" if outcome.result == batching.WRONG_STATE else "DeleteFailed"
            result.event("Warning", reason, f"instance {step.instance_id}: {outcome.message}")
            self._deleting_conditions(cr, result, reason, outcome.message, ok=False)
            result.requeue_after = _backoff(attempts, outcome.error)

    def _throttled(self, verdict: conditions.Verdict) -> conditions.Verdict:
        """While the cloud throttles the account, work still under way says so (reason Throttled).

        The client absorbs most 429s (one wait, then a slower pace for the whole account), so a CR
        whose create or delete is merely slowed would otherwise never show why it takes so long.
        """
        if verdict.ready or verdict.stalled or not verdict.reconciling:
            return verdict
        note = self._client.throttling()
        if note is None:
            return verdict
        return replace(verdict, reason="Throttled", message=f"{verdict.message}; slowed down: {note}")

    def _deleting_conditions(
        self, cr: RocketMQInstance, result: StepResult, reason: str, message: str, *, ok: bool
    ) -> None:
        verdict = self._throttled(
            conditions.Verdict(ready=False, reason=reason, message=message, reconciling=ok, stalled=False)
        )
        generation = cr.metadata.generation or None
        fresh = verdict.conditions(generation=generation, now=_now_iso(self._clock))
        merged = conditions.merge(cr.status.conditions, fresh)
        if not conditions.same(cr.status.conditions, merged):
            result.status["conditions"] = [c.to_wire() for c in merged]
        if cr.status.observed_generation != generation:
            # Health checks (kstatus, Flux) compare it with metadata.generation while deleting too.
            result.status["observedGeneration"] = generation


def _to_seen(observation: observing.Observation) -> Seen:
    if observation.state == observing.PRESENT and observation.instance is not None:
        return Seen.present(observation.instance)
    if observation.state == observing.ABSENT:
        return Seen.absent()
    error = observation.error
    if error is None:
        return Seen.unknown()
    return Seen.unknown(error.reason, str(error), terminal=error.terminal)


def _deletion_status(
    outcome: batching.DeleteOutcome, *, attempts: int, trigger: str, force_delete: bool
) -> dict[str, Any]:
    return {
        "instanceId": outcome.instance_id,
        "batchId": outcome.batch_id,
        "batchSize": outcome.batch_size,
        # Milliseconds: the next pass waits for a list walk that started after this moment.
        "submittedAt": decisions.isoformat(outcome.submitted_at, precise=True),
        "result": outcome.result,
        "attempts": attempts,
        "lastError": None if outcome.result == batching.ACCEPTED else outcome.message,
        "forceDelete": force_delete,
        "trigger": trigger,
    }


def _previous_deletion(cr: RocketMQInstance) -> dict[str, Any]:
    return cr.status.deletion.to_wire() if cr.status.deletion else {}


def _backoff(attempts: int, error: errors.CloudError | None) -> float:
    """Jittered exponential backoff, 2 s doubling to 5 min; never sooner than a Retry-After."""
    base = min(300.0, 2.0 * 2.0 ** max(0, attempts - 1))
    delay = base * random.uniform(0.5, 1.5)
    if isinstance(error, errors.Throttled):
        delay = max(delay, error.retry_after)
    return delay


def _ready_reason(cr: RocketMQInstance) -> str | None:
    return next((c.reason for c in cr.status.conditions or () if c.type == "Ready"), None)


def _without_noop(cr: RocketMQInstance, result: StepResult) -> StepResult:
    """Drop status fields whose value is what the CR already says, so a quiet pass writes nothing."""
    current = cr.status.to_wire()
    result.status = {k: v for k, v in result.status.items() if current.get(k) != v}
    return result
