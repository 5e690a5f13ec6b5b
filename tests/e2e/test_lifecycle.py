"""A RocketMQInstance is created, becomes Ready, follows spec edits, and is deleted: end to end."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from instance_spec import SPEC

from .support import Stack, condition, wait_for


def test_a_cr_becomes_ready_with_endpoints_and_owner_tags(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "orders", {**SPEC, "tags": {"team": "payments"}})
    stack.cluster.kubectl("wait", "-n", ns, "--for=condition=Ready", "rmqi/orders", "--timeout=60s")
    cr = stack.cluster.get(ns, "orders")
    assert cr is not None
    status = cr["status"]
    assert status["cloudStatus"] == "RUNNING"
    assert status["endpoints"]["namesrvAddress"]
    assert status["observedGeneration"] == cr["metadata"]["generation"]
    for kind, value in (("Ready", "True"), ("Reconciling", "False"), ("Stalled", "False")):
        c = condition(cr, kind)
        assert c is not None and c["status"] == value, c
        assert c["observedGeneration"] == cr["metadata"]["generation"]
    assert "dms.rocketmq-operator.io/finalizer" in cr["metadata"]["finalizers"]

    instance = stack.sim_instance(status["instanceId"])
    assert instance is not None
    tags = {t["key"]: t["value"] for t in instance["tags"]}
    assert tags["rocketmq-operator.uid"] == cr["metadata"]["uid"]
    assert tags["rocketmq-operator.cluster"] == "e2e-cluster"
    assert tags["team"] == "payments"

    table = stack.cluster.kubectl("get", "rmqi", "-n", ns)
    assert "INSTANCE-ID" in table and status["instanceId"] in table and "Available" in table

    events = stack.cluster.events(ns, "orders")
    assert "Created" in {e["reason"] for e in events}
    # `kubectl describe`'s "From" column and event tooling name the operator, not its framework.
    assert {(e["source"], e["reportingComponent"]) for e in events} == {("rocketmq-operator", "rocketmq-operator")}


def test_a_mutable_edit_reaches_the_cloud(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "edit", SPEC)
    cr = stack.cluster.wait_ready(ns, "edit")
    instance_id = cr["status"]["instanceId"]
    stack.cluster.patch(ns, "edit", {"spec": {"securityGroupId": "sg-new", "description": "edited", "enableAcl": True}})

    def applied() -> bool:
        instance = stack.sim_instance(instance_id) or {}
        return (
            instance.get("security_group_id") == "sg-new"
            and instance.get("description") == "edited"
            and instance.get("enable_acl") is True
        )

    wait_for(applied, timeout=30, what="the update to reach the cloud")
    stack.cluster.wait_ready(ns, "edit")
    updates = [c for c in stack.sim.calls() if c["operation"] == "update" and instance_id in c["instance_ids"]]
    assert len(updates) == 1, "an applied change must not be sent again"


def test_a_ready_cr_follows_its_instance_between_edits(stack: Stack) -> None:
    """No edit and no event of the CR: only the periodic pass over every CR can notice this, write the
    status and post the Event."""
    ns = stack.namespace()
    stack.cluster.create(ns, "vanished", SPEC)
    instance_id = stack.cluster.wait_ready(ns, "vanished")["status"]["instanceId"]
    stack.sim.remove_instance(instance_id)

    def stalled() -> dict[str, Any] | None:
        cr = stack.cluster.get(ns, "vanished")
        found = condition(cr, "Stalled")
        return cr if found is not None and found["status"] == "True" else None

    cr = wait_for(stalled, timeout=30, what="the CR to say its instance is missing")
    ready = condition(cr, "Ready")
    assert ready is not None and ready["status"] == "False" and ready["reason"] == "InstanceMissing"
    assert "cloudStatus" not in cr["status"]

    def warnings() -> list[dict[str, Any]] | None:
        found = [e for e in stack.cluster.events(ns, "vanished") if e["reason"] == "InstanceMissing"]
        return found or None

    # kopf posts Events from a queue of its own, after the status write: on a busy machine, later.
    said = wait_for(warnings, timeout=30, what="the InstanceMissing Event")
    assert len(said) == 1 and said[0]["type"] == "Warning"
    stack.cluster.delete(ns, "vanished")
    stack.cluster.wait_gone(ns, ["vanished"])


def test_storage_growth_resizes_the_instance(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "grow", SPEC)
    instance_id = stack.cluster.wait_ready(ns, "grow")["status"]["instanceId"]
    stack.cluster.patch(ns, "grow", {"spec": {"storageSpace": 600}})
    wait_for(
        lambda: (stack.sim_instance(instance_id) or {}).get("total_storage_space") == 600,
        timeout=40,
        what="the resize to finish in the cloud",
    )
    cr = wait_for(
        lambda: c if (c := stack.cluster.get(ns, "grow")) and c["status"].get("storageSpace") == 600 else None,
        timeout=30,
        what="status.storageSpace 600",
    )
    assert condition(cr, "Ready")["status"] == "True"  # type: ignore[index]
    resizes = [c for c in stack.sim.calls() if c["operation"] == "resize" and instance_id in c["instance_ids"]]
    assert len(resizes) == 1


def test_deleting_one_cr_deletes_its_instance_before_the_cr_goes(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "bye", SPEC)
    instance_id = stack.cluster.wait_ready(ns, "bye")["status"]["instanceId"]
    since = stack.sim.calls()[-1]["seq"]
    stack.cluster.kubectl("delete", "-n", ns, "rmqi/bye", "--wait=false")
    stack.cluster.wait_gone(ns, ["bye"], timeout=60)
    assert stack.sim_instance(instance_id) is None
    batch = stack.batch_calls(since)
    assert [c["instance_ids"] for c in batch] == [[instance_id]]
    assert not [c for c in stack.sim.calls(since) if c["operation"] == "delete"]


def test_kubectl_describe_shows_conditions_and_events(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "described", SPEC)
    stack.cluster.wait_ready(ns, "described")
    out = stack.cluster.kubectl("get", "rmqi/described", "-n", ns, "-o", "json")
    assert json.loads(out)["status"]["conditions"]
    described = stack.cluster.kubectl("describe", "rmqi/described", "-n", ns)
    assert "Available" in described and "Created" in described


def test_owner_tags_that_failed_after_the_create_are_restored_later(stack: Stack) -> None:
    ns = stack.namespace()
    # Enough failures for the client's retries (4) of the tagging call to give up.
    stack.sim.faults(error_status=500, error_next=5, error_operations=["tags"])
    try:
        stack.cluster.create(ns, "tagless", SPEC)
        cr = stack.cluster.wait_ready(ns, "tagless")
    finally:
        stack.sim.clear_faults()
    instance_id = cr["status"]["instanceId"]

    def owner_uid() -> str | None:
        instance = stack.sim_instance(instance_id) or {}
        return {t["key"]: t["value"] for t in instance.get("tags") or []}.get("rocketmq-operator.uid")

    wait_for(lambda: owner_uid() == cr["metadata"]["uid"], timeout=60, what="owner tags restored")
    events = {e["reason"] for e in stack.cluster.events(ns, "tagless")}
    assert {"TaggingFailed", "OwnerTagsRestored"} <= events


def remembered_crs(stack: Stack) -> float:
    found = re.search(
        r'^rocketmq_operator_remembered_crs\{account="default"\} (\S+)$', stack.operator.metrics(), re.MULTILINE
    )
    assert found is not None, "the operator exports rocketmq_operator_remembered_crs"
    return float(found.group(1))


def test_a_cr_whose_finalizer_is_removed_by_hand_is_forgotten_by_the_operator(
    stack_factory: Callable[..., Stack],
) -> None:
    # Its own operator (the count is per process) and deletions slow enough to remove the finalizer mid-way.
    # A pass of the CR waits for the proof meanwhile (DMS_DELETE_PROOF_WAIT_SECONDS, 300 s), and kopf runs
    # one handler of an object at a time: the removal is noticed from the watch stream, and ends that wait.
    slow = stack_factory(
        simulator_args=["--create-seconds", "1", "--delete-seconds", "300", "--quota", "100000"],
    )
    ns = slow.namespace()
    slow.cluster.create(ns, "by-hand", SPEC)
    slow.cluster.wait_ready(ns, "by-hand")
    wait_for(lambda: remembered_crs(slow) == 1, timeout=30, what="the operator to remember the CR")

    slow.cluster.kubectl("delete", "-n", ns, "rmqi/by-hand", "--wait=false")
    wait_for(
        lambda: (
            ((slow.cluster.get(ns, "by-hand") or {}).get("status", {}).get("deletion") or {}).get("result")
            == "Accepted"
        ),
        timeout=30,
        what="the deletion to be accepted",
    )
    slow.cluster.kubectl(
        "patch", "-n", ns, "rmqi/by-hand", "--type=json", "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]'
    )
    slow.cluster.wait_gone(ns, ["by-hand"], timeout=30)

    wait_for(lambda: remembered_crs(slow) == 0, timeout=30, what="the operator to forget the CR")
