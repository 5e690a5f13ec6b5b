"""Loaded by an operator process started with this directory on its PYTHONPATH and ``$CALLTRACE_PATH``
set: counts the operator's show and list calls by caller (the chain of its own functions that led to
the call) and by second since start, and writes them as JSON to ``$CALLTRACE_PATH.<pid>`` every few
seconds. For the question "who asks show, and when" in a large teardown, where a log line per call
would be the larger cost. It also times the cyclic garbage collector (``gc.callbacks``): per
generation and 10 s since start, how many collections ran and the milliseconds they held the
loop, under keys ``gc | gen<N> | <t>s | count`` and ``... | ms``."""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

_START = time.time()
_calls: Counter[str] = Counter()
_lock = threading.Lock()


def _caller(skip: int = 2) -> str:
    frame: FrameType | None = sys._getframe(skip)
    chain: list[str] = []
    while frame is not None and len(chain) < 6:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("rocketmq_operator."):
            chain.append(f"{module.rsplit('.', 1)[-1]}.{frame.f_code.co_qualname}")
        frame = frame.f_back
    return " <- ".join(chain) or "?"


_gc_started = 0.0


def _time_gc(phase: str, info: dict[str, Any]) -> None:
    global _gc_started
    now = time.perf_counter()
    if phase == "start":
        _gc_started = now
        return
    key = f"gc | gen{info['generation']} | {int(time.time() - _START) // 10 * 10:>5d}s"
    with _lock:
        _calls[f"{key} | count"] += 1
        _calls[f"{key} | ms"] += round((now - _gc_started) * 1000.0)


def _install() -> None:
    from rocketmq_operator.adapters import dms_client

    cls: Any = dms_client.DmsClient
    for name in ("show_instance", "list_instances"):
        original = getattr(cls, name)

        def wrapper(self: Any, *args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            # The coroutine's caller is still on the stack here: the call itself is not yet awaited.
            key = f"{_name} | {int(time.time() - _START) // 10 * 10:>5d}s | {_caller()}"
            with _lock:
                _calls[key] += 1
            return _original(self, *args, **kwargs)

        setattr(cls, name, wrapper)


def _dump_forever(path: Path) -> None:
    while True:
        time.sleep(3.0)
        with _lock:
            data = dict(_calls)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=0, sort_keys=True))
        tmp.rename(path)


if "CALLTRACE_PATH" in os.environ and "rocketmq-operator" in " ".join(sys.argv):
    _install()
    gc.callbacks.append(_time_gc)
    target = Path(f"{os.environ['CALLTRACE_PATH']}.{os.getpid()}")
    threading.Thread(target=_dump_forever, args=(target,), daemon=True, name="calltrace").start()
