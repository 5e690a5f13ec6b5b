"""Two replicas with Kopf peering: the standby costs the cloud nothing, and finishes what a killed active began.

Both replicas serve the same namespaces against one simulator, each with an access key of its own
(two IAM users of one project, as two Deployments' Secrets could be): the simulator's call log
records the access key of every call, so each call is attributed to the process that signed it,
and each replica's own metrics must agree.
"""

from __future__ import annotations

import collections
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devstack import OperatorProcess
from devstack.simulator_process import DEFAULT_PROJECT_ID
from e2e.support import Recorder, Stack, create_ready, wait_for

from . import kit, report
from .conftest import SECRETS_USED, Evidence, StackFactory

PEERING = "rel-replicas"
LIFETIME = 5
"""Seconds a replica that stopped renewing its keep-alive (every second at this lifetime) counts as alive."""
POLL = 1.0
INTERVALS = 8
TEARDOWN_CRS = 100
HELD_BACK = 20
STANDBY_ACCESS_KEY = "RELREPLICASTANDBY001"


@dataclass
class Replicas:
    stack: Stack
    namespace: str
    active: OperatorProcess
    standby: OperatorProcess
    active_key: str
    standby_key: str

    def calls_by(self, access_key: str, since: int = 0) -> list[dict[str, Any]]:
        return [c for c in self.stack.sim.calls(since) if c.get("access_key") == access_key]


def working(process: OperatorProcess) -> float | None:
    """The replica's ``rocketmq_operator_active`` gauge (1: works, 0: waits)."""
    found = re.search(r'^rocketmq_operator_active\{account="default"\} (\S+)$', process.metrics(), re.MULTILINE)
    return float(found.group(1)) if found else None


def cloud_calls_counted(process: OperatorProcess) -> float:
    """Cloud calls the replica's own client counted (``rocketmq_operator_cloud_api_calls_total``)."""
    pattern = r"^rocketmq_operator_cloud_api_calls_total\{[^}]*\} (\S+)$"
    return sum(float(m.group(1)) for m in re.finditer(pattern, process.metrics(), re.MULTILINE))


@pytest.fixture(scope="module")
def replicas(stacks: StackFactory) -> Iterator[Replicas]:
    standby_ak, standby_sk = STANDBY_ACCESS_KEY, f"rel-sk-{secrets.token_hex(16)}"
    stack = stacks(
        settings={"DMS_POLL_INTERVAL_SECONDS": str(POLL), "DMS_BATCH_MAX_SIZE": "25"},
        simulator_args=["--account", f"{standby_ak}:{standby_sk}:{DEFAULT_PROJECT_ID}", "--delete-seconds", "3"],
        start_operator=False,
    )
    cluster = stack.cluster
    cluster.kubectl("apply", "-f", str(report.ROOT / "deploy/helm/rocketmq-operator/crds/kopf-peering.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev", "--timeout=30s")
    namespace = stack.namespace()
    # Kopf writes keep-alives only into an existing peering object; the chart makes one per namespace.
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=f"apiVersion: kopf.dev/v1\nkind: KopfPeering\nmetadata: {{name: {PEERING}, namespace: {namespace}}}\n",
    )

    def replica(name: str, priority: int, settings: dict[str, str]) -> OperatorProcess:
        SECRETS_USED.update(v for k, v in settings.items() if k.endswith("_SECRET_KEY"))
        return OperatorProcess(
            kubeconfig=cluster.control_plane.kubeconfig_path,
            settings=settings,
            log_path=stacks.logs / f"{name}.log",
            namespaces=[f"{stack.prefix}-*"],
            extra_args=["--peering", PEERING, "--priority", str(priority), "--peering-lifetime", str(LIFETIME)],
        )

    active = replica("replica-active", 20, stack.settings)
    standby = replica(
        "replica-standby", 10, {**stack.settings, "DMS_ACCESS_KEY": standby_ak, "DMS_SECRET_KEY": standby_sk}
    )
    stack.operator = active  # its log is attached to a failure report, and the factory stops it
    try:
        active.start()
        wait_for(lambda: working(active) == 1, timeout=60, what="the first replica elected")
        standby.start()
        yield Replicas(stack, namespace, active, standby, stack.simulator.access_key, standby_ak)
    finally:
        standby.stop()
        active.stop()


