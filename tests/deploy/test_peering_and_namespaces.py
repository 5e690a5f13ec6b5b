"""Two replicas serving listed namespaces: Kopf peering elects one, and Roles confine it to those namespaces."""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import SimulatorProcess
from e2e.support import wait_for
from instance_spec import SPEC
from kube_testenv import ControlPlane, ManagedProcess, free_ports
from rocketmq_operator.cli import parser

from .kit import CR_PLURALS, FINALIZER, Helm, can_i, forbidden_lines, rocketmq_instance
from .release import Release, fast_values

pytestmark = [pytest.mark.controlplane, pytest.mark.e2e]


@pytest.fixture(scope="module")
def served(control_plane: ControlPlane) -> Iterator[tuple[str, str]]:
    """A namespace the release serves, and one it does not."""
    suffix = secrets.token_hex(3)
    pair = (f"peer-served-{suffix}", f"peer-other-{suffix}")
    for namespace in pair:
        control_plane.kubectl("create", "namespace", namespace)
    yield pair
    for namespace in pair:
        control_plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def release(
    cluster_helm: Helm, control_plane: ControlPlane, simulator: SimulatorProcess, served: tuple[str, str]
) -> Iterator[Release]:
    values = {**fast_values(simulator), "replicaCount": 2, "watchNamespaces": [served[0]]}
    installed = Release.install(cluster_helm, control_plane, values, "peer")
    try:
        yield installed
    finally:
        installed.uninstall_without_hooks()


@pytest.fixture(scope="module")
def as_operator(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return release.kubeconfig_as_operator(tmp_path_factory.mktemp("sa") / "operator.kubeconfig")


def _answers(control_plane: ControlPlane, path: str) -> bool:
    return control_plane.kubectl("get", "--raw", path, check=False).returncode == 0


@pytest.fixture(scope="module")
def replicas(
    release: Release, as_operator: Path, artifacts: Path, served: tuple[str, str]
) -> Iterator[dict[str, ManagedProcess]]:
    started: dict[str, ManagedProcess] = {}
    # helm has just created the CRDs; until the API server's watch cache for them is ready it answers
    # 429 ("storage is (re)initializing"), and a replica whose first list is retried past its peering
    # pause still handles what that late list returns. Replicas here start on a settled API server.
    for plural in CR_PLURALS:
        path = f"/apis/dms.rocketmq-operator.io/v1alpha1/namespaces/{served[0]}/{plural}?resourceVersion=0"
        wait_for(
            functools.partial(_answers, release.control_plane, path),
            timeout=30,
            what=f"the API server to serve {plural} from its watch cache",
        )
    try:
        for index in range(2):
            pod = f"operator-{index}"
            live, metrics = free_ports(2)
            ports = None if index == 0 else (live, metrics)
            started[pod] = release.start_operator(as_operator, artifacts / f"{pod}.log", pod_name=pod, ports=ports)
        yield started
        # While a replica still runs: its CRs go with their instances, so no finalizer outlives the test.
        release.control_plane.kubectl("delete", "rmqi", "--all", "-n", served[0], "--timeout=90s")
    finally:
        for process in started.values():
            process.stop()


def _peering(control_plane: ControlPlane, release: Release, namespace: str) -> dict[str, Any]:
    found = control_plane.kubectl("get", "kopfpeering", release.fullname, "-n", namespace, "-o", "json")
    status: dict[str, Any] = json.loads(found.stdout).get("status") or {}
    return status


def _handler_runs(process: ManagedProcess) -> int:
    """Handler and timer runs Kopf logged (a paused peer runs none)."""
    return sum("kopf.objects: " in line for line in process.log_path.read_text().splitlines())


def test_random_priorities_are_distinct_per_start() -> None:
    drawn = {parser().parse_args(["run", "--priority=random"]).priority for _ in range(20)}
    assert len(drawn) == 20
    assert parser().parse_args(["run", "--priority=7"]).priority == 7


def test_one_replica_serves_and_the_other_takes_over_when_it_stops(
    replicas: dict[str, ManagedProcess], release: Release, control_plane: ControlPlane, served: tuple[str, str]
) -> None:
    namespace = served[0]
    peers = wait_for(
        lambda: p if len(p := _peering(control_plane, release, namespace)) == 2 else None,
        timeout=30,
        what="both replicas' keep-alives in the KopfPeering",
    )
    assert set(peers) == set(replicas)
    active = max(peers, key=lambda pod: peers[pod]["priority"])
    standby = next(pod for pod in peers if pod != active)

    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=rocketmq_instance("first", SPEC))
    wait_for(lambda: _ready(control_plane, namespace, "first"), timeout=60, what="first Ready")
    assert _handler_runs(replicas[active]) > 0
    assert _handler_runs(replicas[standby]) == 0, "the standby replica must stay paused"

    replicas[active].stop()
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=rocketmq_instance("second", SPEC))
    wait_for(lambda: _ready(control_plane, namespace, "second"), timeout=90, what="second Ready after failover")
    assert _handler_runs(replicas[standby]) > 0
    for process in replicas.values():
        assert forbidden_lines(process.log_path.read_text()) == []


