"""Turns bench results into the markdown table (with the issue's targets) and the plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

WRITE_MEANING = {
    "POST object": "create the CR (the user, not the operator)",
    "PATCH object": "kopf: adding and removing the finalizer (its progress and last handled spec ride on the status)",
    "PATCH status": "operator: status (create marker, instance id, Ready, deletion result), kopf's in status.kopf",
    "DELETE object": "delete the CR (the user)",
}


def _find(results: dict[str, Any], label: str, n: int) -> dict[str, Any] | None:
    return next((t for t in results["teardowns"] if t["label"] == label and t["n"] == n), None)


def _fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    p = results["parameters"]
    lines = [
        "# Benchmark: batched deletion against one call per resource",
        "",
        f"Machine: {m['cpus']} cores, {m['memory']} memory; Python {m['python']}, kopf {m['kopf']}, "
        f"pydantic {m['pydantic']}, Kubernetes {m['kubernetes']}; commit {m['commit']}; {m['date']}.",
        "",
        f"Cloud (dms-simulator, faithful default: the list hides an instance as soon as its deletion starts): "
        f"{p['latency_ms']:g} ms per call, {p['delete_seconds']:g} s to delete an instance; "
        f"rate-limited runs: {p['rate_limit']:g} requests/s per key (429 APIGW.0308 beyond). Runs without "
        "'-binned' delete with forceDelete (each deletion ends in a 404, proven by show); '-binned' runs delete "
        "without it on an account whose recycle bin is on (proven by show RECYCLE or the bin's list). "
        "Batched = batch size "
        f"{p['batch_size']}, window 1 s; baseline = batch size 1 (one call per CR, as ACK, Crossplane, Config "
        "Connector and Terraform do). Same operator, same observer, same run. Command: `make bench`.",
    ]
    if results["teardowns"]:
        lines += _teardowns(results)
    if results.get("failed_runs"):
        lines += ["", "## Runs that did not finish", ""]
        lines += [f"- N={f['n']} {f['label']}: {f['error']}" for f in results["failed_runs"]]
    if "sweep" in results:
        s = results["sweep"]
        lines += [
            "",
            "## Sweep",
            "",
            f"{s['n']} owned CREATEFAILED instances (owner tags of this cluster): all gone after "
            f"{s['seconds_until_gone']:.1f} s (sweep interval 5 s), in {s['batch_calls']} batch calls of sizes "
            f"{s['batch_sizes']}; cloud calls by operation: {s['calls']}.",
        ]
    if results.get("topic_teardowns"):
        lines += _topics(results)
    return "\n".join(lines) + "\n"


def _teardowns(results: dict[str, Any]) -> list[str]:
    p = results["parameters"]
    lines = [
        "",
        "## Teardown",
        "",
        "| N | run | to last CR gone (s) | cloud calls | batch calls | batch size (mean/max) | confirmation calls "
        "per CR | 429s | early releases | release after gone p50/p95/max (s) | release after delete p50/p95 (s) | "
        "API writes / CR | peak RSS (MiB) | CPU (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in results["teardowns"]:
        g, r, b = t["release_after_cloud_gone"], t["release_after_deletion_requested"], t["batch_sizes"]
        lines.append(
            f"| {t['n']} | {t['label']} | {_fmt(t['wall_seconds'])} | {t['total_calls']} | {t['batch_calls']} | "
            f"{_fmt(b.get('mean', float('nan')))}/{_fmt(b.get('max', float('nan')), 0)} | "
            f"{_fmt(t.get('confirmation_calls', 0) / t['n'], 2)} | {t['throttled_calls']} | "
            f"{t.get('early_releases', 'n/a')} | "
            f"{_fmt(g['p50'], 2)}/{_fmt(g['p95'], 2)}/{_fmt(g['max'], 2)} | {_fmt(r['p50'], 2)}/{_fmt(r['p95'], 2)} | "
            f"{_fmt(t['writes_per_cr'], 2)} | {_fmt(t['operator_peak_rss_mib'], 0)} | "
            f"{_fmt(t['operator_cpu_seconds'], 1)} |"
        )
    lines += ["", "## Ratios (batched against baseline, same N, same run)", ""]
    lines += ["| N | cloud rate limit | fewer cloud calls | faster to the last CR gone |", "|---|---|---|---|"]
    for n in sorted({t["n"] for t in results["teardowns"]}):
        for suffix, limit in (
            ("", "none"),
            ("-limited", f"{p['rate_limit']:g}/s"),
            ("-binned", "none, binned"),
            ("-limited-binned", f"{p['rate_limit']:g}/s, binned"),
        ):
            ours, base = _find(results, "batched" + suffix, n), _find(results, "baseline" + suffix, n)
            if ours and base:
                lines.append(
                    f"| {n} | {limit} | {base['total_calls'] / max(1, ours['total_calls']):.1f}x | "
                    f"{base['wall_seconds'] / ours['wall_seconds']:.1f}x |"
                )
    lines += _by_operation(results)
    lines += _proof_targets(results)
    lines += _release_breakdown(results)
    lines += _shows(results)
    lines += _partial_batches(results)
    lines += _teardown_memory(results)
    lines += _targets(results)
    lines += _targets_16(results)
    lines += _steady(results)
    lines += _writes(results)
    return lines


def _release_breakdown(results: dict[str, Any]) -> list[str]:
    """Where a forced release's time goes: to the operator's proof, then to the CR gone; what was busy."""
    runs = [t for t in results["teardowns"] if t.get("release_after_proof")]
    if not runs:
        return []
    names = sorted({name for t in runs for name in t["deletion_cpu_seconds"] if name != "window"})
    lines = [
        "",
        "## Where a forced release's time goes",
        "",
        "From the cloud finishing a deletion to the operator's proof (its first show answered 404), then from "
        "the proof to the CR gone (the per-CR status PATCH and the finalizer's PATCH at the API server). CPU: "
        "seconds each process used from `kubectl delete` to the last CR gone, out of the window's length times "
        "the machine's cores. PATCH latency: the API server's mean for the CRs' PATCHes in that window.",
        "",
        "| N | run | gone → CR released p50/p95 (s) | proof → CR released p50/p95 (s) | window (s) | "
        + " | ".join(f"CPU {name} (s)" for name in names)
        + " | PATCH latency object/status (ms) |",
        "|---|---|---|---|---|" + "---|" * len(names) + "---|",
    ]
    for t in runs:
        g, p, cpu, lat = (
            t["release_after_cloud_gone"],
            t["release_after_proof"],
            t["deletion_cpu_seconds"],
            t["deletion_patch_latency_ms"],
        )
        lines.append(
            f"| {t['n']} | {t['label']} | {_fmt(g['p50'], 2)}/{_fmt(g['p95'], 2)} | "
            f"{_fmt(p['p50'], 2)}/{_fmt(p['p95'], 2)} | {_fmt(cpu['window'])} | "
            + " | ".join(_fmt(cpu.get(name, float("nan"))) for name in names)
            + f" | {_fmt(lat.get('object', float('nan')))}/{_fmt(lat.get('status', float('nan')))} |"
        )
    return lines


def _shows(results: dict[str, Any]) -> list[str]:
    """Who asked show in each forced teardown, and what it was told: per CR."""
    runs = [t for t in results["teardowns"] if t.get("shows_by_answer")]
    if not runs:
        return []
    keys = sorted({key for t in runs for key in t["shows_by_answer"]})
    lines = [
        "",
        "## Show calls per CR in a teardown, by when and what they were told",
        "",
        "Before acceptance: a deletion pass's look at an instance the list walk could not vouch for. After: the "
        "confirmer's looks (200: still deleting, 404: the proof). Any other status is an error or a throttle.",
        "",
        "| N | run | " + " | ".join(keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for t in runs:
        counts = t["shows_by_answer"]
        lines.append(
            f"| {t['n']} | {t['label']} | " + " | ".join(_fmt(counts.get(key, 0) / t["n"], 2) for key in keys) + " |"
        )
    return lines


def _partial_batches(results: dict[str, Any]) -> list[str]:
    """The batched runs' calls that left before they were full, and what the deletion stood at then."""
    runs = [t for t in results["teardowns"] if t.get("partial_batches") and t["batch_size"] > 1]
    if not runs:
        return []
    lines = [
        "",
        "## Batch calls smaller than the batch size",
        "",
        "When each left (seconds after `kubectl delete` began), its size, and how many CRs had been deleted "
        "(deletionTimestamp seen) and released by then. The batcher sends a group 1 s after its latest id, "
        "or 5 s after its first.",
        "",
        "| N | run | last deletion requested (s) | calls: time (s) / size / deleted / released |",
        "|---|---|---|---|",
    ]
    for t in runs:
        calls = "; ".join(f"{at:g} / {size} / {asked} / {done}" for at, size, asked, done in t["partial_batches"])
        last = _fmt(t.get("last_deletion_requested_seconds", float("nan")))
        lines.append(f"| {t['n']} | {t['label']} | {last} | {calls} |")
    return lines


