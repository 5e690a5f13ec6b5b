"""Serve every matching namespace: one created during start-up, and one already terminating.

Why: with ``--namespace`` patterns kopf watches namespaces and serves those that match. A namespace
being deleted whose content is still there (``NamespaceContentRemaining`` / ``...FinalizersRemaining``
conditions True) is kept while kopf already serves it, but kopf never *starts* serving one in that
state (``kopf._core.reactor.observation.revise_namespaces`` only logs "termination pending"). So an
operator that restarts during a namespace teardown (a crash, an OOM kill, a rollout) never sees the
CRs that still carry its finalizer: they and the namespace stay stuck forever, and their cloud
instances are never deleted. That is exactly when the finalizers must be served; the reliability
suite's SIGKILL-during-teardown case found it.

And a race: kopf lists namespaces once at start-up, then starts a watch stream that lists them
again and ignores that second listing (``process_discovered_namespace_event`` returns early on
events without a type). A namespace created between the two listings is in neither the first
list nor the watch's events, so it is never served: its CRs are never created, never deleted.
The reliability suite hit it when a test created its namespace right after the operator came up.

The fix wraps kopf's two functions: after kopf's own revision, every matching namespace that kopf
leaves out only because its termination is pending is added; and the watch stream's listings are
revised like its events (only a change notifies the orchestrator). The wrappers use kopf's own
predicates and are installed once. kopf's private modules promise nothing between releases, so
``install`` refuses, at start-up, a kopf minor release other than the one it was written for, and
one whose patched or used functions are missing or take other arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from kopf._cogs.structs import bodies, references
from kopf._core.reactor import observation

from rocketmq_operator.wiring.kopf_guard import KopfGuard, kopf_version

_MARK = "_rocketmq_serves_terminating_namespaces"

WRITTEN_FOR = "1.45"
"""The kopf minor release whose ``kopf._core.reactor.observation`` these wrappers were checked against;
pyproject.toml pins kopf to it. Move both only after re-reading that module in the new release."""

_MODULE = "kopf._core.reactor.observation"
_SHAPES: dict[str, frozenset[str]] = {
    # patched: the wrappers call them with these keyword arguments
    "revise_namespaces": frozenset({"insights", "namespaces", "raw_events", "raw_bodies"}),
    "process_discovered_namespace_event": frozenset({"raw_event", "namespaces", "insights"}),
    # used by the wrappers
    "is_deleted": frozenset({"raw_event"}),
    "get_blockers": frozenset({"raw_event"}),
}


def _terminating_with_content(raw_event: bodies.RawEvent) -> bool:
    if raw_event["type"] == "DELETED":
        return False  # really gone: nothing left to serve
    return bool(observation.is_deleted(raw_event) and observation.get_blockers(raw_event))


def _wrap(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def revise_namespaces(
        *,
        insights: references.Insights,
        namespaces: Collection[references.NamespacePattern],
        raw_events: Collection[bodies.RawEvent] = (),
        raw_bodies: Collection[bodies.RawBody] = (),
    ) -> None:
        original(insights=insights, namespaces=namespaces, raw_events=raw_events, raw_bodies=raw_bodies)
        events = [*raw_events, *(bodies.RawEvent(type=None, object=body) for body in raw_bodies)]
        for raw_event in events:
            name = references.NamespaceName(raw_event["object"]["metadata"]["name"])
            matched = any(references.match_namespace(name, pattern) for pattern in namespaces)
            if matched and _terminating_with_content(raw_event):
                insights.namespaces.add(name)

    setattr(revise_namespaces, _MARK, True)
    return revise_namespaces


def _wrap_events(original: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(original)
    async def process_discovered_namespace_event(
        *,
        raw_event: bodies.RawEvent,
        namespaces: Collection[references.NamespacePattern],
        insights: references.Insights,
        **kwargs: Any,
    ) -> None:
        if raw_event["type"] is not None:
            await original(raw_event=raw_event, namespaces=namespaces, insights=insights, **kwargs)
            return
        # A listing of the watch stream: kopf ignores it; a namespace born since its first listing
        # would be lost. Revise from it too, and wake the orchestrator only if something changed.
        async with insights.revised:
            before = set(insights.namespaces)
            observation.revise_namespaces(raw_events=[raw_event], insights=insights, namespaces=namespaces)
            if insights.namespaces != before:
                insights.revised.notify_all()

    setattr(process_discovered_namespace_event, _MARK, True)
    return process_discovered_namespace_event


def check_kopf() -> None:
    """Raise ``RuntimeError`` unless the installed kopf is the one the wrappers were written for."""
    guard = KopfGuard(
        kopf_version(), "the namespace-watch workaround (rocketmq_operator.wiring.namespaces) cannot be installed"
    )
    patched = f"{_MODULE}.revise_namespaces and .process_discovered_namespace_event"
    guard.release(
        WRITTEN_FOR, f"the namespace-watch workaround that patches {patched}", "rocketmq_operator.wiring.namespaces"
    )
    for name, needed in _SHAPES.items():
        function = getattr(observation, name, None)
        if function is None:
            guard.fail(f"{_MODULE}.{name} is missing")
        guard.parameters(function, f"{_MODULE}.{name}", needed)


def install() -> None:
    """Patch kopf once (idempotent); raise ``RuntimeError`` first if kopf is not what it was written for."""
    check_kopf()
    revise: Any = observation.revise_namespaces
    if not getattr(revise, _MARK, False):
        observation.revise_namespaces = _wrap(revise)
    process: Any = observation.process_discovered_namespace_event
    if not getattr(process, _MARK, False):
        observation.process_discovered_namespace_event = _wrap_events(process)  # type: ignore[assignment]
