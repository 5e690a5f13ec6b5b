"""The benchmark's moving parts: the real stack as processes, and what is measured on it.

Everything runs as in production, only smaller: a real kube-apiserver (kube_testenv), the simulated
cloud as its own process (dms-simulator, with per-call latency and, when asked, a per-key rate
limit), and the operator as its own process (rocketmq-operator run). Nothing is imported from the
operator or the simulator: the measured thing is what ships.
"""

from __future__ import annotations

import os
import re
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from devstack import OperatorProcess, SimulatorProcess
from devstack.__main__ import install_crd
from kube_testenv import ControlPlane

GROUP, VERSION, PLURAL = "dms.rocketmq-operator.io", "v1alpha1", "rocketmqinstances"
TOPICS = "rocketmqtopics"
CLUSTER_ID = "bench-cluster"
SPEC: dict[str, Any] = {
    "engineVersion": "5.x",
    "productId": "rocketmq.b2.large.4",
    "storageSpecCode": "dms.physical.storage.high.v2",
    "storageSpace": 300,
    "brokerNum": 1,
    "vpcId": "vpc-bench",
    "subnetId": "subnet-bench",
    "securityGroupId": "sg-bench",
    "availableZones": ["az-1"],
}
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


@dataclass
class ProcessUsage:
    peak_rss_mib: float
    cpu_seconds: float


def process_usage(pid: int) -> ProcessUsage:
    """Peak resident memory (VmHWM) and CPU time of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    hwm_kib = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return ProcessUsage(peak_rss_mib=hwm_kib / 1024, cpu_seconds=cpu)


class RssSampler:
    """The resident memory (VmRSS) of a process, sampled every ``interval`` seconds in a thread:
    when a peak happened, which ``process_usage``'s high-water mark cannot say."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (epoch seconds, MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.samples

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return  # the process ended
            found = re.search(r"VmRSS:\s+(\d+) kB", status)
            if found:
                self.samples.append((time.time(), int(found.group(1)) / 1024))
            self._stop.wait(self.interval)


def apiserver_writes(control_plane: ControlPlane) -> Counter[tuple[str, str, str]]:
    """apiserver_request_total for write verbs, by (resource, subresource, verb)."""
    text = control_plane.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    counts: Counter[tuple[str, str, str]] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if labels.get("verb") not in WRITE_VERBS:
            continue
        value = float(line.rsplit(" ", 1)[1])
        counts[(labels.get("resource", ""), labels.get("subresource", ""), labels["verb"])] += int(value)
    return counts


def apiserver_patch_latency(control_plane: ControlPlane) -> dict[str, tuple[float, int]]:
    """apiserver_request_duration_seconds (sum, count) of RocketMQInstance PATCHes, by subresource."""
    text = control_plane.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    totals: dict[str, tuple[float, int]] = {}
    for line in text.splitlines():
        if not line.startswith(
            ("apiserver_request_duration_seconds_sum{", "apiserver_request_duration_seconds_count{")
        ):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if labels.get("verb") != "PATCH" or labels.get("resource") != "rocketmqinstances":
            continue
        key = labels.get("subresource") or "object"
        seconds, count = totals.get(key, (0.0, 0))
        value = float(line.rsplit(" ", 1)[1])
        if line.startswith("apiserver_request_duration_seconds_sum{"):
            totals[key] = (seconds + value, count)
        else:
            totals[key] = (seconds, count + int(value))
    return totals


def cpu_seconds(processes: dict[str, int]) -> dict[str, float]:
    """CPU time so far of each named live process (pid), from /proc."""
    return {name: process_usage(pid).cpu_seconds for name, pid in processes.items() if pid}


class Watcher:
    """Every watch event of RocketMQInstances (or another ``plural``) in one namespace, with its arrival time."""

    def __init__(self, api: client.CustomObjectsApi, namespace: str, plural: str = PLURAL) -> None:
        self.api = api
        self.namespace = namespace
        self.plural = plural
        self.deleted_at: dict[str, float] = {}
        self.deletion_timestamp: dict[str, str] = {}
        self.requested_at: dict[str, float] = {}
        """When the watch first showed the CR with a deletionTimestamp (sub-second, unlike the field)."""
        self._stop = threading.Event()
        self._watch = watch.Watch()  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        resource_version: str | None = None
        while not self._stop.is_set():
            kwargs: dict[str, Any] = {"timeout_seconds": 30, "allow_watch_bookmarks": True}
            if resource_version:
                kwargs["resource_version"] = resource_version
            try:
                for event in self._watch.stream(  # type: ignore[no-untyped-call]
                    self.api.list_namespaced_custom_object, GROUP, VERSION, self.namespace, self.plural, **kwargs
                ):
                    obj = event["object"]
                    meta = obj.get("metadata", {})
                    resource_version = meta.get("resourceVersion") or resource_version
                    name = meta.get("name")
                    if event["type"] == "DELETED":
                        self.deleted_at.setdefault(name, time.time())
                    if meta.get("deletionTimestamp"):
                        self.deletion_timestamp.setdefault(name, meta["deletionTimestamp"])
                        self.requested_at.setdefault(name, time.time())
                    if self._stop.is_set():
                        return
            except Exception:  # resumed from the last resourceVersion
                time.sleep(0.2)

    def start(self) -> Watcher:
        self._thread.start()
        time.sleep(0.5)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._watch.stop()  # type: ignore[no-untyped-call]
        self._thread.join(timeout=35)


