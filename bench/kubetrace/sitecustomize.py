"""Loaded by an operator process started with this directory on its PYTHONPATH and ``$KUBETRACE_PATH``
set: logs each of kopf's list and watch requests to ``$KUBETRACE_PATH.<pid>``, one line each, with the
seconds since the process started: when a list starts and ends (and how many objects it brought),
when a watch starts (from which resourceVersion), ends (after how many events) or says ERROR. For
the question "does the operator re-list, and when is its watch cut": a watch that ends long before
``settings.watching.server_timeout`` was closed by the API server, which closes a watcher that
reads too slowly; an ERROR 410 there is followed by a re-list of every object.

    KUBETRACE_PATH=/tmp/kt PYTHONPATH=bench/kubetrace python bench/run.py --n 10000 ...
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

_START = time.time()


def _install(path: str) -> None:
    from kopf._cogs.clients import fetching, watching

    out = open(f"{path}.{os.getpid()}", "a", buffering=1)  # noqa: SIM115 -- open for the process's life

    def log(message: str) -> None:
        out.write(f"{time.time() - _START:8.1f} {message}\n")

    fetch = fetching.fetch_objs
    watch = watching.watch_objs

    async def fetch_objs(*, resource: Any, namespace: Any, **kwargs: Any) -> AsyncIterator[Any]:
        count = 0
        log(f"list start {resource.plural} ns={namespace}")
        async for chunk, version in fetch(resource=resource, namespace=namespace, **kwargs):
            count += len(chunk)
            yield chunk, version
        log(f"list end {resource.plural} ns={namespace} objects={count}")

    async def watch_objs(*, resource: Any, namespace: Any, since: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        log(f"watch start {resource.plural} ns={namespace} since={since}")
        count = 0
        try:
            async for event in watch(resource=resource, namespace=namespace, since=since, **kwargs):
                count += 1
                if event.get("type") == "ERROR":
                    log(f"watch error {resource.plural} {str(event.get('object'))[:200]}")
                yield event
        finally:
            log(f"watch end {resource.plural} ns={namespace} events={count}")

    fetching.fetch_objs = fetch_objs
    watching.watch_objs = watch_objs


if "KUBETRACE_PATH" in os.environ and "rocketmq-operator" in " ".join(sys.argv):
    _install(os.environ["KUBETRACE_PATH"])
