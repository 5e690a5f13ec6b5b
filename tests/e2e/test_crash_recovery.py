"""The operator killed at the worst moment of a create: exactly one instance, adopted on restart."""

from __future__ import annotations

from instance_spec import SPEC

from .support import Stack, wait_for


def test_kill_between_cloud_accepting_the_create_and_recording_its_id(stack: Stack) -> None:
    ns = stack.namespace()
    name = "crash-mq-01"
    stack.sim.faults(hold_create_seconds=30)
    stack.cluster.create(ns, "crashy", {**SPEC, "name": name})
    wait_for(
        lambda: [i for i in stack.sim.instances() if i["name"] == name],
        timeout=30,
        what="the cloud to have made the instance",
    )
    cr = stack.cluster.get(ns, "crashy")
    assert cr is not None
    assert not cr["status"].get("instanceId"), "the id must not be recorded yet (response held back)"
    assert cr["status"]["creation"]["name"] == name, "the pending marker was persisted before the call"

    stack.operator.kill()
    stack.sim.clear_faults()
    stack.operator.restart()

    cr = stack.cluster.wait_ready(ns, "crashy", timeout=90)
    instances = [i for i in stack.sim.instances() if i["name"] == name]
    assert len(instances) == 1, instances
    assert cr["status"]["instanceId"] == instances[0]["instance_id"]
    tags = {t["key"]: t["value"] for t in instances[0]["tags"]}
    assert tags["rocketmq-operator.uid"] == cr["metadata"]["uid"], "adopted and tagged as ours"
    creates = [c for c in stack.sim.calls() if c["operation"] == "create"]
    assert [c["status"] for c in creates][-1] == 400  # the retry met DMS.00400060 and adopted
    assert "Adopted" in {e["reason"] for e in stack.cluster.events(ns, "crashy")}


def test_kill_during_a_batch_deletion_finishes_after_restart(stack: Stack) -> None:
    ns = stack.namespace()
    names = [f"crash-del-{i}" for i in range(10)]
    for n in names:
        stack.cluster.create(ns, n, SPEC)
    ids = [stack.cluster.wait_ready(ns, n)["status"]["instanceId"] for n in names]
    stack.sim.faults(latency_ms=3000, latency_operations=["batch_action"])
    stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
    wait_for(lambda: stack.batch_calls(), timeout=30, what="a batch call in flight")
    stack.operator.kill()
    stack.sim.clear_faults()
    stack.operator.restart()
    stack.cluster.wait_gone(ns, names, timeout=120)
    assert all(stack.sim_instance(i) is None for i in ids)
