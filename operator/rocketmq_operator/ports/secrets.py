"""The port through which the operator writes Secrets for apps (``spec.connectionSecret``).

Why a port: the service that decides what to write (``services.connection_secrets``) is plain
asyncio, tested against a fake; the implementation speaks to the API server over kopf's own
session, so it lives in the wiring (the only layer that may touch kopf).

Contract: reads return metadata only (``SecretMeta``), never a Secret's data, so nothing the
operator does not own is ever held in memory. The one exception is ``read_key``: the secret key of a
``RocketMQUser`` (``spec.secretKeyRef``), one key of one Secret, returned as a pydantic ``SecretStr``
(its ``repr`` and ``str`` hide it) for the one cloud call that sends it; the rest of that Secret is
dropped unread. Every failure is a ``SecretApiError`` carrying the
HTTP status; 404 on read is ``None``, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr

from rocketmq_operator.core.connection import SecretMeta


class SecretApiError(Exception):
    """The API server refused or failed a Secret request; ``status`` is its HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def conflict(self) -> bool:
        """409: it exists already (create), or changed since it was read (replace)."""
        return self.status == 409


@dataclass(frozen=True)
class SecretKey:
    """One key of a Secret, with the metadata that says which version of the Secret it is from."""

    meta: SecretMeta
    value: SecretStr | None
    """None: the Secret has no such key (or it is not valid UTF-8)."""


@dataclass(frozen=True)
class SecretKeys:
    """Some keys of a Secret (only those asked for and present), with the Secret's metadata."""

    meta: SecretMeta
    values: Mapping[str, SecretStr]


class SecretStore(Protocol):
    async def get(self, namespace: str, name: str) -> SecretMeta | None:
        """The Secret's metadata, or ``None`` if there is none of that name."""
        ...

    async def read_key(self, namespace: str, name: str, key: str) -> SecretKey | None:
        """The value of one key of the Secret (the only place a Secret's value is read), or ``None``
        if there is no Secret of that name."""
        ...

    async def read_keys(self, namespace: str, name: str, keys: Sequence[str]) -> SecretKeys | None:
        """The values of ``keys`` (those the Secret has) with its metadata, or ``None`` if there is no
        Secret of that name: an account's credentials, read for the client that sends them."""
        ...

    async def create(self, namespace: str, body: Mapping[str, Any]) -> None: ...

    async def replace(self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str) -> None:
        """Replace the whole Secret, only if it is still at ``resource_version`` (else 409)."""
        ...

    async def delete(self, namespace: str, name: str, *, uid: str) -> None:
        """Delete it, only if it is still the object with ``uid``; gone already counts as done."""
        ...


class AccountSecrets(Protocol):
    """What the account handlers do with credentials Secrets: read their keys, and hold them.

    Why hold: a namespace teardown deletes an account's Secret at once, while the account (kept by its
    finalizer) still has instances to delete. An operator that restarts then could not read the
    credentials again, and the teardown would hang with instances left in the cloud. A finalizer on the
    Secret keeps it readable until the account no longer needs it.
    """

    async def read_keys(self, namespace: str, name: str, keys: Sequence[str]) -> SecretKeys | None: ...

    async def hold(self, namespace: str, name: str, finalizer: str) -> None:
        """Add ``finalizer`` to the Secret (a Secret being deleted cannot take a new one: the API server refuses)."""
        ...

    async def release(self, namespace: str, name: str, finalizer: str) -> None:
        """Remove ``finalizer`` from the Secret; a Secret that is gone counts as released."""
        ...
