"""Secrets on the API server, over kopf's own session: the ``SecretStore`` port's implementation.

Why here and not in the adapters: the operator has no Kubernetes client library; kopf's session
(built in the ``login`` handler of ``wiring.handlers``: the server's TLS and the ServiceAccount's
auth headers) is the one way it speaks to the API server, and only the wiring may touch kopf's
objects. This module is the narrow rest: four requests on ``/api/v1/namespaces/{ns}/secrets``.

It reads metadata only: the body of a GET is parsed for ``metadata`` and the rest dropped, and
nothing of a Secret is ever logged; error messages carry the API server's ``Status`` message. The
exceptions, ``read_key`` and ``read_keys``, take the keys asked for into ``SecretStr``s and drop the rest.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import SecretStr

from rocketmq_operator.core.connection import SecretMeta
from rocketmq_operator.ports.secrets import SecretApiError, SecretKey, SecretKeys
from rocketmq_operator.wiring import kube_api

FIELD_MANAGER = "rocketmq-operator"


class KubeSecrets:
    """``SecretStore`` over the session the login handler keeps (``endpoint()``: the newest one)."""

    def __init__(self, endpoint: Callable[[], kube_api.Endpoint | None], *, timeout: float = 30.0) -> None:
        self._endpoint = endpoint
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def get(self, namespace: str, name: str) -> SecretMeta | None:
        status, body = await self._request("GET", namespace, name)
        if status == 404:
            return None
        metadata = body.get("metadata")
        return SecretMeta.from_metadata(metadata if isinstance(metadata, Mapping) else {})

    async def read_key(self, namespace: str, name: str, key: str) -> SecretKey | None:
        # Exactly as stored: a user's secret key is the user's, whitespace and all.
        found = await self._read(namespace, name, (key,), strip=False)
        if found is None:
            return None
        return SecretKey(meta=found.meta, value=found.values.get(key))

    async def read_keys(self, namespace: str, name: str, keys: Sequence[str]) -> SecretKeys | None:
        # Credentials without surrounding whitespace: a Secret made with --from-file ends in a newline.
        return await self._read(namespace, name, keys, strip=True)

    async def _read(self, namespace: str, name: str, keys: Sequence[str], *, strip: bool) -> SecretKeys | None:
        status, body = await self._request("GET", namespace, name)
        if status == 404:
            return None
        metadata = body.get("metadata")
        meta = SecretMeta.from_metadata(metadata if isinstance(metadata, Mapping) else {})
        data = body.get("data")
        values: dict[str, SecretStr] = {}
        for key in keys:
            raw = data.get(key) if isinstance(data, Mapping) else None
            if not isinstance(raw, str):
                continue
            try:
                text = base64.b64decode(raw, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                continue  # an unreadable key counts as absent; messages name keys, never values
            values[key] = SecretStr(text.strip() if strip else text)
        del body, data  # nothing else of the Secret is kept
        return SecretKeys(meta=meta, values=values)

    async def hold(self, namespace: str, name: str, finalizer: str) -> None:
        # A strategic merge patch adds to metadata.finalizers (merge by value) without a read first.
        await self._request("PATCH", namespace, name, body={"metadata": {"finalizers": [finalizer]}}, strategic=True)

    async def release(self, namespace: str, name: str, finalizer: str) -> None:
        body = {"metadata": {"$deleteFromPrimitiveList/finalizers": [finalizer]}}
        await self._request("PATCH", namespace, name, body=body, strategic=True)

    async def create(self, namespace: str, body: Mapping[str, Any]) -> None:
        await self._request("POST", namespace, None, body=body)

    async def replace(self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str) -> None:
        metadata = {**body.get("metadata", {}), "resourceVersion": resource_version}
        await self._request("PUT", namespace, name, body={**body, "metadata": metadata})

    async def delete(self, namespace: str, name: str, *, uid: str) -> None:
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}
        status, _body = await self._request("DELETE", namespace, name, body=options)
        del status  # 404 (gone already) counts as done

    async def _request(
        self,
        method: str,
        namespace: str,
        name: str | None,
        *,
        body: Mapping[str, Any] | None = None,
        strategic: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        endpoint = self._endpoint()
        if endpoint is None:
            raise SecretApiError("not logged in to the API server yet")
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets"
        if name is not None:
            path += f"/{quote(name, safe='')}"
        params = {"fieldManager": FIELD_MANAGER} if method in ("POST", "PUT", "PATCH") else None
        shown = name if name is not None else (body or {}).get("metadata", {}).get("name")
        what = f"{method} secret {namespace}/{shown}"
        answer = await kube_api.send(
            endpoint,
            method,
            path,
            what=what,
            error=SecretApiError,
            client_timeout=self._timeout,
            body=body,
            content_type="application/strategic-merge-patch+json" if strategic else "application/json",
            params=params,
        )
        if answer.status < 300 or (answer.status == 404 and method in ("GET", "DELETE", "PATCH")):
            return answer.status, answer.body
        raise SecretApiError(f"{what}: {answer.refusal()}", status=answer.status)
