"""Pre-delete hook of the rocketmq-operator chart: refuse ``helm uninstall`` while CRs need the operator.

A RocketMQInstance that carries the operator's finalizer needs the running operator to delete its cloud
instance and to release the finalizer. Uninstalling the operator first strands it: its deletion (kubectl
delete, a namespace teardown, a GitOps prune) then hangs for ever, and nobody deletes its cloud instance.

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

GROUP, VERSION, PLURAL = "dms.rocketmq-operator.io", "v1alpha1", "rocketmqinstances"
FINALIZER = f"{GROUP}/finalizer"
PAGE = 500


def _load_config() -> None:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def _list(api: Any, namespace: str | None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE}
        if token:
            kwargs["_continue"] = token
        if namespace is None:
            page = api.list_cluster_custom_object(GROUP, VERSION, PLURAL, **kwargs)
        else:
            page = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, **kwargs)
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def _describe(item: dict[str, Any]) -> str:
    meta, status = item.get("metadata") or {}, item.get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    state = f"Ready={ready.get('status', '?')} ({ready.get('reason', 'no status yet')})"
    if meta.get("deletionTimestamp"):
        state = f"being deleted since {meta['deletionTimestamp']} ({ready.get('reason', '?')})"
    instance = status.get("instanceId") or "none yet"
    return f"  {meta.get('namespace')}/{meta.get('name')}: instance {instance}, {state}"


def main() -> int:
    namespaces = [n.strip() for n in os.environ.get("WATCH_NAMESPACES", "").split(",") if n.strip()]
    _load_config()
    api = client.CustomObjectsApi()
    scopes: list[str | None] = list(namespaces) if namespaces else [None]
    try:
        items = [i for scope in scopes for i in _list(api, scope)]
    except ApiException as exc:
        if exc.status == 404:
            print("no RocketMQInstance resources are served: nothing depends on the operator")
            return 0
        print(
            f"uninstall refused: could not list RocketMQInstances ({exc.status} {exc.reason}), so it is not "
            "known whether any still need the operator. Fix access, or skip this check with "
            "`helm uninstall --no-hooks`.",
            file=sys.stderr,
        )
        return 1
    blocking = [i for i in items if FINALIZER in ((i.get("metadata") or {}).get("finalizers") or [])]
    if not blocking:
        print(f"{len(items)} RocketMQInstance(s) found, none carries {FINALIZER}: uninstall may proceed")
        return 0
    lines = [
        f"uninstall refused: {len(blocking)} RocketMQInstance(s) still need the operator (they carry {FINALIZER}):",
        *sorted(_describe(i) for i in blocking[:50]),
        *([f"  ... and {len(blocking) - 50} more"] if len(blocking) > 50 else []),
        "Without the operator their deletion would hang for ever and their cloud instances would be left behind.",
        "Delete them first and wait until they are gone, then uninstall again:",
        "  kubectl delete rocketmqinstances --all --all-namespaces --wait",
        "Or keep them (and their cloud instances) and uninstall anyway with `helm uninstall --no-hooks`;",
        "they then wait, unmanaged, until the operator is installed again.",
    ]
    print("\n".join(lines), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
