"""kube-apiserver restarts under a running operator: it reconnects by itself and finishes its work.

The session's own API server is restarted (``ControlPlane.restart_apiserver``): every watch stream
and request of the operator is cut, and refused while it is down; etcd keeps the data.
"""

from __future__ import annotations

import time

import pytest

from e2e.support import Recorder, Stack, create_ready, wait_for
from instance_spec import SPEC
from kube_testenv import ControlPlane, use_existing_cluster

from . import kit
from .conftest import Evidence

pytestmark = pytest.mark.skipif(use_existing_cluster(), reason="USE_EXISTING_CLUSTER: restarts the local API server")

DOWN_SECONDS = 5.0


@pytest.mark.case(
    "apiserver-restart-mid-teardown",
    area="API server",
    injected=f"kube-apiserver stopped (SIGTERM) for {DOWN_SECONDS:g} s and started again while 30 CRs are "
    "being deleted, right after the first batch call",
    checked="the same operator process (never restarted) reconnects and finishes: every CR gone, every "
    "instance deleted, no orphan, no early release",
)
def test_teardown_survives_an_apiserver_restart(stack: Stack, control_plane: ControlPlane, evidence: Evidence) -> None:
    ns = stack.namespace()
    ids = create_ready(stack, ns, 30)
    pid = stack.operator.process.pid
    since = kit.last_seq(stack)
    with Recorder(stack.cluster, ns) as recorder:
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        wait_for(lambda: stack.batch_calls(since), timeout=60, what="the first batch call")
        left = len(stack.cluster.list(ns))
        began = time.monotonic()
        control_plane.restart_apiserver(down_seconds=DOWN_SECONDS)
        evidence(f"API server down and back in {time.monotonic() - began:.1f} s with {left} CRs left")
        stack.cluster.wait_gone(ns, ids, timeout=180)
        kit.assert_clean_teardown(stack, recorder, ns, ids)
    assert stack.operator.process.pid == pid and stack.operator.restarts == 0
    assert stack.operator.process.is_running()
    evidence(f"operator pid {pid} throughout; {len(stack.batch_calls(since))} batch call(s)")
    evidence("30 CRs gone, 30 instances deleted, 0 orphans, 0 early releases")


@pytest.mark.case(
    "apiserver-restart-watch-resumes",
    area="API server",
    injected=f"kube-apiserver stopped for {DOWN_SECONDS:g} s and started again while the operator is idle",
    checked="afterwards, without an operator restart: a new CR is created and becomes Ready, and a spec "
    "edit of an existing CR reaches the cloud (an update call) and is reflected in status",
)
def test_watches_resume_after_an_apiserver_restart(
    stack: Stack, control_plane: ControlPlane, evidence: Evidence
) -> None:
    ns = stack.namespace()
    ids = create_ready(stack, ns, 2)
    pid = stack.operator.process.pid
    since = kit.last_seq(stack)
    control_plane.restart_apiserver(down_seconds=DOWN_SECONDS)
    began = time.monotonic()
    stack.cluster.create(ns, "after-restart", SPEC)
    stack.cluster.patch(ns, "mq-000", {"spec": {"description": "edited after the restart"}})
    created = stack.cluster.wait_ready(ns, "after-restart", timeout=120)
    ready_seconds = time.monotonic() - began
    updates = wait_for(
        lambda: [c for c in kit.calls_of(stack, "update", since) if ids["mq-000"] in c["instance_ids"]],
        timeout=120,
        what="the edit to reach the cloud",
    )
    wait_for(
        lambda: (stack.sim_instance(ids["mq-000"]) or {}).get("description") == "edited after the restart",
        timeout=60,
        what="the cloud to hold the new description",
    )
    assert stack.operator.process.pid == pid and stack.operator.restarts == 0
    with Recorder(stack.cluster, ns) as recorder:
        all_ids = {**ids, "after-restart": created["status"]["instanceId"]}
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        stack.cluster.wait_gone(ns, all_ids, timeout=120)
        kit.assert_clean_teardown(stack, recorder, ns, all_ids)
    evidence(f"new CR Ready {ready_seconds:.0f} s after the restart; the edit sent as {len(updates)} update call(s)")
    evidence(f"operator pid {pid} throughout")
