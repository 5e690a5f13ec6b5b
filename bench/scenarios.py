"""The benchmark scenarios: teardown (batched and batch size 1), steady state, sweep, topic teardown."""

from __future__ import annotations

import argparse
import bisect
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .harness import (
    CLUSTER_ID,
    PLURAL,
    TOPICS,
    ChildDeletionPoller,
    RssSampler,
    Stack,
    Watcher,
    apiserver_patch_latency,
    apiserver_writes,
    calls_by_operation,
    cpu_seconds,
    epoch,
    process_usage,
    summary,
)

BASE_SETTINGS = {
    "DMS_POLL_INTERVAL_SECONDS": "10",
    "DMS_VERIFY_INTERVAL_SECONDS": "2",
    "DMS_BATCH_WINDOW_SECONDS": "1",
    "DMS_DELETE_CONFIRM_WAIT_SECONDS": "30",
    "DMS_SWEEP_INTERVAL_SECONDS": "3600",
}


def add_operator_settings(parser: argparse.ArgumentParser) -> None:
    """A script's ``--operator-setting`` (see ``override_settings``)."""
    parser.add_argument(
        "--operator-setting",
        action="append",
        default=[],
        metavar="DMS_NAME=VALUE",
        help="a setting of every operator started (repeatable), e.g. DMS_DELETE_CONFIRM_WAIT_SECONDS=10",
    )


def override_settings(pairs: list[str]) -> dict[str, str]:
    """``DMS_NAME=VALUE`` pairs (a script's ``--operator-setting``) laid over every operator's settings of
    this run, for comparing a setting's values; returns them."""
    found = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("DMS_"):
            raise SystemExit(f"--operator-setting wants DMS_NAME=VALUE, not {pair!r}")
        found[name] = value
    BASE_SETTINGS.update(found)
    return found


FORCED = "forced"
"""CRs with ``forceDelete: true``: each deletion ends in a 404, proven by show."""
BINNED = "binned"
"""CRs without it, on an account whose recycle bin is on: each ends in the bin (show says RECYCLE)."""


@dataclass
class Teardown:
    label: str
    n: int
    batch_size: int
    cloud_rate_limit_rps: float | None
    latency_ms: float
    delete_seconds: float
    deletion: str = FORCED
    seconds_to_ready: float = 0.0
    wall_seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    total_calls: int = 0
    batch_calls: int = 0
    batch_sizes: dict[str, float] = field(default_factory=dict)
    throttled_calls: int = 0
    release_after_deletion_requested: dict[str, float] = field(default_factory=dict)
    release_after_cloud_gone: dict[str, float] = field(default_factory=dict)
    """From the moment the simulator's record says the deletion ended (gone or binned)."""
    confirmation_calls: int = 0
    """Show and recycle-bin list calls: what it cost to prove the deletions finished."""
    shows_by_answer: dict[str, int] = field(default_factory=dict)
    """The teardown's show calls by when they went out (before the batch call that carried the
    instance, or after) and what they got back: which part of the operator asked (a pass's look before
    submitting, or the confirmer's looks after), and how many looks still found the instance."""
    early_releases: int = 0
    """CRs whose DELETED event came before the cloud finished (must be 0)."""
    writes_per_cr: float = 0.0
    writes_per_cr_by_kind: dict[str, float] = field(default_factory=dict)
    event_writes_per_cr: float = 0.0
    deletion_writes_per_cr: dict[str, float] = field(default_factory=dict)
    """The operator's writes from ``kubectl delete`` to the CR gone (the user's DELETE not counted)."""
    deletion_event_writes_per_cr: float = 0.0
    operator_peak_rss_mib: float = 0.0
    create_peak_rss_mib: float = 0.0
    """The operator that created the N CRs and saw them Ready."""
    operator_cpu_seconds: float = 0.0
    release_after_proof: dict[str, float] = field(default_factory=dict)
    """Forced deletions: from the operator's first show answered 404 (its proof) to the CR gone."""
    deletion_cpu_seconds: dict[str, float] = field(default_factory=dict)
    """CPU each process used from ``kubectl delete`` to the last CR gone, and that window's length:
    on a 2-core machine, what was busy while the finalizers came off."""
    deletion_patch_latency_ms: dict[str, float] = field(default_factory=dict)
    """The API server's mean latency of the CRs' PATCHes (object, status) in the same window."""
    remaining: list[tuple[float, int]] = field(default_factory=list)
    partial_batches: list[tuple[float, int, int, int]] = field(default_factory=list)
    """Each accepted batch call smaller than the batch size: seconds after ``kubectl delete`` began,
    its size, and how many CRs had been deleted (deletionTimestamp seen) and released by then: whether
    the operator was still being handed deletions, or sent a tail."""
    last_deletion_requested_seconds: float = float("nan")
    teardown_rss: list[tuple[float, float]] = field(default_factory=list)
    """The teardown operator's resident memory (MiB) from its start, every 5 s, in seconds after
    ``kubectl delete`` began (negative: while it resumed its CRs, before the deletion)."""
    teardown_rss_peak_at: float = float("nan")
    """When that operator's highest sample came, on the same clock."""
    steady_state: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _settings(batch_size: int, client_rps: float) -> dict[str, str]:
    return {
        **BASE_SETTINGS,
        "DMS_BATCH_MAX_SIZE": str(batch_size),
        "DMS_RATE_LIMIT_RPS": str(client_rps),
        "DMS_RATE_LIMIT_BURST": str(max(1, int(client_rps * 2))),
    }


