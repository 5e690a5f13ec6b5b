"""Which writes a CR gets over its life, by shape: one forced teardown with the API server's audit log on.

    python bench/audit.py --n 1000

Runs ``bench.scenarios.batched_forced_teardown`` (batched, forced, no cloud rate limit) on a control plane whose
API server writes an audit log of every write to RocketMQInstances and Events, then counts, per CR,
its writes and the shape of each (the verb, the subresource, the keys of the body two levels deep),
so that a write more than expected can be named: which pass wrote what. Prints the shapes by count,
the histogram of writes per CR, and the life of one CR of each count.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.harness import Stack
from bench.scenarios import batched_forced_teardown

POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Request
  verbs: ["patch", "update", "create", "delete"]
  resources:
  - group: "dms.rocketmq-operator.io"
    resources: ["rocketmqinstances", "rocketmqinstances/status"]
- level: Request
  verbs: ["create", "patch"]
  resources:
  - group: ""
    resources: ["events"]
- level: None
"""


def shape(value: Any, depth: int = 0) -> str:
    """The keys of a body, two levels deep: what a write touched, without its values."""
    if not isinstance(value, dict) or depth > 1:
        return "*"
    return "{" + ",".join(f"{key}:{shape(item, depth + 1)}" for key, item in sorted(value.items())) + "}"


def lives(log: Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """Per CR name: its writes in order, as (time, verb, subresource or Event reason, shape)."""
    writes: dict[str, list[tuple[str, str, str, str]]] = collections.defaultdict(list)
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("stage") != "ResponseComplete":
            continue
        ref = entry.get("objectRef", {})
        body = entry.get("requestObject") or {}
        at = entry.get("requestReceivedTimestamp", "")[11:23]
        if ref.get("resource") == "events":
            name = (body.get("involvedObject") or body.get("regarding") or {}).get("name", "?")
            writes[name].append((at, "event", str(body.get("reason", "?")), ""))
        elif ref.get("resource") == "rocketmqinstances":
            writes[ref.get("name", "?")].append((at, entry["verb"], ref.get("subresource", "object"), shape(body)))
    return writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    (work / "policy.yaml").write_text(POLICY)
    log = work / "audit.log"
    flags = [f"--audit-policy-file={work / 'policy.yaml'}", f"--audit-log-path={log}", "--audit-log-maxsize=1000"]
    stack = Stack.start(work, apiserver_args=flags)
    try:
        run = batched_forced_teardown(stack, label="audit", n=args.n)
    finally:
        stack.stop()
    print(
        f"writes per CR (apiserver_request_total, with the user's): {run.writes_per_cr:.3f} {run.writes_per_cr_by_kind}"
    )
    writes = {name: life for name, life in lives(log).items() if name.startswith("mq-")}
    shapes = collections.Counter((verb, sub, body) for life in writes.values() for _, verb, sub, body in life)
    for (verb, sub, body), count in shapes.most_common():
        print(f"{count:6d}  {verb} {sub} {body}")
    histogram = collections.Counter(len(life) for life in writes.values())
    print("writes per CR (audit, with the user's create and delete):", dict(sorted(histogram.items())))
    for count in sorted(histogram):
        name, life = next((name, life) for name, life in sorted(writes.items()) if len(life) == count)
        print(f"-- {name} ({count} writes)")
        for write in life:
            print("   ", *write)
    print(f"audit log: {log}")


if __name__ == "__main__":
    main()
