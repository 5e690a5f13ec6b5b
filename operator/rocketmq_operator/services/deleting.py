"""Carries out the deletion of a CR: the only place that acts on a RocketMQInstance being deleted.

Why a service apart from the live reconciler: a CR being deleted follows its own flow (resolve the
policy, submit to the batcher, wait for the confirmer's proof, release), with its own memory (the
deletion status last written). Each call does at most one step, and the batch result is returned
to be written before the finalizer can go, so a crash between steps loses nothing.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from rocketmq_operator.core import cloud, decisions, evidence, status
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.resource import DeletionPolicy, DeletionStatus, RocketMQInstance
from rocketmq_operator.core.settings import OperatorSettings
from rocketmq_operator.core.status import Event, StepResult
from rocketmq_operator.core.vocabulary import DeletionResult, DeletionTrigger, EventType, Reason
from rocketmq_operator.ports import errors
from rocketmq_operator.ports.protocol import ExternalClient
from rocketmq_operator.services import batching, confirming, observing
from rocketmq_operator.services.freshness import FIRST_WALK_PATIENCE
from rocketmq_operator.services.tracking import CrMemory

logger = logging.getLogger(__name__)


class DeletionFlow:
    """Deletes the instances of the CRs of one account that are being deleted."""

    def __init__(
        self,
        *,
        client: ExternalClient,
        observer: observing.Observer,
        batcher: batching.DeletionBatcher,
        confirmer: confirming.DeletionConfirmer,
        settings: OperatorSettings,
        memory: CrMemory,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._observer = observer
        self._batcher = batcher
        self._confirmer = confirmer
        self._settings = settings
        self._memory = memory
        self._clock = clock
        self._deletions: dict[str, DeletionStatus] = {}  # uid -> the status.deletion we last wrote
        memory.on_forget(self._forget)

    def _forget(self, uid: str, instance_ids: frozenset[str]) -> None:
        self._deletions.pop(uid, None)
        for instance_id in instance_ids:
            self._confirmer.forget(instance_id)

    def remembers(self, uid: str) -> bool:
        return uid in self._deletions

    def released(self, uid: str) -> bool:
        """Whether this process released the CR ``uid`` already (or saw it gone).

        A pass can still come for it: kopf waits only ``consistency_timeout`` for its own patch (the
        finalizer's removal) to come back through the watch, and on a loaded API server it then
        hands over the body from before. That pass has nothing to do; done in full it costs a show
        (the 404 again), a status write and an Event, or, on a body from before the acceptance, a
        batch call that the cloud answers "already gone".
        """
        return self._memory.forgotten(uid)

    async def await_proof(self, instance_id: str, *, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Before its CR is parsed, a pass of a CR whose acceptance is on record waits here, up to
        ``timeout`` (``delete_proof_wait_seconds``), for news of the deletion this process confirms; then
        ``finalize`` (told ``waited``) decides at once. ``False`` at once when no deletion of the
        instance is being confirmed: ``finalize`` then waits itself.

        Why before: every CR being deleted has a pass waiting for its proof, for as long as the cloud
        takes; at 10,000 CRs deleted at once they all wait together, and a parsed CR is about 10 KiB
        that the wait has no use for.
        """
        wait = self._settings.delete_proof_wait_seconds if timeout is None else timeout
        return await self._confirmer.wait(instance_id, timeout=wait)

    async def finalize(
        self,
        cr: RocketMQInstance,
        *,
        namespace_policy: str | None,
        default_policy: DeletionPolicy,
        waited: bool = False,
        settle: bool = True,
    ) -> StepResult:
        """``waited``: this pass waited for the proof already (``await_proof``). ``settle``: after an
        accepted submission, wait here (``delete_confirm_wait_seconds``) for the proof; a caller that
        puts the acceptance on record itself at once passes False and waits apart (``awaiting_proof``)."""
        async with self._memory.step(cr):
            cr = self._with_remembered_deletion(cr)
            choice = decisions.resolve_policy(cr, namespace_policy, default_policy)
            result = StepResult()
            if choice.warning:
                result.event(EventType.WARNING, Reason.UNKNOWN_DELETION_POLICY, choice.warning)
            instance_id = cr.status.instance_id or cr.spec.instance_id
            proof_wait = 0.0 if waited else self._settings.delete_proof_wait_seconds
            look = (
                await self._deletion_look(cr, instance_id, wait=proof_wait)
                if choice.policy == DeletionPolicy.DELETE
                else evidence.unknown()
            )
            step = decisions.decide_deletion(cr, choice, look)
            try:
                await self._deletion_step(cr, step, result)
                if isinstance(step, decisions.Submit):
                    wait = self._settings.delete_confirm_wait_seconds if settle else 0.0
                    await self._settle_at_once(cr, choice, result, wait=wait)
            except errors.CloudError as exc:
                result.requeue_after = backoff(cr.status.deletion.attempts if cr.status.deletion else 0, exc)
                self._conditions(cr, result, Reason.DELETE_FAILED, f"{type(step).__name__}: {exc}", ok=False)
            if result.status.deletion is not None:
                self._deletions[cr.metadata.uid] = result.status.deletion
            return result

    async def _settle_at_once(
        self, cr: RocketMQInstance, choice: decisions.PolicyChoice, result: StepResult, *, wait: float
    ) -> None:
        """After an accepted submission, wait here (up to ``wait``) for the proof; with no wait, the
        confirmation of the deletion starts and the caller waits for it (``await_proof``).

        Proven within the wait, the CR is released in this same pass: its result and the finalizer's
        removal go to the API server together (one status write, one finalizer patch) with one Event
        that carries both, instead of a pass, a progress annotation and an Event for each. Not proven
        yet: the acceptance is written now and the next pass goes on waiting, as before.
        """
        deletion = result.status.deletion
        if deletion is None or deletion.result != DeletionResult.ACCEPTED or not self._memory.tracks(cr.metadata.uid):
            return  # (a CR gone meanwhile: nothing more is learned for it)
        accepted = cr.model_copy(update={"status": cr.status.model_copy(update={"deletion": deletion})})
        look = await self._deletion_look(accepted, deletion.instance_id, wait=wait)
        step = decisions.decide_deletion(accepted, choice, look)
        if not isinstance(step, decisions.Release):
            return
        result.released = True
        result.requeue_after = None
        result.events = _folded(result.events, Event(EventType.NORMAL, step.reason, step.message))

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

    async def _deletion_look(self, cr: RocketMQInstance, instance_id: str | None, *, wait: float) -> evidence.Look:
        """The latest look at the instance of a CR being deleted.

        A deletion whose acceptance the CR records waits (a bounded, shared wait: no thread, no call of
        its own) up to ``wait`` for the confirmer's proof. Until the proof there is nothing new to
        write, and every pass that ends without it costs a status write (kopf's record of the retry):
        hence the long ``delete_proof_wait_seconds`` there. Any other pass has something to write, its
        own result, so it waits ``delete_confirm_wait_seconds`` at most. Otherwise the instance is about
        to be submitted: a list walk that shows it says in what status; one that does not (gone, or
        deleting already) is checked by show.
        """
        if not instance_id:
            return evidence.unknown()
        deletion = cr.status.deletion
        if deletion is not None and deletion.result == DeletionResult.ACCEPTED and deletion.instance_id == instance_id:
            return await self._confirmer.confirm(
                instance_id,
                accepted_at=decisions.epoch(deletion.submitted_at or ""),
                force=bool(deletion.force_delete),
                timeout=wait,
            )
        wait = min(wait, self._settings.delete_confirm_wait_seconds)
        since = self._confirmer.following_since(instance_id)
        if since is not None:
            return await self._confirmer.confirm(
                instance_id, accepted_at=since, force=cr.spec.force_delete, timeout=wait
            )
        observation = self._observer.lookup(instance_id)
        if (
            observation.instance is None
            and observation.error is None
            and await self._observer.first_walk(timeout=FIRST_WALK_PATIENCE)
        ):
            # A restarted operator whose CRs are deleted at once: the walk under way answers them all.
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
            result.event(EventType.NORMAL, step.reason, step.message)
            return
        if isinstance(step, decisions.FindByName):
            page = await self._client.list_instances(cloud.ListQuery(name=step.name, exact_match_name=True))
            view, _others = decisions.name_holders(cr, step.name, page.instances)
            if view is None:
                result.released = True
                result.event(
                    EventType.NORMAL,
                    Reason.NOTHING_TO_DELETE,
                    f"no instance named {step.name} exists; nothing to delete",
                )
                return
            result.status.instance_id = view.instance_id
            result.status.instance_name = view.name
            result.status.creation = None
            result.event(EventType.NORMAL, Reason.ADOPTED, f"found instance {view.instance_id} created before a crash")
            result.requeue_after = 0.0
            return
        if isinstance(step, decisions.HoldBack):
            result.status.deletion = status.amended_deletion(
                cr, instance_id=step.instance_id, result=DeletionResult.HELD_BACK, last_error=step.message
            )
            self._conditions(cr, result, Reason.WAITING_FOR_CREATE, step.message, ok=True)
            result.requeue_after = min(self._settings.poll_interval_seconds, 30.0)
            return
        if isinstance(step, decisions.Undone):
            result.status.deletion = status.amended_deletion(cr, result=DeletionResult.FAILED, last_error=step.message)
            result.status.cloud_status = step.cloud_status or None
            result.event(EventType.WARNING, Reason.DELETE_FAILED, step.message)
            self._conditions(cr, result, Reason.DELETE_FAILED, step.message, ok=False)
            self._confirmer.forget(step.instance_id)
            result.requeue_after = backoff(cr.status.deletion.attempts if cr.status.deletion else 0, None)
            return
        if isinstance(step, decisions.AwaitGone):
            self._conditions(cr, result, Reason.DELETING, step.message, ok=True)
            result.requeue_after = self._settings.verify_interval_seconds
            return
        assert isinstance(step, decisions.Submit)
        self._conditions(cr, result, Reason.DELETING, step.message, ok=True)
        outcome = await self._batcher.submit(step.instance_id, force_delete=step.force_delete)
        attempts = (cr.status.deletion.attempts if cr.status.deletion else 0) + 1
        result.status.deletion = record_of(
            outcome, attempts=attempts, trigger=DeletionTrigger.CR_DELETED, force_delete=step.force_delete
        )
        if outcome.result == DeletionResult.ACCEPTED:
            result.event(EventType.NORMAL, Reason.DELETE_ACCEPTED, f"instance {step.instance_id}: {outcome.message}")
            self._conditions(cr, result, Reason.DELETE_ACCEPTED, outcome.message, ok=True)
            result.requeue_after = 0.0
        elif outcome.result == DeletionResult.NOT_FOUND:
            result.event(EventType.NORMAL, Reason.DELETE_NOT_FOUND, f"instance {step.instance_id} is already gone")
            self._conditions(cr, result, Reason.DELETING, outcome.message, ok=True)
            result.requeue_after = 0.0
        else:
            held = outcome.result == DeletionResult.WRONG_STATE
            reason = Reason.DELETE_HELD_BACK if held else Reason.DELETE_FAILED
            result.event(EventType.WARNING, reason, f"instance {step.instance_id}: {outcome.message}")
            self._conditions(cr, result, reason, outcome.message, ok=False)
            result.requeue_after = backoff(attempts, outcome.error)

    def _conditions(self, cr: RocketMQInstance, result: StepResult, reason: Reason, message: str, *, ok: bool) -> None:
        verdict = Verdict(ready=False, reason=reason, message=message, reconciling=ok, stalled=False)
        now = decisions.isoformat(self._clock())
        status.set_conditions(cr, status.throttled(verdict, self._client.throttling()), result, now=now)


def awaiting_proof(result: StepResult) -> str | None:
    """The instance whose deletion this pass had the cloud accept, when the CR is not released yet:
    what a caller that puts the acceptance on record itself (``finalize(settle=False)``) then waits for."""
    deletion = result.status.deletion
    if result.released or deletion is None or deletion.result != DeletionResult.ACCEPTED:
        return None
    return deletion.instance_id


def settled(accepted: StepResult, then: StepResult, *, recorded: bool) -> StepResult:
    """One pass's result when its acceptance (``accepted``) was followed by a look after the wait
    (``then``): ``then``'s status, on top of the acceptance's unless that is on record already
    (``recorded``); and when ``then`` releases the CR, one Event for the whole deletion, as
    ``finalize`` gives when the proof comes within its own wait."""
    if not recorded:
        for name in then.status.model_fields_set:
            setattr(accepted.status, name, getattr(then.status, name))
        then.status = accepted.status
    if then.released and then.events:
        then.events = _folded([*accepted.events, *then.events[:-1]], then.events[-1])
    else:
        then.events = [*accepted.events, *then.events]
    return then


def _folded(events: list[Event], release: Event) -> list[Event]:
    """The acceptance's Event folded into the release's: one Event for the whole deletion."""
    said = "; ".join(e.message for e in events if e.reason == Reason.DELETE_ACCEPTED)
    kept = [e for e in events if e.reason != Reason.DELETE_ACCEPTED]
    return [*kept, Event(release.type, release.reason, f"{release.message} ({said})" if said else release.message)]


def record_of(
    outcome: batching.DeleteOutcome, *, attempts: int, trigger: DeletionTrigger, force_delete: bool
) -> DeletionStatus:
    """``status.deletion`` for a batcher's outcome."""
    return status.deletion_record(
        instance_id=outcome.instance_id,
        batch_id=outcome.batch_id,
        batch_size=outcome.batch_size,
        # Milliseconds: the next pass waits for a list walk that started after this moment.
        submitted_at=decisions.isoformat(outcome.submitted_at, precise=True),
        result=outcome.result,
        message=outcome.message,
        attempts=attempts,
        force_delete=force_delete,
        trigger=trigger,
    )


def backoff(attempts: int, error: errors.CloudError | None) -> float:
    """Jittered exponential backoff, 2 s doubling to 5 min; never sooner than a Retry-After."""
    base = min(300.0, 2.0 * 2.0 ** max(0, attempts - 1))
    delay = base * random.uniform(0.5, 1.5)
    if isinstance(error, errors.Throttled):
        delay = max(delay, error.retry_after)
    return delay
