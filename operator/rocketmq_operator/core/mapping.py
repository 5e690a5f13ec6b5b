"""Translations between the CR and the cloud: names, owner tags, requests, status, and the diff.

Why deterministic names: a create that crashes after the cloud accepted it but before the
operator recorded the id is repeated on restart; with the same name the cloud answers
"name exists" (DMS.00400060) and the operator adopts the instance instead of making a second one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from rocketmq_operator.core import cloud
from rocketmq_operator.core.resource import (
    OWNER_TAG_PREFIX,
    Endpoints,
    RocketMQInstance,
    RocketMQInstanceSpec,
)

OWNER_CLUSTER_TAG = f"{OWNER_TAG_PREFIX}cluster"
OWNER_NAMESPACE_TAG = f"{OWNER_TAG_PREFIX}namespace"
OWNER_NAME_TAG = f"{OWNER_TAG_PREFIX}name"
OWNER_UID_TAG = f"{OWNER_TAG_PREFIX}uid"

_NAME_MAX = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def instance_name(cr: RocketMQInstance) -> str:
    """The cloud name: ``spec.name``, or ``<namespace>-<name>-<hash of uid>`` made cloud-safe."""
    if cr.spec.name:
        return cr.spec.name
    digest = hashlib.sha256(cr.metadata.uid.encode()).hexdigest()[:8]
    base = _UNSAFE.sub("-", f"{cr.metadata.namespace}-{cr.metadata.name}").strip("-_")
    if not base or not base[0].isalpha():
        base = f"rmq-{base}".rstrip("-")
    base = base[: _NAME_MAX - len(digest) - 1].rstrip("-_")
    return f"{base}-{digest}"


def owner_tags(cr: RocketMQInstance, cluster_id: str) -> list[cloud.Tag]:
    return [
        cloud.Tag(key=OWNER_CLUSTER_TAG, value=cluster_id[:255]),
        cloud.Tag(key=OWNER_NAMESPACE_TAG, value=cr.metadata.namespace[:255]),
        cloud.Tag(key=OWNER_NAME_TAG, value=cr.metadata.name[:255]),
        cloud.Tag(key=OWNER_UID_TAG, value=cr.metadata.uid[:255]),
    ]


def owned_by_cluster(view: cloud.InstanceView, cluster_id: str) -> bool:
    return bool(cluster_id) and view.tag_map().get(OWNER_CLUSTER_TAG) == cluster_id


def owned_by_cr(view: cloud.InstanceView, uid: str) -> bool:
    return bool(uid) and view.tag_map().get(OWNER_UID_TAG) == uid


def has_owner_tags(view: cloud.InstanceView) -> bool:
    return any(tag.key.startswith(OWNER_TAG_PREFIX) for tag in view.tags)


def create_request(cr: RocketMQInstance) -> cloud.CreateInstanceRequest:
    """The create body. Callers only ask for it when the spec has every required field (CEL rule)."""
    spec = cr.spec
    missing = [
        name
        for name in (
            "engine_version",
            "product_id",
            "storage_spec_code",
            "storage_space",
            "vpc_id",
            "subnet_id",
            "security_group_id",
            "available_zones",
        )
        if getattr(spec, name) in (None, [])
    ]
    if missing:
        raise ValueError(f"spec is missing {', '.join(missing)}")
    assert spec.engine_version
    assert spec.product_id
    assert spec.storage_spec_code
    assert spec.storage_space
    assert spec.vpc_id
    assert spec.subnet_id
    assert spec.security_group_id
    assert spec.available_zones
    return cloud.CreateInstanceRequest(
        name=instance_name(cr),
        description=spec.description,
        engine_version=spec.engine_version,
        storage_space=spec.storage_space,
        vpc_id=spec.vpc_id,
        subnet_id=spec.subnet_id,
        security_group_id=spec.security_group_id,
        available_zones=list(spec.available_zones),
        product_id=spec.product_id,
        storage_spec_code=spec.storage_spec_code,
        broker_num=spec.broker_num,
        ssl_enable=spec.ssl_enable,
        enterprise_project_id=spec.enterprise_project_id,
        enable_acl=spec.enable_acl,
        ipv6_enable=spec.ipv6_enable,
        proxy_enable=spec.proxy_enable,
        enable_publicip=spec.enable_publicip,
        publicip_id=spec.publicip_id,
        disk_encrypted_enable=spec.disk_encrypted_enable,
        disk_encrypted_key=spec.disk_encrypted_key,
        arch_type=spec.arch_type,
        tls_mode=spec.tls_mode,
    )


def endpoints(view: cloud.InstanceView) -> Endpoints:
    return Endpoints(
        namesrv_address=view.namesrv_address or None,
        namesrv_domain_name=view.namesrv_domain_name or None,
        broker_address=view.broker_address or None,
        grpc_address=view.grpc_address or None,
        grpc_domain_name=view.grpc_domain_name or None,
        public_namesrv_address=view.public_namesrv_address or None,
        public_namesrv_domain_name=view.public_namesrv_domain_name or None,
        public_broker_address=view.public_broker_address or None,
        public_grpc_address=view.public_grpc_address or None,
        public_grpc_domain_name=view.public_grpc_domain_name or None,
    )


def configured_storage(view: cloud.InstanceView) -> int | None:
    # Terraform maps the configured size to total_storage_space; storage_space may be per broker.
    return view.total_storage_space if view.total_storage_space is not None else view.storage_space


@dataclass(frozen=True)
class Delta:
    """What differs between the spec and the instance, grouped by the call that fixes it."""

    update: cloud.UpdateInstanceRequest = field(default_factory=cloud.UpdateInstanceRequest)
    resize: cloud.ResizeRequest | None = None
    tags_to_create: tuple[cloud.Tag, ...] = ()
    tags_to_delete: tuple[cloud.Tag, ...] = ()
    fields: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.fields


def diff(cr: RocketMQInstance, view: cloud.InstanceView) -> Delta:
    """Mutable fields only: the CRD makes the rest immutable. Unset spec fields are not managed."""
    spec: RocketMQInstanceSpec = cr.spec
    changed: list[str] = []
    update: dict[str, object] = {}

    def want(name: str, desired: object, actual: object, *, wire: str | None = None) -> None:
        if desired is not None and desired != actual:
            changed.append(name)
            update[wire or name] = desired

    if spec.name is not None:
        want("name", spec.name, view.name)
    want("description", spec.description, view.description or None)
    want("security_group_id", spec.security_group_id, view.security_group_id)
    want("enable_acl", spec.enable_acl, bool(view.enable_acl))
    want("enterprise_project_id", spec.enterprise_project_id, view.enterprise_project_id)
    if spec.enable_publicip is not None and spec.enable_publicip != bool(view.enable_publicip):
        changed.append("enable_publicip")
        update["enable_publicip"] = spec.enable_publicip
        if spec.enable_publicip and spec.publicip_id:
            update["publicip_id"] = spec.publicip_id

    resize = _resize(spec, view, changed)
    to_create, to_delete = _tag_changes(spec, view, changed)
    return Delta(
        update=cloud.UpdateInstanceRequest.model_validate(update),
        resize=resize,
        tags_to_create=to_create,
        tags_to_delete=to_delete,
        fields=tuple(changed),
    )


def _resize(spec: RocketMQInstanceSpec, view: cloud.InstanceView, changed: list[str]) -> cloud.ResizeRequest | None:
    # One resize at a time: the cloud refuses a second while EXTENDING, so the most
    # structural change goes first and the rest follow on later passes.
    if spec.product_id is not None and view.product_id and spec.product_id != view.product_id:
        changed.append("product_id")
        horizontal = (view.engine_version or spec.engine_version) == "5.x"
        return cloud.ResizeRequest(
            oper_type="horizontal" if horizontal else "vertical",
            new_product_id=spec.product_id,
            new_broker_num=(spec.broker_num or view.broker_num) if horizontal else None,
        )
    if spec.broker_num is not None and view.broker_num is not None and spec.broker_num > view.broker_num:
        changed.append("broker_num")
        # 5.x scales out with the product named too (the simulator refuses it without, as TF sends it).
        v5 = (view.engine_version or spec.engine_version) == "5.x"
        product = (spec.product_id or view.product_id) if v5 else None
        return cloud.ResizeRequest(oper_type="horizontal", new_broker_num=spec.broker_num, new_product_id=product)
    current = configured_storage(view)
    if spec.storage_space is not None and current is not None and spec.storage_space > current:
        changed.append("storage_space")
        return cloud.ResizeRequest(oper_type="storage", new_storage_space=spec.storage_space)
    return None


def _tag_changes(
    spec: RocketMQInstanceSpec, view: cloud.InstanceView, changed: list[str]
) -> tuple[tuple[cloud.Tag, ...], tuple[cloud.Tag, ...]]:
    if spec.tags is None:
        return (), ()
    actual = {t.key: t.value for t in view.tags if not t.key.startswith(OWNER_TAG_PREFIX)}
    to_create = tuple(cloud.Tag(key=k, value=v) for k, v in sorted(spec.tags.items()) if actual.get(k) != v)
    to_delete = tuple(cloud.Tag(key=k, value=v) for k, v in sorted(actual.items()) if k not in spec.tags)
    if to_create or to_delete:
        changed.append("tags")
    return to_create, to_delete
