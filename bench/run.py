"""``make bench``: what batching buys, measured side by side on the real stack.

Runs, for each N: the teardown of N Ready CRs batched (batch size 50) and with batch size 1 (the
one-call-per-resource pattern of every peer operator): forced deletions without a cloud rate limit
and with one, and non-forced deletions into the recycle bin; steady-state cloud calls per poll
interval (shared list walk vs one show per CR); a sweep of 200 owned failed instances; and the
teardown of 500 topics of one instance, batched and with batch size 1 (``--topics``). The
simulated cloud runs in its faithful default: its list hides an instance as soon as its deletion
starts, so every release must be proven by show (404, RECYCLE) or the recycle-bin list. Writes
bench/results/results.{json,md} and a plot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report
from bench.harness import Stack
from bench.scenarios import BINNED, FORCED, add_operator_settings, override_settings, sweep, teardown, topic_teardown


def machine() -> dict[str, Any]:
    import kopf
    import pydantic

    meminfo = Path("/proc/meminfo").read_text().split("\n")[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "memory": " ".join(meminfo.split()[1:]),
        "python": platform.python_version(),
        "kopf": getattr(kopf, "__version__", "?"),
        "pydantic": pydantic.VERSION,
        "kubernetes": "v1.36.3 (kube-apiserver built from k8s.io/kubernetes)",
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", default="100,1000", help="comma-separated CR counts (add 10000 for the big run)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--delete-seconds", type=float, default=10.0, help="simulated time to delete an instance")
    parser.add_argument("--rate-limit", type=float, default=10.0, help="cloud requests per second per key")
    parser.add_argument("--steady-intervals", type=int, default=3)
    parser.add_argument("--sweep", type=int, default=200)
    parser.add_argument(
        "--topics", type=int, default=500, help="topics of one instance deleted at once, batched and not (0: skip)"
    )
    parser.add_argument(
        "--topic-delete-seconds", type=float, default=1.0, help="simulated time a topic batch deletion takes"
    )
    parser.add_argument(
        "--baseline-max-n", type=int, default=1000, help="above this N, run the batched forced teardown only"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    add_operator_settings(parser)
    args = parser.parse_args()
    override_settings(args.operator_setting)
    counts = [int(x) for x in args.n.split(",") if x]

    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": machine(), "parameters": vars(args) | {"out": str(args.out)}}
    results["teardowns"] = []
    stack = Stack.start(Path("bench/.logs").absolute())
    try:
        for n in counts:
            # Forced deletions (404s, proven by show), with and without a cloud rate limit; then
            # non-forced ones on an account whose recycle bin is on (proven by the bin's list).
            plan = [(FORCED, None), (FORCED, args.rate_limit), (BINNED, None), (BINNED, args.rate_limit)]
            labels = [("batched", args.batch_size), ("baseline", 1)]
            if n > args.baseline_max_n:
                # Batched only: the baseline's one call per CR is measured at 1,000, and at 10,000 it would
                # only take ten times as long to say the same (and its show-per-CR steady state, 10,000
                # calls per interval, would run for most of an hour).
                plan, labels = [(FORCED, None)], labels[:1]
            for deletion, limit in plan:
                for label, size in labels:
                    tag = f"{label}{'-limited' if limit else ''}{'-binned' if deletion == BINNED else ''}"
                    print(f"bench: teardown n={n} {tag} ...", file=sys.stderr, flush=True)
                    first = deletion == FORCED and limit is None and label == "batched"
                    try:
                        run = teardown(
                            stack,
                            label=tag,
                            n=n,
                            batch_size=size,
                            cloud_rate_limit_rps=limit,
                            latency_ms=args.latency_ms,
                            delete_seconds=args.delete_seconds,
                            deletion=deletion,
                            steady_intervals=args.steady_intervals if first else 0,
                            steady_strategies=("list",) if n > args.baseline_max_n else ("list", "show"),
                        )
                    except (TimeoutError, OSError, RuntimeError) as exc:
                        # A run that cannot finish (the big N on a small machine) is reported, not fatal.
                        print(f"bench:   n={n} {tag} did not finish: {exc}", file=sys.stderr, flush=True)
                        results.setdefault("failed_runs", []).append({"n": n, "label": tag, "error": str(exc)})
                        continue
                    results["teardowns"].append(run.to_json())
                    print(
                        f"bench:   {run.wall_seconds:.1f}s to the last CR gone, {run.total_calls} cloud calls "
                        f"({run.batch_calls} batch, {run.confirmation_calls} confirmations), "
                        f"{run.early_releases} early releases, p95 release after gone "
                        f"{run.release_after_cloud_gone['p95']:.2f}s, "
                        f"peak RSS {run.operator_peak_rss_mib:.0f} MiB",
                        file=sys.stderr,
                        flush=True,
                    )
                    (args.out / "results.json").write_text(json.dumps(results, indent=2))
        if args.sweep:
            print(f"bench: sweep of {args.sweep} failed instances ...", file=sys.stderr, flush=True)
            results["sweep"] = sweep(stack, n=args.sweep).to_json()
        if args.topics:
            results["topic_teardowns"] = []
            for label, size in (("batched", args.batch_size), ("baseline", 1)):
                print(f"bench: topic teardown n={args.topics} {label} ...", file=sys.stderr, flush=True)
                topics = topic_teardown(
                    stack,
                    label=label,
                    n=args.topics,
                    batch_size=size,
                    latency_ms=args.latency_ms,
                    topic_delete_seconds=args.topic_delete_seconds,
                )
                results["topic_teardowns"].append(topics.to_json())
                print(
                    f"bench:   {topics.seconds_to_ready:.1f}s to Ready; {topics.wall_seconds:.1f}s to the last topic "
                    f"CR gone, {topics.total_calls} cloud calls ({topics.batch_calls} topic batch deletes), "
                    f"{topics.early_releases} early releases, {topics.leftovers} left in the cloud",
                    file=sys.stderr,
                    flush=True,
                )
                (args.out / "results.json").write_text(json.dumps(results, indent=2))
    finally:
        stack.stop()
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    (args.out / "results.md").write_text(report.markdown(results))
    report.plot(results, args.out / "teardown-under-rate-limit.png")
    report.plot_topics(results, args.out / "topic-teardown.png")
    report.plot_scale([results], args.out / "scale.png")
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