@pytest.mark.case(
    "standby-makes-no-cloud-calls",
    area="Replicas",
    injected=f"two operator processes with Kopf peering on the same namespaces and cloud account (priorities "
    f"20 and 10, each signing with its own access key), the lower one started second; 5 CRs created, "
    f"observed for {INTERVALS} poll intervals of {POLL:.0f} s, then deleted",
    checked="the simulator's call log holds zero calls signed by the standby over its whole life (list walks, "
    "confirmations, sweeps included) while the active one lists every interval, creates, deletes and proves; "
    "the standby's own metrics count zero cloud calls and say it waits (rocketmq_operator_active 0)",
)
@pytest.mark.timeout(240)
def test_the_standby_makes_no_cloud_calls(replicas: Replicas, evidence: Evidence) -> None:
    stack, ns = replicas.stack, replicas.namespace
    wait_for(lambda: working(replicas.standby) == 0, timeout=30, what="the standby to say it waits")
    began = time.monotonic()
    names = sorted(create_ready(stack, ns, 5, prefix="calm", timeout=120))
    since = kit.last_seq(stack)

    def walks() -> list[dict[str, Any]]:
        """The active replica's list walks (one page each here; a list by name is an adoption, not a walk)."""
        calls = replicas.calls_by(replicas.active_key, since)
        return [c for c in calls if c["operation"] == "list" and "name=" not in c["query"]]

    # Several poll intervals, counted by the active replica's own walks.
    walked = wait_for(
        lambda: w if len(w := walks()) >= INTERVALS else None,
        timeout=INTERVALS * POLL * 5,
        what=f"{INTERVALS} list walks of the active replica",
    )
    span = walked[-1]["time"] - walked[0]["time"]
    for name in names:
        stack.cluster.delete(ns, name)
    stack.cluster.wait_gone(ns, names, timeout=60)
    everything = stack.sim.calls()
    by_standby = [c for c in everything if c.get("access_key") == replicas.standby_key]
    by_active = [c for c in everything if c.get("access_key") == replicas.active_key]
    operations = sorted({c["operation"] for c in by_active})
    assert by_standby == [], f"the standby called the cloud: {by_standby[:5]}"
    assert {"create", "list", "batch_action", "show"} <= set(operations), operations
    assert cloud_calls_counted(replicas.standby) == 0
    assert working(replicas.standby) == 0 and working(replicas.active) == 1
    evidence(
        f"{len(walked)} list walks of the active replica over {span:.1f} s with 5 CRs Ready; over the "
        f"standby's whole life (this case: {time.monotonic() - began:.0f} s) the active one made "
        f"{len(by_active)} calls ({', '.join(operations)}), the standby 0 (call log and its own metrics)"
    )


