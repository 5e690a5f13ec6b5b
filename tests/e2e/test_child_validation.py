"""The API server itself refuses invalid RocketMQTopics and RocketMQConsumerGroups, naming the field (no
operator needed): the CRDs generated from ``core.child_resource``, installed as devstack installs them."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from .support import GROUP, VERSION, Cluster

# The root rule on metadata.name, the transition rules and the ranges hold on 1.30 too.
pytestmark = pytest.mark.k8s_oldest

TOPICS, GROUPS = "rocketmqtopics", "rocketmqconsumergroups"
KINDS = {TOPICS: "RocketMQTopic", GROUPS: "RocketMQConsumerGroup"}
REF = {"instanceRef": {"name": "orders-mq"}}


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> str:
    return cluster.namespace("e2e-child-validation")


def _body(plural: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KINDS[plural], "metadata": {"name": name}, "spec": spec}


def _create(cluster: Cluster, namespace: str, plural: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = _body(plural, name, spec)
    created = cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
    assert isinstance(created, dict)
    return created


def _patch(cluster: Cluster, namespace: str, plural: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    patched = cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, {"spec": spec})
    assert isinstance(patched, dict)
    return patched


def _refused(cluster: Cluster, namespace: str, plural: str, name: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        _create(cluster, namespace, plural, name, spec)
    assert caught.value.status in (400, 422)
    return str(caught.value.body)


def _patch_refused(cluster: Cluster, namespace: str, plural: str, name: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        _patch(cluster, namespace, plural, name, spec)
    assert caught.value.status in (400, 422)
    return str(caught.value.body)


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.mark.parametrize("plural", [TOPICS, GROUPS])
def test_a_metadata_name_the_cloud_refuses_needs_spec_name(cluster: Cluster, namespace: str, plural: str) -> None:
    # A dot is fine in metadata.name, not in a cloud topic or group name.
    body = _refused(cluster, namespace, plural, "orders.v2", REF)
    causes = json.loads(body)["details"]["causes"]
    # The root rule's fieldPath: the API server reports the field itself, not the object.
    assert [c["field"] for c in causes] == ["metadata.name"], body
    assert "metadata.name is used as the cloud name" in causes[0]["message"] and "set spec.name" in body, body
    created = _create(cluster, namespace, plural, "orders.v2", {**REF, "name": "orders-v2"})
    assert created["spec"]["name"] == "orders-v2"


@pytest.mark.parametrize("plural", [TOPICS, GROUPS])
def test_a_metadata_name_the_cloud_accepts_is_the_default_cloud_name(
    cluster: Cluster, namespace: str, plural: str
) -> None:
    created = _create(cluster, namespace, plural, _unique("orders"), REF)
    assert "name" not in created["spec"]
    # The defaults the schema gives are stored, so the operator reads what the user would see.
    assert created["spec"]["deletionPolicy"] == "Delete" and created["spec"]["adopt"] is False


INVALID_CREATES: list[tuple[str, str, dict[str, Any], str]] = [
    ("no queue", TOPICS, {**REF, "queueNum": 0}, "spec.queueNum"),
    ("too many queues", TOPICS, {**REF, "queueNum": 51}, "spec.queueNum"),
    ("unknown message type", TOPICS, {**REF, "messageType": "BATCH"}, "spec.messageType"),
    ("unknown permission", TOPICS, {**REF, "permission": "rw"}, "spec.permission"),
    ("cloud name with a dot", TOPICS, {**REF, "name": "orders.v2"}, "spec.name"),
    ("cloud name too short", GROUPS, {**REF, "name": "ab"}, "spec.name"),
    ("no instance", TOPICS, {"queueNum": 8}, "spec.instanceRef"),
    ("empty instance name", GROUPS, {"instanceRef": {"name": ""}}, "spec.instanceRef.name"),
    ("too many retries", GROUPS, {**REF, "retryMaxTime": 17}, "spec.retryMaxTime"),
    ("no retry", GROUPS, {**REF, "retryMaxTime": 0}, "spec.retryMaxTime"),
    ("unknown deletion policy", GROUPS, {**REF, "deletionPolicy": "Retain"}, "spec.deletionPolicy"),
]


@pytest.mark.parametrize(("case", "plural", "spec", "field"), INVALID_CREATES, ids=[c[0] for c in INVALID_CREATES])
def test_invalid_child_is_refused_with_the_field_named(
    cluster: Cluster, namespace: str, case: str, plural: str, spec: dict[str, Any], field: str
) -> None:
    body = _refused(cluster, namespace, plural, _unique("invalid"), spec)
    assert field in body, f"{case}: {body}"


IMMUTABLE_EDITS: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
    ("topic cloud name", TOPICS, {"name": "orders-a"}, {"name": "orders-b"}, "spec.name is immutable"),
    ("group cloud name", GROUPS, {"name": "billing-a"}, {"name": "billing-b"}, "spec.name is immutable"),
    ("cloud name removed", TOPICS, {"name": "orders-a"}, {"name": None}, "spec.name is immutable"),
    ("cloud name added", GROUPS, {}, {"name": "billing-b"}, "spec.name is immutable"),
    ("topic instance", TOPICS, {}, {"instanceRef": {"name": "other-mq"}}, "spec.instanceRef is immutable"),
    ("group instance", GROUPS, {}, {"instanceRef": {"name": "other-mq"}}, "spec.instanceRef is immutable"),
    ("message type", TOPICS, {"messageType": "NORMAL"}, {"messageType": "FIFO"}, "spec.messageType is immutable"),
    ("brokers", GROUPS, {"brokers": ["broker-0"]}, {"brokers": ["broker-1"]}, "spec.brokers is immutable"),
    ("message type added", TOPICS, {}, {"messageType": "FIFO"}, "spec.messageType is immutable"),
    ("topic brokers added", TOPICS, {}, {"brokers": ["broker-0"]}, "spec.brokers is immutable"),
    ("group brokers removed", GROUPS, {"brokers": ["broker-0"]}, {"brokers": None}, "spec.brokers is immutable"),
]


@pytest.mark.parametrize(
    ("case", "plural", "initial", "change", "message"), IMMUTABLE_EDITS, ids=[c[0] for c in IMMUTABLE_EDITS]
)
def test_edit_of_a_field_the_cloud_cannot_change_is_refused(
    cluster: Cluster,
    namespace: str,
    case: str,
    plural: str,
    initial: dict[str, Any],
    change: dict[str, Any],
    message: str,
) -> None:
    name = _unique("imm")
    _create(cluster, namespace, plural, name, {**REF, **initial})
    body = _patch_refused(cluster, namespace, plural, name, change)
    assert message in body, f"{case}: {body}"


def test_mutable_fields_can_change(cluster: Cluster, namespace: str) -> None:
    topic = _unique("mutable")
    _create(cluster, namespace, TOPICS, topic, {**REF, "queueNum": 8})
    patched = _patch(cluster, namespace, TOPICS, topic, {"queueNum": 16, "permission": "pub", "adopt": True})
    assert (patched["spec"]["queueNum"], patched["spec"]["permission"]) == (16, "pub")
    group = _unique("mutable")
    _create(cluster, namespace, GROUPS, group, REF)
    patched = _patch(cluster, namespace, GROUPS, group, {"enabled": False, "retryMaxTime": 3})
    assert (patched["spec"]["enabled"], patched["spec"]["retryMaxTime"]) == (False, 3)


@pytest.mark.parametrize("plural", [TOPICS, GROUPS])
def test_unknown_field_is_refused_by_kubectl_with_strict_validation(
    cluster: Cluster, namespace: str, plural: str
) -> None:
    manifest = yaml.safe_dump(_body(plural, _unique("typo"), {**REF, "queueNumber": 8}))
    result = cluster.control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert "queueNumber" in result.stderr


@pytest.mark.parametrize(("plural", "short"), [(TOPICS, "rmqt"), (GROUPS, "rmqg")])
def test_kubectl_get_shows_the_instance_and_finds_children_by_short_name_and_category(
    cluster: Cluster, namespace: str, plural: str, short: str
) -> None:
    name = _unique("listed")
    _create(cluster, namespace, plural, name, REF)
    table = cluster.kubectl("get", short, name, "-n", namespace)
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "INSTANCE", "CLOUD-NAME", "READY", "REASON", "AGE"]
    assert row.split()[:2] == [name, "orders-mq"]
    # `kubectl get rocketmq` lists instances, topics and groups together.
    listed = json.loads(cluster.kubectl("get", "rocketmq", "-n", namespace, "-o", "json"))["items"]
    assert (KINDS[plural], name) in {(i["kind"], i["metadata"]["name"]) for i in listed}
