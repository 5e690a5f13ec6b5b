"""Probes that tell when each component of the control plane is usable.

A process that is running is not yet serving: etcd must answer ``/health``, kube-apiserver ``/readyz``
(which waits for its bootstrap hooks: RBAC roles, priority-and-fairness, the default namespaces), and
the controller-manager has no port here, so its readiness is observed through its first visible effect.
Probes use only the standard library so that they work before any client library is configured, and
every TLS probe verifies the server against the control plane's own CA.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

PROBE_TIMEOUT_SECONDS = 2.0


def tls_context(ca_cert: Path, client_cert: Path | None = None, client_key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_cert))
    if client_cert is not None:
        context.load_cert_chain(str(client_cert), str(client_key) if client_key is not None else None)
    return context


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """(status, body), or (0, b"") when nothing answers yet."""
    # The probes only ever dial loopback, which a proxy from the environment must never see.
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=PROBE_TIMEOUT_SECONDS) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())
    except (urllib.error.URLError, OSError):
        return 0, b""


def etcd_healthy(client_url: str) -> bool:
    status, body = _get(f"{client_url}/health")
    if status != 200:
        return False
    try:
        return bool(json.loads(body).get("health") == "true")
    except ValueError:
        return False


def apiserver_ready(server_url: str, context: ssl.SSLContext) -> bool:
    """``/readyz`` answers ``ok`` (anonymous: it is readable by system:public-info-viewer)."""
    status, body = _get(f"{server_url}/readyz", context)
    return status == 200 and body.strip() == b"ok"


def resource_exists(server_url: str, path: str, admin_context: ssl.SSLContext) -> bool:
    status, _ = _get(f"{server_url}{path}", admin_context)
    return status == 200
