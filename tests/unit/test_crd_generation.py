"""The CRDs are generated from the pydantic models, and the committed copies never drift."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rocketmq_operator.core import child_resource, crdgen, resource

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "rocketmqinstances.dms.rocketmq-operator.io.yaml"
CHILDREN = [crdgen.TOPIC, crdgen.CONSUMER_GROUP]


def _walk(node: object) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def test_committed_crd_matches_the_models() -> None:
    committed = yaml.safe_load(CRD_FILE.read_text())
    assert committed == crdgen.crd(), "crds/ drifted: run `rocketmq-operator crd > crds/...yaml`"


@pytest.mark.parametrize("key", sorted(crdgen.KINDS))
def test_every_committed_crd_is_what_the_cli_prints(key: str, capsys: pytest.CaptureFixture[str]) -> None:
    from rocketmq_operator import cli

    kind = crdgen.KINDS[key]
    committed = ROOT / "crds" / f"{kind.plural}.{resource.GROUP}.yaml"
    assert cli.main(["crd", "--kind", key]) == 0
    # Byte for byte: the file is what `make crd` writes, so a re-generation leaves git clean.
    assert capsys.readouterr().out == committed.read_text(), "crds/ drifted: run `make crd`"


def test_crds_holds_no_other_crd_than_the_generated_ones() -> None:
    names = sorted(p.name for p in (ROOT / "crds").iterdir())
    assert names == sorted(f"{k.crd_name}.yaml" for k in crdgen.KINDS.values())


def test_the_cli_prints_the_instance_crd_by_default_and_all_as_one_stream(capsys: pytest.CaptureFixture[str]) -> None:
    from rocketmq_operator import cli

    assert cli.main(["crd"]) == 0
    assert capsys.readouterr().out == CRD_FILE.read_text()
    assert cli.main(["crd", "--kind", "all"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert documents == [crdgen.crd(kind) for kind in crdgen.KINDS.values()]


def test_names_are_the_designed_ones() -> None:
    crd = crdgen.crd()
    assert crd["metadata"]["name"] == "rocketmqinstances.dms.rocketmq-operator.io"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("RocketMQInstance", "rocketmqinstances", ["rmqi"])
    assert crd["spec"]["scope"] == "Namespaced"
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}


def test_schema_is_structural() -> None:
    schema = crdgen.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for node in _walk(schema):
        for forbidden in ("$ref", "$defs", "anyOf", "title", "const"):
            assert forbidden not in node, f"{forbidden} left in {node}"
        assert node.get("default", "sentinel") is not None


def test_spec_is_camel_case_and_status_conditions_are_a_map() -> None:
    schema = crdgen.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]["properties"]
    for key in ("engineVersion", "storageSpace", "availableZones", "deletionPolicy", "forceDelete", "instanceId"):
        assert key in spec
    conditions = schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_printer_columns_show_instance_status_ready_reason_age() -> None:
    columns = [c["name"] for c in crdgen.crd()["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Instance-ID", "Cloud-Status", "Ready", "Reason", "Age"]


def test_every_immutable_field_has_transition_rules() -> None:
    spec = crdgen.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = {r["rule"] for r in spec["x-kubernetes-validations"]}
    for field in resource.IMMUTABLE_FIELDS:
        assert spec["properties"][field]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
        assert f"has(self.{field}) == has(oldSelf.{field})" in rules


def test_deletion_policy_accepts_only_known_values() -> None:
    spec = crdgen.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["deletionPolicy"]["enum"] == ["Delete", "Orphan"]


def _root(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(
    ("kind", "name", "plural", "short"),
    [
        (crdgen.TOPIC, "RocketMQTopic", "rocketmqtopics", ["rmqt"]),
        (crdgen.CONSUMER_GROUP, "RocketMQConsumerGroup", "rocketmqconsumergroups", ["rmqg"]),
        (crdgen.USER, "RocketMQUser", "rocketmqusers", ["rmqu"]),
    ],
)
def test_child_crds_have_the_designed_names(kind: crdgen.KindSpec, name: str, plural: str, short: list[str]) -> None:
    crd = crdgen.crd(kind)
    assert crd["metadata"]["name"] == f"{plural}.dms.rocketmq-operator.io"
    names = crd["spec"]["names"]
    assert (names["kind"], names["listKind"], names["plural"], names["singular"], names["shortNames"]) == (
        name,
        f"{name}List",
        plural,
        name.lower(),
        short,
    )
    assert names["categories"] == ["rocketmq", "dms"]
    assert crd["spec"]["group"] == "dms.rocketmq-operator.io"
    assert crd["spec"]["scope"] == "Namespaced"
    [version] = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("kind", CHILDREN, ids=lambda k: k.kind)
def test_child_printer_columns_show_the_instance_the_cloud_name_ready_reason_age(kind: crdgen.KindSpec) -> None:
    columns = crdgen.crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["jsonPath"]) for c in columns] == [
        ("Instance", ".spec.instanceRef.name"),
        ("Cloud-Name", ".status.cloudName"),
        ("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        ("Reason", '.status.conditions[?(@.type=="Ready")].reason'),
        ("Age", ".metadata.creationTimestamp"),
    ]
    # Ready, Reason and Age read exactly as the instance's do, so `kubectl get rocketmq` lines up.
    instance = crdgen.crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    assert columns[2:] == instance[2:]
    schema = _root(crdgen.crd(kind))
    assert "instanceRef" in schema["properties"]["spec"]["properties"]
    assert "cloudName" in schema["properties"]["status"]["properties"]


@pytest.mark.parametrize("kind", CHILDREN, ids=lambda k: k.kind)
def test_child_crds_check_metadata_name_at_the_root_unless_spec_name_is_set(kind: crdgen.KindSpec) -> None:
    root = _root(crdgen.crd(kind))
    # metadata.name is only visible to CEL at the root: a rule on spec cannot see it.
    assert root["x-kubernetes-validations"] == [child_resource.metadata_name_rule()]
    [rule] = root["x-kubernetes-validations"]
    assert isinstance(rule, dict) and isinstance(rule["rule"], str)
    assert rule["rule"].startswith("has(self.spec.name) || self.metadata.name.matches(")
    assert "metadata.name" in str(rule["message"])
    # The API server accepts the rule's fieldPath only if the schema has that path.
    assert rule["fieldPath"] == ".metadata.name"
    assert root["properties"]["metadata"] == {"type": "object", "properties": {"name": {"type": "string"}}}
    # The instance's root has no such rule: its CRD is unchanged.
    assert "x-kubernetes-validations" not in _root(crdgen.crd())
    assert _root(crdgen.crd())["properties"]["metadata"] == {"type": "object"}


@pytest.mark.parametrize("name", ["orders", "orders_v2", "a|b%c-d", "x" * 64])
def test_the_root_rules_pattern_is_the_cloud_name_rule(name: str) -> None:
    assert re.fullmatch(child_resource.CHILD_NAME_PATTERN.strip("^$"), name)
    assert not re.fullmatch(child_resource.CHILD_NAME_PATTERN.strip("^$"), name + ".v2")


@pytest.mark.parametrize("kind", CHILDREN, ids=lambda k: k.kind)
def test_child_schemas_are_structural(kind: crdgen.KindSpec) -> None:
    root = _root(crdgen.crd(kind))
    for node in _walk(root):
        for forbidden in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "const"):
            assert forbidden not in node, f"{forbidden} left in {node}"
        assert node.get("default", "sentinel") is not None
        if "properties" in node or "items" in node:
            assert "type" in node, f"a structural schema types every node: {node}"
    conditions = root["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert root["required"] == ["spec"]
    assert root["properties"]["spec"]["required"] == ["instanceRef"]


@pytest.mark.parametrize("kind", CHILDREN, ids=lambda k: k.kind)
def test_child_name_and_instance_ref_are_immutable(kind: crdgen.KindSpec) -> None:
    spec = _root(crdgen.crd(kind))["properties"]["spec"]
    for field in ("name", "instanceRef"):
        assert {"rule": "self == oldSelf", "message": f"spec.{field} is immutable"} in spec["properties"][field][
            "x-kubernetes-validations"
        ]
    assert "has(self.name) == has(oldSelf.name)" in {r["rule"] for r in spec["x-kubernetes-validations"]}


def test_topic_ranges_and_group_retries_are_in_the_schema() -> None:
    topic = _root(crdgen.crd(crdgen.TOPIC))["properties"]["spec"]["properties"]
    assert (topic["queueNum"]["minimum"], topic["queueNum"]["maximum"]) == (1, 50)
    assert topic["messageType"]["enum"] == ["NORMAL", "FIFO", "DELAY", "TRANSACTION"]
    assert topic["messageType"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    group = _root(crdgen.crd(crdgen.CONSUMER_GROUP))["properties"]["spec"]["properties"]
    assert (group["retryMaxTime"]["minimum"], group["retryMaxTime"]["maximum"]) == (1, 16)