def _prepare_cloud(stack: Stack, *, recycle_bin: bool = False) -> None:
    stack.sim.admin.reset()
    stack.sim.admin.clear_faults()
    stack.sim.admin.config(
        create_seconds=1, delete_seconds=1, rate_limit_rps=None, recycle_bin_enabled=recycle_bin, quota=1_000_000
    )


def steady_state(stack: Stack, namespace: str, operator_settings: dict[str, str], *, intervals: int) -> dict[str, Any]:
    """Cloud calls per poll interval with every CR Ready, for a fresh operator with these settings."""
    poll = float(operator_settings["DMS_POLL_INTERVAL_SECONDS"])
    operator = stack.operator(f"steady-{operator_settings.get('DMS_OBSERVE_STRATEGY', 'list')}", operator_settings)
    try:
        time.sleep(poll * 1.5)  # let the resume pass settle
        seq = stack.last_seq()
        time.sleep(poll * intervals)
        calls = stack.calls_since(seq)
    finally:
        operator.stop()
        stack.operators.remove(operator)
    by_op = calls_by_operation(calls)
    return {
        "strategy": operator_settings.get("DMS_OBSERVE_STRATEGY", "list"),
        "intervals": intervals,
        "poll_interval_seconds": poll,
        "calls": by_op,
        "calls_per_interval": sum(by_op.values()) / intervals,
    }


def _progress(line: str) -> None:
    print(f"bench:   {line}", file=sys.stderr, flush=True)


