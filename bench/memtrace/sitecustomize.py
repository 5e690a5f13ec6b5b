"""Loaded by the operator process that ``bench/memory.py --trace`` or ``--census`` starts (this
directory is put on its PYTHONPATH). SIGUSR1, when tracemalloc is on (PYTHONTRACEMALLOC): a snapshot
to ``$MEMTRACE_PATH``, then ``$MEMTRACE_PATH.done`` holding the traced (current, peak) bytes. SIGUSR2:
a census of the objects the garbage collector tracks, by type (count, shallow bytes), as JSON to
``$MEMTRACE_PATH.census``, cheap enough for 10,000 CRs where tracing every allocation is not."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
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


def _census(_signum: int, _frame: FrameType | None) -> None:
    path = Path(os.environ["MEMTRACE_PATH"] + ".census")
    gc.collect()
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for item in gc.get_objects():
        kind = type(item)
        name = f"{kind.__module__}.{kind.__qualname__}"
        counts[name] += 1
        sizes[name] += sys.getsizeof(item)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({name: [counts[name], sizes[name]] for name in counts}))
    tmp.rename(path)


if "MEMTRACE_PATH" in os.environ:
    signal.signal(signal.SIGUSR2, _census)
    if tracemalloc.is_tracing():
        signal.signal(signal.SIGUSR1, _snapshot)
