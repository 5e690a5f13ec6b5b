"""Kubeconfig files: writing the admin one for a local control plane, reading an existing one.

A kubeconfig is the one artefact every client shares (kubectl, the ``kubernetes`` Python client, kopf,
helm, the operator as a subprocess), so the control plane hands out a file, with the credentials embedded
as ``*-data`` fields so that the file stays valid wherever it is copied.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

CONTEXT_NAME = "kube-testenv"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def render_kubeconfig(
    *,
    server_url: str,
    ca_pem: bytes,
    client_cert_pem: bytes,
    client_key_pem: bytes,
    name: str = CONTEXT_NAME,
) -> dict[str, Any]:
    """A kubeconfig with one cluster, one client-certificate user and one context, selected."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server_url, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [
            {
                "name": name,
                "user": {
                    "client-certificate-data": _b64(client_cert_pem),
                    "client-key-data": _b64(client_key_pem),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }


def with_token(config: dict[str, Any], token: str, *, name: str = "token-user") -> dict[str, Any]:
    """The same cluster, current context's namespace included, but authenticating with a bearer token.

    For acting as a ServiceAccount (``kubectl create token``): a client certificate would win over the
    token, since the apiserver tries x509 first, so the user entry is replaced, not amended.
    """
    context_name = config.get("current-context")
    context = next(c["context"] for c in config.get("contexts") or [] if c["name"] == context_name)
    cluster = next(c for c in config.get("clusters") or [] if c["name"] == context["cluster"])
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {**context, "user": name}}],
        "current-context": name,
        "preferences": {},
    }


def read_kubeconfig(path: Path) -> dict[str, Any]:
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a kubeconfig")
    return config


def write_kubeconfig(path: Path, config: dict[str, Any]) -> Path:
    """Write atomically (a reader never sees half a file) and private (it holds a key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    tmp.replace(path)
    return path


def current_server_url(path: Path) -> str:
    """The ``server`` of the current context's cluster, for messages and readiness checks."""
    config = read_kubeconfig(path)
    context_name = config.get("current-context")
    contexts = {c["name"]: c.get("context", {}) for c in config.get("contexts") or []}
    clusters = {c["name"]: c.get("cluster", {}) for c in config.get("clusters") or []}
    context = contexts.get(context_name)
    if context is None:
        raise ValueError(f"{path}: current-context {context_name!r} not found")
    cluster = clusters.get(context.get("cluster"))
    if cluster is None or "server" not in cluster:
        raise ValueError(f"{path}: cluster of context {context_name!r} has no server")
    return str(cluster["server"])