class ChildDeletionPoller:
    """What the simulator alone knows about the topics of one instance while they are deleted.

    Polls the admin view (``/_sim/instances/{id}/children``, not in the call log) and keeps, per
    topic, the ``deleting.due`` of its first accepted batch deletion: the moment the simulator
    removes it. A CR released before that moment was released early.
    """

    def __init__(self, stack: Stack, instance_id: str, *, interval: float = 0.2) -> None:
        self.stack = stack
        self.instance_id = instance_id
        self.interval = interval
        self.due: dict[str, float] = {}
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                view = self.stack.sim.admin.children(self.instance_id)
            except Exception:  # a busy simulator: ask again
                time.sleep(self.interval)
                continue
            self.polls += 1
            for topic in view["topics"]:
                deleting = topic.get("deleting")
                if deleting and not deleting.get("fails"):
                    self.due.setdefault(topic["name"], float(deleting["due"]))
            self._stop.wait(self.interval)

    def start(self) -> ChildDeletionPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=35)


@dataclass
class Stack:
    control_plane: ControlPlane
    api: client.CustomObjectsApi
    core: client.CoreV1Api
    logs: Path
    simulator: SimulatorProcess | None = None
    operators: list[OperatorProcess] = field(default_factory=list)

    @classmethod
    def start(cls, logs: Path, *, apiserver_args: Sequence[str] = ()) -> Stack:
        logs.mkdir(parents=True, exist_ok=True)
        control_plane = ControlPlane(
            log_dir=logs / "controlplane", use_existing=False, apiserver_args=apiserver_args
        ).start()
        install_crd(control_plane)
        api_client = control_plane.api_client()
        stack = cls(control_plane, client.CustomObjectsApi(api_client), client.CoreV1Api(api_client), logs)
        stack.simulator = SimulatorProcess(
            log_path=logs / "dms-simulator.log",
            extra_args=["--create-seconds", "1", "--delete-seconds", "1", "--quota", "1000000"],
        )
        stack.simulator.start()
        return stack

    @property
    def sim(self) -> SimulatorProcess:
        assert self.simulator is not None
        return self.simulator

    def operator(self, name: str, settings: dict[str, str]) -> OperatorProcess:
        merged = {
            **self.sim.operator_env(),
            "DMS_CLUSTER_ID": CLUSTER_ID,
            **settings,
        }
        process = OperatorProcess(
            kubeconfig=self.control_plane.kubeconfig_path,
            settings=merged,
            log_path=self.logs / f"operator-{name}.log",
            verbose=False,
        )
        process.start(timeout=120)
        self.operators.append(process)
        return process

    def namespace(self, name: str) -> str:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        return name

    def create_crs(self, namespace: str, count: int, *, force_delete: bool = False) -> list[str]:
        names = [f"mq-{i:05d}" for i in range(count)]
        for name in names:
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "RocketMQInstance",
                "metadata": {"name": name},
                "spec": {**SPEC, "forceDelete": force_delete},
            }
            self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        return names

    def create_topics(self, namespace: str, instance: str, count: int) -> list[str]:
        """``count`` RocketMQTopics of the instance CR ``instance``, named ``topic-00000`` on."""
        names = [f"topic-{i:05d}" for i in range(count)]
        for name in names:
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "RocketMQTopic",
                "metadata": {"name": name},
                "spec": {"instanceRef": {"name": instance}, "queueNum": 3},
            }
            self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, TOPICS, body)
        return names

    def items(self, namespace: str, plural: str = PLURAL) -> list[dict[str, Any]]:
        # A loaded API server answers a large list with 504 now and then: ask again, a few times.
        for attempt in range(5):
            try:
                listed: Any = self.api.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, _request_timeout=120
                )
                result: list[dict[str, Any]] = listed["items"]
                return result
            except client.exceptions.ApiException as exc:
                if exc.status is None or exc.status < 500 or attempt == 4:
                    raise
                time.sleep(2.0 * (attempt + 1))
        raise AssertionError("unreachable")

    def wait_ready(self, namespace: str, count: int, *, timeout: float, plural: str = PLURAL) -> float:
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline:
            ready = sum(1 for item in self.items(namespace, plural) if _ready(item))
            if ready >= count:
                return time.monotonic() - start
            time.sleep(2.0 if count <= 1000 else 10.0)  # each look lists every CR
        raise TimeoutError(f"{namespace}: not all {count} CRs Ready within {timeout}s")

    def delete_all(self, namespace: str, kind: str = "rmqi") -> None:
        """As ``kubectl delete rmqi --all`` (or ``rmqt``) would: one request per CR, all at once."""
        self.control_plane.kubectl("delete", kind, "--all", "-n", namespace, "--wait=false", timeout=600)

    def wait_empty(self, namespace: str, *, timeout: float, plural: str = PLURAL) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = len(self.items(namespace, plural))
            if not left:
                return
            time.sleep(1.0 if left <= 1000 else 5.0)  # (the watcher times the releases, not this)
        raise TimeoutError(f"{namespace}: CRs still present after {timeout}s")

    def calls_since(self, seq: int) -> list[dict[str, Any]]:
        return self.sim.admin.calls(seq)

    def last_seq(self) -> int:
        calls = self.sim.admin.calls(0)
        return int(calls[-1]["seq"]) if calls else 0

    def stop(self) -> None:
        for operator in self.operators:
            operator.stop()
        if self.simulator is not None:
            self.simulator.stop()
        self.control_plane.stop()


def _ready(item: dict[str, Any]) -> bool:
    for condition in (item.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def calls_by_operation(calls: Iterable[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(c["operation"] for c in calls))


def epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
