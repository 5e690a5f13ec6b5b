"""Failed creations are swept in batches; what nobody here owns is left alone unless asked."""

from __future__ import annotations

import json
import subprocess
import time

from devstack.simulator_process import console_script
from instance_spec import SPEC

from .support import Stack, condition, wait_for


def _failed_instance(stack: Stack, ns: str, name: str) -> dict[str, object]:
    def failed() -> dict[str, object] | None:
        cr = stack.cluster.get(ns, name)
        ready = condition(cr, "Ready") or {}
        return cr if ready.get("reason") == "CreateFailed" else None

    return wait_for(failed, timeout=60, what=f"{name} to report CreateFailed")


def test_owned_failed_instance_is_swept_in_a_batch_and_the_cr_says_so(stack: Stack) -> None:
    ns = stack.namespace()
    stack.sim.config(create_fail_names=["sweep-me-01"])
    stack.cluster.create(ns, "doomed", {**SPEC, "name": "sweep-me-01"})
    cr = _failed_instance(stack, ns, "doomed")
    instance_id = cr["status"]["instanceId"]  # type: ignore[index]
    assert is_stalled(cr)

    def swept() -> dict[str, object] | None:
        current = stack.cluster.get(ns, "doomed") or {}
        deletion = (current.get("status") or {}).get("deletion") or {}
        return deletion if deletion.get("trigger") == "SweepCreateFailed" else None

    deletion = wait_for(swept, timeout=60, what="the sweep to be recorded on the CR")
    assert deletion["instanceId"] == instance_id
    assert deletion["result"] == "Accepted"
    wait_for(lambda: stack.sim_instance(instance_id) is None, timeout=30, what="the failed instance to go")
    batch = [c for c in stack.batch_calls() if instance_id in c["instance_ids"]]
    assert len(batch) == 1
    assert batch[0]["force_delete"] is True
    reasons = {e["reason"] for e in stack.cluster.events(ns, "doomed")}
    assert "SweptCreateFailed" in reasons
    # Without recreateOnFailure the CR stays Stalled and says why.
    time.sleep(3)
    final = stack.cluster.get(ns, "doomed")
    assert (condition(final, "Ready") or {}).get("reason") == "CreateFailed"
    assert is_stalled(final)


def test_recreate_on_failure_gets_a_fresh_instance(stack: Stack) -> None:
    ns = stack.namespace()
    stack.sim.config(create_fail_names=["retry-me-01"])
    stack.cluster.create(ns, "phoenix", {**SPEC, "name": "retry-me-01", "recreateOnFailure": True})
    first = _failed_instance(stack, ns, "phoenix")["status"]["instanceId"]  # type: ignore[index]
    stack.sim.config(create_fail_names=[])
    cr = stack.cluster.wait_ready(ns, "phoenix", timeout=90)
    assert cr["status"]["instanceId"] != first
    assert first in cr["status"]["failedInstanceIds"]
    assert stack.sim_instance(first) is None


def test_foreign_failed_instances_are_never_touched_by_the_owned_sweep(stack: Stack) -> None:
    seeded = stack.sim.seed(stack.simulator.project_id, [{"name": "someone-elses-01", "status": "CREATEFAILED"}])
    foreign_id = seeded[0]["instance_id"]
    since = stack.sim.calls()[-1]["seq"]
    sweep_seconds = float(stack.settings["DMS_SWEEP_INTERVAL_SECONDS"])
    time.sleep(sweep_seconds * 5)
    assert stack.sim_instance(foreign_id) is not None
    assert not [c for c in stack.batch_calls(since) if foreign_id in c["instance_ids"] or c.get("all_failure")]

    report = subprocess.run(
        [console_script("rocketmq-operator"), "sweep-report", "--json"],
        env={**stack.simulator.operator_env(), "DMS_CLUSTER_ID": "e2e-cluster", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {row["instance_id"]: row for row in json.loads(report.stdout)["instances"]}
    assert rows[foreign_id]["owned"] is False
    assert rows[foreign_id]["deleted_by"] == "project-wide sweep only"


def test_project_wide_sweep_deletes_foreign_failed_instances_when_turned_on(stack_factory, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    seeded = stack.sim.seed(stack.simulator.project_id, [{"name": "orphan-failure-01", "status": "CREATEFAILED"}])
    foreign_id = seeded[0]["instance_id"]
    since = stack.sim.calls()[-1]["seq"]
    wide = stack_factory(settings={"DMS_SWEEP_PROJECT_WIDE": "true"}, share_simulator_with=stack)
    try:
        wait_for(lambda: stack.sim_instance(foreign_id) is None, timeout=60, what="the project-wide sweep")
        calls = [c for c in stack.batch_calls(since) if c.get("all_failure")]
        assert calls, "expected an all_failure batch call"
        assert calls[0]["all_failure"] == "reliability"
    finally:
        wide.operator.stop()


def test_report_mode_only_says_what_it_would_delete(stack_factory, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    seeded = stack.sim.seed(stack.simulator.project_id, [{"name": "reported-only-01", "status": "CREATEFAILED"}])
    foreign_id = seeded[0]["instance_id"]
    reporter = stack_factory(settings={"DMS_SWEEP_PROJECT_WIDE": "report"}, share_simulator_with=stack)
    try:
        wait_for(lambda: foreign_id in reporter.operator.log(), timeout=30, what="the report line naming the instance")
        assert stack.sim_instance(foreign_id) is not None
        assert "would delete" in reporter.operator.log()
    finally:
        reporter.operator.stop()


def is_stalled(cr: dict[str, object] | None) -> bool:
    stalled = condition(cr, "Stalled") or {}
    return stalled.get("status") == "True"
