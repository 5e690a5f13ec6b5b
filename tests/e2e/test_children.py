"""Topics and consumer groups: created when their instance runs, kept as declared, deleted in batches,
and released with their instance without a call of their own."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from kubernetes.client.rest import ApiException

from devstack import EXAMPLES
from instance_spec import SPEC

from .support import GROUP, VERSION, Recorder, Stack, condition, create_ready, is_true, wait_for

TOPICS, GROUPS, USERS = "rocketmqtopics", "rocketmqconsumergroups", "rocketmqusers"
CHILD_DELETES = {"topic_batch_delete", "group_batch_delete", "topic_delete", "group_delete"}
SPEC_4 = {**SPEC, "engineVersion": "4.8.0", "productId": "c6.4u8g.cluster"}


def child(plural: str, name: str, instance: str, /, **spec: Any) -> dict[str, Any]:
    kind = "RocketMQTopic" if plural == TOPICS else "RocketMQConsumerGroup"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"instanceRef": {"name": instance}, **spec},
    }


def apply(stack: Stack, namespace: str, *objects: dict[str, Any]) -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    stack.cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(listed))


def items(stack: Stack, namespace: str, plural: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = stack.cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)[
        "items"
    ]
    return found


def get(stack: Stack, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
    return next((i for i in items(stack, namespace, plural) if i["metadata"]["name"] == name), None)


def wait_ready(stack: Stack, namespace: str, plural: str, count: int, *, timeout: float = 90) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        found = [i for i in items(stack, namespace, plural) if is_true(i, "Ready")]
        return found if len(found) == count else None

    return wait_for(ready, timeout=timeout, what=f"{count} {plural} Ready in {namespace}", interval=0.5)


def _exists(stack: Stack, namespace: str, secret: str) -> bool:
    try:
        stack.cluster.core.read_namespaced_secret(secret, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def cloud_children(stack: Stack, instance_id: str) -> tuple[set[str], set[str]]:
    view = stack.sim.children(instance_id)
    return {t["name"] for t in view["topics"]}, {g["name"] for g in view["groups"]}


def test_twenty_topics_and_ten_groups_deleted_together_leave_in_one_call_per_kind(stack: Stack) -> None:
    ns = stack.namespace()
    (instance_id,) = create_ready(stack, ns, 1, prefix="app").values()
    topics = [f"orders-{i:02d}" for i in range(20)]
    groups = [f"billing-{i:02d}" for i in range(10)]
    apply(
        stack,
        ns,
        *(child(TOPICS, t, "app-000", queueNum=4, messageType="FIFO") for t in topics),
        *(child(GROUPS, g, "app-000", retryMaxTime=5) for g in groups),
    )
    wait_ready(stack, ns, TOPICS, 20)
    wait_ready(stack, ns, GROUPS, 10)
    assert cloud_children(stack, instance_id) == (set(topics), set(groups))
    since = stack.sim.calls()[-1]["seq"]

    with Recorder(stack.cluster, ns, TOPICS) as topic_events, Recorder(stack.cluster, ns, GROUPS) as group_events:
        stack.cluster.kubectl("delete", "rmqt,rmqg", "--all", "-n", ns, "--wait=false")
        wait_for(
            lambda: not items(stack, ns, TOPICS) and not items(stack, ns, GROUPS),
            timeout=60,
            what="every topic and group CR released",
        )
    calls = stack.sim.calls(since)
    by_operation = {op: [c for c in calls if c["operation"] == op] for op in CHILD_DELETES}
    (topic_call,) = by_operation["topic_batch_delete"]
    (group_call,) = by_operation["group_batch_delete"]
    assert sorted(topic_call["names"]) == topics and sorted(group_call["names"]) == groups
    assert not by_operation["topic_delete"] and not by_operation["group_delete"], "no single deletes"
    assert cloud_children(stack, instance_id) == (set(), set()), "nothing left in the cloud"

    for recorder, names, size in ((topic_events, topics, 20), (group_events, groups, 10)):
        for name in names:
            records = [
                (obj.get("status") or {}).get("deletion") or {}
                for _, kind, obj in recorder.history(name)
                if kind != "DELETED"
            ]
            accepted = [r for r in records if r.get("result") == "Accepted"]
            assert accepted, f"{name} never showed its batch result before it went"
            assert accepted[-1]["batchSize"] == size and accepted[-1]["batchId"] and accepted[-1]["jobId"]
            assert accepted[-1]["instanceId"] == instance_id


def test_namespace_teardown_takes_topics_and_groups_with_their_instances_and_makes_no_child_call(
    stack: Stack,
) -> None:
    ns = stack.namespace()
    ids = create_ready(stack, ns, 2, prefix="tear")
    apply(
        stack,
        ns,
        *(child(TOPICS, f"t-{i:02d}", f"tear-{i % 2:03d}") for i in range(20)),
        *(child(GROUPS, f"g-{i:02d}", f"tear-{i % 2:03d}") for i in range(10)),
    )
    wait_ready(stack, ns, TOPICS, 20)
    wait_ready(stack, ns, GROUPS, 10)
    since = stack.sim.calls()[-1]["seq"]

    stack.cluster.kubectl("delete", "namespace", ns, "--wait=false")
    wait_for(lambda: ns not in stack.cluster.namespaces(), timeout=180, what="the namespace to be gone")
    calls = stack.sim.calls(since)
    assert not [c for c in calls if c["operation"] in CHILD_DELETES], "no topic or group deletion call"
    batch = [c for c in calls if c["operation"] == "batch_action"]
    assert 1 <= len(batch) <= 2 and sorted(i for c in batch for i in c["instance_ids"]) == sorted(ids.values())
    assert not [i for i in stack.sim.instances() if i["instance_id"] in ids.values()], "nothing left in the cloud"


def test_a_field_the_engine_does_not_have_stalls_the_resource_naming_the_field(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "old", SPEC_4)
    stack.cluster.wait_ready(ns, "old", timeout=60)
    apply(stack, ns, child(TOPICS, "fifo-on-old", "old", messageType="FIFO"), child(TOPICS, "fine", "old", queueNum=3))
    wait_ready(stack, ns, TOPICS, 1)

    def stalled() -> dict[str, Any] | None:
        found = get(stack, ns, TOPICS, "fifo-on-old")
        return found if is_true(found, "Stalled") else None

    cr = wait_for(stalled, timeout=30, what="the 5.x-only topic to stall")
    ready = condition(cr, "Ready") or {}
    assert ready["reason"] == "FieldNotSupported" and "spec.messageType" in ready["message"], ready
    old_id = stack.cluster.get(ns, "old")["status"]["instanceId"]  # type: ignore[index]
    assert cloud_children(stack, old_id)[0] == {"fine"}
    created = [c for c in stack.sim.calls() if c["operation"] == "topic_create" and "fifo-on-old" in c.get("names", [])]
    assert not created, "no create call for a refused topic"


def test_a_topic_waits_for_its_instance_and_becomes_ready_with_it(stack: Stack) -> None:
    ns = stack.namespace()
    with Recorder(stack.cluster, ns, TOPICS) as events:
        apply(stack, ns, child(TOPICS, "early", "late-instance"))
        stack.cluster.create(ns, "late-instance", SPEC)
        (topic,) = wait_ready(stack, ns, TOPICS, 1)
    reasons = [((condition(obj, "Ready") or {}).get("reason")) for _, _, obj in events.history("early")]
    assert "InstanceNotReady" in reasons, reasons
    assert reasons.index("InstanceNotReady") < len(reasons) - 1
    assert "early" in cloud_children(stack, topic["status"]["instanceId"])[0]


def test_a_topic_deleted_out_of_band_is_created_again_with_an_event(stack: Stack) -> None:
    ns = stack.namespace()
    (instance_id,) = create_ready(stack, ns, 1, prefix="drift").values()
    apply(stack, ns, child(TOPICS, "drifty", "drift-000"), child(GROUPS, "drifty-group", "drift-000"))
    wait_ready(stack, ns, TOPICS, 1)
    wait_ready(stack, ns, GROUPS, 1)
    stack.sim.remove_child(instance_id, "topics", "drifty")
    stack.sim.remove_child(instance_id, "groups", "drifty-group")
    wait_for(
        lambda: cloud_children(stack, instance_id) == ({"drifty"}, {"drifty-group"}) or None,
        timeout=30,
        what="the topic and the group created again",
    )
    reasons = {e["reason"] for e in stack.cluster.events(ns, "drifty")}
    assert "RecreatedAfterDrift" in reasons, reasons


def test_an_existing_name_is_refused_unless_adopted_and_a_refused_one_is_left_alone(stack: Stack) -> None:
    ns = stack.namespace()
    (instance_id,) = create_ready(stack, ns, 1, prefix="adopt").values()
    apply(stack, ns, child(TOPICS, "first", "adopt-000", name="shared-topic"))
    wait_ready(stack, ns, TOPICS, 1)
    apply(stack, ns, child(TOPICS, "second", "adopt-000", name="shared-topic"))

    def stalled() -> dict[str, Any] | None:
        found = get(stack, ns, TOPICS, "second")
        return found if is_true(found, "Stalled") else None

    cr = wait_for(stalled, timeout=30, what="the second claim to stall")
    assert (condition(cr, "Ready") or {})["reason"] == "AlreadyExists"
    apply(stack, ns, child(TOPICS, "third", "adopt-000", name="shared-topic", adopt=True))
    wait_ready(stack, ns, TOPICS, 2)
    since = stack.sim.calls()[-1]["seq"]
    stack.cluster.kubectl("delete", "rmqt", "second", "-n", ns)  # not its topic: released without a call
    assert not [c for c in stack.sim.calls(since) if c["operation"] in CHILD_DELETES]
    assert "shared-topic" in cloud_children(stack, instance_id)[0]


def test_the_examples_that_make_run_applies_become_ready(stack: Stack) -> None:
    ns = stack.namespace()
    root = Path(__file__).resolve().parents[2]
    assert [Path(p).name for p in EXAMPLES] == ["rocketmq-instance.yaml", "topics-and-groups.yaml", "users.yaml"]
    for manifest in EXAMPLES:
        stack.cluster.kubectl("apply", "-n", ns, "-f", str(root / manifest))
    wait_ready(stack, ns, "rocketmqinstances", 2)
    wait_ready(stack, ns, TOPICS, 3)
    groups = wait_ready(stack, ns, GROUPS, 2)
    assert {g["metadata"]["name"] for g in groups} == {"billing", "audit-archiver"}
    users = wait_ready(stack, ns, USERS, 2)
    assert {u["metadata"]["name"] for u in users} == {"billing", "order-service"}

    # The users hold the keys of their Secrets; order-service's connection Secret carries its key.
    orders = next(i for i in items(stack, ns, "rocketmqinstances") if i["metadata"]["name"] == "orders")
    instance_id = orders["status"]["instanceId"]
    core = stack.cluster.core

    def secret_data(name: str) -> dict[str, str]:
        found = core.read_namespaced_secret(name, ns)
        return {k: base64.b64decode(v).decode() for k, v in (found.data or {}).items()}

    assert stack.sim.check_key(instance_id, "billing-app", secret_data("billing-creds")["secretKey"])
    connection = wait_for(
        lambda: secret_data("order-service-rocketmq") if _exists(stack, ns, "order-service-rocketmq") else None,
        timeout=30,
        what="the connection Secret of order-service",
    )
    assert connection["ROCKETMQ_ACCESS_KEY"] == "order-service"
    assert connection["ROCKETMQ_SECRET_KEY"] == secret_data("order-service-key")["secretKey"]
    assert stack.sim.check_key(instance_id, "order-service", connection["ROCKETMQ_SECRET_KEY"])
    assert connection["ROCKETMQ_INSTANCE_ID"] == instance_id and connection["ROCKETMQ_ACL_ENABLED"] == "true"

    def observed() -> dict[str, dict[str, Any]] | None:
        found = {t["metadata"]["name"]: t["status"] for t in items(stack, ns, TOPICS)}
        return found if all("readQueueNum" in status for status in found.values()) else None

    # The next look at the instance's topic list mirrors what the cloud says into each status.
    by_name = wait_for(observed, timeout=30, what="the topics' cloud view in their status")
    assert by_name["order-created"]["messageType"] == "FIFO"
    assert by_name["audit-events"]["readQueueNum"] == 6 and by_name["audit-events"]["permission"] == "all"
