"""The API server itself refuses invalid RocketMQAccounts and ClusterRocketMQAccounts, naming the field (no
operator needed): the CRDs generated from ``core.account_resource``, installed as devstack installs them.
Covers every schema and CEL rule the models declare: endpoint or region (one of two), the endpoint, region
and project patterns, the credentials' Secret, the rate limit's bounds, strict fields, the immutable
identity (endpoint, region, project) next to what may change (credentials, rate limit, CA bundle, cluster
id), the cluster kind's allowedNamespaces; and on RocketMQInstance, spec.accountRef's kind and its
immutability (no change, no adding, no removing)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from instance_spec import SPEC

from .support import GROUP, VERSION, Cluster

# The rules are plain OpenAPI and CEL (transition rules on oldSelf included) that hold on 1.30 too.
pytestmark = pytest.mark.k8s_oldest

ACCOUNTS = "rocketmqaccounts"
CLUSTER_ACCOUNTS = "clusterrocketmqaccounts"
ACCOUNT = "RocketMQAccount"
CLUSTER_ACCOUNT = "ClusterRocketMQAccount"
KINDS = (ACCOUNT, CLUSTER_ACCOUNT)
ENDPOINT = "https://dms.example.test"
BASE: dict[str, Any] = {
    "endpoint": ENDPOINT,
    "projectId": "project-team-a",
    "credentials": {"secretName": "team-a-creds"},
}
ONE_OF = "exactly one of spec.endpoint and spec.region must be set"


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> str:
    return cluster.namespace("e2e-account-validation")


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _without_none(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if value is not None}


def _body(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}


def _create(cluster: Cluster, namespace: str, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = _body(kind, name, spec)
    if kind == ACCOUNT:
        created = cluster.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, ACCOUNTS, body, field_validation="Strict"
        )
    else:
        created = cluster.custom.create_cluster_custom_object(
            GROUP, VERSION, CLUSTER_ACCOUNTS, body, field_validation="Strict"
        )
    assert isinstance(created, dict)
    return created


def _patch(cluster: Cluster, namespace: str, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    if kind == ACCOUNT:
        patched = cluster.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, ACCOUNTS, name, {"spec": spec}
        )
    else:
        patched = cluster.custom.patch_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNTS, name, {"spec": spec})
    assert isinstance(patched, dict)
    return patched


def _refused(cluster: Cluster, namespace: str, kind: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        _create(cluster, namespace, kind, _unique("invalid"), spec)
    assert caught.value.status in (400, 422)
    return str(caught.value.body)


def _refused_edit(cluster: Cluster, namespace: str, kind: str, name: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        _patch(cluster, namespace, kind, name, spec)
    assert caught.value.status in (400, 422)
    return str(caught.value.body)


@pytest.mark.parametrize("kind", KINDS)
def test_a_valid_account_is_stored_with_the_schemas_defaults(cluster: Cluster, namespace: str, kind: str) -> None:
    created = _create(cluster, namespace, kind, _unique("valid"), BASE)
    assert created["spec"]["credentials"] == {"secretName": "team-a-creds"}
    # The key names' defaults fill a keys object that is there (absent, the operator's model applies them).
    with_keys = {**BASE, "credentials": {"secretName": "team-a-creds", "keys": {}}}
    created = _create(cluster, namespace, kind, _unique("valid"), with_keys)
    assert created["spec"]["credentials"]["keys"] == {
        "accessKey": "accessKey",
        "secretKey": "secretKey",
        "securityToken": "securityToken",
        "authToken": "authToken",
    }
    by_region = {**_without_none({**BASE, "endpoint": None}), "region": "cn-north-4"}
    full = {
        **by_region,
        "caBundle": "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
        "rateLimit": {"rps": 0.5, "burst": 1},
        "clusterId": "prod-cluster",
    }
    assert _create(cluster, namespace, kind, _unique("valid"), full)["spec"]["rateLimit"] == {"rps": 0.5, "burst": 1}


def _id(case: Any) -> str:
    return str(case.values[0] if hasattr(case, "values") else case[0])


INVALID_CREATES: list[Any] = [
    ("both endpoint and region", {**BASE, "region": "cn-north-4"}, ONE_OF),
    ("neither endpoint nor region", {**BASE, "endpoint": None}, ONE_OF),
    ("endpoint without a scheme", {**BASE, "endpoint": "dms.example.test"}, "spec.endpoint"),
    ("endpoint of another scheme", {**BASE, "endpoint": "ftp://dms.example.test"}, "spec.endpoint"),
    ("endpoint with a space", {**BASE, "endpoint": "https://dms example.test"}, "spec.endpoint"),
    ("endpoint without a host", {**BASE, "endpoint": "https:///v2"}, "spec.endpoint"),
    ("endpoint too long", {**BASE, "endpoint": "https://" + "a" * 505}, "spec.endpoint"),
    (
        "region in capitals",
        {**_without_none({**BASE, "endpoint": None}), "region": "CN-North-4"},
        "spec.region",
    ),
    ("region without a dash", {**_without_none({**BASE, "endpoint": None}), "region": "cnnorth4"}, "spec.region"),
    ("region with underscores", {**_without_none({**BASE, "endpoint": None}), "region": "cn_north_4"}, "spec.region"),
    ("region too long", {**_without_none({**BASE, "endpoint": None}), "region": "cn-" + "a" * 62}, "spec.region"),
    ("no project", {**BASE, "projectId": None}, "spec.projectId"),
    ("empty project", {**BASE, "projectId": ""}, "spec.projectId"),
    ("project with a slash", {**BASE, "projectId": "team/a"}, "spec.projectId"),
    ("project with a dot", {**BASE, "projectId": "team.a"}, "spec.projectId"),
    ("project too long", {**BASE, "projectId": "p" * 65}, "spec.projectId"),
    ("no credentials", {**BASE, "credentials": None}, "spec.credentials"),
    ("credentials without a Secret name", {**BASE, "credentials": {}}, "spec.credentials.secretName"),
    ("empty Secret name", {**BASE, "credentials": {"secretName": ""}}, "spec.credentials.secretName"),
    ("Secret name not DNS-1123", {**BASE, "credentials": {"secretName": "Team_Creds"}}, "spec.credentials.secretName"),
    ("Secret name too long", {**BASE, "credentials": {"secretName": "a" * 254}}, "spec.credentials.secretName"),
    (
        "empty key name",
        {**BASE, "credentials": {"secretName": "team-a-creds", "keys": {"secretKey": ""}}},
        "spec.credentials.keys.secretKey",
    ),
    ("rate limit of zero", {**BASE, "rateLimit": {"rps": 0, "burst": 5}}, "spec.rateLimit.rps"),
    ("rate limit of zero as a decimal", {**BASE, "rateLimit": {"rps": 0.0, "burst": 5}}, "spec.rateLimit.rps"),
    ("negative rate limit", {**BASE, "rateLimit": {"rps": -1, "burst": 5}}, "spec.rateLimit.rps"),
    ("rate limit too high", {**BASE, "rateLimit": {"rps": 10001, "burst": 5}}, "spec.rateLimit.rps"),
    ("burst of zero", {**BASE, "rateLimit": {"rps": 5, "burst": 0}}, "spec.rateLimit.burst"),
    ("burst not whole", {**BASE, "rateLimit": {"rps": 5, "burst": 1.5}}, "spec.rateLimit.burst"),
    ("rate limit without a burst", {**BASE, "rateLimit": {"rps": 5}}, "spec.rateLimit.burst"),
    ("empty cluster id", {**BASE, "clusterId": ""}, "spec.clusterId"),
    ("unknown field", {**BASE, "secretKey": "Not-Here-0001"}, "secretKey"),
    (
        "unknown field in credentials",
        {**BASE, "credentials": {"secretName": "team-a-creds", "password": "Not-Here-0001"}},
        "password",
    ),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("case", "spec", "field"), INVALID_CREATES, ids=[_id(c) for c in INVALID_CREATES])
def test_invalid_account_is_refused_with_the_field_named(
    cluster: Cluster, namespace: str, kind: str, case: str, spec: dict[str, Any], field: str
) -> None:
    body = _refused(cluster, namespace, kind, _without_none(spec))
    assert field in body, f"{kind}, {case}: {body}"


INVALID_ALLOWED_NAMESPACES: list[tuple[str, list[Any]]] = [
    ("an empty name", ["team-a", ""]),
    ("a name longer than a namespace's", ["n" * 64]),
    ("a name no namespace can have", ["Team_A"]),
    ("not a list of strings", [{"name": "team-a"}]),
    ("more than 1000", [f"team-{i}" for i in range(1001)]),
]


@pytest.mark.parametrize(
    ("case", "allowed"), INVALID_ALLOWED_NAMESPACES, ids=[c[0] for c in INVALID_ALLOWED_NAMESPACES]
)
def test_invalid_allowed_namespaces_are_refused(
    cluster: Cluster, namespace: str, case: str, allowed: list[Any]
) -> None:
    body = _refused(cluster, namespace, CLUSTER_ACCOUNT, {**BASE, "allowedNamespaces": allowed})
    assert "spec.allowedNamespaces" in body, f"{case}: {body}"


def test_allowed_namespaces_is_the_cluster_kinds_alone(cluster: Cluster, namespace: str) -> None:
    body = _refused(cluster, namespace, ACCOUNT, {**BASE, "allowedNamespaces": ["team-a"]})
    assert "allowedNamespaces" in body, body
    created = _create(cluster, namespace, CLUSTER_ACCOUNT, _unique("allowed"), {**BASE, "allowedNamespaces": []})
    assert created["spec"]["allowedNamespaces"] == []
    name = _unique("allowed")
    _create(cluster, namespace, CLUSTER_ACCOUNT, name, {**BASE, "allowedNamespaces": ["team-a"]})
    patched = _patch(cluster, namespace, CLUSTER_ACCOUNT, name, {"allowedNamespaces": ["team-a", "team-b"]})
    assert patched["spec"]["allowedNamespaces"] == ["team-a", "team-b"]


IMMUTABLE_EDITS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("endpoint", BASE, {"endpoint": "https://dms.other.test"}, "spec.endpoint is immutable"),
    (
        "region",
        {**_without_none({**BASE, "endpoint": None}), "region": "cn-north-4"},
        {"region": "cn-east-3"},
        "spec.region is immutable",
    ),
    ("project", BASE, {"projectId": "project-team-b"}, "spec.projectId is immutable"),
    (
        "endpoint to region",
        BASE,
        {"endpoint": None, "region": "cn-north-4"},
        "spec.endpoint and spec.region are immutable",
    ),
    (
        "region to endpoint",
        {**_without_none({**BASE, "endpoint": None}), "region": "cn-north-4"},
        {"region": None, "endpoint": ENDPOINT},
        "spec.endpoint and spec.region are immutable",
    ),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("case", "spec", "change", "message"), IMMUTABLE_EDITS, ids=[c[0] for c in IMMUTABLE_EDITS])
def test_edit_of_the_accounts_identity_is_refused(
    cluster: Cluster, namespace: str, kind: str, case: str, spec: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    name = _unique("imm")
    _create(cluster, namespace, kind, name, spec)
    body = _refused_edit(cluster, namespace, kind, name, change)
    assert message in body, f"{kind}, {case}: {body}"


@pytest.mark.parametrize("kind", KINDS)
def test_credentials_rate_limit_ca_bundle_and_cluster_id_can_change(
    cluster: Cluster, namespace: str, kind: str
) -> None:
    name = _unique("mutable")
    _create(cluster, namespace, kind, name, {**BASE, "rateLimit": {"rps": 5, "burst": 10}})
    change = {
        "credentials": {"secretName": "team-a-creds-2", "keys": {"accessKey": "ak", "secretKey": "sk"}},
        "rateLimit": {"rps": 20, "burst": 40},
        "caBundle": "-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n",
        "clusterId": "prod-cluster-2",
    }
    spec = _patch(cluster, namespace, kind, name, change)["spec"]
    assert spec["credentials"]["secretName"] == "team-a-creds-2"
    assert (spec["credentials"]["keys"]["accessKey"], spec["credentials"]["keys"]["secretKey"]) == ("ak", "sk")
    assert (spec["rateLimit"], spec["clusterId"]) == ({"rps": 20, "burst": 40}, "prod-cluster-2")
    assert spec["caBundle"].startswith("-----BEGIN CERTIFICATE-----\nnew")
    # Optional ones may also be cleared again (a merge patch clears with null); the identity stays.
    cleared = _patch(cluster, namespace, kind, name, {"rateLimit": None, "caBundle": None, "clusterId": None})["spec"]
    assert not {"rateLimit", "caBundle", "clusterId"} & set(cleared)
    assert (cleared["endpoint"], cleared["projectId"]) == (ENDPOINT, BASE["projectId"])
    # A rule that holds on create holds on update too.
    body = _refused_edit(cluster, namespace, kind, name, {"rateLimit": {"rps": -1, "burst": 1}})
    assert "spec.rateLimit.rps" in body, body


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_field_is_refused_by_kubectl_with_strict_validation(
    cluster: Cluster, namespace: str, kind: str
) -> None:
    manifest = yaml.safe_dump(_body(kind, _unique("typo"), {**BASE, "accessKey": "AKNOTHERE0000001"}))
    args = ["apply", "-f", "-"] if kind == CLUSTER_ACCOUNT else ["apply", "-n", namespace, "-f", "-"]
    result = cluster.control_plane.kubectl(*args, input=manifest, check=False)
    assert result.returncode != 0
    assert "accessKey" in result.stderr


STATUS: dict[str, Any] = {
    "endpoint": ENDPOINT,
    "inUse": 3,
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "AuthFailed",
            "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ],
}


@pytest.mark.parametrize("kind", KINDS)
def test_kubectl_get_shows_project_endpoint_use_and_readiness(cluster: Cluster, namespace: str, kind: str) -> None:
    name = _unique("listed")
    _create(cluster, namespace, kind, name, BASE)
    if kind == ACCOUNT:
        cluster.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, ACCOUNTS, name, {"status": STATUS}
        )
        args = ["get", "rmqa", name, "-n", namespace]
    else:
        cluster.custom.patch_cluster_custom_object_status(GROUP, VERSION, CLUSTER_ACCOUNTS, name, {"status": STATUS})
        args = ["get", CLUSTER_ACCOUNTS, name]
    header, row = cluster.kubectl(*args).splitlines()[:2]
    assert header.split() == ["NAME", "PROJECT", "ENDPOINT", "IN-USE", "READY", "REASON", "AGE"]
    assert row.split()[:6] == [name, "project-team-a", ENDPOINT, "3", "False", "AuthFailed"]


def test_the_short_name_and_category_list_namespaced_accounts(cluster: Cluster, namespace: str) -> None:
    name = _unique("short")
    _create(cluster, namespace, ACCOUNT, name, BASE)
    listed = json.loads(cluster.kubectl("get", "rmqa", "-n", namespace, "-o", "json"))["items"]
    assert name in {i["metadata"]["name"] for i in listed}
    by_category = json.loads(cluster.kubectl("get", "rocketmq", "-n", namespace, "-o", "json"))["items"]
    assert (ACCOUNT, name) in {(i["kind"], i["metadata"]["name"]) for i in by_category}


def test_the_cluster_kind_is_cluster_scoped(cluster: Cluster, namespace: str) -> None:
    name = _unique("cluster")
    created = _create(cluster, namespace, CLUSTER_ACCOUNT, name, BASE)
    assert "namespace" not in created["metadata"]
    cluster_scoped = cluster.kubectl("api-resources", "--namespaced=false", "--api-group", GROUP, "-o", "name")
    namespaced = cluster.kubectl("api-resources", "--namespaced=true", "--api-group", GROUP, "-o", "name")
    assert f"{CLUSTER_ACCOUNTS}.{GROUP}" in cluster_scoped.split()
    assert f"{ACCOUNTS}.{GROUP}" in namespaced.split()
    # Seen from every namespace as the same object; a namespaced path for it does not exist.
    assert json.loads(cluster.kubectl("get", CLUSTER_ACCOUNTS, name, "-o", "json"))["metadata"]["name"] == name
    with pytest.raises(ApiException) as caught:
        cluster.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, CLUSTER_ACCOUNTS, _body(CLUSTER_ACCOUNT, _unique("cluster"), BASE)
        )
    assert caught.value.status == 404


# RocketMQInstance.spec.accountRef


def _instance(cluster: Cluster, namespace: str, account_ref: dict[str, Any] | None) -> str:
    name = _unique("inst")
    cluster.create(namespace, name, {**SPEC, **({"accountRef": account_ref} if account_ref else {})})
    return name


def _instance_refused(cluster: Cluster, namespace: str, account_ref: Any) -> str:
    with pytest.raises(ApiException) as caught:
        _instance(cluster, namespace, account_ref)
    assert caught.value.status in (400, 422)
    return str(caught.value.body)


def test_an_instance_names_either_account_kind(cluster: Cluster, namespace: str) -> None:
    for kind in KINDS:
        name = _instance(cluster, namespace, {"kind": kind, "name": "team-a"})
        stored = cluster.get(namespace, name)
        assert stored is not None and stored["spec"]["accountRef"] == {"kind": kind, "name": "team-a"}


INVALID_REFS: list[tuple[str, Any, str]] = [
    ("unknown kind", {"kind": "Account", "name": "team-a"}, "spec.accountRef.kind"),
    ("kind in lower case", {"kind": "rocketmqaccount", "name": "team-a"}, "spec.accountRef.kind"),
    ("no kind", {"name": "team-a"}, "spec.accountRef.kind"),
    ("no name", {"kind": ACCOUNT}, "spec.accountRef.name"),
    ("empty name", {"kind": ACCOUNT, "name": ""}, "spec.accountRef.name"),
    ("name not DNS-1123", {"kind": ACCOUNT, "name": "Team_A"}, "spec.accountRef.name"),
    ("unknown field", {"kind": ACCOUNT, "name": "team-a", "namespace": "other"}, "namespace"),
]


@pytest.mark.parametrize(("case", "ref", "field"), INVALID_REFS, ids=[c[0] for c in INVALID_REFS])
def test_invalid_account_ref_is_refused_with_the_field_named(
    cluster: Cluster, namespace: str, case: str, ref: Any, field: str
) -> None:
    body = _instance_refused(cluster, namespace, ref)
    assert field in body, f"{case}: {body}"


REF = {"kind": ACCOUNT, "name": "team-a"}
REF_EDITS: list[tuple[str, dict[str, Any] | None, Any]] = [
    ("added", None, REF),
    ("removed", REF, None),
    ("renamed", REF, {"kind": ACCOUNT, "name": "team-b"}),
    ("other kind", REF, {"kind": CLUSTER_ACCOUNT, "name": "team-a"}),
]


@pytest.mark.parametrize(("case", "before", "after"), REF_EDITS, ids=[c[0] for c in REF_EDITS])
def test_account_ref_cannot_change_after_creation(
    cluster: Cluster, namespace: str, case: str, before: dict[str, Any] | None, after: Any
) -> None:
    name = _instance(cluster, namespace, before)
    with pytest.raises(ApiException) as caught:
        cluster.patch(namespace, name, {"spec": {"accountRef": after}})
    assert caught.value.status in (400, 422)
    body = str(caught.value.body)
    assert "spec.accountRef is immutable" in body, f"{case}: {body}"
    stored = cluster.get(namespace, name)
    assert stored is not None and stored["spec"].get("accountRef") == before


def test_the_instance_keeps_its_account_through_other_edits(cluster: Cluster, namespace: str) -> None:
    name = _instance(cluster, namespace, REF)
    patched = cluster.patch(namespace, name, {"spec": {"storageSpace": 600, "accountRef": dict(REF)}})
    assert (patched["spec"]["storageSpace"], patched["spec"]["accountRef"]) == (600, REF)
    stored = cluster.get(namespace, name)
    assert stored is not None and stored["spec"]["accountRef"] == REF
