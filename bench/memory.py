"""Where the operator's memory goes: its resident memory over a life of N CRs, and with ``--trace`` the
Python allocations that make it, by source line, from inside the real operator process.

    python bench/memory.py --n 2000
    python bench/memory.py --n 2000 --trace          # slower: every allocation is traced
    python bench/memory.py --n 10000 --census        # objects by type at each point, cheap
    python bench/memory.py --n 2000 --census --holders   # and who holds the sets, deques, tasks, ...
    python bench/memory.py --n 4000 --census --peak      # and what is held at each operator's peak
    python bench/memory.py --n 3000 --census --delete-seconds 300   # and while every deletion waits for its proof

The life is the bench's (``bench.scenarios.teardown``, batched, forced): one operator creates the N
CRs and sees them Ready, then a fresh one (as after a restart or a rollout) takes over and tears them
down. At each point it prints the operator's resident memory now and at its peak (VmRSS, VmHWM).
With ``--trace`` the operator runs with ``PYTHONTRACEMALLOC=1`` and ``bench/memtrace`` on its path,
whose ``sitecustomize`` dumps a tracemalloc snapshot on SIGUSR1; the script prints what was allocated
and is still held at each point against the operator's start, by line, and the traced peak. Traced
figures are Python allocations only; tracing itself adds to the resident memory, so compare resident
figures only between runs without ``--trace``. ``--census`` instead counts the objects the garbage
collector tracks, by type, with their shallow sizes (SIGUSR2): what holds the memory, not who
allocated it, at a cost a 10,000-CR run can bear. Each census also splits the resident memory:
pymalloc's arenas, the live objects in them, the free blocks and pools they keep (memory a peak of
handlers in flight leaves behind), and what glibc's ``malloc_trim`` gives back (it is called, so
later points start from a trimmed heap). ``--holders`` adds, per kind of container, the types of
the objects that hold them (one more pass over the heap; slow at 10,000 CRs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Stack
from bench.scenarios import _prepare_cloud, _settings, add_operator_settings, override_settings

MEMTRACE = Path(__file__).resolve().parent / "memtrace"
SITE_PACKAGES = re.compile(r".*/site-packages/|.*/lib/python3\.\d+/")


class Probe:
    """The resident memory of one operator process, and its tracemalloc snapshots when traced."""

    def __init__(self, pid: int, snapshots: Path | None, census: Path | None) -> None:
        self.pid = pid
        self.snapshots = snapshots
        self.census_path = census
        self.base: tracemalloc.Snapshot | None = None
        self.base_census: dict[str, list[int]] | None = None

    def resident(self) -> tuple[float, float]:
        status = Path(f"/proc/{self.pid}/status").read_text()
        rss, hwm = (int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) for key in ("VmRSS", "VmHWM"))  # type: ignore[union-attr]
        return rss / 1024, hwm / 1024

    def point(self, label: str, *, top: int) -> None:
        rss, hwm = self.resident()
        print(f"\n== {label}: operator RSS {rss:.0f} MiB now, {hwm:.0f} MiB peak", flush=True)
        if self.census_path is not None:
            self.census(top=top)
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

    def census(self, *, top: int) -> None:
        assert self.census_path is not None
        self.census_path.unlink(missing_ok=True)
        os.kill(self.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 600
        while not self.census_path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the operator wrote no census")
            time.sleep(0.5)
        self.report(json.loads(self.census_path.read_text()), top=top)

    def peak(self, *, top: int) -> None:
        """The census taken at this operator's highest resident memory (``--peak``), if one was."""
        assert self.census_path is not None
        path = self.census_path.with_name(self.census_path.name.replace(".census", ".peak.census"))
        if not path.exists():
            print("   no census at a peak was taken", flush=True)
            return
        print("\n== at this operator's highest resident memory, as its census found it:", flush=True)
        self.report(json.loads(path.read_text()), top=top)
        path.unlink()  # the next operator's peak is its own

    def report(self, found: dict[str, Any], *, top: int) -> None:
        census: dict[str, list[int]] = found["objects"]
        allocators: dict[str, int] = found["allocators"]
        mib = {key: value / 2**20 for key, value in allocators.items()}
        print(
            f"   allocators: RSS {mib['rss']:.0f} MiB; pymalloc {mib['pymalloc_arenas']:.0f} MiB in arenas, "
            f"{mib['pymalloc_used']:.0f} MiB in live objects, {mib['pymalloc_free_blocks']:.0f} MiB free in used "
            f"pools, {mib['pymalloc_unused_pools']:.0f} MiB in unused pools; RSS after malloc_trim "
            f"{mib['rss_after_malloc_trim']:.0f} MiB",
            flush=True,
        )
        if self.base_census is None:
            self.base_census = census
            return
        base = self.base_census
        grown = {
            name: (count - base.get(name, [0, 0])[0], size - base.get(name, [0, 0])[1])
            for name, (count, size) in census.items()
        }
        total = sum(size for _count, size in grown.values())
        print(f"   objects tracked by the GC, shallow size, grown since the start: {total / 2**20:.1f} MiB; top {top}:")
        for name, (count, size) in sorted(grown.items(), key=lambda item: -item[1][1])[:top]:
            print(f"   {size / 2**20:7.1f} MiB {count:9d} objects  {name}")
        for kind, holders in found.get("holders", {}).items():
            print(f"   {kind} held by: " + ", ".join(f"{holder} {count}" for holder, count in holders), flush=True)


