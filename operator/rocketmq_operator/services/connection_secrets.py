"""Keeps the connection Secrets (``spec.connectionSecret``) in line with the cloud.

Two kinds of CR own one: a RocketMQInstance (``sync``: its endpoints) and a RocketMQUser
(``sync_owned``, called by ``services.users``: its instance's endpoints and its own keys). Both go
through the same rules below; the owner is described by a ``core.connection.SecretOwner`` and what to
write by a ``Content``: the hash to record, and how to get the data when a write is due (so a user's
secret key is read only then, never on a pass that finds the Secret current).

Why a collaborator of the reconciler and not part of it: the reconciler acts on the cloud; this acts
on the API server, through its own narrow port (``ports.secrets.SecretStore``), once the pass knows
the instance's view. It returns nothing but a verdict to report when the Secret cannot be written;
what it wrote goes into the pass's status patch (``status.connectionSecret``).

Writes are rare: ``status.connectionSecret`` records the name and a hash of the data last written,
and a pass whose data hashes the same makes no call at all (after one look per CR per operator
process, which heals a Secret deleted by hand). The data itself lives only in the Secret.

Ownership: a Secret is ours only when this CR (its uid) is an owner *and* our managed-by label is on
it (``core.connection.owned_by``). Any other Secret of the name is never touched: the CR says
``Stalled``, reason ``SecretConflict``, naming it. A replace is conditional on the resourceVersion
just read, a delete on the uid just read, so a Secret swapped in between is not overwritten either.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from rocketmq_operator.core import conditions, connection
from rocketmq_operator.core.cloud import InstanceView
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.connection import SecretOwner
from rocketmq_operator.core.resource import ConnectionSecretStatus, RocketMQInstance
from rocketmq_operator.core.status import Step, StepResult
from rocketmq_operator.core.vocabulary import EventType, Reason
from rocketmq_operator.ports.secrets import SecretApiError, SecretStore
from rocketmq_operator.services.tracking import CrMemory

logger = logging.getLogger(__name__)


Data = Mapping[str, str | SecretStr]


@dataclass(frozen=True)
class Target:
    """Which Secret a CR wants (``wanted``; None: none) and which it last had written (``recorded``)."""

    owner: SecretOwner
    wanted: str | None
    recorded: ConnectionSecretStatus | None
    in_conflict: bool
    """The CR's Ready reason is SecretConflict already: the Warning Event is not repeated."""
    field: str = "spec.connectionSecret.name"


@dataclass(frozen=True)
class Content:
    """What to write: ``digest`` goes into the data-hash annotation and status; ``data`` is asked for
    only when a write is due, and may answer None (not this pass: nothing is written)."""

    digest: str
    data: Callable[[], Awaitable[Data | None]]


Record = Callable[[ConnectionSecretStatus | None], None]


