"""One request to the API server over kopf's own session, and its answer.

What ``wiring.secrets`` and ``wiring.status_patches`` share; they differ in paths, bodies and what an
answer means to them. The session is the one the login handler of ``wiring.handlers`` keeps (the
server's TLS and the ServiceAccount's auth headers): the operator has no Kubernetes client library.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

Endpoint = tuple[str, aiohttp.ClientSession]
"""The API server's base URL and the session that carries its TLS and credentials."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    """The decoded JSON object; empty for anything else."""
    text: str

    def refusal(self) -> str:
        """Why the API server refused: its ``Status`` object's message (which never echoes a request's data)."""
        return f"{self.status} {self.body.get('message') or self.body.get('reason') or self.text[:200]}"


async def send(
    endpoint: Endpoint,
    method: str,
    path: str,
    *,
    what: str,
    error: Callable[[str], Exception],
    client_timeout: aiohttp.ClientTimeout,
    body: Mapping[str, Any] | None = None,
    content_type: str = "application/json",
    params: Mapping[str, str] | None = None,
) -> Answer:
    """The request; no answer at all (connection, timeout) raises ``error`` with ``what`` and why."""
    server, session = endpoint
    try:
        async with session.request(
            method,
            server.rstrip("/") + path,
            params=params,
            data=None if body is None else json.dumps(body).encode(),
            headers=None if body is None else {"Content-Type": content_type},
            timeout=client_timeout,
        ) as response:
            status = response.status
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise error(f"{what}: {type(exc).__name__}: {exc}") from None
    try:
        parsed = json.loads(text) if text else {}
    except ValueError:
        parsed = {}
    return Answer(status, parsed if isinstance(parsed, dict) else {}, text)
