"""kube-controller-manager runs: namespaces are emptied and removed, ownerReferences cascade, and every
namespace gets its ``default`` ServiceAccount and ``kube-root-ca.crt``, which an apiserver alone never
does (there, a deleted namespace stays Terminating forever).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube_testenv import ControlPlane

pytestmark = pytest.mark.controlplane

SETTLE_SECONDS = 60.0


def eventually(what: str, check: Callable[[], bool], timeout: float = SETTLE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:.0f}s: {what}"
        time.sleep(0.2)


def gone(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def test_deleting_a_namespace_removes_its_objects_and_then_the_namespace(
    control_plane: ControlPlane, kube_api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube_api_client)
    ns = f"doomed-{secrets.token_hex(3)}"
    control_plane.kubectl("create", "namespace", ns)
    control_plane.kubectl("create", "configmap", "settings", "-n", ns, "--from-literal=a=b")
    control_plane.kubectl("create", "secret", "generic", "credentials", "-n", ns, "--from-literal=k=v")
    core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="robot")))

    control_plane.kubectl("delete", "namespace", ns, "--wait=false")

    eventually(f"namespace {ns} disappears", lambda: gone(lambda: core.read_namespace(ns)))
    # The namespace controller removes the namespace only after everything in it is gone, and a
    # re-created namespace of the same name starts empty.
    control_plane.kubectl("create", "namespace", ns)
    try:
        assert core.list_namespaced_config_map(ns, field_selector="metadata.name=settings").items == []
        assert core.list_namespaced_secret(ns, field_selector="metadata.name=credentials").items == []
        assert gone(lambda: core.read_namespaced_service_account("robot", ns))
    finally:
        control_plane.kubectl("delete", "namespace", ns, "--wait=false")


def test_a_new_namespace_gets_default_service_account_and_root_ca(
    control_plane: ControlPlane, kube_api_client: client.ApiClient, unique_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api_client)
    eventually(
        "ServiceAccount default",
        lambda: not gone(lambda: core.read_namespaced_service_account("default", unique_namespace)),
    )
    eventually(
        "ConfigMap kube-root-ca.crt",
        lambda: not gone(lambda: core.read_namespaced_config_map("kube-root-ca.crt", unique_namespace)),
    )
    ca = (core.read_namespaced_config_map("kube-root-ca.crt", unique_namespace).data or {})["ca.crt"]
    if control_plane.certificates is not None:
        assert ca == control_plane.certificates.ca_pem().decode()


def test_garbage_collector_deletes_dependents_of_a_deleted_owner(
    control_plane: ControlPlane, kube_api_client: client.ApiClient, unique_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api_client)
    owner = core.create_namespaced_config_map(
        unique_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    assert owner.metadata is not None
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}],
        },
    }
    control_plane.kubectl("create", "-n", unique_namespace, "-f", "-", input=json.dumps(dependent))

    control_plane.kubectl("delete", "-n", unique_namespace, "configmap/owner")

    eventually(
        "the dependent is collected",
        lambda: gone(lambda: core.read_namespaced_config_map("dependent", unique_namespace)),
    )