class ConnectionSecrets:
    """Writes, updates and removes the connection Secrets of live CRs."""

    def __init__(self, store: SecretStore | None, *, enabled: bool, memory: CrMemory | None = None) -> None:
        self._store = store
        self._enabled = enabled and store is not None
        self._looked: set[str] = set()
        if memory is not None:
            memory.on_forget(lambda uid, _ids: self.forget(uid))

    def forget(self, uid: str) -> None:
        self._looked.discard(uid)

    async def sync(self, cr: RocketMQInstance, view: InstanceView | None, result: StepResult) -> Verdict | None:
        """Bring an instance's Secret in line with ``view``; a verdict when it cannot be (else ``None``)."""
        target = Target(
            owner=SecretOwner.of_instance(cr),
            wanted=cr.spec.connection_secret.name if cr.spec.connection_secret else None,
            recorded=cr.status.connection_secret,
            in_conflict=conditions.ready_reason(cr.status.conditions) == Reason.SECRET_CONFLICT,
        )
        instance_id = result.status.instance_id if result.sets("instance_id") else cr.status.instance_id
        content: Content | None = None
        if view is not None and view.instance_id == instance_id and connection.has_endpoints(view):
            data = connection.secret_data(cr, view)
            content = Content(connection.data_hash(data), _constant(data))

        def record(status: ConnectionSecretStatus | None) -> None:
            result.status.connection_secret = status

        return await self.sync_owned(target, content, result, record)

    async def sync_owned(
        self, target: Target, content: Content | None, step: Step[Any], record: Record
    ) -> Verdict | None:
        """Bring ``target``'s Secret in line with ``content`` (None: nothing to write yet), or remove it
        when none is wanted; a verdict when it cannot be (else ``None``). ``record`` receives the new
        ``status.connectionSecret`` when it changes."""
        wanted, recorded, owner = target.wanted, target.recorded, target.owner
        if wanted is None:
            if recorded is not None and self._enabled:
                await self._guarded(target, step, self._remove(target, recorded.name, step, record, clear=True))
            return None
        if content is None:
            return None  # nothing to connect to yet
        if not self._enabled:
            return Verdict(
                ready=False,
                reason=Reason.CONNECTION_SECRETS_DISABLED,
                message=f"{target.field.rpartition('.')[0]} asks for Secret {wanted}, but the operator runs "
                "without connection Secrets (chart value settings.connectionSecrets, DMS_CONNECTION_SECRETS) and "
                "may not write Secrets",
                stalled=True,
            )
        if (
            recorded is not None
            and recorded.name == wanted
            and recorded.data_hash == content.digest
            and owner.uid in self._looked
        ):
            return None
        return await self._guarded(target, step, self._write(target, wanted, content, step, record))

    async def _guarded(self, target: Target, step: Step[Any], work: Awaitable[Verdict | None]) -> Verdict | None:
        try:
            verdict: Verdict | None = await work
        except SecretApiError as exc:
            name = target.wanted or (target.recorded.name if target.recorded else "?")
            message = f"could not write connection Secret {name}: {exc}"
            logger.warning("%s: %s", target.owner.ref, message)
            if exc.forbidden:
                # RBAC: a person must grant it (the chart does, with settings.connectionSecrets on).
                return Verdict(ready=False, reason=Reason.CONNECTION_SECRET_FAILED, message=message, stalled=True)
            # Transient (the API server restarting, a 409 race): the next pass tries again.
            step.event(EventType.WARNING, Reason.CONNECTION_SECRET_FAILED, message)
            return None
        return verdict

    async def _write(
        self, target: Target, name: str, content: Content, step: Step[Any], record: Record
    ) -> Verdict | None:
        assert self._store is not None
        owner = target.owner
        namespace = owner.namespace
        existing = await self._store.get(namespace, name)
        if existing is not None and not connection.owned_by(owner, existing):
            message = (
                f"Secret {name} exists and is not this {owner.kind}'s (no ownerReference to it, or no "
                f"{connection.MANAGED_BY_LABEL}={connection.MANAGED_BY} label); it is never overwritten: "
                f"delete it or set {target.field} to another name"
            )
            if not target.in_conflict:
                step.event(EventType.WARNING, Reason.SECRET_CONFLICT, message)
            return Verdict(ready=False, reason=Reason.SECRET_CONFLICT, message=message, stalled=True)
        if existing is None or not connection.has_hash(existing, content.digest):
            data = await content.data()
            if data is None:
                return None  # the data cannot be had this pass; the next one tries again
            body = connection.secret_body(owner, name, data, digest=content.digest)
            if existing is None:
                await self._store.create(namespace, body)
                step.event(EventType.NORMAL, Reason.CONNECTION_SECRET_WRITTEN, f"created connection Secret {name}")
            else:
                await self._store.replace(namespace, name, body, resource_version=existing.resource_version)
                step.event(EventType.NORMAL, Reason.CONNECTION_SECRET_WRITTEN, f"updated connection Secret {name}")
        self._looked.add(owner.uid)
        recorded = target.recorded
        if recorded is not None and recorded.name != name:
            await self._remove(target, recorded.name, step, record, clear=False)
        if recorded is None or (recorded.name, recorded.data_hash) != (name, content.digest):
            record(ConnectionSecretStatus(name=name, data_hash=content.digest))
        return None

    async def _remove(self, target: Target, name: str, step: Step[Any], record: Record, *, clear: bool) -> None:
        """Delete the Secret this CR wrote under ``name`` (a rename, or spec.connectionSecret removed)."""
        assert self._store is not None
        owner = target.owner
        existing = await self._store.get(owner.namespace, name)
        if existing is not None and connection.owned_by(owner, existing):
            await self._store.delete(owner.namespace, name, uid=existing.uid)
            step.event(EventType.NORMAL, Reason.CONNECTION_SECRET_DELETED, f"deleted connection Secret {name}")
        elif existing is not None:
            logger.info("%s: Secret %s is no longer this CR's; left as it is", owner.ref, name)
        if clear:
            record(None)


def _constant(data: Data) -> Callable[[], Awaitable[Data | None]]:
    async def get() -> Data | None:
        return data

    return get
