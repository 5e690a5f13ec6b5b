"""Loaded by the operator process that ``bench/memory.py --trace`` starts (this directory is put on
its PYTHONPATH, with PYTHONTRACEMALLOC set): SIGUSR1 writes a tracemalloc snapshot of the process to
``$MEMTRACE_PATH`` and then ``$MEMTRACE_PATH.done``, holding the traced (current, peak) bytes."""

from __future__ import annotations

import gc
import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType


def _dump(_signum: int, _frame: FrameType | None) -> None:
    path = Path(os.environ["MEMTRACE_PATH"])
    gc.collect()
    tracemalloc.take_snapshot().dump(str(path))
    current, peak = tracemalloc.get_traced_memory()
    path.with_name(path.name + ".done").write_text(f"{current} {peak}")


if tracemalloc.is_tracing() and "MEMTRACE_PATH" in os.environ:
    signal.signal(signal.SIGUSR1, _dump)
