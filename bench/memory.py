"""Where the operator's memory goes: its resident memory over a life of N CRs, and with ``--trace`` the
Python allocations that make it, by source line, from inside the real operator process.

    python bench/memory.py --n 2000
    python bench/memory.py --n 2000 --trace          # slower: every allocation is traced

The life is the bench's (``bench.scenarios.teardown``, batched, forced): one operator creates the N
CRs and sees them Ready, then a fresh one (as after a restart or a rollout) takes over and tears them
down. At each point it prints the operator's resident memory now and at its peak (VmRSS, VmHWM).
With ``--trace`` the operator runs with ``PYTHONTRACEMALLOC=1`` and ``bench/memtrace`` on its path,
whose ``sitecustomize`` dumps a tracemalloc snapshot on SIGUSR1; the script prints what was allocated
and is still held at each point against the operator's start, by line, and the traced peak. Traced
figures are Python allocations only; tracing itself adds to the resident memory, so compare resident
figures only between runs without ``--trace``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Stack
from bench.scenarios import _prepare_cloud, _settings

MEMTRACE = Path(__file__).resolve().parent / "memtrace"
SITE_PACKAGES = re.compile(r".*/site-packages/|.*/lib/python3\.\d+/")


class Probe:
    """The resident memory of one operator process, and its tracemalloc snapshots when traced."""

    def __init__(self, pid: int, snapshots: Path | None) -> None:
        self.pid = pid
        self.snapshots = snapshots
        self.base: tracemalloc.Snapshot | None = None

    def resident(self) -> tuple[float, float]:
        status = Path(f"/proc/{self.pid}/status").read_text()
        rss, hwm = (int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) for key in ("VmRSS", "VmHWM"))  # type: ignore[union-attr]
        return rss / 1024, hwm / 1024

    def point(self, label: str, *, top: int) -> None:
        rss, hwm = self.resident()
        print(f"\n== {label}: operator RSS {rss:.0f} MiB now, {hwm:.0f} MiB peak", flush=True)
        if self.snapshots is None:
            return
        path = self.snapshots / "operator.snap"
        done = path.with_name(path.name + ".done")
        done.unlink(missing_ok=True)
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 300
        while not done.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the operator wrote no tracemalloc snapshot")
            time.sleep(0.5)
        current, peak = (int(v) for v in done.read_text().split())
        snapshot = tracemalloc.Snapshot.load(str(path))
        print(f"   traced: {current / 2**20:.1f} MiB held, {peak / 2**20:.1f} MiB peak", flush=True)
        if self.base is None:
            self.base = snapshot
            return
        stats = snapshot.compare_to(self.base, "lineno")
        held = sum(stat.size_diff for stat in stats)
        print(f"   held since the start: {held / 2**20:.1f} MiB; the top {top} lines:")
        for stat in stats[:top]:
            frame = stat.traceback[0]
            where = SITE_PACKAGES.sub("", frame.filename)
            print(f"   {stat.size_diff / 2**20:7.1f} MiB {stat.count_diff:9d} blocks  {where}:{frame.lineno}")


def operator_probe(stack: Stack, name: str, settings: dict[str, str], work: Path, trace: bool) -> Probe:
    extra = {}
    if trace:
        extra = {"PYTHONTRACEMALLOC": "1", "PYTHONPATH": str(MEMTRACE), "MEMTRACE_PATH": str(work / "operator.snap")}
    operator = stack.operator(name, {**settings, **extra})
    return Probe(operator.process.pid or 0, work if trace else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--trace", action="store_true", help="trace the operator's allocations (slower)")
    parser.add_argument("--top", type=int, default=25, help="lines to print per point, with --trace")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = Path(tmp)
        stack = Stack.start(work / "logs")
        try:
            _prepare_cloud(stack)
            settings = _settings(50, client_rps=200.0)
            namespace = stack.namespace("bench-memory")
            probe = operator_probe(stack, "create", settings, work, args.trace)
            probe.point("creating operator, started, no CRs", top=args.top)
            stack.create_crs(namespace, args.n, force_delete=True)
            ready = stack.wait_ready(namespace, args.n, timeout=300 + args.n * 1.5)
            print(f"\n{args.n} CRs Ready in {ready:.0f}s", flush=True)
            time.sleep(float(settings["DMS_POLL_INTERVAL_SECONDS"]) * 1.5)  # a timer pass over every CR
            probe.point(f"creating operator, {args.n} CRs Ready, one poll interval later", top=args.top)
            stack.operators.pop().stop()

            probe = operator_probe(stack, "teardown", settings, work, args.trace)
            probe.point("restarted operator, started", top=args.top)
            time.sleep(float(settings["DMS_POLL_INTERVAL_SECONDS"]) * 1.5)
            probe.point(f"restarted operator, {args.n} CRs resumed, one poll interval later", top=args.top)
            started = time.monotonic()
            stack.delete_all(namespace)
            stack.wait_empty(namespace, timeout=600 + args.n * 2.0)
            print(f"\n{args.n} CRs deleted and released in {time.monotonic() - started:.0f}s", flush=True)
            probe.point("restarted operator, every CR released", top=args.top)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