def teardown(
    stack: Stack,
    *,
    label: str,
    n: int,
    batch_size: int,
    cloud_rate_limit_rps: float | None,
    latency_ms: float,
    delete_seconds: float,
    deletion: str = FORCED,
    steady_intervals: int = 0,
    steady_strategies: tuple[str, ...] = ("list", "show"),
) -> Teardown:
    result = Teardown(label, n, batch_size, cloud_rate_limit_rps, latency_ms, delete_seconds, deletion)
    _prepare_cloud(stack, recycle_bin=deletion == BINNED)
    namespace = stack.namespace(f"bench-{label}-{n}".lower())
    # Creation is not what is measured: no latency or rate limit while the CRs come up.
    settings = _settings(batch_size, client_rps=200.0)
    writes_before = apiserver_writes(stack.control_plane)
    operator = stack.operator(f"{label}-{n}-create", {**settings})
    stack.create_crs(namespace, n, force_delete=deletion == FORCED)
    result.seconds_to_ready = stack.wait_ready(namespace, n, timeout=120 + n * 1.5)
    result.create_peak_rss_mib = process_usage(operator.process.pid or 0).peak_rss_mib
    operator.stop()
    stack.operators.remove(operator)
    # Said as it happens: a big run that is stopped by hand still leaves its create figures in the log.
    _progress(
        f"{n} CRs Ready in {result.seconds_to_ready:.1f}s, create operator RSS {result.create_peak_rss_mib:.0f} MiB"
    )

    if steady_intervals:
        result.steady_state = {
            strategy: steady_state(
                stack, namespace, {**settings, "DMS_OBSERVE_STRATEGY": strategy}, intervals=steady_intervals
            )
            for strategy in steady_strategies
        }
        for strategy, steady in result.steady_state.items():
            _progress(f"steady state ({strategy}): {steady['calls_per_interval']:.1f} cloud calls per interval")

    instance_of = {item["metadata"]["name"]: item["status"]["instanceId"] for item in stack.items(namespace)}
    # The teardown itself: the cloud answers with latency, takes time to delete, maybe throttles.
    client_rps = 10.0 if cloud_rate_limit_rps else 1000.0
    operator = stack.operator(f"{label}-{n}-teardown", _settings(batch_size, client_rps=client_rps))
    sampler = RssSampler(operator.process.pid or 0).start()
    stack.sim.admin.faults(latency_ms=latency_ms)
    stack.sim.admin.config(delete_seconds=delete_seconds, rate_limit_rps=cloud_rate_limit_rps)
    time.sleep(2.0)
    seq = stack.last_seq()
    watcher = Watcher(stack.api, namespace).start()
    writes_at_delete = apiserver_writes(stack.control_plane)
    latency_at_delete = apiserver_patch_latency(stack.control_plane)
    busy = {p.name: p.pid or 0 for p in (*stack.control_plane.processes, stack.sim.process)}
    busy["operator"] = operator.process.pid or 0
    cpu_at_delete = cpu_seconds(busy)
    t0 = time.time()
    stack.delete_all(namespace)
    stack.wait_empty(namespace, timeout=600 + n * 2.0)
    cpu_at_empty = cpu_seconds(busy)
    window = time.time() - t0
    latency_at_empty = apiserver_patch_latency(stack.control_plane)
    time.sleep(1.0)
    watcher.stop()
    usage = process_usage(operator.process.pid or 0)
    rss = sampler.stop()
    operator.stop()
    stack.operators.remove(operator)
    writes_after = apiserver_writes(stack.control_plane)
    if rss:
        result.teardown_rss = [(round(t - t0, 1), round(mib, 1)) for t, mib in rss[::5]]
        result.teardown_rss_peak_at = round(max(rss, key=lambda sample: sample[1])[0] - t0, 1)
    stack.sim.admin.config(rate_limit_rps=None)
    stack.sim.admin.clear_faults()

    calls = stack.calls_since(seq)
    result.calls = calls_by_operation(calls)
    result.total_calls = len(calls)
    batch = [c for c in calls if c["operation"] == "batch_action"]
    result.batch_calls = len(batch)
    sizes = [float(len(c["instance_ids"])) for c in batch if c.get("status") == 200]
    result.batch_sizes = {**summary(sizes), "min": min(sizes) if sizes else 0.0}
    result.throttled_calls = sum(1 for c in calls if c.get("status") == 429)
    gone = list(watcher.deleted_at.values())
    result.wall_seconds = (max(gone) - t0) if gone else float("nan")
    requested_times = sorted(watcher.requested_at.values())
    gone_times = sorted(gone)
    result.last_deletion_requested_seconds = (requested_times[-1] - t0) if requested_times else float("nan")
    result.partial_batches = [
        (
            round(float(c["time"]) - t0, 1),
            len(c["instance_ids"]),
            bisect.bisect_right(requested_times, float(c["time"])),
            bisect.bisect_right(gone_times, float(c["time"])),
        )
        for c in batch
        if c.get("status") == 200 and len(c["instance_ids"]) < batch_size
    ]

    result.confirmation_calls = result.calls.get("show", 0) + result.calls.get("recycle", 0)
    # When the cloud really finished each deletion (the list stopped showing it long before).
    ended: dict[str, float] = {}
    for entry in stack.sim.admin.deletions():
        if entry["outcome"] in ("gone", "binned") and entry["ended_at"] is not None:
            ended.setdefault(entry["instance_id"], entry["ended_at"])
    after_request, after_gone = [], []
    for name, deleted in watcher.deleted_at.items():
        requested = watcher.requested_at.get(name) or epoch(
            watcher.deletion_timestamp.get(name, "1970-01-01T00:00:00Z")
        )
        after_request.append(deleted - requested)
        finished = ended.get(instance_of.get(name, ""))
        if finished is None or deleted < finished:
            result.early_releases += 1
        if finished is not None:
            after_gone.append(deleted - finished)
    result.release_after_deletion_requested = summary(after_request)
    result.release_after_cloud_gone = summary(after_gone)
    # The operator's proof of a forced deletion is its first show answered 404: what comes after it is
    # the operator's and the API server's (the per-CR result, the finalizer's removal).
    proved: dict[str, float] = {}
    for call in calls:
        if call["operation"] == "show" and call.get("status") == 404:
            proved.setdefault(call["path"].rstrip("/").rsplit("/", 1)[-1], call["time"])
    after_proof = [
        deleted - proved[instance_of[name]]
        for name, deleted in watcher.deleted_at.items()
        if instance_of.get(name) in proved
    ]
    result.release_after_proof = summary(after_proof) if after_proof else {}
    result.shows_by_answer = shows_by_answer(calls)
    result.deletion_cpu_seconds = {
        **{name: round(cpu_at_empty[name] - cpu_at_delete.get(name, 0.0), 1) for name in cpu_at_empty},
        "window": round(window, 1),
    }
    result.deletion_patch_latency_ms = {
        sub: round(1000 * (seconds - latency_at_delete.get(sub, (0.0, 0))[0]) / count_delta, 1)
        for sub, (seconds, count) in latency_at_empty.items()
        if (count_delta := count - latency_at_delete.get(sub, (0.0, 0))[1]) > 0
    }

    delta = writes_after - writes_before
    cr_writes = {k: v for k, v in delta.items() if k[0] == "rocketmqinstances"}
    result.writes_per_cr = sum(cr_writes.values()) / n
    result.writes_per_cr_by_kind = {
        f"{verb} {sub or 'object'}": count / n for (_, sub, verb), count in sorted(cr_writes.items())
    }
    result.event_writes_per_cr = sum(v for k, v in delta.items() if k[0] == "events") / n
    late = writes_after - writes_at_delete
    result.deletion_writes_per_cr = {
        f"{verb} {sub or 'object'}": count / n
        for (kind, sub, verb), count in sorted(late.items())
        if kind == "rocketmqinstances" and verb != "DELETE"
    }
    result.deletion_event_writes_per_cr = sum(v for k, v in late.items() if k[0] == "events") / n
    result.operator_peak_rss_mib = usage.peak_rss_mib
    result.operator_cpu_seconds = usage.cpu_seconds
    result.remaining = [(0.0, n)] + [(t - t0, n - i - 1) for i, t in enumerate(gone_times)]
    return result


