"""A CR's status written outside kopf's handlers: the periodic pass's one write.

Why not kopf: kopf writes a handler's patch only for the object whose handler it runs, and the pass
over every CR (``services.passes``) is one loop, not a handler per CR. The request is the one kopf
sends for a handler's status: a JSON merge patch of ``status`` on the status subresource, over
kopf's own session (``wiring.secrets`` says why that is the one way the operator speaks to the API
server).

Unlike kopf's, the patch carries the ``resourceVersion`` of the body the pass decided on, so the API
server refuses it (409) when the CR changed since: a pass over a body that a deletion, an edit or a
handler's write has overtaken must not write what it decided. A CR deleted meanwhile (404) is
nothing to write either. Both are left to the next round, which reads the newer body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from rocketmq_operator.wiring import kube_api


class StatusPatchError(Exception):
    """The API server refused or failed the status patch."""


class StatusPatches:
    """Merge patches of ``status`` for one kind (``group``/``version``/``plural``)."""

    def __init__(
        self,
        endpoint: Callable[[], kube_api.Endpoint | None],
        *,
        group: str,
        version: str,
        plural: str,
        timeout: float = 30.0,
    ) -> None:
        self._endpoint = endpoint
        self._prefix = f"/apis/{group}/{version}"
        self._plural = plural
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def path(self, namespace: str, name: str) -> str:
        """The status subresource of one CR; a cluster-scoped kind's (a ClusterRocketMQAccount's) has
        no namespace, and its body none either (``""``)."""
        where = f"/namespaces/{quote(namespace, safe='')}" if namespace else ""
        return f"{self._prefix}{where}/{self._plural}/{quote(name, safe='')}/status"

    async def patch(
        self, namespace: str, name: str, status: Mapping[str, Any], *, resource_version: str | None
    ) -> Literal["written", "gone", "changed"]:
        """Merge ``status`` into the CR's, if it is still at ``resource_version``."""
        answer = await self._send(namespace, name, status, resource_version)
        if answer.status < 300:
            return "written"
        if answer.status == 404:
            return "gone"
        if answer.status == 409:
            return "changed"
        raise StatusPatchError(f"{self._what(namespace, name)}: {answer.refusal()}")

    async def merged(self, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge ``status`` into the CR's whatever its version, as kopf writes a handler's status: the
        CR as the API server holds it then, ``None`` when it is gone."""
        answer = await self._send(namespace, name, status, None)
        if answer.status < 300:
            return answer.body
        if answer.status == 404:
            return None
        raise StatusPatchError(f"{self._what(namespace, name)}: {answer.refusal()}")

    def _what(self, namespace: str, name: str) -> str:
        return f"PATCH {self._plural} {namespace}/{name} status" if namespace else f"PATCH {self._plural} {name} status"

    async def _send(
        self, namespace: str, name: str, status: Mapping[str, Any], resource_version: str | None
    ) -> kube_api.Answer:
        endpoint = self._endpoint()
        if endpoint is None:
            raise StatusPatchError("not logged in to the API server yet")
        return await kube_api.send(
            endpoint,
            "PATCH",
            self.path(namespace, name),
            what=self._what(namespace, name),
            error=StatusPatchError,
            client_timeout=self._timeout,
            body=_body(status, resource_version),
            content_type="application/merge-patch+json",
        )


def _body(status: Mapping[str, Any], resource_version: str | None) -> dict[str, Any]:
    if resource_version is None:
        return {"status": status}
    return {"metadata": {"resourceVersion": resource_version}, "status": status}
