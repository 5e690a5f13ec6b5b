"""An operator restarted during a namespace teardown still serves that namespace's finalizers.

kopf's own namespace observation is driven here with the events it gets from the API server: the
initial listing (``raw_bodies``) and watch events (``raw_events``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kopf._cogs.structs import references
from kopf._core.reactor import observation

from rocketmq_operator.wiring import namespaces

PATTERNS = ["team-*"]
CONTENT_REMAINING = [
    {"type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain", "message": "rmqi: 3"},
    {"type": "NamespaceDeletionDiscoveryFailure", "status": "False", "reason": "ResourcesDiscovered"},
]
ALL_GONE = [{"type": "NamespaceContentRemaining", "status": "False", "reason": "ContentDeleted"}]


def namespace(name: str, *, terminating: bool = False, conditions: list[dict[str, str]] | None = None) -> Any:
    metadata: dict[str, Any] = {"name": name}
    if terminating:
        metadata["deletionTimestamp"] = "2026-11-27T11:00:00Z"
    return {"metadata": metadata, "status": {"phase": "Terminating", "conditions": conditions or []}}


def served_after_startup(*bodies: Any) -> set[str]:
    insights = references.Insights()
    observation.revise_namespaces(insights=insights, namespaces=PATTERNS, raw_bodies=list(bodies))
    return set(insights.namespaces)


@pytest.fixture
def patched() -> Iterator[None]:
    original = observation.revise_namespaces
    namespaces.install()
    try:
        yield
    finally:
        observation.revise_namespaces = original


def test_kopf_alone_does_not_serve_a_namespace_that_is_terminating_when_it_starts() -> None:
    # The bug this module works around. When kopf fixes it, this fails: drop the workaround then.
    assert served_after_startup(namespace("team-a", terminating=True, conditions=CONTENT_REMAINING)) == set()


@pytest.mark.usefixtures("patched")
def test_a_matching_namespace_terminating_with_content_is_served_from_startup() -> None:
    served = served_after_startup(
        namespace("team-a", terminating=True, conditions=CONTENT_REMAINING),
        namespace("team-b"),
        namespace("other", terminating=True, conditions=CONTENT_REMAINING),
    )

    assert served == {"team-a", "team-b"}


@pytest.mark.usefixtures("patched")
def test_a_served_namespace_stays_served_until_it_is_really_gone() -> None:
    insights = references.Insights()
    revise = observation.revise_namespaces
    revise(insights=insights, namespaces=PATTERNS, raw_bodies=[namespace("team-a")])

    marked = {"type": "MODIFIED", "object": namespace("team-a", terminating=True, conditions=CONTENT_REMAINING)}
    revise(insights=insights, namespaces=PATTERNS, raw_events=[marked])
    assert insights.namespaces == {"team-a"}

    emptied = {"type": "MODIFIED", "object": namespace("team-a", terminating=True, conditions=ALL_GONE)}
    revise(insights=insights, namespaces=PATTERNS, raw_events=[emptied])
    assert insights.namespaces == set()

    deleted = {"type": "DELETED", "object": namespace("team-a", terminating=True, conditions=CONTENT_REMAINING)}
    revise(insights=insights, namespaces=PATTERNS, raw_events=[deleted])
    assert insights.namespaces == set()


@pytest.mark.usefixtures("patched")
def test_install_is_idempotent() -> None:
    once = observation.revise_namespaces
    namespaces.install()
    assert observation.revise_namespaces is once
