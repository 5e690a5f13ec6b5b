"""Many teams, many projects: accounts on the real API server, two simulator projects with their own keys.

One operator serves two namespaces, each billed to its own project: team A through a RocketMQAccount of
its namespace (named by spec.accountRef), team B through a ClusterRocketMQAccount whose Secret is in the
operator's namespace (chosen by the namespace's annotation). The tests run in order, on one stack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from instance_spec import SPEC

from .conftest import FAST_SIMULATOR
from .support import Cluster, Stack, condition, is_true, wait_for

TEAM_A = ("AKTEAMA0000000000001", "team-a-secret-key-0001", "project-team-a")
TEAM_B = ("AKTEAMB0000000000002", "team-b-secret-key-0002", "project-team-b")
GROUP = "dms.rocketmq-operator.io/v1alpha1"


OPERATOR_NAMESPACE = "e2e-accounts-operator"


@pytest.fixture(scope="module")
def world(stack_factory: Any, cluster: Cluster) -> Iterator[dict[str, Any]]:
    accounts = [f"--account={ak}:{sk}:{project}" for ak, sk, project in (TEAM_A, TEAM_B)]
    cluster.kubectl("create", "namespace", OPERATOR_NAMESPACE)
    # A window long enough that both namespaces' deletions land in one batch each.
    stack: Stack = stack_factory(
        simulator_args=[*FAST_SIMULATOR, *accounts],
        settings={
            "DMS_BATCH_WINDOW_SECONDS": "3",
            "DMS_BATCH_MAX_WAIT_SECONDS": "6",
            "DMS_OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
        },
    )
    yield {"stack": stack}
    cluster.kubectl("delete", "namespace", OPERATOR_NAMESPACE, "--wait=false")


def last_seq(stack: Stack) -> int:
    calls = stack.sim.calls()
    return int(calls[-1]["seq"]) if calls else 0


def secret(stack: Stack, namespace: str, name: str, access_key: str, secret_key: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"accessKey": access_key, "secretKey": secret_key},
    }
    stack.cluster.kubectl("apply", "-f", "-", input=json.dumps(body))


def apply(stack: Stack, body: dict[str, Any]) -> None:
    stack.cluster.kubectl("apply", "-f", "-", input=json.dumps(body))


def get(stack: Stack, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    args = ["get", kind, name, "-o", "json", "--ignore-not-found"]
    if namespace:
        args += ["-n", namespace]
    out = stack.cluster.kubectl(*args)
    return json.loads(out) if out.strip() else None


def namespaced_account(stack: Stack, namespace: str, name: str, project: str, *, secret: str) -> None:
    apply(
        stack,
        {
            "apiVersion": GROUP,
            "kind": "RocketMQAccount",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"endpoint": stack.simulator.url, "projectId": project, "credentials": {"secretName": secret}},
        },
    )


def instance(stack: Stack, namespace: str, name: str, *, account_ref: dict[str, str] | None = None) -> None:
    spec = {**SPEC, **({"accountRef": account_ref} if account_ref else {})}
    apply(
        stack,
        {
            "apiVersion": GROUP,
            "kind": "RocketMQInstance",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        },
    )


def ready_reason(obj: dict[str, Any] | None) -> str | None:
    found = condition(obj, "Ready")
    return found["reason"] if found else None


class TestTwoTeamsTwoProjects:
    def test_each_account_is_verified_against_its_own_project(self, world: dict[str, Any]) -> None:
        stack: Stack = world["stack"]
        ns_a = stack.namespace()
        ns_b = stack.namespace(annotations={"rocketmq-operator.io/account": f"{stack.prefix}-team-b"})
        world.update(ns_a=ns_a, ns_b=ns_b)
        secret(stack, ns_a, "creds", TEAM_A[0], TEAM_A[1])
        secret(stack, OPERATOR_NAMESPACE, "team-b-creds", TEAM_B[0], TEAM_B[1])
        namespaced_account(stack, ns_a, "team-a", TEAM_A[2], secret="creds")
        apply(
            stack,
            {
                "apiVersion": GROUP,
                "kind": "ClusterRocketMQAccount",
                "metadata": {"name": f"{stack.prefix}-team-b"},
                "spec": {
                    "endpoint": stack.simulator.url,
                    "projectId": TEAM_B[2],
                    "credentials": {"secretName": "team-b-creds"},
                    "allowedNamespaces": [ns_b],
                },
            },
        )
        a = wait_for(
            lambda: (o := get(stack, "rocketmqaccount", "team-a", ns_a)) and is_true(o, "Ready") and o,
            timeout=60,
            what="team A's account Ready",
        )
        b = wait_for(
            lambda: (o := get(stack, "clusterrocketmqaccount", f"{stack.prefix}-team-b")) and is_true(o, "Ready") and o,
            timeout=60,
            what="team B's account Ready",
        )
        assert TEAM_A[2] in condition(a, "Ready")["message"]  # type: ignore[index]
        # Both Secrets held while their accounts exist: a teardown cannot take them from under a restart.
        held_a = wait_for(
            lambda: (o := get(stack, "secret", "creds", ns_a)) and o["metadata"].get("finalizers") and o,
            timeout=30,
            what="team A's Secret held",
        )
        held_b = get(stack, "secret", "team-b-creds", OPERATOR_NAMESPACE)
        assert held_a["metadata"]["finalizers"] == ["dms.rocketmq-operator.io/account-credentials"]
        assert held_b is not None and held_b["metadata"]["finalizers"] == [
            "dms.rocketmq-operator.io/account-credentials"
        ]
        assert b["status"]["credentialsType"] == "AK/SK"
        for obj in (a, b):
            assert TEAM_A[1] not in json.dumps(obj) and TEAM_B[1] not in json.dumps(obj)

    def test_instances_are_created_in_their_accounts_projects(self, world: dict[str, Any]) -> None:
        stack: Stack = world["stack"]
        ns_a, ns_b = world["ns_a"], world["ns_b"]
        for i in range(3):
            instance(stack, ns_a, f"a-{i}", account_ref={"kind": "RocketMQAccount", "name": "team-a"})
        for i in range(4):
            instance(stack, ns_b, f"b-{i}")
        ids: dict[str, str] = {}
        for ns, names in ((ns_a, [f"a-{i}" for i in range(3)]), (ns_b, [f"b-{i}" for i in range(4)])):
            for name in names:
                cr = stack.cluster.wait_ready(ns, name, timeout=120)
                ids[name] = cr["status"]["instanceId"]
                expected = "RocketMQAccount/team-a" if ns == ns_a else f"ClusterRocketMQAccount/{stack.prefix}-team-b"
                assert cr["status"]["account"] == expected
        world["ids"] = ids
        creates = [c for c in stack.sim.calls() if c.get("operation") == "create" and c.get("status") == 200]
        projects = {c["project_id"] for c in creates}
        principals = {c["principal"] for c in creates}
        assert {TEAM_A[2], TEAM_B[2]} <= projects
        assert {TEAM_A[0], TEAM_B[0]} <= principals
        # One exposition, every series labelled with its account.
        metrics = stack.operator.metrics()
        for label in (f"RocketMQAccount/{ns_a}/team-a", f"ClusterRocketMQAccount/{stack.prefix}-team-b", "default"):
            assert f'account="{label}"' in metrics, label
        created = [
            line
            for line in metrics.splitlines()
            if line.startswith("rocketmq_operator_cloud_api_calls_total{")
            and f'account="RocketMQAccount/{ns_a}/team-a"' in line
            and 'operation="create"' in line
            and 'outcome="ok"' in line
        ]
        assert created and float(created[0].rsplit(" ", 1)[1]) == 3.0, created
        for name, instance_id in ids.items():
            found = stack.sim_instance(instance_id)
            assert found is not None
            assert found.get("project_id") == (TEAM_A[2] if name.startswith("a-") else TEAM_B[2])

    def test_a_resource_naming_another_namespaces_account_is_refused_without_a_call(
        self, world: dict[str, Any]
    ) -> None:
        stack: Stack = world["stack"]
        ns_a, ns_b = world["ns_a"], world["ns_b"]
        namespaced_account(stack, ns_b, "theirs", TEAM_B[2], secret="nope")
        since = last_seq(stack)
        instance(stack, ns_a, "sneaky", account_ref={"kind": "RocketMQAccount", "name": "theirs"})
        instance(
            stack,
            ns_a,
            "sneaky-cluster",
            account_ref={"kind": "ClusterRocketMQAccount", "name": f"{stack.prefix}-team-b"},
        )
        stalled = wait_for(
            lambda: (o := stack.cluster.get(ns_a, "sneaky")) and is_true(o, "Stalled") and o,
            timeout=30,
            what="the CR naming another namespace's account Stalled",
        )
        assert ready_reason(stalled) == "AccountNotFound"
        assert f"namespace {ns_a}" in condition(stalled, "Stalled")["message"]  # type: ignore[index]
        other = wait_for(
            lambda: (o := stack.cluster.get(ns_a, "sneaky-cluster")) and is_true(o, "Stalled") and o,
            timeout=30,
            what="the CR naming a cluster account its namespace may not use Stalled",
        )
        assert ready_reason(other) == "AccountNotPermitted"
        creates = [c for c in stack.sim.calls(since) if c.get("operation") == "create"]
        assert creates == []
        stack.cluster.delete(ns_a, "sneaky")
        stack.cluster.delete(ns_a, "sneaky-cluster")
        stack.cluster.wait_gone(ns_a, ["sneaky", "sneaky-cluster"], timeout=30)

    def test_deleting_an_account_in_use_is_held(self, world: dict[str, Any]) -> None:
        stack: Stack = world["stack"]
        ns_a = world["ns_a"]
        stack.cluster.kubectl("delete", "rocketmqaccount", "team-a", "-n", ns_a, "--wait=false")
        held = wait_for(
            lambda: (
                (o := get(stack, "rocketmqaccount", "team-a", ns_a))
                and o.get("status", {}).get("deletingBlocked")
                and o
            ),
            timeout=30,
            what="the account in use held, saying so",
        )
        message = held["status"]["deletingBlocked"]
        assert "in use by 3" in message and f"{ns_a}/a-0" in message
        assert held["metadata"].get("deletionTimestamp")
        assert is_true(held, "Ready")  # its credentials still serve its instances
        assert any(e["reason"] == "InUse" for e in stack.cluster.events(ns_a, "team-a"))

    def test_a_refused_key_stalls_only_its_own_account_and_the_other_still_deletes(self, world: dict[str, Any]) -> None:
        stack: Stack = world["stack"]
        ns_a, ns_b = world["ns_a"], world["ns_b"]
        secret(stack, ns_a, "creds", TEAM_A[0], "not-the-right-key-000")
        for i in range(3):
            wait_for(
                lambda i=i: (o := stack.cluster.get(ns_a, f"a-{i}")) and ready_reason(o) == "AuthFailed" and o,
                timeout=60,
                what=f"a-{i} Stalled with AuthFailed",
            )
        for i in range(4):
            assert is_true(stack.cluster.get(ns_b, f"b-{i}"), "Ready")
        stack.cluster.delete(ns_b, "b-0")
        stack.cluster.delete(ns_b, "b-1")
        stack.cluster.wait_gone(ns_b, ["b-0", "b-1"], timeout=60)
        ids = world["ids"]
        assert stack.sim_instance(ids["b-0"]) is None or stack.sim_instance(ids["b-0"])["status"] in (
            "DELETING",
            "RECYCLE",
        )

    def test_fixing_the_secret_recovers_without_a_restart(self, world: dict[str, Any]) -> None:
        stack: Stack = world["stack"]
        ns_a = world["ns_a"]
        secret(stack, ns_a, "creds", TEAM_A[0], TEAM_A[1])
        for i in range(3):
            stack.cluster.wait_ready(ns_a, f"a-{i}", timeout=60)
        assert stack.operator.process.poll() is None  # the same process throughout

    def test_an_operator_restart_does_not_flip_ready_instances_while_their_accounts_are_read_again(
        self, world: dict[str, Any]
    ) -> None:
        stack: Stack = world["stack"]
        ns_a = world["ns_a"]
        made = f"account RocketMQAccount/{ns_a}/team-a: client for project"
        before = stack.operator.log().count(made)  # the log goes on across restarts
        stack.operator.restart()
        # Instances resume as soon as kopf lists them, possibly before their account's first pass.
        wait_for(
            lambda: stack.operator.log().count(made) > before,
            timeout=60,
            what="team A's account read again after the restart",
        )
        for i in range(3):
            assert is_true(stack.cluster.wait_ready(ns_a, f"a-{i}", timeout=30), "Ready")
        assert not [e for e in stack.cluster.events(ns_a) if e["reason"] == "AccountNotReady"]

    def test_a_teardown_of_both_namespaces_sends_one_batch_per_account(self, world: dict[str, Any]) -> None:
        stack: Stack = world["stack"]
        ns_a, ns_b, ids = world["ns_a"], world["ns_b"], world["ids"]
        since = last_seq(stack)
        stack.cluster.kubectl("delete", "namespace", ns_a, ns_b, "--wait=false")
        wait_for(
            lambda: not ({ns_a, ns_b} & stack.cluster.namespaces()),
            timeout=180,
            what="both namespaces gone (the account released after its instances)",
        )
        batches = [c for c in stack.batch_calls(since) if c.get("status") == 200]
        by_project: dict[str, list[dict[str, Any]]] = {}
        for call in batches:
            by_project.setdefault(call["project_id"], []).append(call)
        assert sorted(by_project) == sorted([TEAM_A[2], TEAM_B[2]])
        assert len(by_project[TEAM_A[2]]) == 1 and len(by_project[TEAM_B[2]]) == 1
        assert by_project[TEAM_A[2]][0]["principal"] == TEAM_A[0]
        assert by_project[TEAM_B[2]][0]["principal"] == TEAM_B[0]
        sent_a = set(by_project[TEAM_A[2]][0]["instance_ids"])
        sent_b = set(by_project[TEAM_B[2]][0]["instance_ids"])
        assert sent_a == {ids[f"a-{i}"] for i in range(3)}
        assert sent_b == {ids["b-2"], ids["b-3"]}

    def test_an_unused_cluster_account_is_deleted_and_lets_go_of_its_secret(self, world: dict[str, Any]) -> None:
        stack: Stack = world["stack"]
        name = f"{stack.prefix}-team-b"
        stack.cluster.kubectl("delete", "clusterrocketmqaccount", name, "--wait=false")
        wait_for(
            lambda: get(stack, "clusterrocketmqaccount", name) is None, timeout=30, what="the cluster account gone"
        )
        released = get(stack, "secret", "team-b-creds", OPERATOR_NAMESPACE)
        assert released is not None and not released["metadata"].get("finalizers")


class TestATeardownAcrossAnOperatorRestart:
    def test_the_held_secret_lets_a_restarted_operator_finish_the_teardown(self, world: dict[str, Any]) -> None:
        """The namespace's Secret is deleted at once by the teardown; the operator, restarted meanwhile,
        still reads it (held by its finalizer) and deletes the account's instances before letting go."""
        stack: Stack = world["stack"]
        ns = stack.namespace()
        secret(stack, ns, "creds", TEAM_A[0], TEAM_A[1])
        namespaced_account(stack, ns, "team-a", TEAM_A[2], secret="creds")
        instance(stack, ns, "c-0", account_ref={"kind": "RocketMQAccount", "name": "team-a"})
        instance_id = stack.cluster.wait_ready(ns, "c-0", timeout=120)["status"]["instanceId"]
        wait_for(
            lambda: (o := get(stack, "secret", "creds", ns)) and o["metadata"].get("finalizers"),
            timeout=30,
            what="the Secret held",
        )
        stack.operator.kill()
        stack.cluster.kubectl("delete", "namespace", ns, "--wait=false")
        wait_for(
            lambda: (o := get(stack, "secret", "creds", ns)) and o["metadata"].get("deletionTimestamp"),
            timeout=60,
            what="the teardown to reach the Secret",
        )
        stack.operator.restart()
        wait_for(lambda: ns not in stack.cluster.namespaces(), timeout=180, what="the namespace gone")
        deletions = stack.deletions([instance_id])
        assert deletions.get(instance_id), "the instance was deleted in the cloud, not left behind"
