"""Serve a matching namespace that is already terminating when the operator starts.

Why: with ``--namespace`` patterns kopf watches namespaces and serves those that match. A namespace
being deleted whose content is still there (``NamespaceContentRemaining`` / ``...FinalizersRemaining``
conditions True) is kept while kopf already serves it, but kopf never *starts* serving one in that
state (``kopf._core.reactor.observation.revise_namespaces`` only logs "termination pending"). So an
operator that restarts during a namespace teardown (a crash, an OOM kill, a rollout) never sees the
CRs that still carry its finalizer: they and the namespace stay stuck forever, and their cloud
instances are never deleted. That is exactly when the finalizers must be served; the reliability
suite's SIGKILL-during-teardown case found it.

The fix wraps kopf's function: after kopf's own revision, every matching namespace that kopf
leaves out only because its termination is pending is added. The wrapper uses kopf's own
predicates, is installed once, and ``install`` fails loudly if kopf's internals change shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
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


def install() -> None:
    """Patch kopf once (idempotent); raise if the function it wraps is not there any more."""
    original: Any = getattr(observation, "revise_namespaces", None)
    if original is None or not hasattr(observation, "is_deleted") or not hasattr(observation, "get_blockers"):
        raise RuntimeError("kopf's namespace observation changed: re-check rocketmq_operator.wiring.namespaces")
    if getattr(original, _MARK, False):
        return
    observation.revise_namespaces = _wrap(original)
