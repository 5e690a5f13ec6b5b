"""Builders for CRs and cloud views, so tests read as the situation they describe."""

from __future__ import annotations

from typing import Any

from instance_spec import SPEC
from rocketmq_operator.core import cloud
from rocketmq_operator.core.resource import RocketMQInstance
from rocketmq_operator.core.settings import OperatorSettings, from_env


def make_settings(**env: str) -> OperatorSettings:
    """Operator settings for a test cloud account, with the given ``DMS_*`` variables on top."""
    base = {"DMS_ENDPOINT": "https://dms.test", "DMS_PROJECT_ID": "p-1", "DMS_ACCESS_KEY": "ak", "DMS_SECRET_KEY": "sk"}
    return from_env(base | env)


def cr(
    *,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    name: str = "orders",
    namespace: str = "team-a",
    uid: str = "5f1c4c1e-0000-4000-8000-000000000001",
    generation: int = 1,
    deleting: bool = False,
) -> RocketMQInstance:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": uid,
        "generation": generation,
        "annotations": annotations or {},
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-27T10:00:00Z"
    return RocketMQInstance.model_validate(
        {"metadata": metadata, "spec": SPEC if spec is None else spec, "status": status or {}}
    )


def view(instance_id: str = "i-1", status: str = cloud.RUNNING, **fields: Any) -> cloud.InstanceView:
    base: dict[str, Any] = {
        "instance_id": instance_id,
        "name": "team-a-orders-abcdef12",
        "status": status,
        "engine_version": "5.x",
        "product_id": "rocketmq.b2.large.4",
        "storage_space": 300,
        "total_storage_space": 300,
        "broker_num": 1,
        "security_group_id": "sg-1",
        "enable_acl": False,
        "enable_publicip": False,
        "namesrv_address": "192.168.0.10:8100",
        "broker_address": "192.168.0.11:10100",
    }
    return cloud.InstanceView.model_validate(base | fields)
