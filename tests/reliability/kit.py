"""Checks every fault case ends with: CRs in the right state, nothing leaked, nothing released early.

The cloud side is read from the simulator (its instances and its call log), the Kubernetes side from
the API server and from a watch that records when each CR disappeared.
"""

from __future__ import annotations

from typing import Any

from e2e.support import Recorder, Stack, condition, wait_for
from rocketmq_operator.core.mapping import OWNER_NAMESPACE_TAG


def last_seq(stack: Stack) -> int:
    calls = stack.sim.calls()
    return int(calls[-1]["seq"]) if calls else 0


def calls_of(stack: Stack, operation: str, since: int = 0) -> list[dict[str, Any]]:
    return [c for c in stack.sim.calls(since) if c["operation"] == operation]


def instances_of_namespace(stack: Stack, namespace: str) -> list[dict[str, Any]]:
    """Instances whose owner tags name this namespace (anything the operator made for it)."""
    return [
        i
        for i in stack.sim.instances(stack.simulator.project_id)
        if {t["key"]: t["value"] for t in i.get("tags") or []}.get(OWNER_NAMESPACE_TAG) == namespace
    ]


def reasons_seen(recorder: Recorder) -> set[str]:
    """Every reason the Ready condition of a CR carried in any watch event so far."""
    seen = set()
    for _, _, obj in list(recorder.events):
        found = condition(obj, "Ready")
        if found and found.get("reason"):
            seen.add(found["reason"])
    return seen


def messages_seen(recorder: Recorder) -> list[str]:
    return [str((condition(obj, "Ready") or {}).get("message", "")) for _, _, obj in list(recorder.events)]


def wait_reason(recorder: Recorder, reasons: set[str], *, timeout: float) -> str:
    """Wait until some CR's Ready condition carries one of ``reasons``; returns the one seen."""
    found = wait_for(
        lambda: reasons_seen(recorder) & reasons,
        timeout=timeout,
        what=f"a condition with reason in {sorted(reasons)}",
        interval=0.2,
    )
    return sorted(found)[0]


def deleted_names(recorder: Recorder) -> set[str]:
    return {obj["metadata"]["name"] for _, kind, obj in list(recorder.events) if kind == "DELETED"}


def early_releases(stack: Stack, recorder: Recorder, ids: dict[str, str]) -> list[str]:
    """CRs that disappeared before the cloud had finished deleting their instance.

    The simulator records when each deletion it accepted really ended (``/_sim/deletions``: gone,
    binned, or failed and the instance back). A CR whose DELETED watch event reached us before the
    first of its instance's deletions that ended in gone or binned was released while its instance
    still existed (the list had merely stopped showing it).
    """
    record = stack.deletions(ids.values())
    early = []
    for name, instance_id in ids.items():
        gone_at = recorder.deleted_at(name)
        if gone_at is None:
            continue
        ended = [e["ended_at"] for e in record.get(instance_id, []) if e["outcome"] in ("gone", "binned")]
        if not ended or gone_at < min(ended):
            finished = min(ended, default=None)
            early.append(f"{name} ({instance_id}) gone at {gone_at:.3f}, the cloud finished at {finished}")
    return early


def assert_clean_teardown(stack: Stack, recorder: Recorder, namespace: str, ids: dict[str, str]) -> None:
    """Every CR gone, every instance deleted, no orphan left, no CR released early."""
    assert not stack.cluster.list(namespace), "CRs left"
    alive = [
        i["instance_id"] for i in stack.sim.instances(stack.simulator.project_id) if i["instance_id"] in ids.values()
    ]
    assert not alive, f"instances of deleted CRs still exist: {alive}"
    orphans = [i["instance_id"] for i in instances_of_namespace(stack, namespace)]
    assert not orphans, f"orphans (instances of this namespace without a CR): {orphans}"
    early = early_releases(stack, recorder, ids)
    assert not early, f"released before the cloud deleted the instance: {early}"
