"""Keeps an instance's connection Secret (``spec.connectionSecret``) in line with the cloud.

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
from collections.abc import Awaitable

from rocketmq_operator.core import conditions, connection
from rocketmq_operator.core.cloud import InstanceView
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.resource import ConnectionSecretStatus, RocketMQInstance
from rocketmq_operator.core.status import StepResult
from rocketmq_operator.core.vocabulary import EventType, Reason
from rocketmq_operator.ports.secrets import SecretApiError, SecretStore
from rocketmq_operator.services.tracking import CrMemory

logger = logging.getLogger(__name__)


class ConnectionSecrets:
    """Writes, updates and removes the connection Secrets of live CRs."""

    def __init__(self, store: SecretStore | None, *, enabled: bool, memory: CrMemory) -> None:
        self._store = store
        self._enabled = enabled and store is not None
        self._looked: set[str] = set()
        memory.on_forget(lambda uid, _ids: self._looked.discard(uid))

    async def sync(self, cr: RocketMQInstance, view: InstanceView | None, result: StepResult) -> Verdict | None:
        """Bring the Secret in line with ``view``; a verdict when it cannot be (else ``None``)."""
        wanted = cr.spec.connection_secret.name if cr.spec.connection_secret else None
        recorded = cr.status.connection_secret
        if wanted is None:
            if recorded is not None and self._enabled:
                await self._guarded(cr, result, self._remove(cr, recorded.name, result, clear=True))
            return None
        instance_id = result.status.instance_id if result.sets("instance_id") else cr.status.instance_id
        if view is None or view.instance_id != instance_id or not connection.has_endpoints(view):
            return None  # nothing to connect to yet
        if not self._enabled:
            return Verdict(
                ready=False,
                reason=Reason.CONNECTION_SECRETS_DISABLED,
                message=f"spec.connectionSecret asks for Secret {wanted}, but the operator runs without "
                "connection Secrets (chart value settings.connectionSecrets, DMS_CONNECTION_SECRETS) and may "
                "not write Secrets",
                stalled=True,
            )
        data = connection.secret_data(cr, view)
        digest = connection.data_hash(data)
        if (
            recorded is not None
            and recorded.name == wanted
            and recorded.data_hash == digest
            and cr.metadata.uid in self._looked
        ):
            return None
        return await self._guarded(cr, result, self._write(cr, wanted, data, digest, result))

    async def _guarded(
        self, cr: RocketMQInstance, result: StepResult, work: Awaitable[Verdict | None]
    ) -> Verdict | None:
        try:
            verdict: Verdict | None = await work
        except SecretApiError as exc:
            name = cr.spec.connection_secret.name if cr.spec.connection_secret else "?"
            message = f"could not write connection Secret {name}: {exc}"
            logger.warning("%s: %s", cr.ref, message)
            if exc.forbidden:
                # RBAC: a person must grant it (the chart does, with settings.connectionSecrets on).
                return Verdict(ready=False, reason=Reason.CONNECTION_SECRET_FAILED, message=message, stalled=True)
            # Transient (the API server restarting, a 409 race): the next pass tries again.
            result.event(EventType.WARNING, Reason.CONNECTION_SECRET_FAILED, message)
            return None
        return verdict

    async def _write(
        self, cr: RocketMQInstance, name: str, data: dict[str, str], digest: str, result: StepResult
    ) -> Verdict | None:
        assert self._store is not None
        namespace = cr.metadata.namespace
        existing = await self._store.get(namespace, name)
        body = connection.secret_body(cr, name, data)
        if existing is None:
            await self._store.create(namespace, body)
            result.event(EventType.NORMAL, Reason.CONNECTION_SECRET_WRITTEN, f"created connection Secret {name}")
        elif not connection.owned_by(cr, existing):
            message = (
                f"Secret {name} exists and is not this RocketMQInstance's (no ownerReference to it, or no "
                f"{connection.MANAGED_BY_LABEL}={connection.MANAGED_BY} label); it is never overwritten: "
                "delete it or set spec.connectionSecret.name to another name"
            )
            if conditions.ready_reason(cr.status.conditions) != Reason.SECRET_CONFLICT:
                result.event(EventType.WARNING, Reason.SECRET_CONFLICT, message)
            return Verdict(ready=False, reason=Reason.SECRET_CONFLICT, message=message, stalled=True)
        elif not connection.is_current(existing, data):
            await self._store.replace(namespace, name, body, resource_version=existing.resource_version)
            result.event(EventType.NORMAL, Reason.CONNECTION_SECRET_WRITTEN, f"updated connection Secret {name}")
        self._looked.add(cr.metadata.uid)
        recorded = cr.status.connection_secret
        if recorded is not None and recorded.name != name:
            await self._remove(cr, recorded.name, result, clear=False)
        if recorded is None or (recorded.name, recorded.data_hash) != (name, digest):
            result.status.connection_secret = ConnectionSecretStatus(name=name, data_hash=digest)
        return None

    async def _remove(self, cr: RocketMQInstance, name: str, result: StepResult, *, clear: bool) -> None:
        """Delete the Secret this CR wrote under ``name`` (a rename, or spec.connectionSecret removed)."""
        assert self._store is not None
        existing = await self._store.get(cr.metadata.namespace, name)
        if existing is not None and connection.owned_by(cr, existing):
            await self._store.delete(cr.metadata.namespace, name, uid=existing.uid)
            result.event(EventType.NORMAL, Reason.CONNECTION_SECRET_DELETED, f"deleted connection Secret {name}")
        elif existing is not None:
            logger.info("%s: Secret %s is no longer this CR's; left as it is", cr.ref, name)
        if clear:
            result.status.connection_secret = None
