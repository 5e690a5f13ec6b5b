"""Profile the operator through one teardown with py-spy: where its CPU goes, as top frames.

    python bench/profile.py --n 1000 --out bench/results/profile

Runs the bench's forced, batched teardown of N CRs (``bench.scenarios.batched_forced_teardown``) with py-spy
sampling each operator process (the one that creates the CRs and the one that deletes them), and
writes, per phase, the raw collapsed stacks (``<phase>.txt``, for flame graph tools) and
``top-frames.md``: the frames with the most samples, by their own time and by their total time.
Needs ``py-spy`` (``pip install py-spy``; not a dependency of the operator or its tests).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Stack
from bench.scenarios import batched_forced_teardown
from devstack import OperatorProcess


def top_frames(raw: Path, count: int = 25) -> list[str]:
    """The ``count`` frames with most samples, by own time and by total time, as markdown rows."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, weight = line.rpartition(" ")
        if not stack or not weight.isdigit():
            continue
        n = int(weight)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    if not samples:
        return ["(no samples)"]
    rows = [f"{samples} samples", "", "| own | frame |", "|---|---|"]
    rows += [f"| {c / samples:.1%} | `{f[:150]}` |" for f, c in own.most_common(count)]
    rows += ["", "| total | frame |", "|---|---|"]
    rows += [f"| {c / samples:.1%} | `{f[:150]}` |" for f, c in total.most_common(count * 2)]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=40, help="samples per second")
    parser.add_argument("--out", type=Path, default=Path("bench/results/profile"))
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    args.out.mkdir(parents=True, exist_ok=True)
    spies: list[tuple[str, subprocess.Popen[bytes]]] = []
    start = Stack.operator

    def spied(self: Stack, name: str, settings: dict[str, str]) -> OperatorProcess:
        process = start(self, name, settings)
        phase = name.rsplit("-", 1)[-1]  # create | teardown
        raw = args.out / f"{phase}.txt"
        command = [spy, "record", "-p", str(process.process.pid), "-r", str(args.rate), "-f", "raw"]
        spies.append((phase, subprocess.Popen([*command, "-o", str(raw), "--nonblocking"])))
        return process

    Stack.operator = spied  # type: ignore[method-assign]
    stack = Stack.start(Path("bench/.logs/profile").absolute())
    try:
        run = batched_forced_teardown(stack, label="batched", n=args.n)
    finally:
        stack.stop()
    lines = [f"# Where the operator's CPU goes: {args.n} CRs created, then deleted together (batched, forced)", ""]
    lines.append(
        f"Command: `python bench/profile.py --n {args.n}` (py-spy, {args.rate} samples/s). Teardown: "
        f"{run.wall_seconds:.1f} s to the last CR gone, operator CPU {run.operator_cpu_seconds:.1f} s."
    )
    for phase, process in spies:
        process.wait(timeout=60)
        lines += ["", f"## {phase}", "", *top_frames(args.out / f"{phase}.txt")]
    (args.out / "top-frames.md").write_text("\n".join(lines) + "\n")
    print((args.out / "top-frames.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
