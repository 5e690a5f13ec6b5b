"""The operator SIGKILLed at random moments: it picks up where it was, leaks nothing, releases nothing early."""

from __future__ import annotations

import os
import random
import time

import pytest

from e2e.support import Recorder, Stack, create_ready, wait_for
from instance_spec import SPEC
from rocketmq_operator.core.mapping import OWNER_UID_TAG

from . import kit
from .conftest import Evidence, StackFactory

TEARDOWN_CRS = 300
KILLS = 5


HELD_BACK = 30


@pytest.fixture(scope="module")
def big(stacks: StackFactory) -> Stack:
    # A poll interval of a few seconds keeps 300 CRs' timers from eating the two cores; deletions are
    # confirmed by the shared list walks (every DMS_VERIFY_INTERVAL_SECONDS), not by the timers.
    return stacks(
        settings={
            "DMS_POLL_INTERVAL_SECONDS": "5",
            "DMS_SWEEP_INTERVAL_SECONDS": "60",
            "DMS_BATCH_MAX_SIZE": "25",
        },
        simulator_args=["--delete-seconds", "6"],
    )


@pytest.mark.case(
    "crash-sigkill-teardown",
    area="Crashes",
    injected=f"SIGKILL of the operator's process group {KILLS} times, at random moments (seeded, drawn over "
    f"the first 45 s, at least 0.5 s after the previous restart), during a namespace teardown of "
    f"{TEARDOWN_CRS} CRs, restarted after each kill; batch calls answered after 1.5 s, and {HELD_BACK} "
    "random instances answered 'failed' until the last kill, so the teardown outlasts the kills",
    checked="every CR gone, every instance deleted, zero orphans (instances of the namespace with no CR), "
    "zero early releases (each CR's DELETED watch event later than the moment the simulator's record, "
    "/_sim/deletions, says its instance's deletion ended), the namespace gone",
)
@pytest.mark.timeout(900)
def test_five_kills_during_a_300_cr_teardown(big: Stack, evidence: Evidence) -> None:
    seed = int(os.environ.get("RELIABILITY_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    ns = big.namespace()
    began = time.monotonic()
    ids = create_ready(big, ns, TEARDOWN_CRS, timeout=600)
    evidence(f"{TEARDOWN_CRS} CRs Ready in {time.monotonic() - began:.0f} s")
    since = kit.last_seq(big)
    held_back = rng.sample(sorted(ids.values()), HELD_BACK)
    big.sim.faults(latency_ms=1500, latency_operations=["batch_action"], failed_ids=held_back)
    kills: list[str] = []
    with Recorder(big.cluster, ns) as recorder:
        began = time.monotonic()
        # A namespace teardown: the namespace controller marks all 300 CRs for deletion at once.
        big.cluster.kubectl("delete", "namespace", ns, "--wait=false")
        # Five moments drawn over the first 45 s; a kill due while the operator is still restarting
        # waits until it has been up for half a second.
        moments = sorted(rng.uniform(0.5, 45.0) for _ in range(KILLS))
        for number, moment in enumerate(moments):
            time.sleep(max(0.5, began + moment - time.monotonic()))
            left = TEARDOWN_CRS - len(kit.deleted_names(recorder))
            assert left > 0, f"the teardown ended before kill {number + 1}"
            big.operator.kill()
            kills.append(f"{time.monotonic() - began:.1f} s ({left} CRs left)")
            big.operator.restart(timeout=120)
        big.sim.clear_faults()
        wait_for(lambda: ns not in big.cluster.namespaces(), timeout=300, what="the namespace gone", interval=1.0)
        evidence(f"seed {seed}; kills at {', '.join(kills)}; teardown {time.monotonic() - began:.0f} s")
        kit.assert_clean_teardown(big, recorder, ns, ids)
    batches = big.batch_calls(since)
    evidence(f"{len(batches)} batch calls carrying {sum(len(c['instance_ids']) for c in batches)} ids")
    evidence("0 CRs left, 0 instances left, 0 orphans, 0 early releases")


@pytest.mark.case(
    "crash-mid-create-many",
    area="Crashes",
    injected="5 creates accepted by the cloud with their responses held back (hold_create_seconds), "
    "SIGKILL while all 5 are in flight, restart (extends the one-CR case of tests/e2e/test_crash_recovery.py)",
    checked="exactly one instance per CR, each adopted (DMS.00400060 on the retried create, then found by "
    "name), tagged with its CR's uid, Ready",
)
def test_kill_while_five_creates_are_unanswered(stack: Stack, evidence: Evidence) -> None:
    ns = stack.namespace()
    names = [f"held-{i}" for i in range(5)]
    cloud_names = {name: f"held-create-{i:02d}" for i, name in enumerate(names)}
    since = kit.last_seq(stack)
    stack.sim.faults(hold_create_seconds=60)
    for name in names:
        stack.cluster.create(ns, name, {**SPEC, "name": cloud_names[name]})
    wait_for(
        lambda: len([i for i in stack.sim.instances() if i["name"] in cloud_names.values()]) == 5,
        timeout=60,
        what="the cloud to have made all five instances",
    )
    for name in names:
        cr = stack.cluster.get(ns, name) or {}
        assert not cr.get("status", {}).get("instanceId"), "no id may be recorded while the response is held"
    stack.operator.kill()
    stack.sim.clear_faults()
    stack.operator.restart()
    for name in names:
        cr = stack.cluster.wait_ready(ns, name, timeout=120)
        made = [i for i in stack.sim.instances() if i["name"] == cloud_names[name]]
        assert len(made) == 1, made
        assert cr["status"]["instanceId"] == made[0]["instance_id"]
        tags = {t["key"]: t["value"] for t in made[0]["tags"]}
        assert tags[OWNER_UID_TAG] == cr["metadata"]["uid"]
        assert "Adopted" in {e["reason"] for e in stack.cluster.events(ns, name)}
    creates = kit.calls_of(stack, "create", since)
    conflicts = [c for c in creates if c["status"] == 400]
    assert len(conflicts) == 5, [(c["status"], c["error_code"]) for c in creates]
    evidence(f"{len(creates)} create calls: 5 held and cut by the kill, {len(conflicts)} answered DMS.00400060")
    evidence("5 CRs, 5 instances, all adopted and Ready")
