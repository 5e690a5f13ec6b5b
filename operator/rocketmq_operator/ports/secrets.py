"""The port through which the operator writes Secrets for apps (``spec.connectionSecret``).

Why a port: the service that decides what to write (``services.connection_secrets``) is plain
asyncio, tested against a fake; the implementation speaks to the API server over kopf's own
session, so it lives in the wiring (the only layer that may touch kopf).

Contract: reads return metadata only (``SecretMeta``), never a Secret's data, so nothing the
operator does not own is ever held in memory. Every failure is a ``SecretApiError`` carrying the
HTTP status; 404 on read is ``None``, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

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


class SecretStore(Protocol):
    async def get(self, namespace: str, name: str) -> SecretMeta | None:
        """The Secret's metadata, or ``None`` if there is none of that name."""
        ...

    async def create(self, namespace: str, body: Mapping[str, Any]) -> None: ...

    async def replace(self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str) -> None:
        """Replace the whole Secret, only if it is still at ``resource_version`` (else 409)."""
        ...

    async def delete(self, namespace: str, name: str, *, uid: str) -> None:
        """Delete it, only if it is still the object with ``uid``; gone already counts as done."""
        ...
