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
predicates, are installed once, and ``install`` fails loudly if kopf's internals change shape.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from kopf._cogs.structs import bodies, references
from kopf._core.reactor import observation

_MARK = "_rocketmq_serves_terminating_namespaces"


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


def install() -> None:
    """Patch kopf once (idempotent); raise if the functions it wraps are not there any more."""
    needed = ("revise_namespaces", "process_discovered_namespace_event", "is_deleted", "get_blockers")
    if not all(hasattr(observation, name) for name in needed):
        raise RuntimeError("kopf's namespace observation changed: re-check rocketmq_operator.wiring.namespaces")
    revise: Any = observation.revise_namespaces
    if not getattr(revise, _MARK, False):
        observation.revise_namespaces = _wrap(revise)
    process: Any = observation.process_discovered_namespace_event
    if not getattr(process, _MARK, False):
        observation.process_discovered_namespace_event = _wrap_events(process)  # type: ignore[assignment]
