"""What to do next for one CR, decided from one observation: pure functions, no I/O.

Why pure (ACK decides once per pass from one observation; crossplane's reconciler decides and
providers only do I/O): every branch of the lifecycle is a row in a table test, and the services
that do the I/O stay thin. ``decide`` covers a live CR, ``decide_deletion`` a CR being deleted.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from rocketmq_operator.core import cloud, evidence
from rocketmq_operator.core.conditions import Verdict, find
from rocketmq_operator.core.mapping import Delta, create_request, diff, has_owner_tags, instance_name, owned_by_cr
from rocketmq_operator.core.resource import Condition, DeletionPolicy, RocketMQInstance
from rocketmq_operator.core.vocabulary import ConditionType, DeletionResult, Presence, Reason


@dataclass(frozen=True)
class Seen:
    """The instance as the last observation saw it: present (with its view), absent, or unknown."""

    state: Presence
    instance: cloud.InstanceView | None = None
    error_reason: str | None = None
    error_message: str | None = None
    error_terminal: bool = False
    """The observation failed in a way retrying cannot fix (refused credentials): a person must act."""

    @classmethod
    def present(cls, view: cloud.InstanceView) -> Seen:
        return cls(Presence.PRESENT, view)

    @classmethod
    def absent(cls) -> Seen:
        return cls(Presence.ABSENT)

    @classmethod
    def unknown(cls, reason: str | None = None, message: str | None = None, *, terminal: bool = False) -> Seen:
        return cls(Presence.UNKNOWN, None, reason, message, terminal)


# ---- live CRs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """Base of every decision; ``verdict`` is what the conditions should say after it."""

    verdict: Verdict


@dataclass(frozen=True)
class MarkCreatePending(Action):
    """Persist the create-pending marker (and the name) before calling create."""

    name: str = ""


@dataclass(frozen=True)
class Create(Action):
    request: cloud.CreateInstanceRequest | None = None


@dataclass(frozen=True)
class Adopt(Action):
    instance_id: str = ""


@dataclass(frozen=True)
class Update(Action):
    delta: Delta = field(default_factory=Delta)


@dataclass(frozen=True)
class Recreate(Action):
    """The failed instance is gone (swept); start a fresh create."""

    failed_instance_id: str = ""


@dataclass(frozen=True)
class Observe(Action):
    """Nothing to change in the cloud; mirror the observation into status."""


def _verdict(ready: bool, reason: str, message: str, *, reconciling: bool = False, stalled: bool = False) -> Verdict:
    return Verdict(ready=ready, reason=reason, message=message, reconciling=reconciling, stalled=stalled)


def decide(cr: RocketMQInstance, seen: Seen) -> Action:
    status = cr.status
    instance_id = status.instance_id
    if cr.paused:
        return Observe(_verdict(_is_ready(cr, seen), Reason.PAUSED, "reconciliation is paused by annotation"))

    if not instance_id:
        if cr.spec.instance_id:
            return Adopt(
                _verdict(False, Reason.ADOPTING, f"adopting instance {cr.spec.instance_id}", reconciling=True),
                instance_id=cr.spec.instance_id,
            )
        name = instance_name(cr)
        if status.creation is None:
            return MarkCreatePending(
                _verdict(False, Reason.CREATING, f"creating instance {name}", reconciling=True), name=name
            )
        return Create(
            _verdict(False, Reason.CREATING, f"creating instance {status.creation.name}", reconciling=True),
            request=create_request(cr).model_copy(update={"name": status.creation.name}),
        )

    if seen.state == Presence.UNKNOWN:
        reason = seen.error_reason or Reason.OBSERVING
        message = seen.error_message or f"waiting for the first observation of instance {instance_id}"
        # Ready stays as it was (the instance is probably fine; we just cannot see it), but a
        # terminal failure (refused credentials) will not heal by itself: Stalled says so.
        terminal = seen.error_terminal
        return Observe(_verdict(_previously_ready(cr), reason, message, reconciling=not terminal, stalled=terminal))

    if seen.state == Presence.ABSENT or seen.instance is None:
        failed = status.failed_instance_ids or []
        if instance_id in failed:
            if cr.spec.recreate_on_failure:
                return Recreate(
                    _verdict(
                        False,
                        Reason.RECREATING,
                        f"instance {instance_id} failed to create and was deleted; creating a new one",
                        reconciling=True,
                    ),
                    failed_instance_id=instance_id,
                )
            return Observe(
                _verdict(
                    False,
                    Reason.CREATE_FAILED,
                    f"the cloud failed to create instance {instance_id}; it was "
                    "deleted. Set spec.recreateOnFailure: true to retry, or recreate the CR",
                    stalled=True,
                )
            )
        return Observe(
            _verdict(
                False,
                Reason.INSTANCE_MISSING,
                f"instance {instance_id} no longer exists in the cloud (deleted "
                "outside the operator?); delete this CR, or recreate it to get a new instance",
                stalled=True,
            )
        )

    view = seen.instance
    state = view.status
    if state == cloud.CREATING:
        return Observe(_verdict(False, Reason.CREATING, f"instance {instance_id} is CREATING", reconciling=True))
    if state == cloud.CREATEFAILED:
        then = "a new one will be created" if cr.spec.recreate_on_failure else "it will be deleted by the sweep"
        return Observe(
            _verdict(
                False,
                Reason.CREATE_FAILED,
                f"the cloud failed to create instance {instance_id}; {then}",
                reconciling=cr.spec.recreate_on_failure,
                stalled=not cr.spec.recreate_on_failure,
            )
        )
    if state == cloud.RUNNING:
        delta = diff(cr, view)
        if not delta.empty:
            what = ", ".join(delta.fields)
            reason = Reason.RESIZING if delta.resize is not None else Reason.UPDATING
            return Update(_verdict(False, reason, f"applying {what}", reconciling=True), delta=delta)
        return Observe(_verdict(True, Reason.AVAILABLE, f"instance {instance_id} is RUNNING"))
    if state == cloud.DELETING and instance_id in (status.failed_instance_ids or []):
        # The sweep is deleting the instance the cloud failed to create; the name frees up after.
        then = "then a new one will be created" if cr.spec.recreate_on_failure else "then delete or recreate this CR"
        return Observe(
            _verdict(
                False,
                Reason.DELETING_FAILED_INSTANCE,
                f"the cloud failed to create instance {instance_id}; it is being deleted, {then}",
                reconciling=cr.spec.recreate_on_failure,
                stalled=not cr.spec.recreate_on_failure,
            )
        )
    if state == cloud.RECYCLE:
        return Observe(
            _verdict(
                False,
                Reason.INSTANCE_RECYCLED,
                f"instance {instance_id} was deleted outside the operator and is in the cloud's recycle "
                "bin; restore it there, or delete this CR",
                stalled=True,
            )
        )
    if state == cloud.DELETING:
        return Observe(
            _verdict(
                False,
                Reason.DELETING_OUT_OF_BAND,
                f"instance {instance_id} is being deleted outside the operator",
                stalled=True,
            )
        )
    if state in (cloud.EXTENDEDFAILED, cloud.FROZEN, cloud.FREEZING):
        reason = {cloud.EXTENDEDFAILED: Reason.RESIZE_FAILED}.get(state, Reason.FROZEN)
        return Observe(_verdict(False, reason, f"instance {instance_id} is {state}", stalled=True))
    if state == cloud.ERROR:
        return Observe(_verdict(False, Reason.INSTANCE_ERROR, f"the cloud reports instance {instance_id} as ERROR"))
    if state in cloud.TRANSITIONAL_STATUSES:
        return Observe(
            _verdict(False, state.title().replace("_", ""), f"instance {instance_id} is {state}", reconciling=True)
        )
    return Observe(_verdict(False, Reason.UNKNOWN_STATUS, f"instance {instance_id} has status {state!r}"))


def settled(cr: RocketMQInstance) -> bool:
    """Ready at its current generation with no step under way: nothing for a restarted operator to
    resume. The periodic pass goes on observing it, within a poll interval of the restart.

    Why it matters: a restart used to resume every CR at once. At 10,000 CRs those passes outran
    the first list walks, found the snapshot stale and asked show instead (3,212 shows in the 40 s
    after a restart: 442 calls per interval against a target of 201).
    """
    ready = _ready_condition(cr)
    generation = cr.metadata.generation
    return (
        ready is not None
        and ready.status == "True"
        and generation is not None
        and ready.observed_generation == generation
        and cr.status.observed_generation == generation
        and cr.status.instance_id is not None
        and cr.status.creation is None
    )


def _ready_condition(cr: RocketMQInstance) -> Condition | None:
    return find(cr.status.conditions, ConditionType.READY)


def _is_ready(cr: RocketMQInstance, seen: Seen) -> bool:
    return seen.state == Presence.PRESENT and seen.instance is not None and seen.instance.status == cloud.RUNNING


def _previously_ready(cr: RocketMQInstance) -> bool:
    ready = _ready_condition(cr)
    return ready is not None and ready.status == "True"


CREATE_CLOCK_SKEW_SECONDS = 120.0
"""An untagged instance with our pending name, created at most this long before the marker, is ours."""


def name_holders(
    cr: RocketMQInstance, name: str, listed: Iterable[cloud.InstanceView]
) -> tuple[cloud.InstanceView | None, list[cloud.InstanceView]]:
    """This CR's instance named ``name`` among ``listed``, if there is one, and the other live ones of that name.

    Ours: tagged with this CR's uid, or untagged (tagging failed after our create) and created
    after our create-pending marker. An instance being deleted is never this CR's to adopt, nor a
    live holder of the name: a cloud whose list shows deleting instances must not make the
    operator adopt one.
    """
    marker = cr.status.creation
    since = epoch(marker.pending_since) if marker else 0.0
    own: cloud.InstanceView | None = None
    others: list[cloud.InstanceView] = []
    for view in listed:
        if view.name != name or view.status in (cloud.DELETING, cloud.RECYCLE):
            continue
        created = (view.created_at or 0) / 1000.0
        ours = owned_by_cr(view, cr.metadata.uid) or (
            not (view.tags and has_owner_tags(view))
            and marker is not None
            and created >= since - CREATE_CLOCK_SKEW_SECONDS
        )
        if ours and own is None:
            own = view
        else:
            others.append(view)
    return own, others


# ---- policies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyChoice:
    policy: DeletionPolicy
    source: str
    warning: str | None = None


def resolve_policy(cr: RocketMQInstance, namespace_value: str | None, default: DeletionPolicy) -> PolicyChoice:
    """CR, then namespace annotation, then operator default; adopted instances default to Orphan.

    An unknown namespace annotation value resolves to Orphan: a typo must never delete data.
    """
    adopted = bool(cr.spec.instance_id or cr.status.adopted)
    return policy_of(cr.spec.deletion_policy, adopted=adopted, namespace_value=namespace_value, default=default)


def policy_of(
    spec_policy: DeletionPolicy | None, *, adopted: bool, namespace_value: str | None, default: DeletionPolicy
) -> PolicyChoice:
    """``resolve_policy`` from the facts alone (what the index of instances keeps for their children)."""
    if spec_policy is not None:
        return PolicyChoice(spec_policy, "spec.deletionPolicy")
    if adopted:
        return PolicyChoice(DeletionPolicy.ORPHAN, "adopted instance")
    if namespace_value is not None:
        try:
            return PolicyChoice(DeletionPolicy(namespace_value.strip()), "namespace annotation")
        except ValueError:
            return PolicyChoice(
                DeletionPolicy.ORPHAN,
                "namespace annotation",
                warning=f"namespace annotation has unknown deletion policy {namespace_value!r} "
                "(want Delete or Orphan); keeping the instance",
            )
    return PolicyChoice(default, "operator default")


# ---- CRs being deleted ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeletionStep:
    message: str


@dataclass(frozen=True)
class Release(DeletionStep):
    """Drop the finalizer: nothing (more) to delete in the cloud."""

    reason: str = Reason.DELETED


@dataclass(frozen=True)
class FindByName(DeletionStep):
    """A create may have reached the cloud without its id being recorded: look it up first."""

    name: str = ""


@dataclass(frozen=True)
class Submit(DeletionStep):
    instance_id: str = ""
    force_delete: bool = False


@dataclass(frozen=True)
class AwaitGone(DeletionStep):
    """Accepted by the cloud (or deleting already): wait for proof that the instance is gone."""

    instance_id: str = ""


@dataclass(frozen=True)
class HoldBack(DeletionStep):
    """The cloud refuses to delete an instance that is still being created: wait for it to settle."""

    instance_id: str = ""


@dataclass(frozen=True)
class Undone(DeletionStep):
    """The cloud accepted the deletion, then the instance came back (ERROR, RUNNING): send it again later."""

    instance_id: str = ""
    cloud_status: str = ""


def decide_deletion(cr: RocketMQInstance, policy: PolicyChoice, look: evidence.Look) -> DeletionStep:
    """The next deletion step, from the latest look at the instance.

    Only proof (show 404, show ``RECYCLE``, the recycle-bin list) releases the finalizer. An
    instance that is merely not listed is still being deleted as far as anyone can tell.
    """
    instance_id = cr.status.instance_id or cr.spec.instance_id
    if policy.policy == DeletionPolicy.ORPHAN:
        what = f"instance {instance_id}" if instance_id else "no instance"
        return Release(f"deletion policy Orphan ({policy.source}): {what} left in the cloud", reason=Reason.ORPHANED)
    if not instance_id:
        if cr.status.creation is not None:
            return FindByName(
                f"looking up instance {cr.status.creation.name} (create was in flight)",
                name=cr.status.creation.name,
            )
        return Release("no cloud instance was created", reason=Reason.NOTHING_TO_DELETE)
    if look.sighting == evidence.Sighting.GONE:
        return Release(f"instance {instance_id} is gone: the cloud answers 404 for it", reason=Reason.DELETED)
    if look.sighting == evidence.Sighting.RECYCLED:
        return Release(f"instance {instance_id} is in the cloud's recycle bin", reason=Reason.RECYCLED)
    if look.sighting == evidence.Sighting.DELETING:
        return AwaitGone(f"instance {instance_id} is DELETING", instance_id=instance_id)
    if look.sighting != evidence.Sighting.PRESENT or look.view is None:
        message = look.error_message or f"waiting for the cloud to confirm that instance {instance_id} is gone"
        return AwaitGone(message, instance_id=instance_id)
    state = look.view.status
    if state == cloud.CREATING:
        return HoldBack(
            f"instance {instance_id} is still CREATING; it will be deleted when it settles",
            instance_id=instance_id,
        )
    deletion = cr.status.deletion
    accepted = (
        deletion is not None and deletion.result == DeletionResult.ACCEPTED and deletion.instance_id == instance_id
    )
    if accepted and deletion is not None and deletion.submitted_at:
        accepted_at = epoch(deletion.submitted_at)
        if evidence.failed_after_acceptance(look, accepted_at=accepted_at):
            return Undone(
                f"the cloud accepted the deletion of instance {instance_id}, but the instance is {state} "
                "again; it will be sent again",
                instance_id=instance_id,
                cloud_status=state or "",
            )
        return AwaitGone(f"deletion of instance {instance_id} accepted; waiting for the cloud", instance_id=instance_id)
    return Submit(f"deleting instance {instance_id}", instance_id=instance_id, force_delete=cr.spec.force_delete)


def epoch(timestamp: str) -> float:
    """Epoch seconds of an RFC 3339 stamp that ``isoformat`` wrote; 0 for a malformed one."""
    try:
        return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def isoformat(epoch: float, *, precise: bool = False) -> str:
    """RFC 3339 in UTC; ``precise`` keeps milliseconds, for stamps compared with list walk times."""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    if precise:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
