"""The CRDs of the account kinds, and what every generated CRD must be for the API server to take it."""

from __future__ import annotations

from typing import Any

import pytest

from rocketmq_operator.core import crdgen


def _walk(node: object, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(_walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_walk(value, f"{path}[{index}]"))
    return found


def _version(crd: dict[str, Any]) -> dict[str, Any]:
    version: dict[str, Any] = crd["spec"]["versions"][0]
    return version


def _spec(kind: crdgen.KindSpec) -> dict[str, Any]:
    spec: dict[str, Any] = _version(crdgen.crd(kind))["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


ACCOUNT_KINDS = [
    pytest.param(crdgen.ACCOUNT, id="RocketMQAccount"),
    pytest.param(crdgen.CLUSTER_ACCOUNT, id="ClusterRocketMQAccount"),
]
EVERY_KIND = [pytest.param(kind, id=key) for key, kind in sorted(crdgen.KINDS.items())]


class TestTheAccountKindsNames:
    def test_a_rocketmq_account_is_namespaced_with_the_short_name_rmqa(self) -> None:
        crd = crdgen.crd(crdgen.ACCOUNT)

        assert crd["metadata"]["name"] == "rocketmqaccounts.dms.rocketmq-operator.io"
        assert crd["spec"]["scope"] == "Namespaced"
        names = crd["spec"]["names"]
        assert (names["kind"], names["plural"], names["singular"]) == (
            "RocketMQAccount",
            "rocketmqaccounts",
            "rocketmqaccount",
        )
        assert names["shortNames"] == ["rmqa"]

    def test_a_cluster_rocketmq_account_is_cluster_scoped_without_short_names(self) -> None:
        crd = crdgen.crd(crdgen.CLUSTER_ACCOUNT)

        assert crd["metadata"]["name"] == "clusterrocketmqaccounts.dms.rocketmq-operator.io"
        assert crd["spec"]["scope"] == "Cluster"
        names = crd["spec"]["names"]
        assert (names["kind"], names["plural"]) == ("ClusterRocketMQAccount", "clusterrocketmqaccounts")
        assert "shortNames" not in names

    def test_only_the_cluster_account_is_cluster_scoped(self) -> None:
        scoped = {key for key, kind in crdgen.KINDS.items() if crdgen.crd(kind)["spec"]["scope"] == "Cluster"}

        assert scoped == {"clusteraccount"}


class TestTheAccountKindsSchemas:
    @pytest.mark.parametrize("kind", ACCOUNT_KINDS)
    def test_printer_columns_show_project_endpoint_use_ready_reason_age(self, kind: crdgen.KindSpec) -> None:
        columns = {c["name"]: c for c in _version(crdgen.crd(kind))["additionalPrinterColumns"]}

        assert list(columns) == ["Project", "Endpoint", "In-Use", "Ready", "Reason", "Age"]
        assert columns["Project"]["jsonPath"] == ".spec.projectId"
        assert columns["Endpoint"]["jsonPath"] == ".status.endpoint"
        assert (columns["In-Use"]["jsonPath"], columns["In-Use"]["type"]) == (".status.inUse", "integer")

    @pytest.mark.parametrize("kind", ACCOUNT_KINDS)
    def test_exactly_one_of_endpoint_and_region_and_neither_can_be_swapped(self, kind: crdgen.KindSpec) -> None:
        rules = {r["rule"]: r["message"] for r in _spec(kind)["x-kubernetes-validations"]}

        assert "exactly one of spec.endpoint and spec.region" in rules["has(self.endpoint) != has(self.region)"]
        swap = "has(self.endpoint) == has(oldSelf.endpoint) && has(self.region) == has(oldSelf.region)"
        assert "immutable" in rules[swap]

    @pytest.mark.parametrize("kind", ACCOUNT_KINDS)
    @pytest.mark.parametrize("field", ["endpoint", "region", "projectId"])
    def test_the_accounts_identity_is_immutable(self, kind: crdgen.KindSpec, field: str) -> None:
        [rule] = _spec(kind)["properties"][field]["x-kubernetes-validations"]

        assert rule["rule"] == "self == oldSelf"
        assert f"spec.{field} is immutable" in rule["message"]

    @pytest.mark.parametrize("kind", ACCOUNT_KINDS)
    @pytest.mark.parametrize("field", ["credentials", "caBundle", "rateLimit", "clusterId"])
    def test_credentials_trust_limits_and_cluster_id_may_change(self, kind: crdgen.KindSpec, field: str) -> None:
        assert "x-kubernetes-validations" not in _spec(kind)["properties"][field]

    @pytest.mark.parametrize("kind", ACCOUNT_KINDS)
    def test_project_and_secret_name_are_required(self, kind: crdgen.KindSpec) -> None:
        spec = _spec(kind)

        assert set(spec["required"]) == {"projectId", "credentials"}
        assert spec["properties"]["credentials"]["required"] == ["secretName"]

    def test_only_the_cluster_account_has_allowed_namespaces(self) -> None:
        allowed = _spec(crdgen.CLUSTER_ACCOUNT)["properties"]["allowedNamespaces"]

        assert allowed["type"] == "array"
        assert allowed["items"]["type"] == "string"
        assert "allowedNamespaces" not in _spec(crdgen.ACCOUNT)["properties"]

    @pytest.mark.parametrize("kind", ACCOUNT_KINDS)
    def test_the_rate_limit_is_positive_and_the_burst_at_least_one(self, kind: crdgen.KindSpec) -> None:
        rate = _spec(kind)["properties"]["rateLimit"]["properties"]

        # Above zero, exclusively: an inclusive decimal minimum let a whole 0 through (the API server
        # compared the integer 0 with the minimum truncated to an integer).
        assert rate["rps"]["type"] == "number"
        assert (rate["rps"]["minimum"], rate["rps"]["exclusiveMinimum"]) == (0, True)
        assert rate["burst"]["type"] == "integer" and rate["burst"]["minimum"] == 1


class TestWhatTheApiServerTakes:
    @pytest.mark.parametrize("kind", EVERY_KIND)
    def test_no_schema_has_a_numeric_exclusive_bound(self, kind: crdgen.KindSpec) -> None:
        # apiextensions/v1 takes exclusiveMinimum/Maximum as booleans only (OpenAPI 3.0); pydantic's gt/lt
        # write numbers, which the API server refuses, so the whole CRD would not install.
        schema = _version(crdgen.crd(kind))["schema"]["openAPIV3Schema"]
        numeric = [
            f"{path}.{bound}"
            for path, node in _walk(schema)
            for bound in ("exclusiveMinimum", "exclusiveMaximum")
            if bound in node and not isinstance(node[bound], bool)
        ]

        assert numeric == []

    @pytest.mark.parametrize("kind", EVERY_KIND)
    def test_every_array_says_the_type_of_its_items(self, kind: crdgen.KindSpec) -> None:
        schema = _version(crdgen.crd(kind))["schema"]["openAPIV3Schema"]
        untyped = [
            path
            for path, node in _walk(schema)
            if node.get("type") == "array" and not isinstance(node.get("items", {}).get("type"), str)
        ]

        assert untyped == []

    @pytest.mark.parametrize("kind", EVERY_KIND)
    def test_every_property_has_a_type_or_preserves_unknown_fields(self, kind: crdgen.KindSpec) -> None:
        schema = _version(crdgen.crd(kind))["schema"]["openAPIV3Schema"]
        untyped = [
            f"{path}.{name}"
            for path, node in _walk(schema)
            if node.get("type") == "object" and isinstance(node.get("properties"), dict)
            for name, child in node["properties"].items()
            if "type" not in child and not child.get("x-kubernetes-preserve-unknown-fields")
        ]

        assert untyped == []


class TestTheInstancesAccountRef:
    def test_names_a_kind_of_account_and_its_name(self) -> None:
        ref = _spec(crdgen.INSTANCE)["properties"]["accountRef"]

        assert ref["type"] == "object"
        assert ref["properties"]["kind"]["enum"] == ["RocketMQAccount", "ClusterRocketMQAccount"]
        assert set(ref["required"]) == {"kind", "name"}

    def test_cannot_change(self) -> None:
        ref = _spec(crdgen.INSTANCE)["properties"]["accountRef"]

        assert [r["rule"] for r in ref["x-kubernetes-validations"]] == ["self == oldSelf"]

    def test_cannot_be_added_or_removed_after_creation(self) -> None:
        rules = {r["rule"]: r for r in _spec(crdgen.INSTANCE)["x-kubernetes-validations"]}

        rule = rules["has(self.accountRef) == has(oldSelf.accountRef)"]
        assert rule["fieldPath"] == ".accountRef"
        assert "spec.accountRef is immutable" in rule["message"]

    def test_is_optional(self) -> None:
        assert "accountRef" not in _spec(crdgen.INSTANCE).get("required", [])
