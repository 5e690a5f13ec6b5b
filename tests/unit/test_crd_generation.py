"""The CRD is generated from the pydantic models, and the committed copies never drift."""

from __future__ import annotations

from pathlib import Path

import yaml

from rocketmq_operator.core import crdgen, resource

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "rocketmqinstances.dms.rocketmq-operator.io.yaml"


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
