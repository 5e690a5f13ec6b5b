"""CustomResourceDefinitions behave as in a cluster: they become Established, the apiserver enforces
their OpenAPI schema and CEL rules (naming the offending field), and finalizers hold deleted objects.

Each behaviour is checked through kubectl (a subprocess, as a human or a script would) and through the
Python ``kubernetes`` client (as test code would).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube_testenv import ControlPlane, KubectlError

pytestmark = [pytest.mark.controlplane, pytest.mark.k8s_oldest]

FINALIZER = "kube-testenv.test/hold"


@dataclass(frozen=True)
class Crd:
    group: str
    version: str = "v1"
    plural: str = "widgets"
    kind: str = "Widget"

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def manifest(self) -> dict[str, Any]:
        spec_schema = {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "minReplicas": {"type": "integer"},
                "maxReplicas": {"type": "integer"},
            },
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
                    "message": "must be at least minReplicas",
                    "fieldPath": ".maxReplicas",
                }
            ],
        }
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": self.name},
            "spec": {
                "group": self.group,
                "scope": "Namespaced",
                "names": {"plural": self.plural, "singular": "widget", "kind": self.kind},
                "versions": [
                    {
                        "name": self.version,
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec_schema}}},
                    }
                ],
            },
        }

    def widget(self, name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": {"name": name}, "spec": spec}


def rejection_body(error: ApiException) -> tuple[str, list[dict[str, str]]]:
    """The Status object the apiserver answered with: its raw text and its ``details.causes``."""
    body = error.body
    assert isinstance(body, str)
    causes: list[dict[str, str]] = json.loads(body)["details"]["causes"]
    return body, causes


@pytest.fixture(scope="module")
def crd(control_plane: ControlPlane, kube_api_client: client.ApiClient) -> Iterator[Crd]:
    """A test CRD in a group of its own, so runs against a shared cluster never collide."""
    crd = Crd(group=f"t{secrets.token_hex(4)}.kube-testenv.test")
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(crd.manifest()))
    control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd.name}")
    yield crd
    client.ApiextensionsV1Api(kube_api_client).delete_custom_resource_definition(crd.name)


def test_crd_becomes_established(crd: Crd, control_plane: ControlPlane, kube_api_client: client.ApiClient) -> None:
    status = client.ApiextensionsV1Api(kube_api_client).read_custom_resource_definition(crd.name).status
    assert status is not None
    conditions = {c.type: c.status for c in status.conditions or []}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    # ... and the new resource is served: discovery lists it.
    resources = control_plane.kubectl("api-resources", f"--api-group={crd.group}", "-o", "name").stdout.split()
    assert resources == [crd.name]


def test_valid_custom_resource_is_stored(crd: Crd, control_plane: ControlPlane, unique_namespace: str) -> None:
    control_plane.kubectl(
        "apply", "-n", unique_namespace, "-f", "-", input=json.dumps(crd.widget("ok", size=3, minReplicas=1))
    )
    stored = json.loads(control_plane.kubectl("get", "-n", unique_namespace, f"{crd.name}/ok", "-o", "json").stdout)
    assert stored["spec"] == {"size": 3, "minReplicas": 1}


def test_schema_violation_is_rejected_through_kubectl(
    crd: Crd, control_plane: ControlPlane, unique_namespace: str
) -> None:
    with pytest.raises(KubectlError) as rejected:
        control_plane.kubectl("create", "-n", unique_namespace, "-f", "-", input=json.dumps(crd.widget("big", size=11)))
    assert "spec.size" in rejected.value.stderr
    assert "should be less than or equal to 10" in rejected.value.stderr


def test_schema_violation_is_rejected_through_the_python_client(
    crd: Crd, kube_api_client: client.ApiClient, unique_namespace: str
) -> None:
    api = client.CustomObjectsApi(kube_api_client)
    with pytest.raises(ApiException) as rejected:
        api.create_namespaced_custom_object(
            crd.group, crd.version, unique_namespace, crd.plural, crd.widget("typed", size="three")
        )
    assert rejected.value.status == 422
    body, causes = rejection_body(rejected.value)
    # The second cause says that CEL rules were skipped because the object is already invalid.
    assert [c["reason"] for c in causes if c["field"] == "spec.size"] == ["FieldValueTypeInvalid"]
    assert "spec.size in body must be of type integer" in body


def test_cel_rule_violation_is_rejected_through_kubectl(
    crd: Crd, control_plane: ControlPlane, unique_namespace: str
) -> None:
    widget = crd.widget("inverted", size=1, minReplicas=5, maxReplicas=2)
    with pytest.raises(KubectlError) as rejected:
        control_plane.kubectl("create", "-n", unique_namespace, "-f", "-", input=json.dumps(widget))
    assert "spec.maxReplicas" in rejected.value.stderr
    assert "must be at least minReplicas" in rejected.value.stderr


def test_cel_rule_violation_is_rejected_through_the_python_client(
    crd: Crd, kube_api_client: client.ApiClient, unique_namespace: str
) -> None:
    api = client.CustomObjectsApi(kube_api_client)
    widget = crd.widget("inverted", size=1, minReplicas=5, maxReplicas=2)
    with pytest.raises(ApiException) as rejected:
        api.create_namespaced_custom_object(crd.group, crd.version, unique_namespace, crd.plural, widget)
    assert rejected.value.status == 422
    _, causes = rejection_body(rejected.value)
    assert [(c["field"], c["message"].endswith("must be at least minReplicas")) for c in causes] == [
        ("spec.maxReplicas", True)
    ]


def test_finalizer_holds_a_deleted_object_until_removed(
    crd: Crd, control_plane: ControlPlane, kube_api_client: client.ApiClient, unique_namespace: str
) -> None:
    api = client.CustomObjectsApi(kube_api_client)
    widget = crd.widget("held", size=2)
    widget["metadata"]["finalizers"] = [FINALIZER]
    control_plane.kubectl("create", "-n", unique_namespace, "-f", "-", input=json.dumps(widget))

    control_plane.kubectl("delete", "-n", unique_namespace, f"{crd.name}/held", "--wait=false")

    held = cast(
        dict[str, Any], api.get_namespaced_custom_object(crd.group, crd.version, unique_namespace, crd.plural, "held")
    )
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == [FINALIZER]
    # A second look a moment later: it is held, not merely slow to go.
    still = json.loads(control_plane.kubectl("get", "-n", unique_namespace, f"{crd.name}/held", "-o", "json").stdout)
    assert still["metadata"]["uid"] == held["metadata"]["uid"]

    api.patch_namespaced_custom_object(
        crd.group, crd.version, unique_namespace, crd.plural, "held", {"metadata": {"finalizers": None}}
    )
    with pytest.raises(ApiException) as gone:
        api.get_namespaced_custom_object(crd.group, crd.version, unique_namespace, crd.plural, "held")
    assert gone.value.status == 404
    missing = control_plane.kubectl("get", "-n", unique_namespace, f"{crd.name}/held", check=False)
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr
