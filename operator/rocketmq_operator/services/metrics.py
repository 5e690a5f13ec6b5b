"""Prometheus metrics of the operator, in one registry the wiring serves over HTTP.

Why one class: every service records into the same named series, tests read them back from an
isolated registry, and nothing registers into prometheus_client's global default registry at
import time (two operators in one test process must not collide).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

ACCOUNT_LABEL = "account"

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 30, 40, 50, 75, 100, 200, 500)


class Metrics:
    """The operator's metrics. Implements ``ports.protocol.CallRecorder`` for the cloud client."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.api_calls = Counter(
            "rocketmq_operator_cloud_api_calls",
            "Cloud API calls by operation and outcome (ok, or the error reason).",
            ["operation", "outcome"],
            registry=r,
        )
        self.api_call_seconds = Histogram(
            "rocketmq_operator_cloud_api_call_seconds",
            "Duration of cloud API calls.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "rocketmq_operator_delete_batch_size",
            "Instance ids per batch delete call.",
            ["trigger"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.batch_results = Counter(
            "rocketmq_operator_delete_batch_results",
            "Per-instance results of batch delete calls.",
            ["result"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "rocketmq_operator_delete_queue_depth",
            "Instance ids waiting for the next batch delete call.",
            registry=r,
        )
        self.release_seconds = Histogram(
            "rocketmq_operator_deletion_release_seconds",
            "Seconds from a CR's deletionTimestamp to the operator releasing its finalizer.",
            ["policy"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.confirmations = Counter(
            "rocketmq_operator_deletion_confirmations",
            "Accepted deletions decided, by evidence: gone (show 404), recycled (RECYCLE or the bin "
            "list), undone (the cloud brought the instance back).",
            ["evidence"],
            registry=r,
        )
        self.confirmation_looks = Histogram(
            "rocketmq_operator_deletion_confirmation_looks",
            "Looks (show or recycle-bin list answers) one accepted deletion took to decide.",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
            registry=r,
        )
        self.sweeps = Counter(
            "rocketmq_operator_sweeps",
            "Failed-instance sweeps run, by mode.",
            ["mode"],
            registry=r,
        )
        self.sweeps_skipped = Counter(
            "rocketmq_operator_sweeps_skipped",
            "Failed-instance sweeps skipped, by reason (cluster_id_unknown: no owner-tag cluster id yet, "
            "so nothing can be proven this cluster's).",
            ["reason"],
            registry=r,
        )
        self.swept_instances = Counter(
            "rocketmq_operator_swept_instances",
            "Failed instances the sweep submitted for deletion (or would have, in report mode).",
            ["mode"],
            registry=r,
        )
        self.active = Gauge(
            "rocketmq_operator_active",
            "1 while this replica works; 0 while Kopf peering pauses it (a standby: no list, look or sweep call)",
            registry=r,
        )
        self.observed_instances = Gauge(
            "rocketmq_operator_observed_instances",
            "Instances in the latest list snapshot of the account.",
            registry=r,
        )
        self.snapshots = Counter(
            "rocketmq_operator_observer_snapshots",
            "List snapshots taken, by outcome (consistent, inconsistent, error).",
            ["outcome"],
            registry=r,
        )
        self.list_repairs = Counter(
            "rocketmq_operator_observer_page_rereads",
            "List pages read again because deletions during a walk shifted the list under it.",
            registry=r,
        )
        self.tiled_walks = Counter(
            "rocketmq_operator_observer_tiled_walks",
            "List walks that read pages without overlap, the list having stood still: whole, or "
            "stopped because the list moved (the walk then starts again with overlapping pages).",
            ["outcome"],
            registry=r,
        )
        self.remembered_crs = Gauge(
            "rocketmq_operator_remembered_crs",
            "CRs this process keeps memory for (locks, retry deadlines, deletion state); a CR is "
            "forgotten once the API server reports it gone, whoever removed it.",
            registry=r,
        )
        self.reconciles = Counter(
            "rocketmq_operator_reconciles",
            "Reconcile steps, by action taken.",
            ["action"],
            registry=r,
        )

    def record(self, *, operation: str, outcome: str, seconds: float) -> None:
        self.api_calls.labels(operation=operation, outcome=outcome).inc()
        self.api_call_seconds.labels(operation=operation).observe(seconds)


class ByAccount(Collector):
    """Every account's metrics as one exposition, each series labelled with its ``account``.

    Why a collector over the accounts' own registries rather than one registry with an ``account``
    label on every metric: each account's services stay as they are (one ``Metrics`` each, tested
    alone), and an account that goes takes its series with it instead of leaving stale ones behind.
    """

    def __init__(self, accounts: Callable[[], Iterable[tuple[str, Metrics]]]) -> None:
        self._accounts = accounts

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for label, metrics in self._accounts():
            for family in metrics.registry.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                merged.samples.extend(
                    sample._replace(labels={**sample.labels, ACCOUNT_LABEL: label}) for sample in family.samples
                )
        yield from families.values()


def registry_by_account(accounts: Callable[[], Iterable[tuple[str, Metrics]]]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ByAccount(accounts))
    return registry
