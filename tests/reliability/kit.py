"""Checks every fault case ends with: CRs in the right state, nothing leaked, nothing released early.

The cloud side is read from the simulator (its instances and its call log), the Kubernetes side from
the API server and from a watch that records when each CR disappeared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from e2e.support import SPEC, Recorder, Stack, condition, wait_for

OWNER_NAMESPACE_TAG = "rocketmq-operator.namespace"


def create(
    stack: Stack, namespace: str, count: int, *, prefix: str = "mq", spec: dict[str, Any] | None = None
) -> list[str]:
    names = [f"{prefix}-{i:03d}" for i in range(count)]
    for name in names:
        stack.cluster.create(namespace, name, spec or SPEC)
    return names


def wait_all_ready(stack: Stack, namespace: str, count: int, *, timeout: float = 240.0) -> dict[str, str]:
    """``{name: instance id}`` once ``count`` CRs of the namespace are Ready."""

    def ready() -> dict[str, str] | None:
        found = {
            item["metadata"]["name"]: item["status"]["instanceId"]
            for item in stack.cluster.list(namespace)
            if (c := condition(item, "Ready")) and c["status"] == "True"
        }
        return found if len(found) == count else None

    return wait_for(ready, timeout=timeout, what=f"{count} CRs Ready in {namespace}", interval=1.0)


def create_ready(
    stack: Stack, namespace: str, count: int, *, prefix: str = "mq", timeout: float = 240.0
) -> dict[str, str]:
    create(stack, namespace, count, prefix=prefix)
    return wait_all_ready(stack, namespace, count, timeout=timeout)


def patch_instance(stack: Stack, instance_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Force fields of a simulated instance (``PATCH /_sim/instances/{id}``)."""
    response = httpx.patch(f"{stack.simulator.url}/_sim/instances/{instance_id}", json=changes, timeout=30)
    response.raise_for_status()
    patched: dict[str, Any] = response.json()
    return patched


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


def reasons_seen(recorder: Recorder, names: Iterable[str] | None = None, kind: str = "Ready") -> set[str]:
    """Every reason a condition of these CRs carried in any watch event so far."""
    wanted = set(names) if names is not None else None
    seen = set()
    for _, _, obj in list(recorder.events):
        if wanted is not None and obj["metadata"]["name"] not in wanted:
            continue
        found = condition(obj, kind)
        if found and found.get("reason"):
            seen.add(found["reason"])
    return seen


def messages_seen(recorder: Recorder, kind: str = "Ready") -> list[str]:
    return [str((condition(obj, kind) or {}).get("message", "")) for _, _, obj in list(recorder.events)]


def wait_reason(recorder: Recorder, reasons: set[str], *, timeout: float, names: Iterable[str] | None = None) -> str:
    """Wait until some CR's Ready condition carries one of ``reasons``; returns the one seen."""
    found = wait_for(
        lambda: reasons_seen(recorder, names) & reasons,
        timeout=timeout,
        what=f"a condition with reason in {sorted(reasons)}",
        interval=0.2,
    )
    return sorted(found)[0]


def deleted_names(recorder: Recorder) -> set[str]:
    return {obj["metadata"]["name"] for _, kind, obj in list(recorder.events) if kind == "DELETED"}


def early_releases(stack: Stack, recorder: Recorder, ids: dict[str, str], since: int = 0) -> list[str]:
    """CRs that disappeared before the cloud can have finished deleting their instance.

    The cloud starts deleting an instance no earlier than the arrival of the first batch call that
    names it, and needs ``delete_seconds`` after that. A CR whose DELETED watch event reached us
    before that moment was released while its instance still existed.
    """
    delete_seconds = float(stack.sim.config()["delete_seconds"])
    first_batch: dict[str, float] = {}
    for call in calls_of(stack, "batch_action", since):
        for instance_id in call["instance_ids"]:
            first_batch.setdefault(instance_id, float(call["time"]))
    early = []
    for name, instance_id in ids.items():
        gone_at = recorder.deleted_at(name)
        if gone_at is None:
            continue
        started = first_batch.get(instance_id)
        if started is None or gone_at < started + delete_seconds:
            early.append(f"{name} ({instance_id}) gone at {gone_at:.3f}, delete started {started}")
    return early


def assert_clean_teardown(stack: Stack, recorder: Recorder, namespace: str, ids: dict[str, str], since: int) -> None:
    """Every CR gone, every instance deleted, no orphan left, no CR released early."""
    assert not stack.cluster.list(namespace), "CRs left"
    alive = [
        i["instance_id"] for i in stack.sim.instances(stack.simulator.project_id) if i["instance_id"] in ids.values()
    ]
    assert not alive, f"instances of deleted CRs still exist: {alive}"
    orphans = [i["instance_id"] for i in instances_of_namespace(stack, namespace)]
    assert not orphans, f"orphans (instances of this namespace without a CR): {orphans}"
    early = early_releases(stack, recorder, ids, since)
    assert not early, f"released before the cloud deleted the instance: {early}"


def sample(every: float, until: Callable[[], bool], probe: Callable[[], None], *, timeout: float) -> None:
    """Call ``probe`` every ``every`` seconds until ``until()`` (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe()
        if until():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s")
