"""The connection Secrets: their keys, their labels, their owner, and who owns one found.

Two kinds of CR own one (``spec.connectionSecret``): a RocketMQInstance (its endpoints) and a
RocketMQUser (the same endpoints of its instance, plus its access key and secret key). Both are
described to the writing code by a ``SecretOwner``; the instance's keys are ``secret_data``, the
user's add ``ACCESS_KEY`` and ``SECRET_KEY``.

Why pure: what an app finds in the Secret is a contract (the keys are documented in the README and
used by ``envFrom``), so it is a table-tested function of the cloud's view and the spec, apart from
the code that talks to the API server (``wiring.secrets``) and the service that decides when to
write (``services.connection_secrets``).

Keys are valid environment variable names, in one ``ROCKETMQ_`` namespace; a key is present only
when the cloud reports a value for it (``envFrom`` then leaves the variable unset, rather than set to
an empty string an app would try to connect to).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from rocketmq_operator.core import cloud
from rocketmq_operator.core.resource import GROUP, KIND, VERSION, RocketMQInstance, RocketMQInstanceSpec

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "rocketmq-operator"
INSTANCE_LABEL = f"{GROUP}/instance"
"""The name of the RocketMQInstance the Secret belongs to (a label value: shortened past 63 characters)."""
DATA_HASH_ANNOTATION = f"{GROUP}/data-hash"
"""The hash of the data, so a look at the Secret's metadata tells whether it is current."""

NAMESRV_ADDR = "ROCKETMQ_NAMESRV_ADDR"
NAMESRV_DOMAIN = "ROCKETMQ_NAMESRV_DOMAIN"
BROKER_ADDR = "ROCKETMQ_BROKER_ADDR"
GRPC_ADDR = "ROCKETMQ_GRPC_ADDR"
GRPC_DOMAIN = "ROCKETMQ_GRPC_DOMAIN"
PUBLIC_NAMESRV_ADDR = "ROCKETMQ_PUBLIC_NAMESRV_ADDR"
PUBLIC_NAMESRV_DOMAIN = "ROCKETMQ_PUBLIC_NAMESRV_DOMAIN"
PUBLIC_BROKER_ADDR = "ROCKETMQ_PUBLIC_BROKER_ADDR"
PUBLIC_GRPC_ADDR = "ROCKETMQ_PUBLIC_GRPC_ADDR"
PUBLIC_GRPC_DOMAIN = "ROCKETMQ_PUBLIC_GRPC_DOMAIN"
TLS_MODE = "ROCKETMQ_TLS_MODE"
ACL_ENABLED = "ROCKETMQ_ACL_ENABLED"
ENGINE_VERSION = "ROCKETMQ_ENGINE_VERSION"
INSTANCE_ID = "ROCKETMQ_INSTANCE_ID"
ACCESS_KEY = "ROCKETMQ_ACCESS_KEY"
"""A RocketMQUser's connection Secret only: the user's access key."""
SECRET_KEY = "ROCKETMQ_SECRET_KEY"
"""A RocketMQUser's connection Secret only: the user's secret key (never in the data hash)."""

# Key <- the cloud's field (show / list), in the order the README lists them.
_PUBLIC_KEYS = (PUBLIC_NAMESRV_ADDR, PUBLIC_NAMESRV_DOMAIN, PUBLIC_BROKER_ADDR, PUBLIC_GRPC_ADDR, PUBLIC_GRPC_DOMAIN)
_ENDPOINT_KEYS = (
    (NAMESRV_ADDR, "namesrv_address"),
    (NAMESRV_DOMAIN, "namesrv_domain_name"),
    (BROKER_ADDR, "broker_address"),
    (GRPC_ADDR, "grpc_address"),
    (GRPC_DOMAIN, "grpc_domain_name"),
    (PUBLIC_NAMESRV_ADDR, "public_namesrv_address"),
    (PUBLIC_NAMESRV_DOMAIN, "public_namesrv_domain_name"),
    (PUBLIC_BROKER_ADDR, "public_broker_address"),
    (PUBLIC_GRPC_ADDR, "public_grpc_address"),
    (PUBLIC_GRPC_DOMAIN, "public_grpc_domain_name"),
)
KEYS = (*(key for key, _field in _ENDPOINT_KEYS), TLS_MODE, ACL_ENABLED, ENGINE_VERSION, INSTANCE_ID)

_LABEL_VALUE_MAX = 63


def has_endpoints(view: cloud.InstanceView) -> bool:
    """Whether the cloud reports where to connect yet (not while CREATING)."""
    return bool(view.namesrv_address)


@dataclass(frozen=True)
class SpecDefaults:
    """What of an instance's spec ``secret_data`` falls back on where the cloud is silent."""

    enable_publicip: bool | None = None
    tls_mode: str | None = None
    enable_acl: bool | None = None
    engine_version: str | None = None

    @classmethod
    def of(cls, spec: RocketMQInstanceSpec) -> SpecDefaults:
        return cls(
            enable_publicip=spec.enable_publicip,
            tls_mode=spec.tls_mode,
            enable_acl=spec.enable_acl,
            engine_version=spec.engine_version,
        )


def secret_data(cr: RocketMQInstance, view: cloud.InstanceView) -> dict[str, str]:
    """The Secret's keys and values: what the cloud reports, the spec only where the cloud is silent."""
    return view_data(view, SpecDefaults.of(cr.spec))


