"""Every matching namespace is served: one created while the operator starts, and one that is
already terminating when it starts (its finalizers must still be served).

kopf's own namespace observation is driven here with the events it gets from the API server: the
initial listing (``raw_bodies``) and watch events (``raw_events``). On a kopf it was not written
for, the workaround refuses to start instead of patching what it does not know.
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
    revise = observation.revise_namespaces
    process = observation.process_discovered_namespace_event
    namespaces.install()
    try:
        yield
    finally:
        observation.revise_namespaces = revise
        observation.process_discovered_namespace_event = process


async def from_the_watch_stream(insights: references.Insights, *raw_events: Any) -> None:
    for raw_event in raw_events:
        await observation.process_discovered_namespace_event(
            raw_event=raw_event, namespaces=PATTERNS, insights=insights
        )


async def test_kopf_alone_loses_a_namespace_created_between_its_two_listings() -> None:
    # The start-up race this module works around: the namespace is not in kopf's first listing,
    # and the watch stream's own listing (events without a type) is ignored.
    insights = references.Insights()
    await from_the_watch_stream(insights, {"type": None, "object": namespace("team-new")})
    assert insights.namespaces == set()


@pytest.mark.usefixtures("patched")
async def test_a_namespace_in_the_watch_streams_listing_is_served() -> None:
    insights = references.Insights()
    await from_the_watch_stream(
        insights,
        {"type": None, "object": namespace("team-new")},
        {"type": None, "object": namespace("other")},
    )
    assert insights.namespaces == {"team-new"}


@pytest.mark.usefixtures("patched")
async def test_watch_events_are_still_kopfs_business() -> None:
    insights = references.Insights()
    await from_the_watch_stream(
        insights,
        {"type": "ADDED", "object": namespace("team-a")},
        {"type": "DELETED", "object": namespace("team-a")},
    )
    assert insights.namespaces == set()


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
    once = (observation.revise_namespaces, observation.process_discovered_namespace_event)
    namespaces.install()
    assert (observation.revise_namespaces, observation.process_discovered_namespace_event) == once


class TestOnAKopfItWasNotWrittenFor:
    """kopf's private modules promise nothing between releases: the workaround refuses to start."""

    @pytest.fixture
    def untouched(self) -> Iterator[tuple[Any, Any]]:
        before = (observation.revise_namespaces, observation.process_discovered_namespace_event)
        yield before
        assert (observation.revise_namespaces, observation.process_discovered_namespace_event) == before, (
            "nothing may be patched when install refuses"
        )

    @pytest.mark.usefixtures("untouched")
    def test_another_minor_release_stops_start_up_naming_the_version_and_the_patched_function(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(namespaces, "kopf_version", lambda: "1.46.0")
        with pytest.raises(RuntimeError, match=r"kopf 1\.46\.0 .*revise_namespaces.*written for kopf 1\.45\.x"):
            namespaces.install()

    @pytest.mark.usefixtures("untouched")
    @pytest.mark.parametrize("name", ["revise_namespaces", "process_discovered_namespace_event", "get_blockers"])
    def test_a_missing_internal_stops_start_up_naming_it(self, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delattr(observation, name)
        with pytest.raises(RuntimeError, match=rf"kopf \S+: kopf\._core\.reactor\.observation\.{name} is missing"):
            namespaces.install()

    @pytest.mark.usefixtures("untouched")
    def test_an_internal_with_other_arguments_stops_start_up_naming_them(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def revise_namespaces(*, insights: Any, namespaces: Any, raw_events: Any = ()) -> None:
            raise AssertionError("never called")

        monkeypatch.setattr(observation, "revise_namespaces", revise_namespaces)
        with pytest.raises(RuntimeError, match=r"revise_namespaces takes no raw_bodies"):
            namespaces.install()
