"""The API server itself refuses invalid RocketMQInstances, naming the field (no operator needed)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from instance_spec import SPEC

from .support import GROUP, VERSION, Cluster

# Every schema and CEL rule of the CRD (transition rules on oldSelf, fieldPath, reason) holds on 1.30 too.
pytestmark = pytest.mark.k8s_oldest


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in SPEC.items() if k != key}


INVALID_CREATES: list[tuple[str, dict[str, Any], str]] = [
    ("name too short", {**SPEC, "name": "abc"}, "spec.name"),
    ("name starting with a digit", {**SPEC, "name": "1orders"}, "spec.name"),
    ("name with a dot", {**SPEC, "name": "orders.v2"}, "spec.name"),
    ("unknown engine version", {**SPEC, "engineVersion": "6.0"}, "spec.engineVersion"),
    ("storage below the minimum", {**SPEC, "storageSpace": 10}, "spec.storageSpace"),
    ("storage as a string", {**SPEC, "storageSpace": "lots"}, "spec.storageSpace"),
    ("no broker", {**SPEC, "brokerNum": 0}, "spec.brokerNum"),
    ("unknown disk type", {**SPEC, "storageSpecCode": "ssd"}, "spec.storageSpecCode"),
    ("two availability zones", {**SPEC, "availableZones": ["az-1", "az-2"]}, "spec.availableZones"),
    ("no availability zone", {**SPEC, "availableZones": []}, "spec.availableZones"),
    ("product of the other engine", {**SPEC, "productId": "c6.4u8g.cluster"}, "spec.productId"),
    ("unknown deletion policy", {**SPEC, "deletionPolicy": "Retain"}, "spec.deletionPolicy"),
    ("missing vpc without adoption", _without("vpcId"), "spec.vpcId"),
    ("public access without an EIP", {**SPEC, "enablePublicip": True}, "spec.publicipId"),
    ("reserved owner tag", {**SPEC, "tags": {"rocketmq-operator.uid": "x"}}, "spec.tags"),
    ("description too long", {**SPEC, "description": "x" * 1025}, "spec.description"),
    ("unknown architecture", {**SPEC, "archType": "RISCV"}, "spec.archType"),
    ("unknown field", {**SPEC, "brokers": 3}, "brokers"),
    ("force delete not a boolean", {**SPEC, "forceDelete": "yes"}, "spec.forceDelete"),
    ("encryption without a key", {**SPEC, "diskEncryptedEnable": True}, "spec.diskEncryptedKey"),
]


def _create_error(cluster: Cluster, namespace: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        cluster.create(namespace, "invalid", spec)
    assert caught.value.status in (400, 422)
    return str(caught.value.body)


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> str:
    return cluster.namespace("e2e-validation")


@pytest.mark.parametrize(("case", "spec", "field"), INVALID_CREATES, ids=[c[0] for c in INVALID_CREATES])
def test_invalid_cr_is_refused_with_the_field_named(
    cluster: Cluster, namespace: str, case: str, spec: dict[str, Any], field: str
) -> None:
    body = _create_error(cluster, namespace, spec)
    assert field in body, f"{case}: {body}"


def test_unknown_field_is_refused_by_kubectl_with_strict_validation(cluster: Cluster, namespace: str) -> None:
    manifest = yaml.safe_dump(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RocketMQInstance",
            "metadata": {"name": "typo"},
            "spec": {**SPEC, "brokerNumber": 2},
        }
    )
    result = cluster.control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert "brokerNumber" in result.stderr


IMMUTABLE_EDITS: list[tuple[str, dict[str, Any], str]] = [
    ("engine version", {"engineVersion": "4.8.0", "productId": "c6.4u8g.cluster"}, "spec.engineVersion is immutable"),
    ("vpc", {"vpcId": "vpc-other"}, "spec.vpcId is immutable"),
    ("availability zones", {"availableZones": ["az-9"]}, "spec.availableZones is immutable"),
    ("disk type", {"storageSpecCode": "dms.physical.storage.ultra.v2"}, "spec.storageSpecCode is immutable"),
    ("ssl added later", {"sslEnable": True}, "spec.sslEnable is immutable"),
    ("storage shrink", {"storageSpace": 200}, "spec.storageSpace cannot shrink"),
    ("fewer brokers", {"brokerNum": 0}, "spec.brokerNum"),
    ("adopting later", {"instanceId": "i-123"}, "spec.instanceId is immutable"),
]


@pytest.mark.parametrize(("case", "change", "message"), IMMUTABLE_EDITS, ids=[c[0] for c in IMMUTABLE_EDITS])
def test_edit_of_a_field_the_cloud_cannot_change_is_refused(
    cluster: Cluster, namespace: str, case: str, change: dict[str, Any], message: str
) -> None:
    name = f"imm-{abs(hash(case)) % 100000}"
    cluster.create(namespace, name, {**SPEC, "brokerNum": 2})
    with pytest.raises(ApiException) as caught:
        cluster.patch(namespace, name, {"spec": change})
    assert message in str(caught.value.body), caught.value.body


def test_mutable_fields_can_change(cluster: Cluster, namespace: str) -> None:
    cluster.create(namespace, "mutable", SPEC)
    patched = cluster.patch(
        namespace,
        "mutable",
        {"spec": {"storageSpace": 600, "brokerNum": 2, "securityGroupId": "sg-2", "description": "more"}},
    )
    assert patched["spec"]["storageSpace"] == 600


def test_adoption_needs_no_create_parameters(cluster: Cluster, namespace: str) -> None:
    created = cluster.create(namespace, "adopted", {"instanceId": "i-123"})
    assert created["spec"]["instanceId"] == "i-123"
