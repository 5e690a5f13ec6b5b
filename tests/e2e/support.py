"""Helpers for end-to-end tests: the RocketMQInstance resource through the real API server."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devstack import OperatorProcess, SimulatorAdmin, SimulatorProcess
from instance_spec import SPEC
from kube_testenv import ControlPlane

GROUP, VERSION, PLURAL = "dms.rocketmq-operator.io", "v1alpha1", "rocketmqinstances"
T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            found: dict[str, Any] = c
            return found
    return None


def is_true(obj: dict[str, Any] | None, kind: str) -> bool:
    c = condition(obj, kind)
    return c is not None and c.get("status") == "True"


class Cluster:
    """CRs, namespaces and events through the Python client; kubectl through the control plane."""

    def __init__(self, control_plane: ControlPlane, api_client: client.ApiClient) -> None:
        self.control_plane = control_plane
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return self.control_plane.kubectl(*args, input=input, check=check).stdout

    def namespace(self, prefix: str, *, annotations: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{secrets.token_hex(3)}"
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, annotations=annotations))
        self.core.create_namespace(body)
        return name

    def namespaces(self) -> set[str]:
        return {n.metadata.name for n in self.core.list_namespace().items}

    def create(
        self,
        namespace: str,
        name: str,
        spec: dict[str, Any] | None = None,
        *,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RocketMQInstance",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": SPEC if spec is None else spec,
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, field_validation="Strict"
        )
        return created

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            return found
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, namespace: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)[
            "items"
        ]
        return items

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, body
        )
        return patched

    def delete(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def wait_ready(self, namespace: str, name: str, *, timeout: float = 60.0) -> dict[str, Any]:
        return wait_for(
            lambda: obj if is_true(obj := self.get(namespace, name), "Ready") else None,
            timeout=timeout,
            what=f"{namespace}/{name} Ready",
        )

    def wait_gone(self, namespace: str, names: Iterable[str], *, timeout: float = 120.0) -> None:
        pending = set(names)

        def gone() -> bool:
            for name in list(pending):
                if self.get(namespace, name) is None:
                    pending.discard(name)
            return not pending

        wait_for(gone, timeout=timeout, what=f"CRs gone: {sorted(pending)}")

    def events(self, namespace: str, name: str | None = None) -> list[dict[str, Any]]:
        selector = f"involvedObject.name={name}" if name else None
        items = self.core.list_namespaced_event(namespace, field_selector=selector).items
        return [
            {
                "reason": e.reason,
                "message": e.message,
                "type": e.type,
                "name": e.involved_object.name,
                "source": e.source.component if e.source else None,
                "reportingComponent": e.reporting_component,
            }
            for e in items
        ]


@dataclass
class Stack:
    """A simulator and an operator serving namespaces that start with ``prefix``."""

    cluster: Cluster
    simulator: SimulatorProcess
    operator: OperatorProcess
    prefix: str
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def sim(self) -> SimulatorAdmin:
        return self.simulator.admin

    def namespace(self, *, annotations: dict[str, str] | None = None) -> str:
        return self.cluster.namespace(self.prefix, annotations=annotations)

    def sim_instance(self, instance_id: str) -> dict[str, Any] | None:
        return self.sim.instance(instance_id)

    def batch_calls(self, since: int = 0) -> list[dict[str, Any]]:
        return [c for c in self.sim.calls(since) if c.get("operation") == "batch_action"]

    def deletions(self, instance_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The simulator's record of every deletion it accepted for these instances, oldest first:
        when each really ended (``ended_at``) and how (``outcome``: gone, binned, failed)."""
        wanted = set(instance_ids)
        found: dict[str, list[dict[str, Any]]] = {}
        for entry in self.sim.deletions():
            if entry["instance_id"] in wanted:
                found.setdefault(entry["instance_id"], []).append(entry)
        return found


def create_many(stack: Stack, namespace: str, count: int, *, prefix: str = "mq") -> list[str]:
    """``count`` CRs named ``<prefix>-000``, ``<prefix>-001``, ... with the default spec."""
    names = [f"{prefix}-{i:03d}" for i in range(count)]
    for name in names:
        stack.cluster.create(namespace, name, SPEC)
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
    create_many(stack, namespace, count, prefix=prefix)
    return wait_all_ready(stack, namespace, count, timeout=timeout)


class Recorder:
    """Records every watch event of RocketMQInstances (or another ``plural`` of ours) in one namespace,
    with its arrival time."""

    def __init__(self, cluster: Cluster, namespace: str, plural: str = PLURAL) -> None:
        import threading

        from kubernetes import watch

        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self._watch = watch.Watch()
        self._cluster = cluster
        self._namespace = namespace
        self._plural = plural
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"recorder-{namespace}")

    def _run(self) -> None:
        # Resume from the last resourceVersion: a restarted watch without it starts over with ADDED
        # events and loses whatever happened in between (a DELETED among them).
        resource_version: str | None = None
        while not self._stop.is_set():
            try:
                kwargs: dict[str, Any] = {"timeout_seconds": 30, "allow_watch_bookmarks": True}
                if resource_version:
                    kwargs["resource_version"] = resource_version
                for event in self._watch.stream(
                    self._cluster.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self._namespace,
                    self._plural,
                    **kwargs,
                ):
                    obj = event["object"]
                    resource_version = obj.get("metadata", {}).get("resourceVersion") or resource_version
                    if event["type"] != "BOOKMARK":
                        self.events.append((time.time(), event["type"], obj))
                    if self._stop.is_set():
                        return
            except Exception:  # a dropped watch is resumed from the last resourceVersion
                time.sleep(0.1)

    def __enter__(self) -> Recorder:
        self._thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._watch.stop()
        self._thread.join(timeout=10)

    def history(self, name: str) -> list[tuple[float, str, dict[str, Any]]]:
        return [e for e in self.events if e[2]["metadata"]["name"] == name]

    def deleted_at(self, name: str) -> float | None:
        return next((t for t, kind, _ in self.history(name) if kind == "DELETED"), None)