@pytest.mark.case(
    "active-killed-mid-teardown",
    area="Replicas",
    injected=f"{TEARDOWN_CRS} Ready CRs deleted at once (kubectl delete --all; batch size 25, batch calls "
    f"answered after 1 s, deletions take 3 s, every 5th instance ({HELD_BACK}) answered 'failed' until the "
    "standby's first call); SIGKILL of the active replica as soon as its first batch call is answered; the "
    f"standby takes over when the active one's peering keep-alive expires (--peering-lifetime {LIFETIME})",
    checked="the standby finishes the teardown: it sends the refused instances again, and every CR is gone, "
    "zero instances left, zero orphans, zero early "
    "releases (each CR's DELETED watch event after the simulator's record says its instance's deletion "
    f"ended), one instance made per CR ({TEARDOWN_CRS} accepted create calls, each name once; any other "
    "create answered 'name exists'), no create during the teardown, none by the standby, and no call by "
    "the standby before the kill",
)
@pytest.mark.timeout(420)
def test_the_standby_finishes_a_teardown_when_the_active_replica_is_killed(
    replicas: Replicas, evidence: Evidence
) -> None:
    stack, ns = replicas.stack, replicas.namespace
    since = kit.last_seq(stack)
    began = time.monotonic()
    ids = create_ready(stack, ns, TEARDOWN_CRS, prefix="tear", timeout=300)
    evidence(f"{TEARDOWN_CRS} CRs Ready in {time.monotonic() - began:.0f} s")
    names = [i["name"] for i in stack.sim.instances(stack.simulator.project_id) if i["instance_id"] in ids.values()]
    assert len(set(ids.values())) == len(names) == len(set(names)) == TEARDOWN_CRS, (
        "one instance per CR, each name once"
    )
    teardown_since = kit.last_seq(stack)
    held_back = sorted(ids.values())[::5]
    stack.sim.faults(latency_ms=1000, latency_operations=["batch_action"], failed_ids=held_back)
    try:
        with Recorder(stack.cluster, ns) as recorder:
            began = time.monotonic()
            stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
            answered = wait_for(
                lambda: [
                    c
                    for c in replicas.calls_by(replicas.active_key, teardown_since)
                    if c["operation"] == "batch_action" and c["status"] is not None
                ],
                timeout=60,
                what="the active replica's first batch call answered",
                interval=0.05,
            )
            replicas.active.kill()
            killed_at = time.time()
            left = TEARDOWN_CRS - len(kit.deleted_names(recorder))
            before_kill = replicas.calls_by(replicas.standby_key)
            assert before_kill == [], f"the standby called the cloud before the kill: {before_kill[:5]}"
            sent = [
                c for c in replicas.calls_by(replicas.active_key, teardown_since) if c["operation"] == "batch_action"
            ]
            evidence(
                f"killed {time.monotonic() - began:.1f} s into the teardown, {left} CRs left, "
                f"{len(sent)} batch call(s) arrived, {len(answered)} answered"
            )
            # Refused until the standby works: whatever the killed replica sent of them was refused.
            first = wait_for(
                lambda: replicas.calls_by(replicas.standby_key, teardown_since),
                timeout=LIFETIME * 6,
                what="the standby's first call",
                interval=0.05,
            )[0]
            stack.sim.clear_faults()
            stack.cluster.wait_gone(ns, ids, timeout=240)
            teardown = time.monotonic() - began
            kit.assert_clean_teardown(stack, recorder, ns, ids)
    finally:
        stack.sim.clear_faults()
    by_standby = replicas.calls_by(replicas.standby_key, teardown_since)
    took_over = first["time"] - killed_at
    creates = kit.calls_of(stack, "create", since)
    made = [c for c in creates if c["status"] is not None and c["status"] < 300]
    conflicts = collections.Counter(str(c["error_code"]) for c in creates if c not in made)
    assert len(made) == TEARDOWN_CRS, f"{len(made)} instances made for {TEARDOWN_CRS} CRs: {conflicts}"
    assert set(conflicts) <= {"DMS.00400060"}, f"creates refused for another reason than an existing name: {conflicts}"
    assert {c.get("access_key") for c in creates} == {replicas.active_key}, "the standby created something"
    assert kit.calls_of(stack, "create", teardown_since) == [], "a create during the teardown"
    assert working(replicas.standby) == 1
    standby_batches = [c for c in by_standby if c["operation"] == "batch_action"]
    resent = {i for c in standby_batches for i in c["instance_ids"]}
    assert set(held_back) <= resent, f"the standby never sent {sorted(set(held_back) - resent)[:5]}"
    active_batches = kit.calls_of(stack, "batch_action", teardown_since)
    active_batches = [c for c in active_batches if c.get("access_key") == replicas.active_key]
    evidence(
        f"the killed replica's batch calls: {len(active_batches)} carrying "
        f"{sum(len(c['instance_ids']) for c in active_batches)} ids; the standby's first call "
        f"{took_over:.1f} s after the kill; it sent {len(standby_batches)} batch call(s) carrying "
        f"{sum(len(c['instance_ids']) for c in standby_batches)} ids (the {HELD_BACK} refused among them) and "
        f"{len(by_standby) - len(standby_batches)} other calls; teardown {teardown:.0f} s"
    )
    evidence(
        f"0 CRs left, 0 instances left, 0 orphans, 0 early releases; {len(made)} instances made for "
        f"{TEARDOWN_CRS} CRs (one each, all by the killed replica, none after the teardown began); "
        f"{sum(conflicts.values())} more create calls were answered DMS.00400060 (name exists) and made nothing"
    )
