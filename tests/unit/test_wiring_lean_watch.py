"""Watch events reach kopf without ``metadata.managedFields``: nothing reads them, and kopf keeps a
body per object with a handler in flight and deep-copies it on every patch. Everything else passes through."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from kopf._cogs.clients import watching

from rocketmq_operator.wiring import lean_watch

MANAGED = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}] * 20


def event(name: str, kind: str = "MODIFIED") -> dict[str, Any]:
    return {
        "type": kind,
        "object": {
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "7", "managedFields": MANAGED},
            "spec": {"a": 1},
            "status": {"b": [1, 2]},
        },
    }


class Recorded:
    """A stand-in for kopf's watch stream, recording its arguments and whether it was closed."""

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.kwargs: dict[str, Any] = {}
        self.closed = False

    async def __call__(self, **kwargs: Any) -> AsyncIterator[Any]:
        self.kwargs = kwargs
        try:
            for item in self.events:
                yield item
        finally:
            self.closed = True


class TestEventsLoseOnlyManagedFields:
    async def test_each_object_arrives_without_managed_fields_and_otherwise_unchanged(self) -> None:
        events = [event("a", "ADDED"), event("b"), event("a", "DELETED")]
        expected = copy.deepcopy(events)
        for item in expected:
            del item["object"]["metadata"]["managedFields"]
        stream = Recorded(events)
        seen = [item async for item in lean_watch.lean(stream)(settings="s", resource="r", namespace=None)]
        assert seen == expected
        assert stream.kwargs == {"settings": "s", "resource": "r", "namespace": None}

    async def test_bookmarks_and_bodies_without_metadata_pass_through(self) -> None:
        odd: list[Any] = [
            watching.Bookmark.LISTED,
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
            {"type": "ERROR", "object": {"code": 410}},
            {"type": "MODIFIED", "object": {"metadata": None}},
        ]
        stream = Recorded(copy.deepcopy(odd))
        seen = [item async for item in lean_watch.lean(stream)()]
        assert seen == odd


class TestTheWrappedStream:
    async def test_closing_the_lean_stream_closes_kopfs(self) -> None:
        stream = Recorded([event("a"), event("b"), event("c")])
        lean = lean_watch.lean(stream)()
        assert (await anext(lean))["object"]["metadata"]["name"] == "a"
        await lean.aclose()  # as kopf's watcher does when it is cancelled
        assert stream.closed

    def test_install_puts_the_lean_stream_where_kopfs_queueing_finds_it(self) -> None:
        original = watching.infinite_watch
        try:
            lean_watch.install()
            lean_watch.install()  # twice: still one wrapper around kopf's own
            assert watching.infinite_watch.__wrapped__ is lean_watch._ORIGINAL  # type: ignore[attr-defined]
        finally:
            watching.infinite_watch = original  # type: ignore[assignment]


class TestListeners:
    """Told of each event as the stream delivers it, before kopf queues it for the object's worker."""

    async def test_each_event_of_its_resource_is_told_before_it_is_handed_on(self) -> None:
        told: list[str] = []
        stop = lean_watch.listen("rocketmqinstances", lambda item: told.append(item["object"]["metadata"]["name"]))
        try:
            stream = Recorded([event("a", "ADDED"), event("a", "DELETED")])
            async for item in lean_watch.lean(stream)(resource=SimpleNamespace(plural="rocketmqinstances")):
                assert told[-1] == item["object"]["metadata"]["name"]
                assert "managedFields" not in item["object"]["metadata"]
            assert len(told) == 2
            async for _ in lean_watch.lean(Recorded([event("t")]))(resource=SimpleNamespace(plural="rocketmqtopics")):
                pass
            assert len(told) == 2, "not told of another resource's events"
        finally:
            stop()
        async for _ in lean_watch.lean(Recorded([event("b")]))(resource=SimpleNamespace(plural="rocketmqinstances")):
            pass
        assert len(told) == 2, "not told once stopped"

    async def test_a_failing_listener_does_not_end_the_stream(self, caplog: pytest.LogCaptureFixture) -> None:
        def broken(item: Any) -> None:
            raise KeyError("a listener's bug")

        stop = lean_watch.listen("rocketmqinstances", broken)
        resource = SimpleNamespace(plural="rocketmqinstances")
        try:
            names = [
                item["object"]["metadata"]["name"]
                async for item in lean_watch.lean(Recorded([event("a"), event("b")]))(resource=resource)
            ]
        finally:
            stop()
        assert names == ["a", "b"]
        assert "a watch-event listener failed" in caplog.text
