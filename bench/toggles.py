"""kopf's index pre-population at start: its ``ToggleSet`` against the operator's counted one.

    python bench/toggles.py --n 1000,2000,4000,10000

An operator restarted against N existing CRs holds every handler until each CR is indexed: one
toggle per CR in one ``ToggleSet(all)``, each CR's worker dropping its own toggle and then waiting
for the whole set. This replays that pattern (the watcher adds a toggle and starts a worker per
object; the orchestration blocker is dropped at the end) with kopf's class and with
``rocketmq_operator.wiring.toggles.CountedToggleSet``, in the same process, and reports the time to
the last worker released and the ratio. kopf's class is skipped above ``--kopf-max`` (its cost grows
faster than N squared); the report says so.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))

from kopf._cogs.aiokits import aiotoggles

from rocketmq_operator.wiring.toggles import CountedToggleSet


async def prepopulate(kind: type[aiotoggles.ToggleSet], n: int) -> float:
    """Seconds from the first object listed to the last worker let through."""
    toggles = kind(all)
    blocker = await toggles.make_toggle(name="orchestration blocker")

    async def worker(own: aiotoggles.Toggle) -> None:
        await asyncio.sleep(0)  # the worker indexes its object
        await toggles.drop_toggle(own)
        await toggles.wait_for(True)

    started = time.perf_counter()
    workers = []
    for i in range(n):
        toggles.is_on()  # the watcher checks this before each new object
        own = await toggles.make_toggle(name=f"object {i}")
        workers.append(asyncio.create_task(worker(own)))
        await asyncio.sleep(0)
    await toggles.drop_toggle(blocker)
    await asyncio.gather(*workers)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1000,2000,4000,10000", help="objects listed at start, comma-separated")
    parser.add_argument("--kopf-max", type=int, default=4000, help="largest N run with kopf's own ToggleSet")
    args = parser.parse_args()
    print("| objects | kopf ToggleSet | counted | ratio |")
    print("|---|---|---|---|")
    for n in (int(part) for part in args.n.split(",") if part):
        counted = asyncio.run(prepopulate(CountedToggleSet, n))
        if n > args.kopf_max:
            print(f"| {n:,} | not run (> --kopf-max) | {counted:.3f} s | |")
            continue
        original = asyncio.run(prepopulate(aiotoggles.ToggleSet, n))
        print(f"| {n:,} | {original:.3f} s | {counted:.3f} s | {original / counted:,.0f}x |")


if __name__ == "__main__":
    main()
