"""Carries out the core's decisions for one live CR: creates, adopts, updates and observes its instance.

Why a service apart from the kopf handlers: it is plain asyncio over the cloud port and the
observer, so it is tested without kopf; handlers only turn a ``StepResult`` into a status patch,
events, and "run me again in N seconds". What the status says is rendered by ``core.status``;
what the instance looks like comes from ``freshness``; a CR being deleted is ``deleting``'s.

Each call does at most one mutating step and returns. Steps that must be persisted before the
next one (the create-pending marker before the create call) are separate calls, so a crash
between them loses nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from rocketmq_operator.core import cloud, conditions, decisions, status
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.decisions import Seen
from rocketmq_operator.core.mapping import has_owner_tags, owner_tags
from rocketmq_operator.core.resource import CreationStatus, RocketMQInstance
from rocketmq_operator.core.settings import OperatorSettings
from rocketmq_operator.core.status import StepResult
from rocketmq_operator.core.vocabulary import DeletionResult, DeletionTrigger, EventType, Presence, Reason
from rocketmq_operator.ports import errors
from rocketmq_operator.ports.protocol import ReconcilingClient
from rocketmq_operator.services import batching, observing
from rocketmq_operator.services.connection_secrets import ConnectionSecrets
from rocketmq_operator.services.deleting import record_of
from rocketmq_operator.services.freshness import FreshViews
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.tracking import CrMemory

logger = logging.getLogger(__name__)

_RETAG_INTERVALS = 5  # poll intervals between two attempts to restore missing owner tags

TERMINAL_RETRY_SECONDS = 600.0
"""How long a CR stalled on a terminal cloud error waits before the same request is tried again."""


class NameHeldByDeletingInstance(errors.CloudError):
    """A create was refused for its name, and no live instance the list shows has that name.

    The real list hides instances being deleted, so the holder is one of them: the name frees up
    when its deletion ends. Not terminal: the create is tried again later; the instance being
    deleted is never adopted.
    """

    reason = Reason.NAME_HELD_BY_DELETING_INSTANCE


@dataclass(frozen=True)
class _Written:
    """What this process last wrote of a CR's creation: its marker, then the instance it created."""

    creation: CreationStatus | None = None
    instance_id: str | None = None
    instance_name: str | None = None


