"""A finalizer comes off only when the cloud proves the instance gone, on a cloud that behaves like Huawei's.

The simulator runs in its faithful default: the list hides an instance as soon as its deletion starts,
show answers DELETING until the end, then 404, or RECYCLE when a non-forced deletion went to the bin.
Its ``/_sim/deletions`` record says when each deletion really ended; every CR's DELETED watch event
must come after that moment.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from e2e.support import Recorder, Stack, condition, wait_all_ready, wait_for
from instance_spec import SPEC

from .conftest import Evidence, StackFactory

DELETE_SECONDS = 4.0
SIMULATOR = ["--delete-seconds", str(DELETE_SECONDS), "--recycle-bin"]
FINALIZER = "dms.rocketmq-operator.io/finalizer"


@pytest.fixture(scope="module")
def stack(stacks: StackFactory) -> Stack:
    return stacks(simulator_args=SIMULATOR)


@pytest.mark.case(
    "deletion-proof-60",
    area="Deletion proof",
    injected=f"the simulator's faithful default: the list hides an instance as soon as its deletion starts "
    f"(deletions take {DELETE_SECONDS:g} s), the recycle bin is on; 30 CRs with forceDelete and 30 without are "
    "deleted together",
    checked="zero early releases: each CR's DELETED watch event later than the moment /_sim/deletions says "
    "its instance was gone (forced) or binned (the others); each instance accepted once; binned instances "
    "answer show with RECYCLE; forced ones proven by show (at most 2 per CR), binned ones by recycle-bin "
    "lists only (no show)",
)
def test_sixty_forced_and_binned_deletions_are_released_only_after_the_cloud_finished(
    stack: Stack, evidence: Evidence
) -> None:
    ns = stack.namespace()
    forced = [f"forced-{i:03d}" for i in range(30)]
    binned = [f"binned-{i:03d}" for i in range(30)]
    for name in forced:
        stack.cluster.create(ns, name, {**SPEC, "forceDelete": True})
    for name in binned:
        stack.cluster.create(ns, name, SPEC)
    ids = wait_all_ready(stack, ns, 60, timeout=240)
    since = stack.sim.calls()[-1]["seq"]
    with Recorder(stack.cluster, ns) as recorder:
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        stack.cluster.wait_gone(ns, ids, timeout=240)
    calls = stack.sim.calls(since)
    deletions = stack.deletions(ids.values())
    early = []
    for name, instance_id in ids.items():
        (entry,) = deletions[instance_id]  # accepted once: nothing was sent again
        assert entry["forced"] is name.startswith("forced")
        assert entry["outcome"] == ("gone" if name.startswith("forced") else "binned"), entry
        released = recorder.deleted_at(name)
        assert released is not None and entry["ended_at"] is not None
        if released < entry["ended_at"]:
            early.append((name, round(entry["ended_at"] - released, 3)))
    assert early == [], f"released before the cloud finished: {early}"
    # Binned instances answer show with RECYCLE; forced ones are gone for good.
    for name, instance_id in ids.items():
        instance = stack.sim_instance(instance_id)
        if name.startswith("forced"):
            assert instance is None
        else:
            assert instance is not None and instance["status"] == "RECYCLE"

    by_operation = Counter(c["operation"] for c in calls)
    shown = Counter(i for c in calls if c["operation"] == "show" for i in c["instance_ids"])
    # Forced deletions are proven one show each (plus a few looks while the first is learned);
    # binned ones by recycle-bin lists, any number per call, and no show at all.
    assert sum(shown[ids[n]] for n in forced) <= 2 * len(forced), dict(by_operation)
    assert sum(shown[ids[n]] for n in binned) == 0, dict(by_operation)
    assert 1 <= by_operation["recycle"] <= 20, dict(by_operation)
    assert by_operation["batch_action"] <= 4, dict(by_operation)
    lags = sorted(recorder.deleted_at(n) - deletions[i][0]["ended_at"] for n, i in ids.items())  # type: ignore[operator]
    evidence(
        f"60 CRs gone, 0 early releases; release after the cloud finished: median {lags[30]:.2f} s, "
        f"max {lags[-1]:.2f} s; calls: {dict(sorted(by_operation.items()))}; "
        f"show calls {sum(shown.values())} for 30 forced deletions, 0 for 30 binned"
    )


@pytest.mark.case(
    "deletion-undone-by-the-cloud",
    area="Deletion proof",
    injected="the cloud accepts the deletion of 1 of 3 instances, then fails it: after the DELETING time the "
    "instance is back in ERROR and listed again (delete_fail_ids)",
    checked="the 2 others go; the failing CR keeps its finalizer and says DeleteFailed naming ERROR, "
    "status.cloudStatus ERROR; it is sent again in a later batch and released only after that deletion ended",
)
def test_a_deletion_the_cloud_fails_after_accepting_it_is_sent_again_and_released_only_when_gone(
    stack: Stack, evidence: Evidence
) -> None:
    ns = stack.namespace()
    for i in range(3):
        stack.cluster.create(ns, f"undo-{i}", {**SPEC, "forceDelete": True})
    ids = wait_all_ready(stack, ns, 3, timeout=120)
    failing_name = "undo-0"
    failing = ids[failing_name]
    stack.sim.faults(delete_fail_ids=[failing], delete_fail_status="ERROR")
    try:
        with Recorder(stack.cluster, ns) as recorder:
            stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
            stack.cluster.wait_gone(ns, [n for n in ids if n != failing_name], timeout=60)

            def says_delete_failed() -> dict[str, Any] | None:
                cr = stack.cluster.get(ns, failing_name)
                ready = condition(cr, "Ready") or {}
                return cr if ready.get("reason") == "DeleteFailed" and "ERROR" in ready.get("message", "") else None

            cr = wait_for(says_delete_failed, timeout=60, what="the undone deletion to say DeleteFailed")
            assert FINALIZER in cr["metadata"]["finalizers"]
            assert cr["status"]["deletion"]["result"] == "Failed"
            assert cr["status"]["cloudStatus"] == "ERROR"
            stack.cluster.wait_gone(ns, [failing_name], timeout=120)
    finally:
        stack.sim.clear_faults()
    first, second = stack.deletions([failing])[failing]
    assert first["outcome"] == "failed" and first["status_after"] == "ERROR"
    assert second["outcome"] == "gone"
    released = recorder.deleted_at(failing_name)
    assert released is not None and released >= second["ended_at"]
    events = stack.cluster.events(ns, failing_name)
    reasons = [e["reason"] for e in events]
    # Two acceptances: the first said on its own (not proven within the pass's wait: it failed), the
    # second inside the release's one Event (proven within the wait).
    accepted = [e for e in events if "accepted in batch" in e.get("message", "")]
    assert "DeleteFailed" in reasons and reasons.count("DeleteAccepted") >= 1 and len(accepted) >= 2, events
    evidence(
        f"first deletion ended in {first['status_after']} after {first['ended_at'] - first['accepted_at']:.1f} s; "
        f"resubmitted {second['accepted_at'] - first['ended_at']:.1f} s later; released "
        f"{released - second['ended_at']:.2f} s after the second ended; the 2 others released normally"
    )


@pytest.mark.case(
    "name-held-by-a-deleting-instance",
    area="Deletion proof",
    injected="a new CR asks for the cloud name of an instance that is still DELETING (hidden from the list; "
    "the create answers DMS.00400060)",
    checked="the CR waits with reason NameHeldByDeletingInstance (Reconciling True), never adopts the deleting "
    "instance, and gets an instance of its own once the old one is gone",
)
def test_a_new_cr_whose_name_is_held_by_a_deleting_instance_waits_then_gets_its_own(
    stack: Stack, evidence: Evidence
) -> None:
    ns = stack.namespace()
    spec = {**SPEC, "name": f"held-{ns[-8:]}", "forceDelete": True}
    stack.cluster.create(ns, "first", spec)
    old_id = stack.cluster.wait_ready(ns, "first", timeout=60)["status"]["instanceId"]
    stack.cluster.kubectl("delete", "rmqi", "first", "-n", ns, "--wait=false")
    wait_for(
        lambda: (stack.sim_instance(old_id) or {}).get("status") == "DELETING",
        timeout=30,
        what="the first instance to be DELETING",
    )
    stack.cluster.create(ns, "second", spec)

    def waiting() -> dict[str, Any] | None:
        cr = stack.cluster.get(ns, "second")
        ready = condition(cr, "Ready") or {}
        return cr if ready.get("reason") == "NameHeldByDeletingInstance" else None

    cr = wait_for(waiting, timeout=30, what="the second CR to wait for the name")
    assert (condition(cr, "Reconciling") or {}).get("status") == "True"
    assert cr["status"].get("instanceId") != old_id, "a deleting instance must never be adopted"
    ready = stack.cluster.wait_ready(ns, "second", timeout=120)
    assert ready["status"]["instanceId"] != old_id
    assert stack.sim_instance(old_id) is None
    creates = [c for c in stack.sim.calls() if c["operation"] == "create" and c.get("error_code")]
    evidence(
        f"waited with reason NameHeldByDeletingInstance; {len(creates)} create(s) refused with DMS.00400060; "
        "then Ready with its own instance, the deleting one never adopted"
    )
