"""The API server itself refuses invalid RocketMQUsers, naming the field (no operator needed): the CRD
generated from ``core.user_resource``, installed as devstack installs it. Covers every schema and CEL
rule the model declares: one key source of two, the connection Secret apart from the key's Secret, the
access key's pattern, the permission enums, the immutable instance and access key."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from .support import GROUP, VERSION, Cluster

# The rules are plain OpenAPI and CEL that hold on 1.30 too (make test-k8s-oldest).
pytestmark = pytest.mark.k8s_oldest

USERS = "rocketmqusers"
BASE: dict[str, Any] = {
    "instanceRef": {"name": "orders-mq"},
    "accessKey": "app-user1",
    "secretKeyRef": {"name": "app-creds"},
}


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> str:
    return cluster.namespace("e2e-user-validation")


def _body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RocketMQUser", "metadata": {"name": name}, "spec": spec}


def _without_none(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if value is not None}


def _create(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    created = cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, USERS, _body(name, spec))
    assert isinstance(created, dict)
    return created


def _patch(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    patched = cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, USERS, name, {"spec": spec})
    assert isinstance(patched, dict)
    return patched


def _refused(cluster: Cluster, namespace: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        _create(cluster, namespace, _unique("invalid"), spec)
    assert caught.value.status in (400, 422)
    return str(caught.value.body)


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_a_valid_user_is_stored_with_the_schemas_defaults(cluster: Cluster, namespace: str) -> None:
    created = _create(cluster, namespace, _unique("valid"), {**BASE, "connectionSecret": {"name": "app-mq"}})
    spec = created["spec"]
    assert spec["secretKeyRef"] == {"name": "app-creds", "key": "secretKey"}
    assert (spec["defaultTopicPerm"], spec["defaultGroupPerm"], spec["admin"]) == ("DENY", "DENY", False)
    assert (spec["deletionPolicy"], spec["adopt"]) == ("Delete", False)
    generated = {**_without_none({**BASE, "secretKeyRef": None}), "generateSecretKey": {"secretName": "app-gen"}}
    assert _create(cluster, namespace, _unique("valid"), generated)["spec"]["generateSecretKey"]


ONE_OF = "exactly one of spec.secretKeyRef and spec.generateSecretKey must be set"
APART = "spec.connectionSecret.name must differ from the Secret holding the key"

INVALID_CREATES: list[tuple[str, dict[str, Any], str]] = [
    ("both key sources", {**BASE, "generateSecretKey": {"secretName": "app-gen"}}, ONE_OF),
    ("no key source", {**BASE, "secretKeyRef": None}, ONE_OF),
    ("connection Secret is the referenced one", {**BASE, "connectionSecret": {"name": "app-creds"}}, APART),
    (
        "connection Secret is the generated one",
        {
            **BASE,
            "secretKeyRef": None,
            "generateSecretKey": {"secretName": "app-gen"},
            "connectionSecret": {"name": "app-gen"},
        },
        APART,
    ),
    (
        "connection Secret name not DNS-1123",
        {**BASE, "connectionSecret": {"name": "App_Creds"}},
        "spec.connectionSecret.name",
    ),
    ("connection Secret name empty", {**BASE, "connectionSecret": {"name": ""}}, "spec.connectionSecret.name"),
    ("access key too short", {**BASE, "accessKey": "app"}, "spec.accessKey"),
    ("access key starts with a digit", {**BASE, "accessKey": "1app-user"}, "spec.accessKey"),
    ("access key with a dot", {**BASE, "accessKey": "app.user1"}, "spec.accessKey"),
    ("access key too long", {**BASE, "accessKey": "a" * 65}, "spec.accessKey"),
    ("no access key", {**BASE, "accessKey": None}, "spec.accessKey"),
    ("no instance", {**BASE, "instanceRef": None}, "spec.instanceRef"),
    ("empty instance name", {**BASE, "instanceRef": {"name": ""}}, "spec.instanceRef.name"),
    ("empty key Secret name", {**BASE, "secretKeyRef": {"name": ""}}, "spec.secretKeyRef.name"),
    (
        "empty generated Secret name",
        {**BASE, "secretKeyRef": None, "generateSecretKey": {"secretName": ""}},
        "spec.generateSecretKey.secretName",
    ),
    ("unknown default topic perm", {**BASE, "defaultTopicPerm": "ALL"}, "spec.defaultTopicPerm"),
    ("unknown default group perm", {**BASE, "defaultGroupPerm": "SUB|PUB"}, "spec.defaultGroupPerm"),
    ("unknown topic perm", {**BASE, "topicPerms": [{"name": "orders", "perm": "RW"}]}, "spec.topicPerms[0].perm"),
    ("unknown group perm", {**BASE, "groupPerms": [{"name": "billing", "perm": "pub"}]}, "spec.groupPerms[0].perm"),
    (
        "topic name with a dot",
        {**BASE, "topicPerms": [{"name": "orders.v2", "perm": "PUB"}]},
        "spec.topicPerms[0].name",
    ),
    ("group name too short", {**BASE, "groupPerms": [{"name": "ab", "perm": "SUB"}]}, "spec.groupPerms[0].name"),
    (
        "a topic listed twice",
        {**BASE, "topicPerms": [{"name": "orders", "perm": "PUB"}, {"name": "orders", "perm": "SUB"}]},
        "spec.topicPerms[1]",
    ),
    ("address list too long", {**BASE, "whiteRemoteAddress": "1" * 1025}, "spec.whiteRemoteAddress"),
    ("unknown deletion policy", {**BASE, "deletionPolicy": "Retain"}, "spec.deletionPolicy"),
]


@pytest.mark.parametrize(("case", "spec", "field"), INVALID_CREATES, ids=[c[0] for c in INVALID_CREATES])
def test_invalid_user_is_refused_with_the_field_named(
    cluster: Cluster, namespace: str, case: str, spec: dict[str, Any], field: str
) -> None:
    body = _refused(cluster, namespace, _without_none(spec))
    assert field in body, f"{case}: {body}"


def test_the_connection_secret_rule_names_its_field(cluster: Cluster, namespace: str) -> None:
    body = _refused(cluster, namespace, {**BASE, "connectionSecret": {"name": "app-creds"}})
    causes = json.loads(body)["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.connectionSecret.name"], body


IMMUTABLE_EDITS: list[tuple[str, dict[str, Any], str]] = [
    ("instance", {"instanceRef": {"name": "other-mq"}}, "spec.instanceRef is immutable"),
    ("access key", {"accessKey": "other-user1"}, "spec.accessKey is immutable"),
]


@pytest.mark.parametrize(("case", "change", "message"), IMMUTABLE_EDITS, ids=[c[0] for c in IMMUTABLE_EDITS])
def test_edit_of_an_immutable_field_is_refused(
    cluster: Cluster, namespace: str, case: str, change: dict[str, Any], message: str
) -> None:
    name = _unique("imm")
    _create(cluster, namespace, name, BASE)
    with pytest.raises(ApiException) as caught:
        _patch(cluster, namespace, name, change)
    assert caught.value.status in (400, 422)
    assert message in str(caught.value.body), f"{case}: {caught.value.body}"


def test_mutable_fields_can_change(cluster: Cluster, namespace: str) -> None:
    name = _unique("mutable")
    _create(cluster, namespace, name, BASE)
    patched = _patch(
        cluster,
        namespace,
        name,
        {
            "admin": True,
            "defaultTopicPerm": "PUB|SUB",
            "topicPerms": [{"name": "orders", "perm": "PUB"}],
            "connectionSecret": {"name": "app-mq"},
            "secretKeyRef": {"name": "app-creds-2", "key": "key"},
        },
    )
    spec = patched["spec"]
    assert (spec["admin"], spec["defaultTopicPerm"], spec["connectionSecret"]) == (True, "PUB|SUB", {"name": "app-mq"})
    # From a referenced key to a generated one, in one patch (a merge patch clears with null).
    switched = _patch(cluster, namespace, name, {"secretKeyRef": None, "generateSecretKey": {"secretName": "app-gen"}})
    assert "secretKeyRef" not in switched["spec"] and switched["spec"]["generateSecretKey"] == {"secretName": "app-gen"}
    # Moving the connection Secret onto the key's Secret is refused on update too.
    with pytest.raises(ApiException) as caught:
        _patch(cluster, namespace, name, {"connectionSecret": {"name": "app-gen"}})
    assert APART in str(caught.value.body)


def test_unknown_field_is_refused_by_kubectl_with_strict_validation(cluster: Cluster, namespace: str) -> None:
    manifest = yaml.safe_dump(_body(_unique("typo"), {**BASE, "password": "Not-Here-0001"}))
    result = cluster.control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert "password" in result.stderr


def test_kubectl_get_shows_instance_and_access_key_by_short_name_and_category(cluster: Cluster, namespace: str) -> None:
    name = _unique("listed")
    _create(cluster, namespace, name, BASE)
    header, row = cluster.kubectl("get", "rmqu", name, "-n", namespace).splitlines()[:2]
    assert header.split() == ["NAME", "INSTANCE", "ACCESS-KEY", "READY", "REASON", "AGE"]
    assert row.split()[:3] == [name, "orders-mq", "app-user1"]
    listed = json.loads(cluster.kubectl("get", "rocketmq", "-n", namespace, "-o", "json"))["items"]
    assert ("RocketMQUser", name) in {(i["kind"], i["metadata"]["name"]) for i in listed}
