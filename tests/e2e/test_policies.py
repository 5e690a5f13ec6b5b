"""Deletion policy (CR > namespace > operator default), adoption, and the pause annotation."""

from __future__ import annotations

import time

from instance_spec import SPEC

from .support import Stack, condition, wait_for

PAUSED = "rocketmq-operator.io/paused"
NS_POLICY = "rocketmq-operator.io/deletion-policy"


def _delete_and_wait(stack: Stack, ns: str, name: str) -> None:
    stack.cluster.delete(ns, name)
    stack.cluster.wait_gone(ns, [name], timeout=60)


def test_orphan_policy_leaves_the_instance_and_releases_at_once(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "keep", {**SPEC, "deletionPolicy": "Orphan"})
    instance_id = stack.cluster.wait_ready(ns, "keep")["status"]["instanceId"]
    since = stack.sim.calls()[-1]["seq"]
    _delete_and_wait(stack, ns, "keep")
    assert (stack.sim_instance(instance_id) or {}).get("status") == "RUNNING"
    assert not [c for c in stack.sim.calls(since) if c["operation"] in ("batch_action", "delete")]


def test_namespace_annotation_applies_when_the_cr_says_nothing(stack: Stack) -> None:
    ns = stack.namespace(annotations={NS_POLICY: "Orphan"})
    stack.cluster.create(ns, "inherit", SPEC)
    stack.cluster.create(ns, "override", {**SPEC, "deletionPolicy": "Delete"})
    kept = stack.cluster.wait_ready(ns, "inherit")["status"]["instanceId"]
    deleted = stack.cluster.wait_ready(ns, "override")["status"]["instanceId"]
    _delete_and_wait(stack, ns, "inherit")
    _delete_and_wait(stack, ns, "override")
    assert stack.sim_instance(kept) is not None, "namespace annotation Orphan must keep the instance"
    assert stack.sim_instance(deleted) is None, "the CR's own Delete wins over the namespace"


def test_adopted_instance_is_observed_and_orphaned_by_default(stack: Stack) -> None:
    ns = stack.namespace()
    seeded = stack.sim.seed(stack.simulator.project_id, [{"name": "legacy-mq-01", "status": "RUNNING"}])[0]
    instance_id = seeded["instance_id"]
    stack.cluster.create(ns, "legacy", {"instanceId": instance_id})
    cr = stack.cluster.wait_ready(ns, "legacy")
    assert cr["status"]["adopted"] is True
    assert cr["status"]["instanceName"] == "legacy-mq-01"
    assert not [c for c in stack.sim.calls() if c["operation"] == "create" and "legacy-mq-01" in str(c)]
    _delete_and_wait(stack, ns, "legacy")
    assert stack.sim_instance(instance_id) is not None


def test_adopted_instance_with_delete_policy_is_deleted(stack: Stack) -> None:
    ns = stack.namespace()
    seeded = stack.sim.seed(stack.simulator.project_id, [{"name": "legacy-mq-02", "status": "RUNNING"}])[0]
    stack.cluster.create(ns, "legacy", {"instanceId": seeded["instance_id"], "deletionPolicy": "Delete"})
    stack.cluster.wait_ready(ns, "legacy")
    _delete_and_wait(stack, ns, "legacy")
    assert stack.sim_instance(seeded["instance_id"]) is None


def test_adopting_a_missing_instance_is_stalled_with_a_clear_reason(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "ghost", {"instanceId": "00000000-0000-0000-0000-00000000dead"})

    def stalled() -> dict[str, object] | None:
        cr = stack.cluster.get(ns, "ghost")
        s = condition(cr, "Stalled") or {}
        return s if s.get("status") == "True" else None

    found = wait_for(stalled, timeout=30, what="Stalled on a missing adoption target")
    assert "does not exist" in str(found["message"])


def test_pause_stops_create_and_update_but_not_deletion(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "held", {**SPEC, "name": "paused-mq-01"}, annotations={PAUSED: "true"})
    time.sleep(4)
    assert not [i for i in stack.sim.instances() if i["name"] == "paused-mq-01"], "created while paused"
    assert (condition(stack.cluster.get(ns, "held"), "Ready") or {}).get("reason") == "Paused"

    stack.cluster.patch(ns, "held", {"metadata": {"annotations": {PAUSED: None}}})
    cr = stack.cluster.wait_ready(ns, "held")
    instance_id = cr["status"]["instanceId"]

    stack.cluster.patch(ns, "held", {"metadata": {"annotations": {PAUSED: "true"}}, "spec": {"description": "x"}})
    time.sleep(4)
    assert (stack.sim_instance(instance_id) or {}).get("description") != "x", "updated while paused"

    _delete_and_wait(stack, ns, "held")
    assert stack.sim_instance(instance_id) is None, "a paused CR's deletion still follows its policy"
