"""A periodic pass's status write, against the real API server: written only while the CR is still the
body the pass decided on; nothing for a CR that changed since or is gone. No operator serves this
namespace: the writes are the test's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import kopf
import pytest

from rocketmq_operator.core.account_resource import CLUSTER_ACCOUNT_PLURAL
from rocketmq_operator.core.resource import GROUP, PLURAL, VERSION
from rocketmq_operator.wiring import handlers, kube_api
from rocketmq_operator.wiring.status_patches import StatusPatches

from .support import Cluster


@pytest.fixture
async def endpoint(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[kube_api.Endpoint]:
    # The operator's own way in: kopf's login from the kubeconfig, the operator's pooled session.
    monkeypatch.setenv("KUBECONFIG", str(cluster.control_plane.kubeconfig_path))
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    assert info is not None and info.server is not None
    session = handlers._api_session(info, limit=4)
    try:
        yield (str(info.server), session)
    finally:
        await session.close()


@pytest.fixture
def writer(endpoint: kube_api.Endpoint) -> StatusPatches:
    return StatusPatches(lambda: endpoint, group=GROUP, version=VERSION, plural=PLURAL)


async def test_a_pass_writes_the_status_of_the_body_it_decided_on(cluster: Cluster, writer: StatusPatches) -> None:
    ns = cluster.namespace("status-patches")
    cr = cluster.create(ns, "current")
    version = cr["metadata"]["resourceVersion"]
    assert await writer.patch(ns, "current", {"cloudStatus": "RUNNING"}, resource_version=version) == "written"
    after = cluster.get(ns, "current")
    assert after is not None and after["status"]["cloudStatus"] == "RUNNING"


async def test_a_pass_that_the_cr_overtook_writes_nothing(cluster: Cluster, writer: StatusPatches) -> None:
    ns = cluster.namespace("status-patches")
    cr = cluster.create(ns, "overtaken")
    decided_on = cr["metadata"]["resourceVersion"]
    cluster.patch(ns, "overtaken", {"metadata": {"labels": {"edited": "yes"}}})  # e.g. a user's edit
    answer = await writer.patch(ns, "overtaken", {"cloudStatus": "RUNNING"}, resource_version=decided_on)
    assert answer == "changed"
    after = cluster.get(ns, "overtaken")
    assert after is not None and "cloudStatus" not in after.get("status", {})


async def test_a_cr_gone_is_nothing_to_write(cluster: Cluster, writer: StatusPatches) -> None:
    ns = cluster.namespace("status-patches")
    assert await writer.patch(ns, "never-made", {"cloudStatus": "RUNNING"}, resource_version="1") == "gone"


async def test_a_cluster_scoped_kinds_status_is_written_without_a_namespace(
    cluster: Cluster, endpoint: kube_api.Endpoint
) -> None:
    # ClusterRocketMQAccounts have their periodic passes too; their bodies carry no namespace.
    name = "status-patches-cluster-account"
    account = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterRocketMQAccount",
        "metadata": {"name": name},
        "spec": {"endpoint": "https://dms.example.test", "projectId": "p", "credentials": {"secretName": "creds"}},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(account))
    try:
        made = json.loads(cluster.kubectl("get", CLUSTER_ACCOUNT_PLURAL, name, "-o", "json"))
        writer = StatusPatches(lambda: endpoint, group=GROUP, version=VERSION, plural=CLUSTER_ACCOUNT_PLURAL)
        version = made["metadata"]["resourceVersion"]
        assert await writer.patch("", name, {"inUse": 2}, resource_version=version) == "written"
        after = json.loads(cluster.kubectl("get", CLUSTER_ACCOUNT_PLURAL, name, "-o", "json"))
        assert after["status"]["inUse"] == 2
    finally:
        cluster.kubectl("delete", CLUSTER_ACCOUNT_PLURAL, name, "--wait=false")