def _ready(control_plane: ControlPlane, namespace: str, name: str) -> bool:
    cr = json.loads(control_plane.kubectl("get", "rmqi", name, "-n", namespace, "-o", "json").stdout)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in cr.get("status", {}).get("conditions", []))


def test_a_namespace_that_is_not_listed_is_left_alone(
    replicas: dict[str, ManagedProcess],
    control_plane: ControlPlane,
    served: tuple[str, str],
    simulator: SimulatorProcess,
) -> None:
    mine, other = served
    stray = rocketmq_instance("stray", {**SPEC, "name": "stray-mq"})
    control_plane.kubectl("apply", "-n", other, "-f", "-", input=stray)
    # A CR created at the same time in the served namespace proves the operator works meanwhile.
    witness = rocketmq_instance("witness", {**SPEC, "name": "witness-mq"})
    control_plane.kubectl("apply", "-n", mine, "-f", "-", input=witness)
    wait_for(lambda: _ready(control_plane, mine, "witness"), timeout=60, what="the served CR Ready")
    cr = json.loads(control_plane.kubectl("get", "rmqi", "stray", "-n", other, "-o", "json").stdout)
    assert FINALIZER not in cr["metadata"].get("finalizers", [])
    assert "status" not in cr
    names = {i["name"] for i in simulator.admin.instances()}
    assert "witness-mq" in names
    assert "stray-mq" not in names
    control_plane.kubectl("delete", "rmqi", "stray", "-n", other)


def test_roles_confine_the_service_account_to_the_listed_namespaces(
    release: Release, as_operator: Path, control_plane: ControlPlane, served: tuple[str, str]
) -> None:
    mine, other = served
    for plural in CR_PLURALS:
        cr = f"{plural}.dms.rocketmq-operator.io"
        assert can_i(control_plane, as_operator, "list", cr, "-n", mine), cr
        assert can_i(control_plane, as_operator, "patch", cr, "--subresource=status", "-n", mine), cr
        assert not can_i(control_plane, as_operator, "list", cr, "-n", other), cr
        assert not can_i(control_plane, as_operator, "list", cr, "--all-namespaces"), cr
    assert can_i(control_plane, as_operator, "patch", "kopfpeerings.kopf.dev/" + release.fullname, "-n", mine)
    assert not can_i(control_plane, as_operator, "patch", "kopfpeerings.kopf.dev/someone-else", "-n", mine)
    assert not can_i(control_plane, as_operator, "create", "events", "-n", other)
    # Accounts: a namespace's in the listed ones only; cluster ones cluster-wide (cluster-scoped), with
    # their Secrets and Events in the operator's own namespace, which is not a listed one here.
    accounts = "rocketmqaccounts.dms.rocketmq-operator.io"
    assert can_i(control_plane, as_operator, "list", accounts, "-n", mine)
    assert not can_i(control_plane, as_operator, "list", accounts, "-n", other)
    cluster_accounts = "clusterrocketmqaccounts.dms.rocketmq-operator.io"
    assert can_i(control_plane, as_operator, "watch", cluster_accounts)
    assert can_i(control_plane, as_operator, "patch", cluster_accounts, "--subresource=status")
    assert can_i(control_plane, as_operator, "get", "secrets", "-n", release.namespace)
    assert can_i(control_plane, as_operator, "create", "events", "-n", release.namespace)
    # Connection Secrets: in the served namespaces only, and never listed.
    assert can_i(control_plane, as_operator, "get", "secrets", "-n", mine)
    assert can_i(control_plane, as_operator, "create", "secrets", "-n", mine)
    assert not can_i(control_plane, as_operator, "get", "secrets", "-n", other)
    assert not can_i(control_plane, as_operator, "create", "secrets", "-n", other)
    assert not can_i(control_plane, as_operator, "list", "secrets", "-n", mine)
