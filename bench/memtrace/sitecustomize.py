"""Loaded by the operator process that ``bench/memory.py --trace`` or ``--census`` starts (this
directory is put on its PYTHONPATH). SIGUSR1, when tracemalloc is on (PYTHONTRACEMALLOC): a snapshot
to ``$MEMTRACE_PATH``, then ``$MEMTRACE_PATH.done`` holding the traced (current, peak) bytes. SIGUSR2:
a census of the objects the garbage collector tracks, by type (count, shallow bytes), as JSON to
``$MEMTRACE_PATH.census``, cheap enough for 10,000 CRs where tracing every allocation is not."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import signal
import sys
import tempfile
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


def _census(_signum: int, _frame: FrameType | None) -> None:
    path = Path(os.environ["MEMTRACE_PATH"] + ".census")
    gc.collect()
    allocators = _allocators()
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for item in gc.get_objects():
        kind = type(item)
        name = f"{kind.__module__}.{kind.__qualname__}"
        counts[name] += 1
        sizes[name] += sys.getsizeof(item)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps({"objects": {name: [counts[name], sizes[name]] for name in counts}, "allocators": allocators})
    )
    tmp.rename(path)


if "MEMTRACE_PATH" in os.environ:
    signal.signal(signal.SIGUSR2, _census)
    if tracemalloc.is_tracing():
        signal.signal(signal.SIGUSR1, _snapshot)
