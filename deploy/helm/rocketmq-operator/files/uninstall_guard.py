"""Pre-delete hook of the rocketmq-operator chart: refuse ``helm uninstall`` while CRs need the operator.

A RocketMQInstance, RocketMQTopic or RocketMQConsumerGroup that carries the operator's finalizer needs the
running operator to delete its cloud object and to release the finalizer. Uninstalling the operator first
strands it: its deletion (kubectl delete, a namespace teardown, a GitOps prune) then hangs for ever, and
nobody deletes its cloud object.

Exit status 0: nothing depends on the operator, Helm goes on. 1: something does (listed), or it could not
be checked; Helm stops the uninstall before deleting anything. Runs in the cluster with the operator's
ServiceAccount, or anywhere with ``KUBECONFIG`` (the tests run it that way, as the same ServiceAccount).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "dms.rocketmq-operator.io", "v1alpha1"
FINALIZER = f"{GROUP}/finalizer"
PAGE = 500

# (plural, kind): every kind the operator puts its finalizer on.
KINDS = (
    ("rocketmqinstances", "RocketMQInstance"),
    ("rocketmqtopics", "RocketMQTopic"),
    ("rocketmqconsumergroups", "RocketMQConsumerGroup"),
    ("rocketmqusers", "RocketMQUser"),
)


def _load_config() -> None:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def _list(api: Any, plural: str, namespace: str | None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE}
        if token:
            kwargs["_continue"] = token
        if namespace is None:
            page = api.list_cluster_custom_object(GROUP, VERSION, plural, **kwargs)
        else:
            page = api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, **kwargs)
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def _describe(kind: str, item: dict[str, Any]) -> str:
    meta, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    state = f"Ready={ready.get('status', '?')} ({ready.get('reason', 'no status yet')})"
    if meta.get("deletionTimestamp"):
        state = f"being deleted since {meta['deletionTimestamp']} ({ready.get('reason', '?')})"
    if kind == "RocketMQInstance":
        where = f"instance {status.get('instanceId') or 'none yet'}"
    else:
        parent = (spec.get("instanceRef") or {}).get("name", "?")
        where = f"{status.get('cloudName') or spec.get('name') or meta.get('name')} in RocketMQInstance {parent}"
    return f"  {kind} {meta.get('namespace')}/{meta.get('name')}: {where}, {state}"


def main() -> int:
    namespaces = [n.strip() for n in os.environ.get("WATCH_NAMESPACES", "").split(",") if n.strip()]
    _load_config()
    api = client.CustomObjectsApi()
    scopes: list[str | None] = list(namespaces) if namespaces else [None]
    found: list[tuple[str, str, list[dict[str, Any]]]] = []  # (plural, kind, CRs)
    for plural, kind in KINDS:
        try:
            found.append((plural, kind, [i for scope in scopes for i in _list(api, plural, scope)]))
        except ApiException as exc:
            if exc.status == 404:
                # Not served (its CRD is not installed, e.g. after an upgrade: Helm never adds CRDs
                # then): none of that kind can need the operator.
                print(f"no {kind} resources are served: none of them depends on the operator")
                continue
            print(
                f"uninstall refused: could not list {kind}s ({exc.status} {exc.reason}), so it is not "
                "known whether any still need the operator. Fix access, or skip this check with "
                "`helm uninstall --no-hooks`.",
                file=sys.stderr,
            )
            return 1
    blocking = [
        (plural, kind, [i for i in items if FINALIZER in ((i.get("metadata") or {}).get("finalizers") or [])])
        for plural, kind, items in found
    ]
    blocking = [(plural, kind, items) for plural, kind, items in blocking if items]
    if not blocking:
        counts = ", ".join(f"{len(items)} {kind}(s)" for _, kind, items in found) or "nothing"
        print(f"{counts} found, none carries {FINALIZER}: uninstall may proceed")
        return 0
    described = sorted(_describe(kind, i) for _, kind, items in blocking for i in items)
    lines = [
        "uninstall refused: "
        + ", ".join(f"{len(items)} {kind}(s)" for _, kind, items in blocking)
        + f" still need the operator (they carry {FINALIZER}):",
        *described[:50],
        *([f"  ... and {len(described) - 50} more"] if len(described) > 50 else []),
        "Without the operator their deletion would hang for ever and their cloud objects would be left behind.",
        "Delete them first and wait until they are gone, then uninstall again:",
        # Children first: their cloud objects live in their instance's, so they go while it still exists.
        *(f"  kubectl delete {plural} --all --all-namespaces --wait" for plural, _, _ in reversed(blocking)),
        "Or keep them (and their cloud objects) and uninstall anyway with `helm uninstall --no-hooks`;",
        "they then wait, unmanaged, until the operator is installed again.",
    ]
    print("\n".join(lines), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