class Reconciler:
    """Acts for every live RocketMQInstance of one account."""

    def __init__(
        self,
        *,
        client: ReconcilingClient,
        observer: observing.Observer,
        settings: OperatorSettings,
        cluster_id: Callable[[], str | None],
        metrics: Metrics,
        memory: CrMemory,
        sweep_outcomes: Callable[[str], batching.DeleteOutcome | None] = lambda _id: None,
        clock: Callable[[], float] = time.time,
        secrets: ConnectionSecrets | None = None,
    ) -> None:
        self._client = client
        self._secrets = secrets
        self._settings = settings
        self._cluster_id = cluster_id
        self._metrics = metrics
        self._memory = memory
        self._sweep_outcomes = sweep_outcomes
        self._clock = clock
        self.views = FreshViews(
            observer,
            strategy=settings.observe_strategy,
            max_age=observing.STALE_INTERVALS * settings.poll_interval_seconds,
            clock=clock,
        )
        self._stalled_until: dict[str, tuple[float, int]] = {}
        self._retagged_at: dict[str, float] = {}
        self._written: dict[str, _Written] = {}
        memory.on_forget(self._forget)

    def _forget(self, uid: str, instance_ids: frozenset[str]) -> None:
        self._stalled_until.pop(uid, None)
        self._retagged_at.pop(uid, None)
        self._written.pop(uid, None)
        self.views.forget(instance_ids)

    def _with_remembered_create(self, cr: RocketMQInstance) -> RocketMQInstance:
        """The CR with the create marker or instance id this process wrote last, if its body predates it.

        Kopf waits only so long for its own patch to come back through the watch; on a loaded API
        server it then hands over the older body. Without this, a CR whose instance was just created
        looks uncreated: at 10,000 CRs that made 25,005 create calls (most refused as name conflicts,
        each then costing a list and an adoption) and 29,203 marker writes for 10,000 instances.
        """
        uid = cr.metadata.uid
        written = self._written.get(uid)
        if written is None:
            return cr
        status = cr.status
        if written.instance_id is not None:
            if status.instance_id is not None:
                del self._written[uid]  # the body has caught up (or says otherwise: it is the truth now)
                return cr
            update: dict[str, object] = {
                "instance_id": written.instance_id,
                "instance_name": written.instance_name,
                "creation": None,
            }
        else:
            if status.creation is not None or status.instance_id is not None:
                del self._written[uid]
                return cr
            update = {"creation": written.creation}
        logger.info("%s: the CR body predates our last create step; using what we wrote", cr.ref)
        return cr.model_copy(update={"status": status.model_copy(update=update)})

    def _remember_create(self, cr: RocketMQInstance, result: StepResult) -> None:
        uid = cr.metadata.uid
        if result.sets("instance_id"):
            if result.status.instance_id:
                self._written[uid] = _Written(
                    instance_id=result.status.instance_id, instance_name=result.status.instance_name
                )
            else:
                self._written.pop(uid, None)  # a re-create cleared it
        elif result.sets("creation") and result.status.creation is not None and not cr.status.instance_id:
            self._written[uid] = _Written(creation=result.status.creation)

    def remembers(self, uid: str) -> bool:
        return uid in self._stalled_until or uid in self._retagged_at

    async def prepare(self, cr: RocketMQInstance) -> StepResult:
        """First create step: persist the pending marker (and nothing else) if a create is due."""
        async with self._memory.step(cr):
            cr = self._with_remembered_create(cr)
            if cr.status.instance_id or cr.spec.instance_id or cr.status.creation is not None or cr.paused:
                return StepResult()
            action = decisions.decide(cr, Seen.unknown())
            result = self._status_for(cr, action, None, StepResult())
            self._remember_create(cr, result)
            return result

    async def reconcile(self, cr: RocketMQInstance) -> StepResult:
        async with self._memory.step(cr):
            seen = self._with_remembered_create(cr)
            result = await self._reconcile(seen)
            self._reassert_create(cr, seen, result)
            self._remember_create(cr, result)
            return result

    @staticmethod
    def _reassert_create(body: RocketMQInstance, seen: RocketMQInstance, result: StepResult) -> None:
        """Write again the instance id that the body lacks and this process remembers writing.

        The pass decided on ``seen`` (the body with what this process wrote), so its patch leaves out
        what ``seen`` already has. If the write that recorded the id never reached the API server (a
        patch lost while the API server restarts), the CR would go Ready with no instance id, for
        good; writing it again costs a write only while a body lags behind, and is idempotent.
        """
        if body.status.instance_id is not None or seen.status.instance_id is None:
            return
        if not result.sets("instance_id"):
            result.status.instance_id = seen.status.instance_id
            if not result.sets("instance_name") and seen.status.instance_name is not None:
                result.status.instance_name = seen.status.instance_name
        if body.status.creation is not None and not result.sets("creation"):
            result.status.creation = None

    async def _reconcile(self, cr: RocketMQInstance) -> StepResult:
        instance_id = cr.status.instance_id
        original_failed = cr.status.failed_instance_ids or []
        if instance_id and instance_id not in original_failed and self._sweep_outcomes(instance_id):
            # The sweep deleted it before a pass of ours saw CREATEFAILED: still a failed create.
            failed = [*original_failed, instance_id]
            cr = cr.model_copy(update={"status": cr.status.model_copy(update={"failed_instance_ids": failed})})
        seen = await self.views.seen_now(instance_id) if instance_id else Seen.unknown()
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
        if isinstance(action, decisions.Create) and view is not None:
            action = self._after_create(cr, action, view, result)
        if view is not None and self._owner_tags_due(cr, view):
            await self._ensure_owner_tags(cr, view.instance_id, result, restoring=True)
        if seen.state == Presence.ABSENT:
            # Proven gone (show answered 404): the status it last had is no longer the cloud's.
            result.status.cloud_status = None
        self._note_sweep(cr, result)
        # The app-facing Secret follows the view just taken; a verdict when it cannot be written.
        secret_verdict = await self._secrets.sync(cr, view, result) if self._secrets is not None else None
        result = self._status_for(cr, action, view, result, override=secret_verdict)
        if (cr.status.failed_instance_ids or []) != original_failed and not result.sets("failed_instance_ids"):
            result.status.failed_instance_ids = cr.status.failed_instance_ids
        return result

    @staticmethod
    def _after_create(
        cr: RocketMQInstance, action: decisions.Create, view: cloud.InstanceView, result: StepResult
    ) -> decisions.Action:
        """What the conditions say once the instance exists: what the next pass would say of the show
        just taken ("instance <id> is CREATING"), not "creating instance <name>". Otherwise that pass
        finds its message changed and writes a PATCH for it alone (1 CR in 50 at 1,000 CRs)."""
        if not result.status.instance_id:
            return action
        created = cr.status.model_copy(update={"instance_id": result.status.instance_id, "creation": None})
        after = decisions.decide(cr.model_copy(update={"status": created}), Seen.present(view))
        return after if isinstance(after, decisions.Observe) else action

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
            patch = result.status
            patch.instance_id = None
            patch.instance_name = None
            patch.creation = None
            patch.cloud_status = None
            patch.endpoints = None
            result.event(EventType.NORMAL, Reason.RECREATING, action.verdict.message)
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
            page = await self._client.list_instances(cloud.ListQuery(name=request.name, exact_match_name=True))
            view, others = decisions.name_holders(cr, request.name, page.instances)
            if view is None and not others:
                raise NameHeldByDeletingInstance(
                    f"the name {request.name} is taken by an instance that the cloud's list no longer "
                    "shows, one that is being deleted; creating once the name is free",
                    operation="create_instance",
                ) from None
            if view is None:
                raise
            result.event(
                EventType.NORMAL,
                Reason.ADOPTED,
                f"found instance {view.instance_id} ({request.name}) created by an "
                "earlier attempt; adopting it instead of creating another",
            )
            instance_id = view.instance_id
        else:
            result.event(
                EventType.NORMAL, Reason.CREATED, f"cloud accepted creation of instance {instance_id} ({request.name})"
            )
        result.status.instance_id = instance_id
        result.status.instance_name = request.name
        result.status.creation = None
        await self._ensure_owner_tags(cr, instance_id, result)
        return await self.views.show(instance_id)

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
        reason = Reason.CLUSTER_ID_UNKNOWN
        message = (
            "waiting to create the instance: the cluster id for its owner tags is not known; set "
            "DMS_CLUSTER_ID, or let the operator read the kube-system namespace"
        )
        result = StepResult(requeue_after=self._settings.poll_interval_seconds)
        if conditions.ready_reason(cr.status.conditions) != reason:
            result.event(EventType.WARNING, reason, message)
        verdict = Verdict(ready=False, reason=reason, message=message, reconciling=True)
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
            result.event(EventType.WARNING, Reason.TAGGING_FAILED, f"could not tag instance {instance_id}: {exc}")
        else:
            if restoring:
                result.event(
                    EventType.NORMAL, Reason.OWNER_TAGS_RESTORED, f"instance {instance_id} had no owner tags; tagged it"
                )

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
        self.views.remember(view)
        result.status.instance_id = instance_id
        result.status.instance_name = view.name
        result.status.adopted = True
        result.event(EventType.NORMAL, Reason.ADOPTED, f"adopted existing instance {instance_id} ({view.name})")
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
            result.event(EventType.NORMAL, Reason.UPDATE_DEFERRED, f"cloud refused the change for now: {exc}")
            result.requeue_after = self._settings.poll_interval_seconds
            return seen.instance
        reason = Reason.RESIZING if delta.resize else Reason.UPDATED
        result.event(EventType.NORMAL, reason, f"applied {', '.join(delta.fields)}")
        return await self.views.show(instance_id)

    def _failed(
        self,
        cr: RocketMQInstance,
        action: decisions.Action,
        exc: errors.CloudError,
        view: cloud.InstanceView | None,
    ) -> StepResult:
        result = StepResult()
        verb = type(action).__name__.lower()
        reason: str
        if isinstance(exc, errors.NameConflict):
            message = (
                f"an instance named {cr.status.creation.name if cr.status.creation else '?'} already exists "
                "and is not owned by this CR; set spec.name to another name"
            )
            reason, terminal = Reason.NAME_CONFLICT, True
        else:
            message, reason, terminal = f"{verb} failed: {exc}", exc.reason, exc.terminal
        if terminal:
            self._stalled_until[cr.metadata.uid] = (
                self._clock() + TERMINAL_RETRY_SECONDS,
                cr.metadata.generation,
            )
            verdict = Verdict(ready=False, reason=reason, message=message, stalled=True)
            result.event(EventType.WARNING, reason, message)
        else:
            verdict = Verdict(ready=False, reason=reason, message=message, reconciling=True)
            retry = exc.retry_after if isinstance(exc, errors.Throttled) else self._settings.poll_interval_seconds
            result.requeue_after = retry
            if isinstance(exc, NameHeldByDeletingInstance):
                # Not before the retry is due, whatever wakes the CR first (the observe timer).
                self._stalled_until[cr.metadata.uid] = (self._clock() + retry, cr.metadata.generation)
                if conditions.ready_reason(cr.status.conditions) != reason:
                    result.event(EventType.NORMAL, reason, message)
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
            result.status.deletion = record_of(
                outcome, attempts=1, trigger=DeletionTrigger.SWEEP_CREATE_FAILED, force_delete=True
            )
            result.event(
                EventType.NORMAL if outcome.result == DeletionResult.ACCEPTED else EventType.WARNING,
                Reason.SWEPT_CREATE_FAILED,
                f"failed instance {instance_id}: {outcome.message}",
            )

    def _status_for(
        self,
        cr: RocketMQInstance,
        action: decisions.Action,
        view: cloud.InstanceView | None,
        result: StepResult,
        *,
        override: Verdict | None = None,
    ) -> StepResult:
        """``override``: what the conditions say instead of the action's verdict, unless that one stalled."""
        if isinstance(action, decisions.MarkCreatePending):
            pending_since = decisions.isoformat(self._clock(), precise=True)
            result.status.creation = status.creation_marker(action.name, pending_since=pending_since)
            result.requeue_after = 0.0
            # No Event: the create follows at once, and its Event ("Created", with the id) says it.
        if view is not None:
            status.mirror(cr, view, result)
        status.note_instance_missing(cr, action.verdict, result)
        verdict = action.verdict if override is None or action.verdict.stalled else override
        verdict = status.throttled(verdict, self._client.throttling())
        status.set_conditions(cr, verdict, result, now=decisions.isoformat(self._clock()))
        result.status = status.without_noop(cr, result.status)
        return result