def operator_probe(
    stack: Stack,
    name: str,
    settings: dict[str, str],
    work: Path,
    *,
    trace: bool,
    census: bool,
    holders: bool = False,
    peak: bool = False,
) -> Probe:
    extra = {}
    if trace or census:
        # Ahead of the caller's own PYTHONPATH, kept: a run of another checkout puts its operator there.
        path = os.pathsep.join(p for p in (str(MEMTRACE), os.environ.get("PYTHONPATH", "")) if p)
        extra = {"PYTHONPATH": path, "MEMTRACE_PATH": str(work / "operator.snap")}
        if holders:
            extra["MEMTRACE_HOLDERS"] = "1"
        if peak:
            extra["MEMTRACE_PEAK"] = "1"
    if trace:
        extra["PYTHONTRACEMALLOC"] = "1"
    operator = stack.operator(name, {**settings, **extra})
    return Probe(operator.process.pid or 0, work if trace else None, work / "operator.snap.census" if census else None)


def wait_accepted(stack: Stack, namespace: str, n: int, *, timeout: float) -> int:
    """How many CRs record an accepted deletion, once all do or ``timeout`` passed (whichever first)."""
    deadline = time.monotonic() + timeout
    while True:
        accepted = sum(
            1
            for item in stack.items(namespace)
            if ((item.get("status") or {}).get("deletion") or {}).get("result") == "Accepted"
        )
        if accepted >= n or time.monotonic() > deadline:
            return accepted
        time.sleep(2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--trace", action="store_true", help="trace the operator's allocations (slower)")
    parser.add_argument("--census", action="store_true", help="count the operator's objects by type (cheap)")
    parser.add_argument("--holders", action="store_true", help="with --census, name who holds the sets, deques, ...")
    parser.add_argument(
        "--peak", action="store_true", help="with --census, also a census at each operator's highest RSS"
    )
    parser.add_argument("--top", type=int, default=25, help="lines to print per point, with --trace or --census")
    parser.add_argument(
        "--delete-seconds",
        type=float,
        default=1.0,
        help="how long the cloud takes to delete an instance in the teardown (the bench's: 10); long enough, "
        "and a point is taken once every deletion is accepted, while the passes wait for the proof",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="each cloud call's latency in the teardown")
    add_operator_settings(parser)
    args = parser.parse_args()
    override_settings(args.operator_setting)

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = Path(tmp)
        stack = Stack.start(work / "logs")
        try:
            _prepare_cloud(stack)
            settings = _settings(50, client_rps=200.0)
            namespace = stack.namespace("bench-memory")
            looks = {"trace": args.trace, "census": args.census, "holders": args.holders, "peak": args.peak}
            probe = operator_probe(stack, "create", settings, work, **looks)
            probe.point("creating operator, started, no CRs", top=args.top)
            stack.create_crs(namespace, args.n, force_delete=True)
            probe.point(f"creating operator, {args.n} CRs just created (it is busy with them)", top=args.top)
            ready = stack.wait_ready(namespace, args.n, timeout=300 + args.n * 1.5)
            print(f"\n{args.n} CRs Ready in {ready:.0f}s", flush=True)
            time.sleep(float(settings["DMS_POLL_INTERVAL_SECONDS"]) * 1.5)  # a timer pass over every CR
            probe.point(f"creating operator, {args.n} CRs Ready, one poll interval later", top=args.top)
            if args.peak:
                probe.peak(top=args.top)
            stack.operators.pop().stop()

            probe = operator_probe(stack, "teardown", settings, work, **looks)
            probe.point("restarted operator, started", top=args.top)
            time.sleep(float(settings["DMS_POLL_INTERVAL_SECONDS"]) * 1.5)
            probe.point(f"restarted operator, {args.n} CRs resumed, one poll interval later", top=args.top)
            stack.sim.admin.config(delete_seconds=args.delete_seconds)
            stack.sim.admin.faults(latency_ms=args.latency_ms)
            started = time.monotonic()
            stack.delete_all(namespace)
            probe.point(f"restarted operator, {args.n} CRs just deleted (it is busy with them)", top=args.top)
            if args.delete_seconds >= 60:
                accepted = wait_accepted(stack, namespace, args.n, timeout=args.delete_seconds)
                probe.point(
                    f"restarted operator, {accepted} of {args.n} deletions accepted, the passes waiting for the proof",
                    top=args.top,
                )
            stack.wait_empty(namespace, timeout=600 + args.n * 2.0)
            print(f"\n{args.n} CRs deleted and released in {time.monotonic() - started:.0f}s", flush=True)
            probe.point("restarted operator, every CR released", top=args.top)
            if args.peak:
                probe.peak(top=args.top)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
