"""Loaded by the operator process that ``bench/memory.py --trace`` or ``--census`` starts (this
directory is put on its PYTHONPATH). SIGUSR1, when tracemalloc is on (PYTHONTRACEMALLOC): a snapshot
to ``$MEMTRACE_PATH``, then ``$MEMTRACE_PATH.done`` holding the traced (current, peak) bytes. SIGUSR2:
a census of the objects the garbage collector tracks, by type (count, shallow bytes), as JSON to
``$MEMTRACE_PATH.census``, cheap enough for 10,000 CRs where tracing every allocation is not.
With ``$MEMTRACE_PEAK`` set, a thread watches the resident memory and, at each new high at least
``PEAK_STEP`` above the last, has the same census taken into ``$MEMTRACE_PATH.peak.census``: what
the memory held at the peak, which no fixed point of the life catches."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType


def _snapshot(_signum: int, _frame: FrameType | None) -> None:
    path = Path(os.environ["MEMTRACE_PATH"])
    gc.collect()
    tracemalloc.take_snapshot().dump(str(path))
    current, peak = tracemalloc.get_traced_memory()
    path.with_name(path.name + ".done").write_text(f"{current} {peak}")


def _resident() -> int:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024  # type: ignore[union-attr]


def _pymalloc() -> dict[str, int]:
    """pymalloc's own account (``sys._debugmallocstats``, which writes to the C stderr): the bytes in
    live small objects, and the bytes its arenas hold free, which the process keeps resident."""
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode()
    figures = {}
    for key, pattern in {
        "pymalloc_arenas": r"(\d+) arenas \* \d+ bytes/arena\s+=\s+([\d,]+)",
        "pymalloc_used": r"# bytes in allocated blocks\s+=\s+([\d,]+)",
        "pymalloc_free_blocks": r"# bytes in available blocks\s+=\s+([\d,]+)",
        "pymalloc_unused_pools": r"unused pools \* \d+ bytes\s+=\s+([\d,]+)",
    }.items():
        found = re.search(pattern, text)
        figures[key] = int(found.groups()[-1].replace(",", "")) if found else -1
    return figures


def _allocators() -> dict[str, int]:
    """The resident memory against what pymalloc holds, then again after glibc's ``malloc_trim``
    gave back the free memory it could: how much of the resident memory is not live objects."""
    figures = {"rss": _resident(), **_pymalloc()}
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    figures["rss_after_malloc_trim"] = _resident()
    return figures


HELD = ("builtins.set", "collections.deque", "builtins.dict", "_asyncio.Task", "_asyncio.Future")
"""The kinds whose holders the census names: the containers that grow with the CRs."""


def _name(item: object) -> str:
    kind = type(item)
    return f"{kind.__module__}.{kind.__qualname__}"


def _holders(objects: list[object]) -> dict[str, list[tuple[str, int]]]:
    """Who holds the objects of the kinds in HELD, by the holder's type. A holder that is an
    object's ``__dict__`` is named by that object; a coroutine by its function, as are the
    coroutines themselves (they are held by their Task or by the coroutine awaiting them)."""
    owner_of_dict = {id(vars(o)): _name(o) for o in objects if isinstance(getattr(o, "__dict__", None), dict)}
    held: dict[str, Counter[str]] = {kind: Counter() for kind in (*HELD, "builtins.coroutine")}
    seen: set[int] = set()
    for holder in objects:
        if isinstance(holder, dict) and id(holder) in owner_of_dict:
            holder_name = owner_of_dict[id(holder)]
        elif hasattr(holder, "cr_code"):
            holder_name = f"coroutine {holder.cr_code.co_qualname}"
        else:
            holder_name = _name(holder)
        for item in gc.get_referents(holder):
            kind = _name(item)
            if kind in held and id(item) not in seen and id(item) not in owner_of_dict:
                seen.add(id(item))
                held[kind][holder_name] += 1
        if hasattr(holder, "cr_code"):
            held["builtins.coroutine"][
                f"{holder.cr_code.co_filename.rsplit('/', 2)[-1]}:{holder.cr_code.co_qualname}"
            ] += 1
    return {kind: counter.most_common(12) for kind, counter in held.items()}


PEAK_STEP = 16 * 2**20
PEAK_GAP_SECONDS = 20.0
"""A peak census at most this often: each one stops the operator for seconds at 10,000 CRs."""


def _census(signum: int, _frame: FrameType | None) -> None:
    path = Path(os.environ["MEMTRACE_PATH"] + (".peak.census" if signum == signal.SIGPROF else ".census"))
    gc.collect()
    allocators = _allocators()
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    objects = gc.get_objects()
    for item in objects:
        name = _name(item)
        counts[name] += 1
        sizes[name] += sys.getsizeof(item)
    holders = _holders(objects) if os.environ.get("MEMTRACE_HOLDERS") else {}
    del objects
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps(
            {
                "objects": {name: [counts[name], sizes[name]] for name in counts},
                "allocators": allocators,
                "holders": holders,
            }
        )
    )
    tmp.rename(path)


def _watch_the_peak() -> None:
    highest = 0
    while True:
        time.sleep(1.0)
        rss = _resident()
        if rss >= highest + PEAK_STEP:
            highest = rss
            # Its own signal (SIGUSR2 is the script's): the census runs in the main thread, between bytecodes.
            os.kill(os.getpid(), signal.SIGPROF)
            time.sleep(PEAK_GAP_SECONDS)


if "MEMTRACE_PATH" in os.environ:
    signal.signal(signal.SIGUSR2, _census)
    if os.environ.get("MEMTRACE_PEAK"):
        signal.signal(signal.SIGPROF, _census)
        threading.Thread(target=_watch_the_peak, name="memtrace-peak", daemon=True).start()
    if tracemalloc.is_tracing():
        signal.signal(signal.SIGUSR1, _snapshot)
