"""The cloud misbehaves; every CR says why while it lasts, and ends in the right state afterwards.

Each case: CRs Ready, a fault switched on in the simulator, an action that needs the faulty call
(create, delete, or just observing), the reason checked in the CRs' conditions while the fault is
on, the fault switched off, and then the end state: CRs Ready, or gone with their instances gone,
nothing leaked, nothing released before the cloud deleted it. Client-side retries stay on their
defaults (4 retries); only the request timeout is short, for the timeout cases.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.support import Recorder, Stack, condition, create_many, create_ready, wait_all_ready, wait_for
from instance_spec import SPEC

from . import kit
from .conftest import Evidence, StackFactory

FAULTY = {"DMS_REQUEST_TIMEOUT_SECONDS": "2"}


@pytest.fixture(scope="module")
def stack(stacks: StackFactory) -> Stack:
    return stacks(settings=FAULTY)


@pytest.fixture(autouse=True)
def no_fault_outlives_its_test(stack: Stack) -> Iterator[None]:
    """Tests clear their faults as part of the case; this also does when one fails half-way."""
    yield
    stack.sim.clear_faults()


def ready_reason_of(stack: Stack, ns: str, name: str) -> tuple[str, str]:
    ready = condition(stack.cluster.get(ns, name), "Ready") or {}
    return str(ready.get("reason", "")), str(ready.get("message", ""))


def teardown(stack: Stack, recorder: Recorder, ns: str, ids: dict[str, str], since: int) -> None:
    stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
    stack.cluster.wait_gone(ns, ids, timeout=120)
    kit.assert_clean_teardown(stack, recorder, ns, ids)


def one_instance_each(stack: Stack, cloud_names: list[str]) -> None:
    for name in cloud_names:
        made = [i for i in stack.sim.instances() if i["name"] == name]
        assert len(made) == 1, f"{name}: {len(made)} instances"


def created_through_fault(
    stack: Stack, *, faults: dict[str, Any], reason: str, names: dict[str, str], adopted: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    """CRs ``{name: cloud name}`` created while ``faults`` are on say ``reason``; when they stop, each is
    Ready with exactly one instance (adopted, if asked), and then deleted cleanly.

    Returns the create calls the cloud served and every Ready message the CRs carried.
    """
    ns = stack.namespace()
    since = kit.last_seq(stack)
    with Recorder(stack.cluster, ns) as recorder:
        stack.sim.faults(**faults)
        for name, cloud_name in names.items():
            stack.cluster.create(ns, name, {**SPEC, "name": cloud_name})
        kit.wait_reason(recorder, {reason}, timeout=30)
        time.sleep(6)
        stack.sim.clear_faults()
        ids = wait_all_ready(stack, ns, len(names), timeout=60)
        one_instance_each(stack, list(names.values()))
        if adopted:
            for name in names:
                assert "Adopted" in {e["reason"] for e in stack.cluster.events(ns, name)}, name
        creates = kit.calls_of(stack, "create", since)
        messages = kit.messages_seen(recorder)
        teardown(stack, recorder, ns, ids, since)
    return creates, messages


def observed_failing(
    stack: Stack, evidence: Evidence, *, faults: dict[str, Any], reason: str, detail: str, crs: int = 3
) -> None:
    """Listing fails: Ready CRs say why after two poll intervals, and recover when it stops."""
    ns = stack.namespace()
    ids = create_ready(stack, ns, crs)
    since = kit.last_seq(stack)
    with Recorder(stack.cluster, ns) as recorder:
        stack.sim.faults(**faults)
        seen = kit.wait_reason(recorder, {reason}, timeout=90)
        # The message names the failed read: the shared list's error, or, once the last snapshot is too old
        # to trust (two intervals, whatever the reason), the show a CR then asks instead.
        message = next(m for m in kit.messages_seen(recorder) if detail in m)
        stack.sim.clear_faults()
        # Ready stayed True throughout (the instances are fine, only unobservable); the reason heals.
        wait_for(
            lambda: all(ready_reason_of(stack, ns, n)[0] == "Available" for n in ids),
            timeout=60,
            what="every CR Available again",
        )
        assert stack.operator.process.is_running() and stack.operator.restarts == 0, "the operator never crashed"
        teardown(stack, recorder, ns, ids, since)
    evidence(f"while it lasted: Ready reason {seen}, message {message[:140]!r}")
    evidence(f"after: {crs} CRs Available again, then deleted cleanly; operator never restarted")


# ---- throttling ---------------------------------------------------------------------------------

LIMIT = 4.0
STORM_CRS = 12


@pytest.mark.case(
    "429-storm",
    area="Cloud faults",
    injected=f"the cloud throttles the account at {LIMIT:g} requests/s (429 APIGW.0308 with Retry-After) "
    f"while {STORM_CRS} CRs are created and then deleted; the operator is configured for 20 requests/s",
    checked="every CR Ready, then gone with its instance; some CR showed reason Throttled while throttled; "
    "after the first 10 s the operator's request rate (429s included) stays under the limit; 429s are a "
    "small share of all calls; at most 2 requests arrive between 0.2 s and 0.9 s after a 429 "
    "(Retry-After honoured by every caller, not only the one refused)",
)
@pytest.mark.timeout(420)
def test_a_429_storm_slows_the_operator_below_the_limit(stacks: StackFactory, evidence: Evidence) -> None:
    throttled = stacks(
        settings={**FAULTY, "DMS_RATE_LIMIT_RPS": "20", "DMS_RATE_LIMIT_BURST": "20"},
        simulator_args=["--rate-limit-rps", f"{LIMIT:g}", "--rate-limit-burst", f"{LIMIT:g}"],
    )
    ns = throttled.namespace()
    since = kit.last_seq(throttled)
    began = time.time()
    with Recorder(throttled.cluster, ns) as recorder:
        create_many(throttled, ns, STORM_CRS)
        ids = wait_all_ready(throttled, ns, STORM_CRS, timeout=240)
        throttled.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        throttled.cluster.wait_gone(ns, ids, timeout=240)
        ended = time.time()
        kit.assert_clean_teardown(throttled, recorder, ns, ids)
        reasons = kit.reasons_seen(recorder)
    calls = [c for c in throttled.sim.calls(since) if c["time"] >= began]
    refused = [c for c in calls if c["status"] == 429]
    assert refused, "the storm never happened: no 429 at all"
    assert "Throttled" in reasons, f"no CR said Throttled; reasons seen: {sorted(reasons)}"

    settled = [c for c in calls if began + 10.0 <= c["time"] <= ended]  # the calls of the window measured
    settled_rate = len(settled) / max(1.0, ended - (began + 10.0))
    assert settled_rate < LIMIT, f"{settled_rate:.2f} requests/s after the first 10 s"
    share = len(refused) / len(calls)
    assert share < 0.25, f"{len(refused)} of {len(calls)} calls were refused"
    # A caller that ignored Retry-After would send again at once; calls already on their way when
    # the 429 came back arrive within milliseconds. Allow two stragglers of a loaded machine.
    ignored = {
        c["seq"] for r in refused for c in calls if r["time"] + 0.2 < c["time"] < r["time"] + 0.9 and c["status"] != 429
    }
    assert len(ignored) <= 2, f"{len(ignored)} requests arrived inside a Retry-After pause"
    evidence(f"{len(calls)} calls in {ended - began:.0f} s, {len(refused)} answered 429 ({share:.0%})")
    evidence(f"after the first 10 s: {settled_rate:.2f} requests/s against a limit of {LIMIT:g}/s")
    evidence(f"{len(ignored)} requests inside a Retry-After pause; CRs said Throttled while it lasted")


# ---- 5xx bursts ---------------------------------------------------------------------------------


@pytest.mark.case(
    "5xx-on-create",
    area="Cloud faults",
    injected="every create answered 503 for ~8 s while 2 new CRs are created",
    checked="both CRs show reason CloudServerError with the 503 while it lasts, then become Ready with "
    "exactly one instance each (a 5xx create is never retried blindly by the client)",
)
def test_5xx_burst_on_create(stack: Stack, evidence: Evidence) -> None:
    creates, messages = created_through_fault(
        stack,
        faults={"error_rate": 1.0, "error_status": 503, "error_operations": ["create"]},
        reason="CloudServerError",
        names={"c-0": "fault-503-c0", "c-1": "fault-503-c1"},
    )
    refused = len([c for c in creates if c["status"] == 503])
    message = next(m for m in messages if "HTTP 503" in m)
    evidence(f"{refused} creates answered 503; Ready message {message[:120]!r}")
    evidence("then 2 CRs Ready, 1 instance each")


@pytest.mark.case(
    "5xx-on-batch-delete",
    area="Cloud faults",
    injected="every batch delete answered 500 for ~8 s while 3 CRs are deleted",
    checked="the CRs keep their finalizer and show reason DeleteFailed naming the HTTP 500 while it "
    "lasts, their instances untouched; then all gone, instances deleted, no early release",
)
def test_5xx_burst_on_batch_delete(stack: Stack, evidence: Evidence) -> None:
    ns = stack.namespace()
    ids = create_ready(stack, ns, 3)
    since = kit.last_seq(stack)
    with Recorder(stack.cluster, ns) as recorder:
        stack.sim.faults(error_rate=1.0, error_status=500, error_operations=["batch_action"])
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        kit.wait_reason(recorder, {"DeleteFailed"}, timeout=60)
        time.sleep(4)
        assert len(stack.cluster.list(ns)) == 3, "no CR may go while its deletion fails"
        assert all((stack.sim_instance(i) or {}).get("status") == "RUNNING" for i in ids.values())
        message = next(m for m in kit.messages_seen(recorder) if "HTTP 500" in m)
        attempts = len(stack.batch_calls(since))
        stack.sim.clear_faults()
        stack.cluster.wait_gone(ns, ids, timeout=120)
        kit.assert_clean_teardown(stack, recorder, ns, ids)
    evidence(f"{attempts} batch calls answered 500 (client retries and backoff); message {message[:120]!r}")
    evidence("then 3 CRs gone, 3 instances deleted, 0 early releases")


@pytest.mark.case(
    "5xx-on-list",
    area="Cloud faults",
    injected="every list call answered 500 (the shared observer's paged walk) until the CRs say so",
    checked="Ready CRs show reason CloudServerError naming the 500 once the last good snapshot is two "
    "poll intervals old; they are Available again when it stops; the operator never crashed",
)
def test_5xx_burst_on_list(stack: Stack, evidence: Evidence) -> None:
    observed_failing(
        stack,
        evidence,
        faults={"error_rate": 1.0, "error_status": 500, "error_operations": ["list"]},
        reason="CloudServerError",
        detail="HTTP 500",
    )


# ---- dropped connections ------------------------------------------------------------------------


@pytest.mark.case(
    "drop-before-on-reads",
    area="Cloud faults",
    injected="every list and show connection closed without an answer (nothing done) until the CRs say so",
    checked="Ready CRs show reason CloudUnreachable; Available again afterwards; the operator never crashed",
)
def test_dropped_connections_on_reads(stack: Stack, evidence: Evidence) -> None:
    observed_failing(
        stack,
        evidence,
        faults={"drop_rate": 1.0, "drop_operations": ["list", "show"]},
        reason="CloudUnreachable",
        detail="RemoteProtocolError",
    )


@pytest.mark.case(
    "drop-after-create",
    area="Cloud faults",
    injected="every create done by the cloud but its connection closed before the answer, for ~8 s",
    checked="the CR shows reason CloudUnreachable while it lasts; afterwards exactly one instance, adopted "
    "(the retried create meets DMS.00400060 and finds its own instance by name), Ready",
)
def test_dropped_connection_after_the_cloud_created(stack: Stack, evidence: Evidence) -> None:
    creates, _ = created_through_fault(
        stack,
        faults={"drop_rate": 1.0, "drop_phase": "after", "drop_operations": ["create"]},
        reason="CloudUnreachable",
        names={"dropped": "fault-drop-after"},
        adopted=True,
    )
    evidence(f"{len(creates)} create calls ({len([c for c in creates if c['fault'] == 'drop'])} dropped); 1 instance")


@pytest.mark.case(
    "drop-after-batch-delete",
    area="Cloud faults",
    injected="every batch delete done by the cloud but its connection closed before the answer, for ~8 s",
    checked="the CRs show reason DeleteFailed while no answer arrives; each is released only after "
    "observation shows its instance gone (no early release); nothing left",
)
def test_dropped_connection_after_the_cloud_deleted(stack: Stack, evidence: Evidence) -> None:
    ns = stack.namespace()
    ids = create_ready(stack, ns, 3)
    since = kit.last_seq(stack)
    with Recorder(stack.cluster, ns) as recorder:
        stack.sim.faults(drop_rate=1.0, drop_phase="after", drop_operations=["batch_action"])
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        seen = kit.wait_reason(recorder, {"DeleteFailed"}, timeout=60)
        time.sleep(4)
        dropped = len(stack.batch_calls(since))
        stack.sim.clear_faults()
        stack.cluster.wait_gone(ns, ids, timeout=120)
        kit.assert_clean_teardown(stack, recorder, ns, ids)
    evidence(f"{dropped} batch calls done but unanswered; Ready reason {seen} meanwhile; 0 early releases")


# ---- timeouts -----------------------------------------------------------------------------------


@pytest.mark.case(
    "timeout-on-list",
    area="Cloud faults",
    injected="every list call answered after 4 s, the request timeout being 2 s, until the CRs say so",
    checked="Ready CRs show reason CloudUnreachable naming the ReadTimeout; Available again afterwards",
)
def test_timeouts_on_list(stack: Stack, evidence: Evidence) -> None:
    observed_failing(
        stack,
        evidence,
        faults={"latency_ms": 4000, "latency_operations": ["list"]},
        reason="CloudUnreachable",
        detail="Timeout",
    )


@pytest.mark.case(
    "timeout-on-create",
    area="Cloud faults",
    injected="every create answered after 3 s (request timeout 2 s) for ~8 s; the cloud still creates",
    checked="the CR shows reason CloudUnreachable while it lasts; afterwards exactly one instance, Ready",
)
def test_timeouts_on_create(stack: Stack, evidence: Evidence) -> None:
    creates, _ = created_through_fault(
        stack,
        faults={"latency_ms": 3000, "latency_operations": ["create"]},
        reason="CloudUnreachable",
        names={"slow": "fault-timeout-create"},
    )
    evidence(
        f"{len(creates)} create calls ({len([c for c in creates if c['status'] is None or c['fault']])} timed "
        "out on our side), 1 instance, Ready"
    )


# ---- malformed answers --------------------------------------------------------------------------


@pytest.mark.case(
    "malformed-list",
    area="Cloud faults",
    injected="every list answered 200 with JSON cut off mid-string until the CRs say so",
    checked="Ready CRs show reason MalformedResponse; no snapshot is built from a half-read page; "
    "Available again afterwards; the operator never crashed",
)
def test_malformed_list_answers(stack: Stack, evidence: Evidence) -> None:
    observed_failing(
        stack,
        evidence,
        faults={"malformed_rate": 1.0, "malformed_operations": ["list"]},
        reason="MalformedResponse",
        detail="unreadable response",
    )


@pytest.mark.case(
    "malformed-create",
    area="Cloud faults",
    injected="every create done by the cloud but answered 200 with cut-off JSON, for ~8 s",
    checked="the CR shows reason MalformedResponse while it lasts; afterwards exactly one instance, Ready",
)
def test_malformed_create_answers(stack: Stack, evidence: Evidence) -> None:
    created_through_fault(
        stack,
        faults={"malformed_rate": 1.0, "malformed_operations": ["create"]},
        reason="MalformedResponse",
        names={"garbled": "fault-malformed-create"},
        adopted=True,
    )
    evidence("1 instance, adopted after the garbled answers; Ready")


@pytest.mark.case(
    "malformed-batch-delete",
    area="Cloud faults",
    injected="every batch delete done by the cloud but answered 200 with cut-off JSON, for ~8 s",
    checked="the CRs show reason DeleteFailed naming the unreadable answer; released only once their "
    "instances are observed gone; nothing left, no early release",
)
def test_malformed_batch_delete_answers(stack: Stack, evidence: Evidence) -> None:
    ns = stack.namespace()
    ids = create_ready(stack, ns, 3)
    with Recorder(stack.cluster, ns) as recorder:
        stack.sim.faults(malformed_rate=1.0, malformed_operations=["batch_action"])
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        kit.wait_reason(recorder, {"DeleteFailed"}, timeout=60)
        message = next(m for m in kit.messages_seen(recorder) if "unreadable" in m)
        time.sleep(3)
        stack.sim.clear_faults()
        stack.cluster.wait_gone(ns, ids, timeout=120)
        kit.assert_clean_teardown(stack, recorder, ns, ids)
    evidence(f"message while it lasted {message[:120]!r}; then 3 gone, 0 early releases")


# ---- per-instance failures and a smaller batch limit ------------------------------------------


@pytest.mark.case(
    "partial-failed-batch",
    area="Cloud faults",
    injected="2 of 6 instances answered 'failed' in every batch result for ~15 s",
    checked="the 4 others go; the 2 keep their finalizer with status.deletion.result Failed and reason "
    "DeleteFailed; their retries back off (counted); once cleared all 6 are gone, no early release",
)
def test_partial_failed_batch_results(stack: Stack, evidence: Evidence) -> None:
    ns = stack.namespace()
    ids = create_ready(stack, ns, 6)
    failing = sorted(ids.values())[:2]
    failing_names = [n for n, i in ids.items() if i in failing]
    since = kit.last_seq(stack)
    with Recorder(stack.cluster, ns) as recorder:
        stack.sim.faults(failed_ids=failing)
        began = time.monotonic()
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        stack.cluster.wait_gone(ns, [n for n in ids if n not in failing_names], timeout=60)

        def stuck() -> bool:
            for name in failing_names:
                cr = stack.cluster.get(ns, name) or {}
                if (cr.get("status") or {}).get("deletion", {}).get("result") != "Failed":
                    return False
                if ready_reason_of(stack, ns, name)[0] != "DeleteFailed":
                    return False
            return True

        wait_for(stuck, timeout=30, what="the failing CRs to show Failed / DeleteFailed")
        time.sleep(max(0.0, 15 - (time.monotonic() - began)))
        window = time.monotonic() - began
        retries = [c for c in stack.batch_calls(since) if set(c["instance_ids"]) & set(failing)]
        # Exponential backoff (2 s, 4 s, 8 s, ...) for each of the two: a few calls, not one per second.
        assert len(retries) <= 2 * (math.log2(window) + 2), f"{len(retries)} batch calls in {window:.0f} s"
        stack.sim.clear_faults()
        stack.cluster.wait_gone(ns, ids, timeout=120)
        kit.assert_clean_teardown(stack, recorder, ns, ids)
    evidence(f"4 released at once; the 2 failing ones retried in {len(retries)} batch calls over {window:.0f} s")
    evidence("then all 6 gone, 0 early releases")


@pytest.mark.case(
    "batch-limit-below-ours",
    area="Cloud faults",
    injected="the cloud refuses batch calls of more than 4 ids (400 naming the limit); ours is 50; 14 CRs deleted",
    checked="the operator splits, learns the limit and sends at most 4 ids per call from then on; all 14 "
    "gone with their instances; refused calls counted; each CR's status.deletion names its own batch",
)
def test_a_batch_size_limit_smaller_than_ours(stack: Stack, evidence: Evidence) -> None:
    ns = stack.namespace()
    ids = create_ready(stack, ns, 14)
    since = kit.last_seq(stack)
    stack.sim.config(batch_max_size=4)
    try:
        with Recorder(stack.cluster, ns) as recorder:
            stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
            stack.cluster.wait_gone(ns, ids, timeout=120)
            kit.assert_clean_teardown(stack, recorder, ns, ids)
            sizes = set()
            for name in ids:
                deletion = next(
                    (
                        o["status"]["deletion"]
                        for _, k, o in recorder.history(name)
                        if (o.get("status") or {}).get("deletion")
                    ),
                    None,
                )
                assert deletion is not None, name
                sizes.add(deletion["batchSize"])
    finally:
        stack.sim.config(batch_max_size=None)
    batches = stack.batch_calls(since)
    refused = [c for c in batches if c["status"] == 400]
    accepted = [c for c in batches if c["status"] == 200]
    assert refused, "the limit was never hit"
    assert all(len(c["instance_ids"]) <= 4 for c in accepted)
    assert len(refused) <= 4, [len(c["instance_ids"]) for c in refused]
    assert max(sizes) <= 4
    assert "sending at most" in stack.operator.log()
    evidence(
        f"{len(refused)} calls refused (sizes {[len(c['instance_ids']) for c in refused]}), "
        f"{len(accepted)} accepted (sizes {sorted(len(c['instance_ids']) for c in accepted)})"
    )
