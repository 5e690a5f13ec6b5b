"""Topics and consumer groups under faults: crashes mid-teardown, refused and undone batch deletes.

The evidence of an early release is the simulator's own: a poller reads every topic's and group's
pending batch deletion (``deleting.due``, when the cloud removes it) from ``/_sim/instances/{id}/children``
and the time it was seen gone; a CR whose DELETED watch event came before its object's removal was
released while the object still existed.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.support import Recorder, Stack, condition, create_ready, wait_for

from . import kit
from .conftest import Evidence, StackFactory

TOPICS, GROUPS = "rocketmqtopics", "rocketmqconsumergroups"
GROUP_API, VERSION = "dms.rocketmq-operator.io", "v1alpha1"
CHILD_DELETES = ("topic_batch_delete", "group_batch_delete", "topic_delete", "group_delete")


@pytest.fixture(scope="module")
def stack(stacks: StackFactory) -> Stack:
    return stacks(settings={"DMS_POLL_INTERVAL_SECONDS": "2"})


@pytest.fixture(autouse=True)
def no_fault_outlives_its_test(stack: Stack) -> Iterator[None]:
    yield
    stack.sim.clear_faults()
    stack.sim.config(topic_delete_seconds=1, group_delete_seconds=1)


def child(plural: str, name: str, instance: str) -> dict[str, Any]:
    kind = "RocketMQTopic" if plural == TOPICS else "RocketMQConsumerGroup"
    return {
        "apiVersion": f"{GROUP_API}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"instanceRef": {"name": instance}},
    }


def apply(stack: Stack, namespace: str, objects: list[dict[str, Any]]) -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": objects}
    stack.cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(listed))


def items(stack: Stack, namespace: str, plural: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = stack.cluster.custom.list_namespaced_custom_object(
        GROUP_API, VERSION, namespace, plural
    )["items"]
    return found


def ready_children(stack: Stack, namespace: str, topics: int, groups: int) -> None:
    def ready() -> bool:
        counts = [
            sum(1 for i in items(stack, namespace, plural) if (condition(i, "Ready") or {}).get("status") == "True")
            for plural in (TOPICS, GROUPS)
        ]
        return counts == [topics, groups]

    wait_for(ready, timeout=120, what=f"{topics} topics and {groups} groups Ready", interval=0.5)


class RemovalPoller:
    """When the simulator removed each topic and group of an instance (seen gone, or its due time)."""

    def __init__(self, stack: Stack, instance_id: str) -> None:
        self._stack = stack
        self._instance_id = instance_id
        self.removed_at: dict[tuple[str, str], float] = {}
        self._due: dict[tuple[str, str], float] = {}
        self._seen: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            view = self._stack.sim.children(self._instance_id)
            now = time.time()
            present = set()
            for kind in ("topics", "groups"):
                for entry in view[kind]:
                    key = (kind, entry["name"])
                    present.add(key)
                    if entry.get("deleting"):
                        self._due[key] = float(entry["deleting"]["due"])
            for key in self._seen - present:
                self.removed_at.setdefault(key, min(now, self._due.get(key, now)))
            self._seen |= present
            time.sleep(0.1)

    def __enter__(self) -> RemovalPoller:
        self._thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)
        self._stop.set()
        self._thread.join(timeout=10)


def early(recorders: dict[str, Recorder], poller: RemovalPoller) -> list[str]:
    found = []
    for kind, recorder in recorders.items():
        for name in kit.deleted_names(recorder):
            gone_at = recorder.deleted_at(name)
            removed = poller.removed_at.get((kind, name))
            if gone_at is None or removed is None or gone_at < removed:
                found.append(f"{kind}/{name}: CR gone at {gone_at}, the cloud removed it at {removed}")
    return found


def setup(stack: Stack, topics: int, groups: int) -> tuple[str, str]:
    ns = stack.namespace()
    (instance_id,) = create_ready(stack, ns, 1, prefix="kids").values()
    apply(
        stack,
        ns,
        [child(TOPICS, f"t-{i:03d}", "kids-000") for i in range(topics)]
        + [child(GROUPS, f"g-{i:03d}", "kids-000") for i in range(groups)],
    )
    ready_children(stack, ns, topics, groups)
    return ns, instance_id


@pytest.mark.case(
    "child-teardown-kills",
    area="Topics and groups",
    injected="SIGKILL of the operator twice, at random moments (seeded) in the first 8 s of the deletion of "
    "60 topics and 20 groups of one instance; topic and group batch calls answered after 1.5 s, each "
    "batch deletion taking 3 s in the cloud",
    checked="every topic and group CR gone, nothing left in the cloud, zero early releases (each CR's "
    "DELETED event after the simulator removed its object), no single-object DELETE",
)
@pytest.mark.timeout(300)
def test_two_kills_during_a_child_teardown(stack: Stack, evidence: Evidence) -> None:
    seed = int(time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    ns, instance_id = setup(stack, 60, 20)
    stack.sim.config(topic_delete_seconds=3, group_delete_seconds=3)
    stack.sim.faults(latency_ms=1500, latency_operations=["topic_batch_delete", "group_batch_delete"])
    since = kit.last_seq(stack)
    kills = []
    with (
        RemovalPoller(stack, instance_id) as poller,
        Recorder(stack.cluster, ns, TOPICS) as topics,
        Recorder(stack.cluster, ns, GROUPS) as groups,
    ):
        began = time.monotonic()
        stack.cluster.kubectl("delete", "rmqt,rmqg", "--all", "-n", ns, "--wait=false")
        for moment in sorted(rng.uniform(0.5, 8.0) for _ in range(2)):
            time.sleep(max(0.5, began + moment - time.monotonic()))
            stack.operator.kill()
            kills.append(f"{time.monotonic() - began:.1f} s")
            stack.operator.restart(timeout=120)
        wait_for(
            lambda: not items(stack, ns, TOPICS) and not items(stack, ns, GROUPS),
            timeout=180,
            what="every topic and group CR gone",
            interval=0.5,
        )
        took = time.monotonic() - began
    view = stack.sim.children(instance_id)
    assert not view["topics"] and not view["groups"], "left in the cloud"
    found = early({"topics": topics, "groups": groups}, poller)
    assert not found, found
    calls = stack.sim.calls(since)
    assert not [c for c in calls if c["operation"] in ("topic_delete", "group_delete")]
    batches = [c for c in calls if c["operation"] in ("topic_batch_delete", "group_batch_delete")]
    evidence(
        f"seed {seed}; kills at {', '.join(kills)}; all 80 released {took:.0f} s after the delete, 0 early; "
        f"{len(batches)} batch calls (a kill loses the calls in flight, so they are sent again)"
    )


@pytest.mark.case(
    "child-batch-refused",
    area="Topics and groups",
    injected="the next 5 topic batch delete requests answered HTTP 500 (all 5 attempts of the first call: the "
    "client retries 4 times), while 10 topics of one instance are deleted",
    checked="each topic CR says why while it lasts (status.deletion result Error with the cloud's message); "
    "then every topic gone, nothing left in the cloud, zero early releases",
)
@pytest.mark.timeout(180)
def test_a_refused_topic_batch_is_retried(stack: Stack, evidence: Evidence) -> None:
    ns, instance_id = setup(stack, 10, 0)
    stack.sim.faults(error_next=5, error_operations=["topic_batch_delete"], error_status=500)
    since = kit.last_seq(stack)
    with RemovalPoller(stack, instance_id) as poller, Recorder(stack.cluster, ns, TOPICS) as topics:
        stack.cluster.kubectl("delete", "rmqt", "--all", "-n", ns, "--wait=false")

        def said_why() -> str | None:
            for _, kind, obj in list(topics.events):
                deletion = (obj.get("status") or {}).get("deletion") or {}
                if kind != "DELETED" and deletion.get("result") == "Error" and deletion.get("lastError"):
                    return str(deletion["lastError"])
            return None

        why = wait_for(said_why, timeout=60, what="a topic CR saying why its deletion failed")
        wait_for(lambda: not items(stack, ns, TOPICS), timeout=120, what="every topic CR gone", interval=0.5)
    assert "500" in why, why
    assert not stack.sim.children(instance_id)["topics"], "left in the cloud"
    assert not early({"topics": topics}, poller)
    batches = [c for c in stack.sim.calls(since) if c["operation"] == "topic_batch_delete"]
    evidence(f"said: {why[:120]}; {len(batches)} batch requests in all (5 refused)")


@pytest.mark.case(
    "child-deletion-undone-by-the-cloud",
    area="Topics and groups",
    injected="a topic batch delete the cloud accepts, but whose job ends FAILED with 2 of its 6 topics kept",
    checked="the 2 say DeleteFailed and are sent again in a later call; released only after their second "
    "deletion removed them; the 4 others released after the first; zero early releases",
)
@pytest.mark.timeout(180)
def test_a_deletion_the_cloud_undoes_is_sent_again(stack: Stack, evidence: Evidence) -> None:
    ns, instance_id = setup(stack, 6, 0)
    kept = ["t-001", "t-004"]
    stack.sim.faults(topic_delete_fail_names=kept)
    since = kit.last_seq(stack)
    with RemovalPoller(stack, instance_id) as poller, Recorder(stack.cluster, ns, TOPICS) as topics:
        stack.cluster.kubectl("delete", "rmqt", "--all", "-n", ns, "--wait=false")
        wait_for(lambda: not items(stack, ns, TOPICS), timeout=120, what="every topic CR gone", interval=0.5)
    assert not stack.sim.children(instance_id)["topics"], "left in the cloud"
    assert not early({"topics": topics}, poller)
    failed_seen = kit.reasons_seen(topics)
    assert "DeleteFailed" in failed_seen, failed_seen
    batches = [c for c in stack.sim.calls(since) if c["operation"] == "topic_batch_delete"]
    resent = [c for c in batches[1:] if set(c.get("names") or ()) & set(kept)]
    assert len(batches) >= 2 and resent, [c.get("names") for c in batches]
    evidence(f"{len(batches)} batch calls: {[sorted(c.get('names') or ()) for c in batches]}")
