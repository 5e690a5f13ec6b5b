"""RocketMQUser: create, observe, update, rotate and delete ACL users for their CRs.

What it shares with topics and groups is ``services.child_lifecycle``'s: the parent's readiness
(nothing until the instance is RUNNING), one shared paged walk of the instance's user list per poll
interval (``ChildObserver``, kind ``user``), the marker written before the first create, adoption only
with ``spec.adopt``, re-creation of a user of ours that disappeared, and the finalizer's rules (Orphan
releases; a user whose instance is being deleted with policy Delete makes no call and is released once
the instance is proven gone). What differs, and is this module's: a user is deleted by one call of its
own (the cloud has no batch for users), released when that call answered or the user is not found.

The secret key. It lives only in a Secret: the one ``spec.secretKeyRef`` names, or the one the
operator generates and owns for ``spec.generateSecretKey``. Each pass reads the Secret's metadata
(cheap); ``status.secretKeyVersion`` records the ``uid/resourceVersion`` whose key the cloud was last
given, and only when the Secret's differs is the key read (``SecretStore.read_key``) and sent, in a
create or an update of the same user. The key is held as a ``SecretStr`` for that one call and never
written to status, an Event, a log line or an error message; a refusal by the cloud carries the
cloud's message, which never repeats it.

The connection Secret (``spec.connectionSecret``): written through ``services.connection_secrets``
(the instance's machinery: ownership, conflicts, renames, one look per process) once the cloud is known
to hold the key, with the instance's endpoint keys from the observer's view of it. Its data hash covers
the endpoints, the access key and the key's Secret version, never the key (``ur.connection_digest``),
so a pass that finds the Secret current reads no key. A write uses the key sent this pass, or else
reads it again from its Secret, only if that Secret is still at the version the cloud was given.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from rocketmq_operator.core import cloud, conditions, connection
from rocketmq_operator.core import user_resource as ur
from rocketmq_operator.core.child_mapping import Parent
from rocketmq_operator.core.child_resource import ChildDeletionStatus
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.connection import MANAGED_BY, MANAGED_BY_LABEL
from rocketmq_operator.core.resource import ConnectionSecretStatus
from rocketmq_operator.core.vocabulary import DeletionResult, EventType, Reason
from rocketmq_operator.ports import errors, protocol
from rocketmq_operator.ports.secrets import SecretApiError, SecretStore
from rocketmq_operator.services.child_lifecycle import (
    ChildLifecycle,
    ChildStep,
    Kind,
    Timing,
    backoff,
    from_error,
    parent_wait,
    release,
    waiting,
)
from rocketmq_operator.services.child_observing import ChildObserver, ChildView
from rocketmq_operator.services.connection_secrets import ConnectionSecrets, Content, Data, Target
from rocketmq_operator.services.observing import Observation
from rocketmq_operator.services.tracking import ForgottenUids
from rocketmq_operator.services.turns import Turns

logger = logging.getLogger(__name__)

NOUN = "user"
_KIND = Kind(noun=NOUN, listed="user", taken_hint=" (its key is then set from the Secret)")


@dataclass
class UserStep(ChildStep):
    status: ur.RocketMQUserStatus


@dataclass(frozen=True)
class _Key:
    """The Secret's version, and its key once read (only when it is to be sent)."""

    version: str
    value: SecretStr | None = None


@dataclass
class _Pass:
    """What one pass learnt that outlives the call that learnt it: the key the cloud now holds."""

    held: _Key | None = None
    """Set once the user is known to exist with the key of this version (and its value, if sent)."""