def batched_forced_teardown(stack: Stack, *, label: str, n: int) -> Teardown:
    """``make bench``'s batched forced run without a cloud rate limit: batch size 50, 50 ms per call,
    10 s to delete; the one that ``bench/audit.py`` and ``bench/profile.py`` look inside."""
    return teardown(
        stack,
        label=label,
        n=n,
        batch_size=50,
        cloud_rate_limit_rps=None,
        latency_ms=50.0,
        delete_seconds=10.0,
        deletion=FORCED,
    )


def shows_by_answer(calls: list[dict[str, Any]]) -> dict[str, int]:
    """Show calls counted as ``before acceptance`` or ``after acceptance``, then the answer's status."""
    accepted: dict[str, float] = {}
    for call in calls:
        if call["operation"] == "batch_action" and call.get("status") == 200:
            for instance_id in call["instance_ids"]:
                accepted.setdefault(instance_id, call["time"])
    counts: dict[str, int] = {}
    for call in calls:
        if call["operation"] != "show":
            continue
        at = accepted.get(call["path"].rstrip("/").rsplit("/", 1)[-1])
        key = f"{'before' if at is None or call['time'] < at else 'after'} acceptance, {call.get('status')}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


@dataclass
class Sweep:
    n: int
    seconds_until_gone: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    batch_calls: int = 0
    batch_sizes: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sweep(stack: Stack, *, n: int) -> Sweep:
    """N owned CREATEFAILED instances: calls and time until the sweep has deleted them all."""
    result = Sweep(n)
    _prepare_cloud(stack)
    tags = [{"key": "rocketmq-operator.cluster", "value": CLUSTER_ID}]
    seeded = stack.sim.admin.seed(
        stack.sim.project_id,
        [{"name": f"failed-{i:04d}", "status": "CREATEFAILED", "tags": tags} for i in range(n)],
    )
    ids = {s["instance_id"] for s in seeded}
    seq = stack.last_seq()
    t0 = time.time()
    operator = stack.operator(
        "sweep", {**BASE_SETTINGS, "DMS_SWEEP_INTERVAL_SECONDS": "5", "DMS_POLL_INTERVAL_SECONDS": "5"}
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            alive = {i["instance_id"] for i in stack.sim.admin.instances(stack.sim.project_id)} & ids
            if not alive:
                break
            time.sleep(0.5)
        result.seconds_until_gone = time.time() - t0
    finally:
        operator.stop()
        stack.operators.remove(operator)
    calls = stack.calls_since(seq)
    result.calls = calls_by_operation(calls)
    batch = [c for c in calls if c["operation"] == "batch_action" and c.get("status") == 200]
    result.batch_calls = len(batch)
    result.batch_sizes = [len(c["instance_ids"]) for c in batch]
    return result


@dataclass
class TopicTeardown:
    """N topics of one instance created, then all deleted at once (``kubectl delete rmqt --all``)."""

    label: str
    n: int
    batch_size: int
    latency_ms: float
    topic_delete_seconds: float
    seconds_to_ready: float = 0.0
    """From the first topic CR created to the last one Ready (polled every 2 s)."""
    create_calls: dict[str, int] = field(default_factory=dict)
    """Cloud calls by operation from the first topic CR created to the last one Ready."""
    wall_seconds: float = 0.0
    """From ``kubectl delete rmqt --all`` to the last topic CR gone."""
    last_deletion_requested_seconds: float = 0.0
    """From the delete to the last topic CR seen with a deletionTimestamp: kubectl deletes one CR per request."""
    last_batch_call_seconds: float = 0.0
    """From the delete to the last accepted topic batch delete call."""
    calls: dict[str, int] = field(default_factory=dict)
    """Cloud calls by operation during the teardown."""
    total_calls: int = 0
    batch_calls: int = 0
    """``topic_batch_delete`` calls (any answer)."""
    refused_batch_calls: int = 0
    batch_sizes: dict[str, float] = field(default_factory=dict)
    names_deleted_more_than_once: int = 0
    """Topics named by more than one accepted batch call."""
    throttled_calls: int = 0
    release_after_cloud_gone: dict[str, float] = field(default_factory=dict)
    """From the moment the simulator removed the topic (its ``deleting.due``) to the CR gone."""
    release_after_deletion_requested: dict[str, float] = field(default_factory=dict)
    due_from_call_log: int = 0
    """Topics whose removal time came from the call log (batch call time + delete seconds), not the poller."""
    early_releases: int = 0
    """Topic CRs gone before the simulator removed their topic (must be 0)."""
    releases_seen: int = 0
    """Topic CRs whose DELETED event the watch saw (should be n)."""
    leftovers: int = 0
    """Topics still in the cloud (or still being deleted) once every CR is gone (must be 0)."""
    operator_peak_rss_mib: float = 0.0
    operator_cpu_seconds: float = 0.0
    remaining: list[tuple[float, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def topic_teardown(
    stack: Stack,
    *,
    label: str,
    n: int,
    batch_size: int,
    latency_ms: float,
    topic_delete_seconds: float = 1.0,
) -> TopicTeardown:
    """One Ready instance with ``n`` Ready topics, then every topic CR deleted at once.

    One operator per run (its ``DMS_BATCH_MAX_SIZE`` is the run's batch size), up from the creation
    of the instance to the end: the cloud answers without latency while things are created and with
    ``latency_ms`` per call during the teardown. The instance is deleted afterwards, outside what is
    measured, so the next run's operator finds nothing left over.
    """
    result = TopicTeardown(label, n, batch_size, latency_ms, topic_delete_seconds)
    _prepare_cloud(stack)
    stack.sim.admin.config(topic_delete_seconds=topic_delete_seconds)
    namespace = stack.namespace(f"bench-topics-{label}-{n}".lower())
    operator = stack.operator(f"topics-{label}-{n}", _settings(batch_size, client_rps=1000.0))
    try:
        (instance,) = stack.create_crs(namespace, 1, force_delete=True)
        stack.wait_ready(namespace, 1, timeout=120)
        instance_id = stack.items(namespace)[0]["status"]["instanceId"]

        seq = stack.last_seq()
        started = time.monotonic()
        stack.create_topics(namespace, instance, n)
        stack.wait_ready(namespace, n, timeout=120 + n * 1.5, plural=TOPICS)
        result.seconds_to_ready = time.monotonic() - started
        result.create_calls = calls_by_operation(stack.calls_since(seq))
        in_cloud = len(stack.sim.admin.children(instance_id)["topics"])
        if in_cloud != n:
            raise AssertionError(f"{namespace}: {in_cloud} topics in the cloud after {n} CRs were Ready")

        # The teardown: every call answered with latency, each batch deletion taking its time.
        stack.sim.admin.faults(latency_ms=latency_ms)
        time.sleep(2.0)
        seq = stack.last_seq()
        watcher = Watcher(stack.api, namespace, TOPICS).start()
        poller = ChildDeletionPoller(stack, instance_id).start()
        t0 = time.time()
        stack.delete_all(namespace, "rmqt")
        stack.wait_empty(namespace, timeout=600 + n * 2.0, plural=TOPICS)
        time.sleep(1.0)
        watcher.stop()
        poller.stop()
        stack.sim.admin.clear_faults()
        usage = process_usage(operator.process.pid or 0)
        result.leftovers = len(stack.sim.admin.children(instance_id)["topics"])
        calls = stack.calls_since(seq)

        # Outside the measurement: the instance goes too, so no later run finds its CR.
        stack.delete_all(namespace)
        stack.wait_empty(namespace, timeout=120, plural=PLURAL)
    finally:
        operator.stop()
        stack.operators.remove(operator)

    result.calls = calls_by_operation(calls)
    result.total_calls = len(calls)
    result.throttled_calls = sum(1 for c in calls if c.get("status") == 429)
    batch = [c for c in calls if c["operation"] == "topic_batch_delete"]
    accepted = [c for c in batch if c.get("status") == 200]
    result.batch_calls = len(batch)
    result.refused_batch_calls = len(batch) - len(accepted)
    sizes = [float(len(c["names"])) for c in accepted]
    result.batch_sizes = {**summary(sizes), "min": min(sizes) if sizes else 0.0}
    if accepted:
        result.last_batch_call_seconds = max(float(c["time"]) for c in accepted) - t0

    # When the simulator removed each topic: its deletion's due time, as the poller saw it; failing
    # that, the first accepted batch call naming it plus the deletion time (a lower bound).
    named: dict[str, int] = {}
    from_log: dict[str, float] = {}
    for call in accepted:
        for name in call["names"]:
            named[name] = named.get(name, 0) + 1
            from_log.setdefault(name, float(call["time"]) + topic_delete_seconds)
    result.names_deleted_more_than_once = sum(1 for count in named.values() if count > 1)
    after_request, after_gone = [], []
    for name, deleted in watcher.deleted_at.items():
        requested = watcher.requested_at.get(name) or epoch(
            watcher.deletion_timestamp.get(name, "1970-01-01T00:00:00Z")
        )
        after_request.append(deleted - requested)
        due = poller.due.get(name)
        if due is None and name in from_log:
            due = from_log[name]
            result.due_from_call_log += 1
        if due is None or deleted < due:
            result.early_releases += 1
        if due is not None:
            after_gone.append(deleted - due)
    result.releases_seen = len(watcher.deleted_at)
    result.release_after_deletion_requested = summary(after_request)
    result.release_after_cloud_gone = summary(after_gone)
    gone = sorted(watcher.deleted_at.values())
    result.wall_seconds = (gone[-1] - t0) if gone else float("nan")
    requested_at = list(watcher.requested_at.values())
    result.last_deletion_requested_seconds = (max(requested_at) - t0) if requested_at else float("nan")
    result.remaining = [(0.0, n)] + [(t - t0, n - i - 1) for i, t in enumerate(gone)]
    result.operator_peak_rss_mib = usage.peak_rss_mib
    result.operator_cpu_seconds = usage.cpu_seconds
    return result
