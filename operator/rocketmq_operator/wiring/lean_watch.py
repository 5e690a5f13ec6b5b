"""Watch events without ``metadata.managedFields``, before kopf keeps or copies a body.

Why: kopf keeps the body of every object with a handler in flight (and once kept the latest of every
object with a timer; the periodic passes that replaced those timers hold each CR's latest body too),
and on each patch deep-copies the body it handled and diffs the copy (``Patch.as_json_patch``). A RocketMQInstance
of ours is about 4 KB of JSON, 1.8 KB of it ``managedFields``, the API server's record of which
manager wrote which field. Neither kopf nor any model here reads it (``wiring.bodies`` dropped it
from every parse already). Measured under tracemalloc at 2,000 CRs: decoded watch bodies were the
largest share of the operator's heap (37.5 MiB of 88), and ``as_json_patch`` was 17% of the
teardown operator's CPU at 10,000 CRs (``bench/results/profile``, README).

The fix wraps kopf's ``watching.infinite_watch`` (which ``kopf._core.reactor.queueing`` looks up at
run time, for every watched kind) and drops the key from each event's object as it arrives, so no
stage of kopf ever holds it. Nothing else in an event changes: bookmarks, types and the rest of the
body pass through. ``install`` refuses, at start-up, a kopf minor release other than the one this
was written for, or an ``infinite_watch`` whose arguments or lookup changed.

The same place tells listeners (``listen``) of each event as it arrives, before kopf queues it for
the object's worker. kopf runs one handler of an object at a time, so an event handler of a CR
whose deletion pass waits for the cloud's proof sees nothing until that wait ends; a listener does
(``wiring.periodic``: a CR gone from the API server is forgotten at once, which ends the wait).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import watching
from kopf._core.reactor import queueing

from rocketmq_operator.wiring.kopf_guard import KopfGuard, kopf_version

WRITTEN_FOR = "1.45"
"""The kopf minor release whose ``kopf._cogs.clients.watching`` this was checked against; pyproject.toml
pins kopf to it. Move both only after re-reading that module in the new release."""

_MODULE = "kopf._cogs.clients.watching"
Watch = Callable[..., AsyncIterator[Any]]

_ORIGINAL: Watch = watching.infinite_watch

logger = logging.getLogger(__name__)

Listener = Callable[[Any], None]
"""Told of each watch event of its resource (kopf's raw event)."""

_listeners: dict[str, list[Listener]] = {}  # by the watched resource's plural


def listen(plural: str, listener: Listener) -> Callable[[], None]:
    """Tell ``listener`` of every watch event of the resource ``plural`` from now on; returns what
    stops that. A listener runs in the watch's own task: it must be quick and must not block."""
    _listeners.setdefault(plural, []).append(listener)

    def stop() -> None:
        told = _listeners.get(plural, [])
        if listener in told:
            told.remove(listener)
        if not told:
            _listeners.pop(plural, None)

    return stop


def _tell(listeners: list[Listener], event: Any) -> None:
    for listener in list(listeners):
        try:
            listener(event)
        except Exception:  # a listener's bug must not end the watch stream of every object
            logger.exception("a watch-event listener failed")


def strip(event: Any) -> Any:
    """The event with its object's ``metadata.managedFields`` removed (in place: kopf made the dict)."""
    if isinstance(event, dict):
        body = event.get("object")
        if isinstance(body, dict):
            metadata = body.get("metadata")
            if isinstance(metadata, dict):
                metadata.pop("managedFields", None)
    return event


def lean(watch: Watch) -> Watch:
    """``watch`` with each event stripped; closing the wrapper closes the stream it wraps."""

    async def lean_watch(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        stream = watch(*args, **kwargs)
        plural = str(getattr(kwargs.get("resource"), "plural", ""))
        try:
            async for event in stream:
                event = strip(event)
                listeners = _listeners.get(plural)
                if listeners:
                    _tell(listeners, event)
                yield event
        finally:
            aclose = getattr(stream, "aclose", None)  # kopf's is an async generator
            if aclose is not None:
                await aclose()

    lean_watch.__wrapped__ = watch  # type: ignore[attr-defined]
    return lean_watch


def check_kopf() -> None:
    """Raise ``RuntimeError`` unless the installed kopf's watch stream is the one this was written for."""
    guard = KopfGuard(
        kopf_version(), "watch events keep managedFields (rocketmq_operator.wiring.lean_watch cannot be installed)"
    )
    guard.release(
        WRITTEN_FOR,
        f"the lean-watch workaround that wraps {_MODULE}.infinite_watch",
        "rocketmq_operator.wiring.lean_watch",
    )
    guard.parameters(_ORIGINAL, f"{_MODULE}.infinite_watch", {"settings", "resource", "namespace"})
    source = inspect.getsource(queueing.watcher)
    if "watching.infinite_watch(" not in source:
        guard.fail("kopf._core.reactor.queueing.watcher no longer calls watching.infinite_watch")
    if "resource=resource" not in source:  # the listeners are told the resource's plural from it
        guard.fail("kopf._core.reactor.queueing.watcher no longer passes resource= to watching.infinite_watch")


def install() -> None:
    """Wrap kopf's ``infinite_watch`` (idempotent); raise ``RuntimeError`` first if kopf is not the one written for."""
    check_kopf()
    watching.infinite_watch = lean(_ORIGINAL)