def view_data(view: cloud.InstanceView, spec: SpecDefaults) -> dict[str, str]:
    """``secret_data`` from the instance spec's fallbacks alone (what a child knows of its instance)."""
    data: dict[str, str] = {}
    for key, field in _ENDPOINT_KEYS:
        value = getattr(view, field)
        if value:
            data[key] = value
    public = view.enable_publicip if view.enable_publicip is not None else spec.enable_publicip
    if not public:
        # Public access turned off: addresses the cloud may still echo no longer answer.
        for key in _PUBLIC_KEYS:
            data.pop(key, None)
    tls_mode = view.tls_mode or spec.tls_mode
    if not tls_mode and view.ssl_enable is not None:
        tls_mode = "SSL" if view.ssl_enable else "PLAINTEXT"
    if tls_mode:
        data[TLS_MODE] = tls_mode
    acl = view.enable_acl if view.enable_acl is not None else spec.enable_acl
    data[ACL_ENABLED] = "true" if acl else "false"
    engine_version = view.engine_version or spec.engine_version
    if engine_version:
        data[ENGINE_VERSION] = engine_version
    data[INSTANCE_ID] = view.instance_id
    return data


def data_hash(data: Mapping[str, str]) -> str:
    """A stable hash of the data (keys sorted): what status and the Secret record as written."""
    canonical = json.dumps(dict(sorted(data.items())), separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def label_value(name: str) -> str:
    """A label value naming ``name``: itself when it fits (63 characters), else shortened with a hash."""
    if len(name) <= _LABEL_VALUE_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    head = re.sub(r"[^A-Za-z0-9]+$", "", name[: _LABEL_VALUE_MAX - len(digest) - 1])
    return f"{head}-{digest}"


@dataclass(frozen=True)
class SecretOwner:
    """The CR a connection Secret belongs to, as the Secret names it (ownerReference and labels)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str
    labels: Mapping[str, str]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def of_instance(cls, cr: RocketMQInstance) -> SecretOwner:
        return cls(
            api_version=f"{GROUP}/{VERSION}",
            kind=KIND,
            name=cr.metadata.name,
            namespace=cr.metadata.namespace,
            uid=cr.metadata.uid,
            labels=labels(cr),
        )


def _owner(owner: SecretOwner | RocketMQInstance) -> SecretOwner:
    return owner if isinstance(owner, SecretOwner) else SecretOwner.of_instance(owner)


def labels(cr: RocketMQInstance) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, INSTANCE_LABEL: label_value(cr.metadata.name)}


def owner_reference(owner: SecretOwner | RocketMQInstance) -> dict[str, Any]:
    """The CR as the Secret's controller, so the garbage collector deletes the Secret with the CR.

    No ``blockOwnerDeletion``: it only matters to foreground deletion, and setting it needs update
    permission on ``<plural>/finalizers`` where the OwnerReferencesPermissionEnforcement admission
    plugin runs; the Secret goes either way.
    """
    owner = _owner(owner)
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
    }


def secret_body(
    owner: SecretOwner | RocketMQInstance,
    name: str,
    data: Mapping[str, str | SecretStr],
    *,
    digest: str | None = None,
) -> dict[str, Any]:
    """The whole Secret as the operator writes it (create, or replace of one it owns).

    ``digest``: the data-hash annotation, when it is not the hash of ``data`` (a user's Secret holds a
    key, which is hashed by the version of the Secret it came from, never by its value). A
    ``SecretStr`` value is revealed here only, into the body sent to the API server.
    """
    owner = _owner(owner)
    if digest is None:
        digest = data_hash({key: _reveal(value) for key, value in data.items()})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": dict(owner.labels),
            "annotations": {DATA_HASH_ANNOTATION: digest},
            "ownerReferences": [owner_reference(owner)],
        },
        "data": {key: base64.b64encode(_reveal(value).encode()).decode() for key, value in sorted(data.items())},
    }


def _reveal(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@dataclass(frozen=True)
class SecretMeta:
    """What the operator reads of an existing Secret: its metadata, never its data."""

    name: str
    uid: str
    resource_version: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    owner_uids: tuple[str, ...]
    finalizers: tuple[str, ...] = ()
    deleting: bool = False

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> SecretMeta:
        return cls(
            name=str(metadata.get("name", "")),
            uid=str(metadata.get("uid", "")),
            resource_version=str(metadata.get("resourceVersion", "")),
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
            owner_uids=tuple(str(ref.get("uid", "")) for ref in metadata.get("ownerReferences") or ()),
            finalizers=tuple(str(f) for f in metadata.get("finalizers") or ()),
            deleting=bool(metadata.get("deletionTimestamp")),
        )


def owned_by(owner: SecretOwner | RocketMQInstance, secret: SecretMeta) -> bool:
    """Ours: this CR (its uid) is an owner, and our managed-by label is on it. Anything else is not."""
    uid = _owner(owner).uid
    return bool(uid) and uid in secret.owner_uids and secret.labels.get(MANAGED_BY_LABEL) == MANAGED_BY


def is_current(secret: SecretMeta, data: Mapping[str, str]) -> bool:
    return has_hash(secret, data_hash(data))


def has_hash(secret: SecretMeta, digest: str) -> bool:
    return secret.annotations.get(DATA_HASH_ANNOTATION) == digest
