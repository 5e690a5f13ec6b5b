"""The chart ships the very CRDs the operator generates, and the peering CRDs exactly as Kopf looks for them."""

from __future__ import annotations

import pytest
import yaml
from kopf._cogs.structs import references

from .kit import CHART, ROOT

CRD_NAMES = [
    "rocketmqinstances.dms.rocketmq-operator.io.yaml",
    "rocketmqtopics.dms.rocketmq-operator.io.yaml",
    "rocketmqconsumergroups.dms.rocketmq-operator.io.yaml",
    "rocketmqusers.dms.rocketmq-operator.io.yaml",
    "rocketmqaccounts.dms.rocketmq-operator.io.yaml",
    "clusterrocketmqaccounts.dms.rocketmq-operator.io.yaml",
]


@pytest.mark.parametrize("crd_name", CRD_NAMES)
def test_the_charts_crd_is_byte_for_byte_the_committed_one(crd_name: str) -> None:
    # crds/ itself is checked against the pydantic models by tests/unit/test_crd_generation.py.
    chart_copy = (CHART / "crds" / crd_name).read_bytes()
    assert chart_copy == (ROOT / "crds" / crd_name).read_bytes(), "make crd (it copies crds/ into the chart)"


def test_the_chart_has_no_other_crds_than_its_own_and_kopfs_peering() -> None:
    names = sorted(p.name for p in (CHART / "crds").iterdir())
    assert names == sorted(["kopf-peering.yaml", *CRD_NAMES])
    # ... and crds/ holds no CRD the chart would not ship.
    assert sorted(p.name for p in (ROOT / "crds").iterdir()) == sorted(CRD_NAMES)


def test_peering_crds_define_the_resources_kopf_selects() -> None:
    crds = {
        d["spec"]["names"]["plural"]: d for d in yaml.safe_load_all((CHART / "crds" / "kopf-peering.yaml").read_text())
    }
    # Kopf recognises its peering resources by group/version and plural; scope decides which one it uses.
    pairs = ((references.CLUSTER_PEERINGS_K, False), (references.NAMESPACED_PEERINGS_K, True))
    for selector, namespaced in pairs:
        [crd] = [
            c
            for c in crds.values()
            if selector.check(
                references.Resource(
                    group=c["spec"]["group"],
                    version=c["spec"]["versions"][0]["name"],
                    plural=c["spec"]["names"]["plural"],
                    kind=c["spec"]["names"]["kind"],
                    singular=c["spec"]["names"]["singular"],
                    namespaced=c["spec"]["scope"] == "Namespaced",
                )
            )
        ]
        assert (crd["spec"]["scope"] == "Namespaced") is namespaced
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True, "keep-alives are keyed by peer id"
        assert "subresources" not in crd["spec"]["versions"][0], "Kopf patches the status through the main resource"
