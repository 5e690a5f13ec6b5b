"""Deletions that arrive together go to the cloud in one batch call, and each CR gets its own result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .support import Recorder, Stack, condition, create_ready, wait_for


def _saw_batch_result(history: list[tuple[float, str, dict[str, Any]]]) -> dict[str, Any] | None:
    for _, kind, obj in history:
        deletion = (obj.get("status") or {}).get("deletion") or {}
        if kind != "DELETED" and deletion.get("result") == "Accepted" and deletion.get("batchId"):
            return deletion
    return None


def _accepted(obj: dict[str, Any]) -> bool:
    return bool(((obj.get("status") or {}).get("deletion") or {}).get("result") == "Accepted")


def test_sixty_deletions_take_at_most_two_batch_calls_and_no_single_deletes(stack: Stack) -> None:
    ns = stack.namespace()
    ids = create_ready(stack, ns, 60, timeout=180)
    since = stack.sim.calls()[-1]["seq"]
    with Recorder(stack.cluster, ns) as recorder:
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        stack.cluster.wait_gone(ns, ids, timeout=180)
        calls = stack.sim.calls(since)
        batch = [c for c in calls if c["operation"] == "batch_action"]
        assert 1 <= len(batch) <= 2, [len(c["instance_ids"]) for c in batch]
        assert sorted(i for c in batch for i in c["instance_ids"]) == sorted(ids.values())
        assert not [c for c in calls if c["operation"] == "delete"], "no single-instance DELETE"

        deletions = stack.deletions(ids.values())
        for name, instance_id in ids.items():
            deletion = _saw_batch_result(recorder.history(name))
            assert deletion is not None, f"{name} never showed its batch result before it went"
            assert deletion["instanceId"] == instance_id
            assert deletion["batchSize"] in {len(c["instance_ids"]) for c in batch}
            gone_at = recorder.deleted_at(name)
            assert gone_at is not None
            # Released only after the cloud finished (the list stopped showing it long before).
            (deleted,) = deletions[instance_id]
            assert deleted["outcome"] == "gone" and gone_at >= deleted["ended_at"], name
            assert stack.sim_instance(instance_id) is None
    assert not [i for i in stack.sim.instances() if i["instance_id"] in ids.values()], "leaked instances"


def test_each_cr_shows_its_batch_result_while_the_cloud_still_deletes(stack_factory: Callable[..., Stack]) -> None:
    """The batch's answer goes on the CR when the batch answers, not with the finalizer's removal: while
    the cloud deletes, ``kubectl get`` shows it, and the release has only the finalizer to write. The
    confirm wait (30 s) outlasts the deletion (8 s): a pass that waited in it would write the result
    only after the cloud finished."""
    slow = stack_factory(
        settings={"DMS_DELETE_CONFIRM_WAIT_SECONDS": "30"},
        simulator_args=["--create-seconds", "1", "--delete-seconds", "8", "--quota", "100000"],
    )
    ns = slow.namespace()
    ids = create_ready(slow, ns, 10, prefix="slow", timeout=120)
    with Recorder(slow.cluster, ns) as recorder:
        slow.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        slow.cluster.wait_gone(ns, ids, timeout=120)
        deletions = slow.deletions(ids.values())
        for name, instance_id in ids.items():
            seen = next((at for at, kind, obj in recorder.history(name) if kind != "DELETED" and _accepted(obj)), None)
            (deleted,) = deletions[instance_id]
            assert seen is not None, f"{name} never showed its batch result"
            assert seen < deleted["ended_at"], f"{name} showed its batch result only after the cloud finished"


def test_partial_failure_keeps_the_finalizer_with_the_reason_until_cleared(stack: Stack) -> None:
    ns = stack.namespace()
    ids = create_ready(stack, ns, 6, prefix="part", timeout=180)
    failing = sorted(ids.values())[:2]
    stack.sim.faults(failed_ids=failing)
    try:
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        ok_names = [n for n, i in ids.items() if i not in failing]
        stack.cluster.wait_gone(ns, ok_names, timeout=60)
        failing_names = [n for n, i in ids.items() if i in failing]

        def stuck_with_reason() -> bool:
            for name in failing_names:
                cr = stack.cluster.get(ns, name)
                if cr is None:
                    return False
                ready = condition(cr, "Ready") or {}
                if ready.get("reason") != "DeleteFailed" or cr["status"]["deletion"]["result"] != "Failed":
                    return False
                assert "dms.rocketmq-operator.io/finalizer" in cr["metadata"]["finalizers"]
            return True

        wait_for(stuck_with_reason, timeout=30, what="failed CRs to show DeleteFailed")
        for instance_id in failing:
            assert stack.sim_instance(instance_id) is not None
    finally:
        stack.sim.clear_faults()
    stack.cluster.wait_gone(ns, ids, timeout=120)
    for instance_id in failing:
        assert stack.sim_instance(instance_id) is None


def test_namespace_teardown_batches_and_leaks_nothing(stack: Stack) -> None:
    ns = stack.namespace()
    ids = create_ready(stack, ns, 20, prefix="ns", timeout=180)
    since = stack.sim.calls()[-1]["seq"]
    stack.cluster.kubectl("delete", "namespace", ns, "--wait=false")
    wait_for(lambda: ns not in stack.cluster.namespaces(), timeout=180, what="the namespace to be gone")
    batch = stack.batch_calls(since)
    assert len(batch) <= 2
    assert sorted(i for c in batch for i in c["instance_ids"]) == sorted(ids.values())
    assert not [i for i in stack.sim.instances() if i["instance_id"] in ids.values()]
