"""kube-apiserver can be restarted in place: same URL, same data, a new process, clients reconnect.

The reliability suite uses this to restart the API server under a running operator; here it is
proven on a control plane of its own, so the session's shared one is never disturbed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kube_testenv import Binaries, ControlPlane, ControlPlaneError, use_existing_cluster

pytestmark = [
    pytest.mark.controlplane,
    pytest.mark.skipif(use_existing_cluster(), reason="USE_EXISTING_CLUSTER: restarts a local API server"),
]


@pytest.fixture(scope="module")
def own_control_plane(
    control_plane_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with ControlPlane(
        binaries=control_plane_binaries, log_dir=tmp_path_factory.mktemp("restart-logs"), use_existing=False
    ) as cp:
        yield cp


def test_objects_url_and_kubeconfig_survive_a_restart(own_control_plane: ControlPlane) -> None:
    cp = own_control_plane
    api = client.CoreV1Api(cp.api_client())
    api.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="before-restart"), data={"k": "v"})
    )
    url, pid = cp.server_url, cp.processes[1].pid

    cp.restart_apiserver()

    assert cp.server_url == url
    assert cp.processes[1].name == "kube-apiserver" and cp.processes[1].pid != pid
    assert api.read_namespaced_config_map("before-restart", "default").data == {"k": "v"}
    assert "before-restart" in cp.kubectl("get", "configmaps", "-n", "default").stdout


def test_while_it_is_down_requests_fail_and_afterwards_they_work(own_control_plane: ControlPlane) -> None:
    cp = own_control_plane
    api = client.CoreV1Api(cp.api_client())
    old = cp.processes[1]
    restart = threading.Thread(target=cp.restart_apiserver, kwargs={"down_seconds": 3.0})
    restart.start()
    try:
        deadline = time.monotonic() + 30
        while old.is_running():
            assert time.monotonic() < deadline, "the API server was not stopped"
            time.sleep(0.05)
        with pytest.raises((HTTPError, ApiException, OSError)):
            api.list_namespace(_request_timeout=2)
    finally:
        restart.join(timeout=120)

    assert {"default", "kube-system"} <= {n.metadata.name for n in api.list_namespace().items}


def test_the_log_of_the_restarted_server_is_appended_not_replaced(own_control_plane: ControlPlane) -> None:
    log = Path(own_control_plane.processes[1].log_path)
    size = log.stat().st_size

    own_control_plane.restart_apiserver()

    assert log.stat().st_size > size


def test_an_existing_cluster_is_never_restarted() -> None:
    existing = ControlPlane(use_existing=True)
    with pytest.raises(ControlPlaneError, match="existing cluster"):
        existing.restart_apiserver()