def _teardown_memory(results: dict[str, Any]) -> list[str]:
    """When the teardown operator's resident memory peaked: while it resumed its CRs, or while it deleted them."""
    runs = [t for t in results["teardowns"] if t.get("teardown_rss") and t["n"] >= 1000]
    if not runs:
        return []
    lines = [
        "",
        "## The teardown operator's resident memory over time",
        "",
        "Sampled every second from the operator's start (as after a restart: it resumes every CR) to the last "
        "CR gone; times are seconds after `kubectl delete` began, which the bench starts 2 s after the "
        "operator's liveness probe answers (negative: before it). The timeline is in the JSON "
        "(`teardown_rss`, every 5 s).",
        "",
        "| N | run | peak RSS (MiB) | peak at (s) | RSS when the deletion began (MiB) | RSS at the end (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for t in runs:
        rss = t["teardown_rss"]
        at_delete = next((mib for at, mib in rss if at >= 0), float("nan"))
        lines.append(
            f"| {t['n']} | {t['label']} | {_fmt(t['operator_peak_rss_mib'], 0)} | "
            f"{_fmt(t.get('teardown_rss_peak_at', float('nan')))} | {_fmt(at_delete, 0)} | {_fmt(rss[-1][1], 0)} |"
        )
    return lines


def _ratio(base: float, ours: float) -> str:
    return "n/a" if not ours or math.isnan(ours) or math.isnan(base) else f"{base / ours:.1f}x"


def _topics(results: dict[str, Any]) -> list[str]:
    """Issue 14: N topics of one instance deleted at once, batched against one call per topic."""
    runs = results["topic_teardowns"]
    first = runs[0]
    lines = [
        "",
        "## Topic teardown (issue 14)",
        "",
        f"One instance with {first['n']} Ready topics (RocketMQTopic CRs); then `kubectl delete rmqt --all`. "
        f"Cloud: {first['latency_ms']:g} ms per call during the teardown (none while creating), a topic batch "
        f"deletion takes {first['topic_delete_seconds']:g} s. A topic CR is released once its batch's job has "
        "ended (`tasks`, one look per job) and a consistent walk of the topic list that started after that no "
        "longer lists it. Batched = batch size "
        f"{next((r['batch_size'] for r in runs if r['label'] == 'batched'), '?')} (`DMS_BATCH_MAX_SIZE`, shared with "
        "instance deletions), window 1 s; baseline = batch size 1 (one call per topic). Same run, one operator "
        "per half. Early release: a CR gone before the simulator removed its topic (its `deleting.due`). "
        "Leftovers: topics still in the cloud when the last CR was gone.",
        "",
        "| run | batch size | to Ready (s) | to last CR gone (s) | last deletion requested (s) | last batch call (s) | "
        "cloud calls | "
        "topic batch deletes (refused) | batch size mean/max | release after gone p50/p95/max (s) | "
        "early releases | leftovers | peak RSS (MiB) | CPU (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in runs:
        g, b = t["release_after_cloud_gone"], t["batch_sizes"]
        lines.append(
            f"| {t['label']} | {t['batch_size']} | {_fmt(t['seconds_to_ready'])} | {_fmt(t['wall_seconds'])} | "
            f"{_fmt(t.get('last_deletion_requested_seconds', float('nan')))} | "
            f"{_fmt(t['last_batch_call_seconds'])} | {t['total_calls']} | {t['batch_calls']} "
            f"({t['refused_batch_calls']}) | {_fmt(b.get('mean', float('nan')))}/{_fmt(b.get('max', float('nan')), 0)}"
            f" | {_fmt(g['p50'], 2)}/{_fmt(g['p95'], 2)}/{_fmt(g['max'], 2)} | {t['early_releases']} | "
            f"{t['leftovers']} | {_fmt(t['operator_peak_rss_mib'], 0)} | {_fmt(t['operator_cpu_seconds'], 1)} |"
        )
    operations = sorted({op for t in runs for op in (*t["calls"], *t["create_calls"])})
    lines += [
        "",
        "Times are seconds since `kubectl delete rmqt --all` was started; kubectl deletes one CR per request, so "
        "'last deletion requested' is when the last topic CR got its deletionTimestamp.",
        "",
        "Cloud calls by operation (`tasks`: the job status of a batch deletion; `list`: the instance list):",
        "",
    ]
    lines += ["| run | phase | " + " | ".join(operations) + " | total |", "|---|---|" + "---|" * (len(operations) + 1)]
    for t in runs:
        for phase, counts in (("create", t["create_calls"]), ("teardown", t["calls"])):
            cells = " | ".join(str(counts.get(op, 0)) for op in operations)
            lines.append(f"| {t['label']} | {phase} | {cells} | {sum(counts.values())} |")
    ours = next((t for t in runs if t["label"] == "batched"), None)
    base = next((t for t in runs if t["label"] == "baseline"), None)
    if ours and base:
        expected = math.ceil(ours["n"] / max(1, ours["batch_size"]))
        lines += [
            "",
            "| baseline / batched | cloud calls | topic batch delete calls | topic list pages | to the last CR gone |",
            "|---|---|---|---|---|",
            f"| ratio | {_ratio(base['total_calls'], ours['total_calls'])} "
            f"({base['total_calls']} / {ours['total_calls']}) | {_ratio(base['batch_calls'], ours['batch_calls'])} "
            f"({base['batch_calls']} / {ours['batch_calls']}) | "
            f"{_ratio(base['calls'].get('topic_list', 0), ours['calls'].get('topic_list', 0))} "
            f"({base['calls'].get('topic_list', 0)} / {ours['calls'].get('topic_list', 0)}) | "
            f"{_ratio(base['wall_seconds'], ours['wall_seconds'])} "
            f"({_fmt(base['wall_seconds'])} s / {_fmt(ours['wall_seconds'])} s) |",
            "",
            "| target | measured | verdict |",
            "|---|---|---|",
            f"| batched: ceil({ours['n']}/{ours['batch_size']}) = {expected} topic batch delete calls | "
            f"{ours['batch_calls']} | {_verdict(ours['batch_calls'] == expected)} |",
        ]
        for t in (ours, base):
            ok = t["early_releases"] == 0 and t["leftovers"] == 0 and t["releases_seen"] == t["n"]
            lines.append(
                f"| {t['label']}: zero early releases, nothing left in the cloud | {t['early_releases']} early, "
                f"{t['leftovers']} left, {t['releases_seen']}/{t['n']} releases seen | {_verdict(ok)} |"
            )
    return lines


def _by_operation(results: dict[str, Any]) -> list[str]:
    operations = sorted({op for t in results["teardowns"] for op in t["calls"]})
    lines = ["", "## Cloud calls by operation (teardown)", ""]
    lines += ["| N | run | " + " | ".join(operations) + " |", "|---|---|" + "---|" * len(operations)]
    for t in results["teardowns"]:
        counts = " | ".join(str(t["calls"].get(op, 0)) for op in operations)
        lines.append(f"| {t['n']} | {t['label']} | {counts} |")
    return lines


def _proof_targets(results: dict[str, Any]) -> list[str]:
    """The targets of issue 11 (deletion confirmed by proof), measured on the faithful simulator."""
    lines = ["", "## Targets (issue 11: deletion confirmed by proof)", "", "| target | measured | verdict |"]
    lines.append("|---|---|---|")
    for t in results["teardowns"]:
        lines.append(
            f"| {t['label']}, N={t['n']}: zero early releases | {t.get('early_releases', 'n/a')} | "
            f"{_verdict(t.get('early_releases', 1) == 0)} |"
        )
    forced, binned = _find(results, "batched", 1000), _find(results, "batched-binned", 1000)
    if forced:
        per_cr = forced["confirmation_calls"] / forced["n"]
        lines.append(
            f"| 1,000 forced, batch size 50: <= 20 batch calls | {forced['batch_calls']} | "
            f"{_verdict(forced['batch_calls'] <= 20)} |"
        )
        lines.append(
            f"| 1,000 forced: <= 1.3 confirmation calls per CR | {per_cr:.2f} ({forced['confirmation_calls']}) | "
            f"{_verdict(per_cr <= 1.3)} |"
        )
    if binned:
        lines.append(
            f"| 1,000 non-forced, recycle bin on: <= 60 cloud calls in total | {binned['total_calls']} "
            f"({binned['calls']}) | {_verdict(binned['total_calls'] <= 60)} |"
        )
    for label in ("batched", "batched-binned"):
        t = _find(results, label, 100)
        if t:
            p95 = t["release_after_cloud_gone"]["p95"]
            lines.append(
                f"| {label}, N=100: release p95 after the cloud shows the instance gone <= 5 s | {p95:.2f} s | "
                f"{_verdict(p95 <= 5.0)} |"
            )
    return lines


def _targets(results: dict[str, Any]) -> list[str]:
    ours, base = _find(results, "batched", 1000), _find(results, "baseline", 1000)
    ours_l, base_l = _find(results, "batched-limited", 1000), _find(results, "baseline-limited", 1000)
    lines = ["", "## Targets (issue 5, the first benchmark)", "", "| target | measured | verdict |", "|---|---|---|"]
    if ours:
        lines.append(
            f"| 1,000-CR teardown, batch size 50: at most 22 batch action calls | {ours['batch_calls']} | "
            f"{_verdict(ours['batch_calls'] <= 22)} |"
        )
    if ours and base:
        ratio = base["total_calls"] / max(1, ours["total_calls"])
        lines.append(
            f"| at least 15x fewer cloud calls than the baseline | {ratio:.1f}x ({ours['total_calls']} vs "
            f"{base['total_calls']}) | {_verdict(ratio >= 15)} |"
        )
    if ours_l and base_l:
        ratio = base_l["wall_seconds"] / ours_l["wall_seconds"]
        lines.append(
            f"| under the rate limit, at least 10x faster to the last CR gone | {ratio:.1f}x "
            f"({ours_l['wall_seconds']:.1f} s vs {base_l['wall_seconds']:.1f} s) | {_verdict(ratio >= 10)} |"
        )
    for t in (ours, ours_l):
        if t:
            p95 = t["release_after_cloud_gone"]["p95"]
            lines.append(
                f"| {t['label']}: release p95 after the cloud confirms <= window + 2 s (3 s) | {p95:.2f} s | "
                f"{_verdict(p95 <= 3.0)} |"
            )
    for n, limit in ((1000, 200.0), (10000, 400.0)):
        t = _find(results, "batched", n)
        if t:
            lines.append(
                f"| operator peak RSS at {n:,} CRs <= {limit:.0f} MiB | {t['operator_peak_rss_mib']:.0f} MiB | "
                f"{_verdict(t['operator_peak_rss_mib'] <= limit)} |"
            )
    steady = (ours or {}).get("steady_state", {}).get("list")
    if steady:
        bound = math.ceil(1000 / 50) + 1
        lines.append(
            f"| steady state, 1,000 CRs: calls per poll interval <= {bound} | {steady['calls_per_interval']:.1f} | "
            f"{_verdict(steady['calls_per_interval'] <= bound)} |"
        )
    return lines


def operator_writes(t: dict[str, Any]) -> float:
    """The operator's API-server writes per CR over its life, Events included (not the user's create and delete)."""
    kinds = t["writes_per_cr_by_kind"]
    own = sum(v for k, v in kinds.items() if k not in ("POST object", "DELETE object"))
    return float(own + t["event_writes_per_cr"])


def _targets_16(results: dict[str, Any]) -> list[str]:
    """Issue 16: writes per CR, release within seconds, speed under the rate limit, 10,000 CRs."""
    ours, ours_l, base_l = (
        _find(results, "batched", 1000),
        _find(results, "batched-limited", 1000),
        _find(results, "baseline-limited", 1000),
    )
    lines = ["", "## Targets (issue 16, performance at scale)", "", "| target | measured | verdict |", "|---|---|---|"]
    if ours:
        writes = operator_writes(ours)
        lines.append(
            f"| 1,000 CRs, batched: operator writes per CR over its life, Events included, <= 8 | {writes:.2f} | "
            f"{_verdict(writes <= 8.0)} |"
        )
        phase = ours.get("deletion_writes_per_cr")
        if phase is not None:
            w, e = sum(phase.values()), ours.get("deletion_event_writes_per_cr", 0.0)
            lines.append(
                f"| deletion phase: <= 2 writes and <= 1 Event per CR | {w:.2f} writes, {e:.2f} Events | "
                f"{_verdict(w <= 2.0 and e <= 1.0)} |"
            )
        p95 = ours["release_after_cloud_gone"]["p95"]
        lines.append(f"| release p95 after the cloud shows it gone <= 5 s | {p95:.2f} s | {_verdict(p95 <= 5.0)} |")
    if ours_l and base_l:
        ratio = base_l["wall_seconds"] / ours_l["wall_seconds"]
        lines.append(
            f"| under 10 req/s, >= 5x faster to the last CR gone than the baseline | {ratio:.1f}x "
            f"({ours_l['wall_seconds']:.1f} s vs {base_l['wall_seconds']:.1f} s) | {_verdict(ratio >= 5)} |"
        )
    ours_lb, base_lb = _find(results, "batched-limited-binned", 1000), _find(results, "baseline-limited-binned", 1000)
    if ours_lb and base_lb:
        ratio = base_lb["wall_seconds"] / ours_lb["wall_seconds"]
        lines.append(
            f"| the same, deletions into the recycle bin (proof: one bin list for many) | {ratio:.1f}x "
            f"({ours_lb['wall_seconds']:.1f} s vs {base_lb['wall_seconds']:.1f} s) | {_verdict(ratio >= 5)} |"
        )
    big = [t for t in results["teardowns"] if t["n"] >= 10000 and t["label"] == "batched"]
    for t in big:
        n = t["n"]
        bound = math.ceil(n / t["batch_size"]) * 1.05
        lines.append(
            f"| {n:,} CRs: teardown batch calls <= ceil(N / {t['batch_size']}) + 5% ({bound:.0f}) | "
            f"{t['batch_calls']} | {_verdict(t['batch_calls'] <= bound)} |"
        )
        rss = max(t["operator_peak_rss_mib"], t.get("create_peak_rss_mib", 0.0))
        lines.append(f"| {n:,} CRs: operator peak RSS <= 400 MiB | {rss:.0f} MiB | {_verdict(rss <= 400)} |")
        steady = t.get("steady_state", {}).get("list")
        if steady:
            limit = math.ceil(n / 50) + 1
            lines.append(
                f"| {n:,} CRs: steady-state cloud calls per interval <= ceil(N / 50) + 1 ({limit}) | "
                f"{steady['calls_per_interval']:.1f} | {_verdict(steady['calls_per_interval'] <= limit)} |"
            )
        lines.append(
            f"| {n:,} CRs: wall times (reported) | create to Ready {t['seconds_to_ready']:.0f} s, teardown "
            f"{t['wall_seconds']:.0f} s | - |"
        )
    return lines


def _steady(results: dict[str, Any]) -> list[str]:
    lines = ["", "## Steady state (every CR Ready)", ""]
    lines += ["| N | observation | cloud calls per poll interval | by operation |", "|---|---|---|---|"]
    for t in results["teardowns"]:
        for key in ("list", "show"):
            s = t.get("steady_state", {}).get(key)
            if s:
                what = "one shared list walk" if key == "list" else "one show per CR (baseline)"
                lines.append(f"| {t['n']} | {what} | {s['calls_per_interval']:.1f} | {s['calls']} |")
    return lines


def _writes(results: dict[str, Any]) -> list[str]:
    t = _find(results, "batched", 1000) or next(iter(results["teardowns"]), None)
    if not t:
        return []
    lines = [
        "",
        f"## API-server writes per CR over its whole life (N={t['n']}, batched; apiserver_request_total)",
        "",
        "| write | per CR | what it is for |",
        "|---|---|---|",
    ]
    for kind, count in t["writes_per_cr_by_kind"].items():
        lines.append(f"| {kind} | {count:.2f} | {WRITE_MEANING.get(kind, '')} |")
    lines.append(f"| events (POST) | {t['event_writes_per_cr']:.2f} | Kubernetes Events on the CR |")
    if t.get("deletion_writes_per_cr") is not None:
        phase = t["deletion_writes_per_cr"]
        lines += [
            "",
            "Of these, in the deletion phase (from `kubectl delete` to the CR gone; the user's DELETE not counted): "
            + ", ".join(f"{kind} {count:.2f}" for kind, count in phase.items())
            + f", events {t.get('deletion_event_writes_per_cr', 0.0):.2f}; "
            f"{sum(phase.values()) + t.get('deletion_event_writes_per_cr', 0.0):.2f} in all.",
        ]
    return lines


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max((t["n"] for t in results["teardowns"] if t["n"] <= 1000), default=None)
    ours, base = _find(results, "batched-limited", n or 0), _find(results, "baseline-limited", n or 0)
    if not (ours and base):
        return
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for run, style in ((ours, "-"), (base, "--")):
        xs = [point[0] for point in run["remaining"]]
        ys = [point[1] for point in run["remaining"]]
        label = f"{run['label']}: batch size {run['batch_size']} ({run['wall_seconds']:.0f} s)"
        ax.step(xs, ys, style, where="post", label=label)
    ax.set_xlabel("seconds since kubectl delete --all")
    ax.set_ylabel("CRs remaining")
    rate = results["parameters"]["rate_limit"]
    ax.set_title(f"Teardown of {n} RocketMQInstances, cloud limited to {rate:g} requests/s")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_topics(results: dict[str, Any], path: Path) -> None:
    """Topic CRs remaining after ``kubectl delete rmqt --all``, batched against batch size 1."""
    runs = results.get("topic_teardowns") or []
    if not runs:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for run, style in zip(runs, ("-", "--", ":"), strict=False):
        xs = [point[0] for point in run["remaining"]]
        ys = [point[1] for point in run["remaining"]]
        label = (
            f"{run['label']}: batch size {run['batch_size']} ({run['batch_calls']} batch calls, "
            f"{run['total_calls']} calls, {run['wall_seconds']:.1f} s)"
        )
        ax.step(xs, ys, style, where="post", label=label)
    ax.set_xlabel("seconds since kubectl delete rmqt --all")
    ax.set_ylabel("topic CRs remaining")
    ax.set_title(f"Teardown of {runs[0]['n']} topics of one instance")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_scale(results: list[dict[str, Any]], path: Path) -> None:
    """Forced teardowns without a rate limit, against N (runs of several files merged): cloud calls and
    time to the last CR gone, batched and one call per CR; and the operator's writes per CR by kind."""
    runs = [t for r in results for t in r["teardowns"] if t["label"] in ("batched", "baseline")]
    if not runs:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (calls, writes) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=120)
    for label, style in (("batched", "o-"), ("baseline", "s--")):
        mine = sorted((t for t in runs if t["label"] == label), key=lambda t: t["n"])
        if not mine:
            continue
        ns = [t["n"] for t in mine]
        calls.plot(ns, [t["total_calls"] for t in mine], style, label=f"{label}: cloud calls")
        calls.plot(ns, [t["wall_seconds"] for t in mine], style, alpha=0.5, label=f"{label}: s to the last CR gone")
    calls.set_xscale("log")
    calls.set_yscale("log")
    calls.set_xlabel("CRs deleted at once (N)")
    calls.set_title("Forced teardown, no cloud rate limit")
    calls.grid(True, alpha=0.3, which="both")
    calls.legend(fontsize=8)
    batched = sorted((t for t in runs if t["label"] == "batched"), key=lambda t: t["n"])
    kinds = [("PATCH status", "status PATCH"), ("PATCH object", "object PATCH (finalizer)")]
    bottom = [0.0] * len(batched)
    xs = [str(t["n"]) for t in batched]
    for key, name in kinds:
        ys = [t["writes_per_cr_by_kind"].get(key, 0.0) for t in batched]
        writes.bar(xs, ys, bottom=bottom, label=name)
        bottom = [b + y for b, y in zip(bottom, ys, strict=True)]
    events = [t["event_writes_per_cr"] for t in batched]
    writes.bar(xs, events, bottom=bottom, label="Event")
    writes.axhline(8, color="grey", linestyle=":", label="issue 16 target (N=1,000)")
    writes.set_xlabel("N (batched)")
    writes.set_ylabel("operator writes per CR over its life")
    writes.set_title("API-server writes per CR, by kind")
    writes.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    """``python bench/report.py results.json [more.json ...] --out scale.png``: the scale plot of several runs."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    plot_scale([json.loads(path.read_text()) for path in args.results], args.out)


if __name__ == "__main__":
    main()