class UserReconciler:
    def __init__(
        self,
        *,
        client: protocol.UserOperations,
        observer: ChildObserver,
        secrets: SecretStore | None,
        instances: Callable[[str], Observation],
        timing: Timing,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``secrets``: None when the operator may not touch Secrets (``settings.connectionSecrets`` off)."""
        self._client = client
        self._observer = observer
        self._secrets = secrets
        self._instances = instances
        self._timing = timing
        self._clock = clock
        self._life = ChildLifecycle(observer=observer, instances=instances, timing=timing, clock=clock)
        self._turns = Turns()
        self._connection = ConnectionSecrets(secrets, enabled=secrets is not None)
        self._forgotten = ForgottenUids()

    def forget(self, uid: str) -> None:
        self._turns.drop(uid)
        self._connection.forget(uid)
        self._forgotten.add(uid)

    def released(self, uid: str) -> bool:
        """Whether the CR ``uid`` was released (or seen gone) by this process: a later pass has a body
        from before that, and in full it would delete the user again or post a second Event."""
        return uid in self._forgotten

    # ------------------------------------------------------------------ live CRs

    async def reconcile(self, cr: ur.RocketMQUser, parent: Parent | None) -> UserStep:
        async with self._turns.take(cr.metadata.uid):
            step = UserStep(ur.RocketMQUserStatus())
            this = _Pass()
            verdict = await self._reconcile(cr, parent, step, this)
            secret_verdict = await self._sync_connection(cr, parent, this.held, step)
            if secret_verdict is not None and verdict.ready:
                verdict = secret_verdict
            self._life.finish(cr, verdict, step)
            return step

    async def _reconcile(self, cr: ur.RocketMQUser, parent: Parent | None, step: UserStep, this: _Pass) -> Verdict:
        wait = parent_wait(cr.metadata.namespace, cr.spec.instance_ref.name, parent, step, self._timing)
        if wait is not None:
            return wait
        assert parent is not None and parent.instance_id is not None
        instance_id = parent.instance_id

        async def present(view: ChildView, taken: bool) -> Verdict:
            assert isinstance(view, cloud.UserView)
            return await self._present(cr, instance_id, view, taken, step, this)

        async def create() -> Verdict | None:
            return await self._create(cr, instance_id, step, this)

        return await self._life.live(cr, _KIND, instance_id, step, present=present, create=create)

    async def _present(
        self, cr: ur.RocketMQUser, instance_id: str, view: cloud.UserView, taken: bool, step: UserStep, this: _Pass
    ) -> Verdict:
        """The user is this CR's: bring it to the spec and its key to the Secret's, or mirror it."""
        name = cr.cloud_name
        # Adopted or found after a lost answer (``taken``): the key the cloud holds is not known to be ours.
        key = await self._key(cr, step, need=taken)
        if isinstance(key, Verdict):
            return key
        update = ur.update_request(cr.spec, view, key.value)
        if update is not None:
            try:
                await self._client.update_user(instance_id, name, update)
            except errors.CloudError as exc:
                return from_error(exc, step, f"updating user {name}")
            this.held = key
            rotated = update.secret_key is not None
            if rotated:
                step.status.secret_key_version = key.version
                step.event(
                    EventType.NORMAL,
                    Reason.SECRET_KEY_ROTATED,
                    f"set the secret key of user {name} from Secret {cr.metadata.namespace}/{cr.spec.secret_name} "
                    f"(version {key.version})",
                )
            if update.model_copy(update={"secret_key": None}).is_empty():
                # Only the key: nothing the list shows changes, so there is nothing to wait for.
                return Verdict(
                    ready=True, reason=Reason.AVAILABLE, message=f"user {name} exists in instance {instance_id}"
                )
            self._observer.changed(instance_id, _KIND.listed, name)
            step.event(EventType.NORMAL, Reason.UPDATED, f"updated user {name}")
            step.requeue_after = self._timing.verify_interval
            return waiting(Reason.UPDATING, f"updated user {name}; waiting to see the change listed")
        this.held = key
        observed = ur.observed(view)
        for field in ("admin", "default_topic_perm", "default_group_perm"):
            value = getattr(observed, field)
            if getattr(cr.status, field) != value:
                setattr(step.status, field, value)
        return Verdict(ready=True, reason=Reason.AVAILABLE, message=f"user {name} exists in instance {instance_id}")

    async def _create(self, cr: ur.RocketMQUser, instance_id: str, step: UserStep, this: _Pass) -> Verdict | None:
        """Creates the user with the Secret's key (the cloud's errors raised), or says why the key cannot
        be had; the shared lifecycle does the rest."""
        key = await self._key(cr, step, need=True)
        if isinstance(key, Verdict):
            return key
        assert key.value is not None
        await self._client.create_user(instance_id, ur.create_request(cr.spec, key.value))
        this.held = key
        step.status.secret_key_version = key.version
        return None

    # ------------------------------------------------------------------ the Secret

    async def _key(self, cr: ur.RocketMQUser, step: UserStep, *, need: bool) -> _Key | Verdict:
        """The Secret's version, with its key when it is to be sent: ``need``, or the Secret changed
        since the cloud was last given its key. A Verdict when the key cannot be had."""
        namespace, secret, key_name = cr.metadata.namespace, cr.spec.secret_name, cr.spec.secret_key_name
        where = f"Secret {namespace}/{secret}"
        if self._secrets is None:
            return Verdict(
                ready=False,
                reason=Reason.SECRET_KEY_UNAVAILABLE,
                message=f"the operator runs without access to Secrets (settings.connectionSecrets is off), so it "
                f"cannot read the key of user {cr.cloud_name} from {where}",
                stalled=True,
            )
        try:
            meta = await self._secrets.get(namespace, secret)
            if meta is None and cr.spec.generate_secret_key is not None:
                await self._generate(cr, step)
                meta = await self._secrets.get(namespace, secret)
            if meta is None:
                step.requeue_after = self._timing.verify_interval
                return waiting(Reason.SECRET_KEY_UNAVAILABLE, f"{where} does not exist; it must hold key '{key_name}'")
            if cr.spec.generate_secret_key is not None and not _ours(cr, meta.owner_uids, meta.labels):
                return Verdict(
                    ready=False,
                    reason=Reason.SECRET_CONFLICT,
                    message=f"{where} exists and is not this RocketMQUser's; choose another "
                    "spec.generateSecretKey.secretName, or point spec.secretKeyRef at it",
                    stalled=True,
                )
            version = ur.secret_version(meta.uid, meta.resource_version)
            if not need and version == cr.status.secret_key_version:
                return _Key(version)
            found = await self._secrets.read_key(namespace, secret, key_name)
        except SecretApiError as exc:
            step.requeue_after = backoff(2)
            return waiting(Reason.SECRET_KEY_UNAVAILABLE, f"reading the key of user {cr.cloud_name}: {exc}")
        if found is None or found.value is None or not found.value.get_secret_value():
            step.requeue_after = self._timing.verify_interval
            missing = "does not exist" if found is None else f"has no key '{key_name}'"
            return waiting(Reason.SECRET_KEY_UNAVAILABLE, f"{where} {missing}")
        # The version read with the key: it is the one the key belongs to.
        return _Key(ur.secret_version(found.meta.uid, found.meta.resource_version), found.value)

    async def _generate(self, cr: ur.RocketMQUser, step: UserStep) -> None:
        assert self._secrets is not None and cr.spec.generate_secret_key is not None
        body = ur.generated_secret_body(cr, ur.generate_key(cr.spec.access_key))
        try:
            await self._secrets.create(cr.metadata.namespace, body)
        except SecretApiError as exc:
            if not exc.conflict:  # 409: made meanwhile (an earlier pass): looked at next
                raise
            return
        step.event(
            EventType.NORMAL,
            Reason.SECRET_KEY_GENERATED,
            f"generated a secret key for user {cr.cloud_name} into Secret "
            f"{cr.metadata.namespace}/{cr.spec.generate_secret_key.secret_name} (key '{ur.GENERATED_KEY}')",
        )

    # ------------------------------------------------------------------ the connection Secret

    async def _sync_connection(
        self, cr: ur.RocketMQUser, parent: Parent | None, held: _Key | None, step: UserStep
    ) -> Verdict | None:
        """Write, update or remove the user's connection Secret; a verdict when it cannot be written."""
        if cr.spec.connection_secret is None and cr.status.connection_secret is None:
            return None
        target = Target(
            owner=ur.secret_owner(cr, instance=cr.spec.instance_ref.name),
            wanted=cr.spec.connection_secret.name if cr.spec.connection_secret else None,
            recorded=cr.status.connection_secret,
            in_conflict=conditions.ready_reason(cr.status.conditions) == Reason.SECRET_CONFLICT,
        )
        content: Content | None = None
        if held is not None and parent is not None and parent.instance_id is not None:
            view = self._instances(parent.instance_id).instance
            if view is not None and view.instance_id == parent.instance_id and connection.has_endpoints(view):
                endpoints = connection.view_data(view, parent.spec_defaults)
                digest = ur.connection_digest(endpoints, cr.spec.access_key, held.version)
                content = Content(digest, lambda: self._connection_data(cr, endpoints, held))

        def record(status: ConnectionSecretStatus | None) -> None:
            step.status.connection_secret = status

        return await self._connection.sync_owned(target, content, step, record)

    async def _connection_data(self, cr: ur.RocketMQUser, endpoints: dict[str, str], held: _Key) -> Data | None:
        """The data to write: with the key sent this pass, or else the key read again from its Secret if
        that is still the version the cloud holds (None otherwise: the next pass rotates, then writes)."""
        key = held.value
        if key is None:
            assert self._secrets is not None  # a key is held only where Secrets are read
            found = await self._secrets.read_key(cr.metadata.namespace, cr.spec.secret_name, cr.spec.secret_key_name)
            if found is None or found.value is None or not found.value.get_secret_value():
                return None
            if ur.secret_version(found.meta.uid, found.meta.resource_version) != held.version:
                return None
            key = found.value
        return ur.connection_data(endpoints, cr.spec.access_key, key)

    # ------------------------------------------------------------------ CRs being deleted

    async def finalize(self, cr: ur.RocketMQUser, parent: Parent | None) -> UserStep:
        async with self._turns.take(cr.metadata.uid):
            step = UserStep(ur.RocketMQUserStatus())
            verdict = await self._finalize(cr, parent, step)
            if not step.released:
                self._life.finish(cr, verdict, step)
            return step

    async def _finalize(self, cr: ur.RocketMQUser, parent: Parent | None, step: UserStep) -> Verdict:
        settled = self._life.settle(cr, NOUN, parent, step)
        if settled is not None:
            return settled
        name = cr.cloud_name
        instance_id = cr.status.instance_id
        assert instance_id is not None  # settle released a user without one
        attempts = (cr.status.deletion.attempts if cr.status.deletion else 0) + 1
        try:
            await self._client.delete_user(instance_id, name)
        except errors.InstanceNotFound:
            return release(step, Reason.DELETED_WITH_INSTANCE, f"instance {instance_id} is gone, and {name} with it")
        except errors.NotFound:
            return release(step, Reason.DELETED, f"user {name} is not in instance {instance_id} (any more)")
        except errors.CloudError as exc:
            message = f"deleting user {name}: {exc}"
            step.status.deletion = ChildDeletionStatus(
                instance_id=instance_id, result=DeletionResult.FAILED, attempts=attempts, last_error=message
            )
            step.requeue_after = backoff(attempts)
            step.event(EventType.WARNING, Reason.DELETE_FAILED, message)
            return waiting(exc.reason, message)
        self._observer.changed(instance_id, _KIND.listed, name)
        return release(step, Reason.DELETED, f"deleted user {name} from instance {instance_id}")


def _ours(cr: ur.RocketMQUser, owner_uids: tuple[str, ...], labels: Mapping[str, str]) -> bool:
    return bool(cr.metadata.uid) and cr.metadata.uid in owner_uids and labels.get(MANAGED_BY_LABEL) == MANAGED_BY
