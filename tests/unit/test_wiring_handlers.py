"""The kopf wiring's own decisions, checked without an API server."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import aiohttp
import kopf
import pytest
from kopf._core.engines import posting, probing

from rocketmq_operator.core import cloud
from rocketmq_operator.core.resource import DeletionPolicy
from rocketmq_operator.core.status import StepResult
from rocketmq_operator.services.activity import Activity
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.wiring import child_handlers, handlers, lean_watch, peering, periodic
from rocketmq_operator.wiring.accounts import Accounts
from rocketmq_operator.wiring.runtime import Runtime
from rocketmq_operator.wiring.status_patches import StatusPatchError

from .builders import cr, make_settings, view
from .fake_cloud import FakeCloud

KUBE_SYSTEM: dict[str, Any] = {"kube-system": [("uid-of-kube-system", None)], "team-a": [("uid-a", "Orphan")]}


class TestTheClusterIdOfTheOwnerTags:
    @pytest.mark.parametrize(
        ("env", "namespaces", "expected"),
        [
            pytest.param({"DMS_CLUSTER_ID": "prod-eu"}, KUBE_SYSTEM, "prod-eu", id="the setting wins"),
            pytest.param({}, KUBE_SYSTEM, "uid-of-kube-system", id="else the uid of kube-system"),
            pytest.param({}, {"team-a": [("uid-a", None)]}, None, id="unknown: kube-system not seen (yet)"),
            pytest.param({}, {}, None, id="unknown: no namespace seen (yet)"),
        ],
    )
    def test_is_the_setting_or_the_kube_system_uid_and_never_made_up(
        self, env: dict[str, str], namespaces: dict[str, Any], expected: str | None
    ) -> None:
        options = handlers.RunOptions(settings=make_settings(**env))
        assert handlers.cluster_id_of(options, namespaces) == expected


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _no_accounts(*_: Any) -> Runtime:
    raise AssertionError("no account CR in these tests")


@asynccontextmanager
async def liveness_endpoint(runtime: Runtime, follower: peering.Follower | None = None) -> AsyncIterator[str]:
    """kopf's own health endpoint (what ``--liveness`` serves) with the operator's probes and runtime."""
    memo = kopf.Memo(runtime=runtime, accounts=Accounts(make_settings(), default=runtime, start=_no_accounts))
    if follower is not None:
        memo["peering_follower"] = follower
    registry = handlers.build_registry(handlers.RunOptions(settings=make_settings()))
    url = f"http://127.0.0.1:{free_port()}/healthz"
    ready = asyncio.Event()
    reporter = asyncio.create_task(
        probing.health_reporter(
            url,
            memo=memo,
            indices={},
            registry=registry,
            settings=kopf.OperatorSettings(),
            ready_flag=ready,
        )
    )
    await ready.wait()
    try:
        yield url
    finally:
        reporter.cancel()
        await asyncio.wait([reporter])


@asynccontextmanager
async def running_runtime() -> AsyncIterator[Runtime]:
    runtime = Runtime.assemble(
        make_settings(),
        client=FakeCloud(),
        metrics=Metrics(),
        cluster_id=lambda: "cluster-1",
        known_ids=lambda: (),
    )
    await runtime.start_loops()
    try:
        yield runtime
    finally:
        await runtime.aclose()


async def probe(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


class TestTheLivenessEndpoint:
    async def test_answers_ok_while_every_background_loop_runs(self) -> None:
        async with running_runtime() as runtime, liveness_endpoint(runtime) as url:
            status, body = await probe(url)
        assert status == 200
        assert json.loads(body) == {"cloud": "ok", "loops": "ok"}

    @pytest.mark.parametrize("task_name", ["instance-observer", "deletion-confirmer", "failed-instance-sweep"])
    async def test_fails_once_a_background_loop_died_so_kubernetes_restarts_the_pod(self, task_name: str) -> None:
        async with running_runtime() as runtime, liveness_endpoint(runtime) as url:
            (task,) = [t for t in asyncio.all_tasks() if t.get_name() == task_name]
            task.cancel()
            await asyncio.wait([task])
            status, _body = await probe(url)
            assert runtime.failures() == [f"{task_name} was cancelled"]
        assert status == 500

    async def test_fails_once_the_loop_that_follows_the_peering_pause_died(self) -> None:
        # Dead, it would leave the replica paused, or working, for good, whatever Kopf decides next.
        follower = peering.Follower()
        async with running_runtime() as runtime:
            follower.start(runtime.activity)
            try:
                async with liveness_endpoint(runtime, follower) as url:
                    assert follower.failure() is None
                    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "peering-follower"]
                    task.cancel()
                    await asyncio.wait([task])
                    status, _body = await probe(url)
                    assert follower.failure() == "peering-follower was cancelled"
            finally:
                await follower.aclose()
        assert status == 500


def follow_handler(registry: kopf.OperatorRegistry) -> Any:
    (handler,) = [h for h in registry._watching.get_all_handlers() if h.id == "instance-follow"]
    return handler.fn


class TestACrGoneFromTheApiServer:
    """The ``follow`` event handler: a CR removed by any path (finalizer removed by hand, released by
    another replica) leaves nothing behind in this process."""

    @pytest.mark.parametrize(("event_type", "forgotten"), [("DELETED", True), ("MODIFIED", False), (None, False)])
    async def test_is_forgotten_by_every_service_once_deleted(self, event_type: str | None, forgotten: bool) -> None:
        fake = FakeCloud(delete_seconds=600.0)
        fake.add(view("i-1"))
        runtime = Runtime.assemble(
            make_settings(DMS_DELETE_CONFIRM_WAIT_SECONDS="0"),
            client=fake,
            metrics=Metrics(),
            cluster_id=lambda: "cluster-1",
            known_ids=lambda: (),
        )
        resource = cr(status={"instanceId": "i-1"}, deleting=True)
        try:
            step = await runtime.deletions.finalize(
                resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE
            )
            assert step.patch["deletion"]["result"] == "Accepted"
            assert runtime.deletions.remembers(resource.metadata.uid) and runtime.memory.tracks(resource.metadata.uid)

            follow = follow_handler(handlers.build_registry(handlers.RunOptions(settings=make_settings())))
            await follow(
                event={"type": event_type, "object": {}},
                uid=resource.metadata.uid,
                memo=kopf.Memo(accounts=Accounts(make_settings(), default=runtime, start=_no_accounts)),
            )
        finally:
            await runtime.aclose()
        assert runtime.deletions.remembers(resource.metadata.uid) is not forgotten
        assert runtime.memory.tracks(resource.metadata.uid) is not forgotten
        remembered = runtime.metrics.registry.get_sample_value("rocketmq_operator_remembered_crs")
        assert remembered == (0 if forgotten else 1)


@asynccontextmanager
async def deletion_handler(
    fake: FakeCloud, handler_id: str = "finalize", **env: str
) -> AsyncIterator[tuple[Any, kopf.Memo, asyncio.Queue[Any]]]:
    """The kopf deletion handler ``handler_id`` over a runtime on ``fake`` whose loops run (settings:
    ``env`` on short waits), the memo kopf passes it, and the queue where kopf takes the Events it posts."""
    settings = make_settings(**{"DMS_VERIFY_INTERVAL_SECONDS": "0.05", "DMS_BATCH_WINDOW_SECONDS": "0.05", **env})
    runtime = Runtime.assemble(
        settings, client=fake, metrics=Metrics(), cluster_id=lambda: "cluster-1", known_ids=lambda: ()
    )
    await runtime.start_loops()
    registry = handlers.build_registry(handlers.RunOptions(settings=settings))
    (handler,) = [h for h in registry._changing.get_all_handlers() if h.id == handler_id]
    events: asyncio.Queue[Any] = asyncio.Queue()
    posting.settings_var.set(kopf.OperatorSettings())
    posting.event_queue_var.set(events)
    posting.event_queue_loop_var.set(asyncio.get_running_loop())
    try:
        yield handler.fn, kopf.Memo(accounts=Accounts(settings, default=runtime, start=_no_accounts)), events
    finally:
        await runtime.aclose()


INSTANCE_INDEXES: dict[str, Any] = {"ns_info": {}, "ns_account": {}}


class TestAPassWaitingForTheProof:
    @pytest.mark.parametrize(
        "account_recorded", [True, False], ids=["account recorded", "no account recorded (an older operator's body)"]
    )
    async def test_parses_its_cr_only_once_the_wait_ends(
        self, monkeypatch: pytest.MonkeyPatch, account_recorded: bool
    ) -> None:
        """Thousands of passes wait together in a mass deletion; a parsed CR (about 10 KiB) has no use there.
        The wait finds the CR's account as every pass does, the record first, else the ref, the namespace's
        annotation or the default."""
        fake = FakeCloud(delete_seconds=1.0)
        fake.add(view("i-1"))
        body = cr(status={"instanceId": "i-1", "account": "default"}, deleting=True).model_dump(
            by_alias=True, exclude_none=True
        )
        parsed_with_proof: list[bool] = []
        parse = handlers._parse

        def recording_parse(raw: Any) -> Any:
            parsed_with_proof.append("i-1" in fake.ended)
            return parse(raw)

        monkeypatch.setattr(handlers, "_parse", recording_parse)
        async with deletion_handler(fake, DMS_DELETE_CONFIRM_WAIT_SECONDS="0.1") as (finalize, memo, _):
            accepted = kopf.Patch()
            with pytest.raises(kopf.TemporaryError):
                await finalize(body=kopf.Body(body), patch=accepted, memo=memo, namespace="team-a", **INSTANCE_INDEXES)
            assert accepted["status"]["deletion"]["result"] == "Accepted"
            assert parsed_with_proof == [False, False], "to submit, and after its (short) wait for the proof"
            body["status"] = {**body["status"], **accepted["status"]}
            if not account_recorded:
                del body["status"]["account"]
            await finalize(body=kopf.Body(body), patch=kopf.Patch(), memo=memo, namespace="team-a", **INSTANCE_INDEXES)
        assert parsed_with_proof == [False, False, True], "the second pass parsed its CR after the proof"


class RecordingWriter:
    """Stands in for the status subresource (``StatusPatches``): what was written, and whether the
    cloud had finished the deletion by then; it answers with the CR at resourceVersion "2"."""

    def __init__(self, fake: FakeCloud, body: dict[str, Any], *, fail: bool = False) -> None:
        self.fake = fake
        self.body = body
        self.fail = fail
        self.writes: list[tuple[dict[str, Any], bool]] = []

    async def merged(self, namespace: str, name: str, status: Any) -> dict[str, Any] | None:
        self.writes.append((dict(status), "i-1" in self.fake.ended))
        if self.fail:
            raise StatusPatchError("PATCH rocketmqinstances team-a/x status: 500 etcdserver: request timed out")
        metadata = {**self.body["metadata"], "resourceVersion": "2", "managedFields": [{"manager": "x"}]}
        return {**self.body, "metadata": metadata, "status": {**self.body.get("status", {}), **status}}


def one_instance_being_deleted() -> tuple[FakeCloud, dict[str, Any]]:
    fake = FakeCloud(delete_seconds=1.0)
    fake.add(view("i-1"))
    return fake, cr(status={"instanceId": "i-1", "account": "default"}, deleting=True).model_dump(
        by_alias=True, exclude_none=True
    )


class TestTheAcceptanceGoesOnRecordAtOnce:
    """kopf writes a handler's patch when the handler returns: an acceptance that waited in it for the
    proof reached the CR with the finalizer's removal, when the API server is busiest."""

    async def test_the_acceptance_is_written_before_the_proof_and_the_release_writes_only_the_finalizer(
        self,
    ) -> None:
        fake, body = one_instance_being_deleted()
        async with deletion_handler(fake) as (finalize, memo, events):
            memo["instance_status_writer"] = writer = RecordingWriter(fake, body)
            handled, patch = kopf.Body(body), kopf.Patch()
            await finalize(body=handled, patch=patch, memo=memo, namespace="team-a", **INSTANCE_INDEXES)
        [(written, cloud_done)] = writer.writes
        assert written["deletion"]["result"] == "Accepted" and written["deletion"]["batchId"]
        assert not cloud_done, "on record while the cloud was still deleting"
        assert dict(patch) == {}, "the release leaves kopf only the finalizer's removal to write"
        # kopf's removal of the finalizer tests the resourceVersion of the body it handles: ours, now.
        assert handled.metadata["resourceVersion"] == "2"
        assert "managedFields" not in handled.metadata
        [event] = [events.get_nowait() for _ in range(events.qsize())]
        assert event.reason == "Deleted", "one Event for the whole deletion"
        assert written["deletion"]["batchId"] in event.message and "404" in event.message

    async def test_an_acceptance_the_api_server_failed_goes_with_the_release(self) -> None:
        fake, body = one_instance_being_deleted()
        async with deletion_handler(fake, DMS_DELETE_CONFIRM_WAIT_SECONDS="30") as (finalize, memo, events):
            memo["instance_status_writer"] = RecordingWriter(fake, body, fail=True)
            patch = kopf.Patch()
            await finalize(body=kopf.Body(body), patch=patch, memo=memo, namespace="team-a", **INSTANCE_INDEXES)
        assert patch["status"]["deletion"]["result"] == "Accepted", "written with the finalizer's removal"
        assert [events.get_nowait().reason for _ in range(events.qsize())] == ["Deleted"]


def child_calls(fake: FakeCloud) -> list[Any]:
    """The calls about topics, groups and users (the instance observer's loop lists on its own)."""
    return [call for call in fake.calls if call.operation != "list_instances"]


class TestABodyFromBeforeTheRelease:
    """kopf waits only ``consistency_timeout`` for its own patch to come back through the watch; on a
    loaded API server it then runs the handler again on the body from before the release."""

    async def test_releases_again_without_a_cloud_call_a_status_write_or_an_event(self) -> None:
        fake = FakeCloud(delete_seconds=0.0)
        fake.add(view("i-1"))
        stale = cr(status={"instanceId": "i-1", "account": "default"}, deleting=True).model_dump(
            by_alias=True, exclude_none=True
        )
        async with deletion_handler(fake, DMS_DELETE_CONFIRM_WAIT_SECONDS="30") as (finalize, memo, events):
            first = kopf.Patch()
            await finalize(body=kopf.Body(stale), patch=first, memo=memo, namespace="team-a", **INSTANCE_INDEXES)
            assert first["status"]["deletion"]["result"] == "Accepted", "released with its batch result"
            assert [events.get_nowait().reason for _ in range(events.qsize())] == ["Deleted"]
            calls = len(fake.calls)

            again = kopf.Patch()
            await finalize(body=kopf.Body(stale), patch=again, memo=memo, namespace="team-a", **INSTANCE_INDEXES)
        assert len(fake.calls) == calls, "no show to prove again what was proven"
        assert dict(again) == {}, "nothing written but the finalizer's removal, which kopf does"
        assert events.empty(), "no second Event"

    @pytest.mark.parametrize(
        ("prefix", "spec"),
        [
            ("topic", {}),
            ("group", {}),
            ("user", {"accessKey": "orders-app", "secretKeyRef": {"name": "creds"}}),
        ],
    )
    async def test_a_child_is_released_again_without_a_second_delete_or_event(
        self, prefix: str, spec: dict[str, Any]
    ) -> None:
        fake = FakeCloud()
        fake.add(view("i-1"))
        fake.add_topics("i-1", "orders")
        fake.add_groups("i-1", "orders")
        fake.users["i-1"] = {"orders-app": cloud.UserView(access_key="orders-app")}
        parent = child_handlers.instance_facts("team-a", "mq", {}, {"instanceId": "i-1", "cloudStatus": "RUNNING"}, {})
        indexes = {**INSTANCE_INDEXES, "ns_terminating": {}, "instance_facts": {("team-a", "mq"): [parent]}}
        body: dict[str, Any] = {
            "metadata": {
                "name": "orders",
                "namespace": "team-a",
                "uid": "uid-orders",
                "generation": 1,
                "deletionTimestamp": "2026-12-01T00:00:00Z",
            },
            "spec": {"instanceRef": {"name": "mq"}, **spec},
            "status": {"instanceId": "i-1", "owned": True},
        }
        async with deletion_handler(fake, f"{prefix}-finalize") as (finalize, memo, events):
            while True:  # kopf runs the deletion handler until it returns, each time on the body written last
                patch = kopf.Patch()
                try:
                    await finalize(body=kopf.Body(body), patch=patch, memo=memo, namespace="team-a", **indexes)
                    break
                except kopf.TemporaryError:
                    body = {**body, "status": {**body["status"], **patch.get("status", {})}}
                    await asyncio.sleep(0.05)
            assert not events.empty(), "the release is told"
            while not events.empty():
                events.get_nowait()
            calls = len(child_calls(fake))

            again = kopf.Patch()
            await finalize(body=kopf.Body(body), patch=again, memo=memo, namespace="team-a", **indexes)
        assert len(child_calls(fake)) == calls, "no call to delete or to prove again what is gone"
        assert dict(again) == {}, "nothing written but the finalizer's removal, which kopf does"
        assert events.empty(), "no second Event"


class TestTheBodiesThePeriodicPassesTake:
    """A kind's follow handler holds the latest body of every CR for its periodic passes, until its
    deletion starts (the deletion handler's from then on) or it is gone."""

    @staticmethod
    def body(uid: str, **metadata: Any) -> dict[str, Any]:
        return {"metadata": {"namespace": "ns", "name": uid, "uid": uid, **metadata}, "spec": {}}

    @staticmethod
    def kind(gone: list[str]) -> periodic.Periodic:
        async def no_step(body: kopf.Body, patch: kopf.Patch) -> None:
            return None

        return periodic.Periodic(
            plural="rocketmqinstances",
            prefix="instance",
            interval=10,
            make_step=lambda memo, kwargs: no_step,
            on_gone=lambda memo, uid: gone.append(uid),
        )

    async def test_a_listed_or_changed_cr_is_held_at_its_latest_body(self) -> None:
        gone: list[str] = []
        kind = self.kind(gone)
        await kind.follow({"type": None, "object": self.body("a", resourceVersion="1")}, "a", kopf.Memo())
        await kind.follow({"type": "MODIFIED", "object": self.body("a", resourceVersion="2")}, "a", kopf.Memo())
        assert kind.held.get("a") == self.body("a", resourceVersion="2")
        assert gone == []

    @pytest.mark.parametrize(
        ("event", "forgotten"),
        [
            (
                {"type": "MODIFIED", "object": {"metadata": {"uid": "a", "deletionTimestamp": "2026-12-02T00:00:00Z"}}},
                [],
            ),
            ({"type": "DELETED", "object": {"metadata": {"uid": "a"}}}, ["a"]),
        ],
        ids=["deletion started", "gone"],
    )
    async def test_a_cr_being_deleted_or_gone_is_no_longer_held(
        self, event: dict[str, Any], forgotten: list[str]
    ) -> None:
        gone: list[str] = []
        kind = self.kind(gone)
        await kind.follow({"type": None, "object": self.body("a")}, "a", kopf.Memo())
        await kind.follow(event, "a", kopf.Memo())
        assert "a" not in kind.held
        assert gone == forgotten

    async def test_a_gone_cr_is_forgotten_as_the_watch_reports_it_ahead_of_kopfs_worker(self) -> None:
        """kopf runs one handler of an object at a time: while a deletion pass of the CR waits for the
        cloud's proof, ``follow`` sees nothing. The event reaches the kind from the watch stream itself."""
        gone: list[str] = []
        kind = self.kind(gone)
        await kind.follow({"type": None, "object": self.body("a")}, "a", kopf.Memo())
        kind.start(kopf.Memo(), {}, Activity(), kopf.AnnotationsDiffBaseStorage())

        async def watch(**_: Any) -> AsyncIterator[Any]:
            yield {"type": "MODIFIED", "object": self.body("b")}
            yield {"type": "DELETED", "object": self.body("a")}

        try:
            async for _ in lean_watch.lean(watch)(resource=SimpleNamespace(plural="rocketmqtopics")):
                pass
            assert gone == [], "another kind's stream says nothing about this kind's CRs"
            stream = lean_watch.lean(watch)(resource=SimpleNamespace(plural="rocketmqinstances"))
            assert (await anext(stream))["type"] == "MODIFIED" and gone == []
            assert (await anext(stream))["type"] == "DELETED"
            assert gone == ["a"], "forgotten before kopf is handed the event"
            assert "a" not in kind.held
            await stream.aclose()
        finally:
            await kind.aclose()
        async for _ in lean_watch.lean(watch)(resource=SimpleNamespace(plural="rocketmqinstances")):
            pass
        assert gone == ["a"], "not told once closed"

    def test_every_kind_has_one(self) -> None:
        registry = handlers.build_registry(handlers.RunOptions(settings=make_settings()))
        follows = {h.id for h in registry._watching.get_all_handlers() if h.id.endswith("-follow")}
        assert follows == {
            "instance-follow",
            "topic-follow",
            "group-follow",
            "user-follow",
            "account-follow",
            "clusteraccount-follow",
        }

    def test_no_kind_has_a_kopf_timer(self) -> None:
        registry = handlers.build_registry(handlers.RunOptions(settings=make_settings()))
        assert [h.id for h in registry._spawning.get_all_handlers()] == []


class TestKopfsThreadPool:
    def test_no_handler_runs_in_it(self) -> None:
        """kopf runs a plain function handler in its thread pool (six threads): every instance event
        then waited there for the two indexes of the instances, a worker and its body held the while.
        Measured at 6,000 CRs (``bench/memory.py``): as coroutines, every CR Ready in half the time."""
        registry = handlers.build_registry(handlers.RunOptions(settings=make_settings()))
        kinds = (registry._activities, registry._indexing, registry._watching, registry._changing, registry._spawning)
        in_the_pool = [h.id for kind in kinds for h in kind.get_all_handlers() if not inspect.iscoroutinefunction(h.fn)]
        assert in_the_pool == []


class TestAPeriodicPass:
    """A pass takes a CR only once kopf's create handlers have finished with it: until then they take
    the same step, and a pass would repeat it and its status write."""

    class Writer:
        def __init__(self) -> None:
            self.written: list[dict[str, Any]] = []
            self.answer = "written"

        async def patch(
            self, namespace: str, name: str, status: dict[str, Any], *, resource_version: str | None
        ) -> str:
            self.written.append(status)
            return self.answer

    @staticmethod
    def body(*, handled: bool) -> dict[str, Any]:
        raw: dict[str, Any] = {"metadata": {"namespace": "ns", "name": "a", "uid": "a", "resourceVersion": "7"}}
        if handled:  # as kopf records the end of the create handlers, with this operator's storage
            patch = kopf.Patch()
            handlers.StatusFirstDiffBase().store(body=kopf.Body(raw), patch=patch, essence={"spec": {}})
            raw["status"] = dict(patch["status"])
        return raw

    @pytest.mark.parametrize("handled", [False, True], ids=["create handlers under way", "created"])
    async def test_runs_once_the_create_handlers_have_finished(self, handled: bool) -> None:
        steps: list[str] = []

        async def step(body: kopf.Body, patch: kopf.Patch) -> None:
            steps.append(body.metadata.name or "")
            patch.status["cloudStatus"] = "RUNNING"

        writer = self.Writer()
        await periodic.pass_one(self.body(handled=handled), step, writer, handlers.StatusFirstDiffBase())  # type: ignore[arg-type]
        assert steps == (["a"] if handled else [])
        assert writer.written == ([{"cloudStatus": "RUNNING"}] if handled else [])

    @pytest.mark.parametrize(
        ("answer", "again"),
        [("written", 0.0), ("changed", periodic.OVERTAKEN_RETRY_SECONDS), ("gone", None)],
        ids=["written: when its step asks", "overtaken by a newer body: shortly", "gone: never"],
    )
    async def test_says_how_soon_the_cr_wants_its_next_pass(self, answer: str, again: float | None) -> None:
        async def step(body: kopf.Body, patch: kopf.Patch) -> StepResult:
            patch.status["cloudStatus"] = "CREATING"
            return StepResult(requeue_after=0.0)

        writer = self.Writer()
        writer.answer = answer
        assert await periodic.pass_one(self.body(handled=True), step, writer, handlers.StatusFirstDiffBase()) == again  # type: ignore[arg-type]


class TestANewInstanceCrsCreate:
    """The create handler only writes the marker; the create is the CR's soon pass, once the handler's
    write (with kopf's record that the create handlers ended) is back in the held body. A CR queued
    for the cloud then holds no kopf worker (``services.passes`` says why)."""

    def test_has_no_kopf_create_handler_beside_the_one_that_writes_the_marker(self) -> None:
        registry = handlers.build_registry(handlers.RunOptions(settings=make_settings()))
        creates = [
            h.id
            for h in registry._changing.get_all_handlers()
            if h.reason == kopf.Reason.CREATE and h.selector is not None and h.selector.plural == "rocketmqinstances"
        ]
        assert creates == ["prepare"]

    async def test_is_passed_soon_once_the_held_body_shows_the_create_handlers_ended(self) -> None:
        versions: list[str | None] = []
        passed = asyncio.Event()

        async def step(body: kopf.Body, patch: kopf.Patch) -> None:
            versions.append(body.metadata.get("resourceVersion"))
            passed.set()

        kind = periodic.Periodic(
            plural="rocketmqinstances",
            prefix="instance",
            interval=60,
            make_step=lambda memo, kwargs: step,
            on_gone=lambda memo, uid: None,
        )
        kind.start(kopf.Memo(), {}, Activity(), handlers.StatusFirstDiffBase())
        try:
            kind.soon("a")
            added = TestAPeriodicPass.body(handled=False)
            await kind.follow({"type": "ADDED", "object": added}, "a", kopf.Memo())
            await asyncio.sleep(0.05)
            assert versions == [], "its create handlers are under way: they have not written the marker yet"
            handled = TestAPeriodicPass.body(handled=True) | {"metadata": {**added["metadata"], "resourceVersion": "8"}}
            await kind.follow({"type": "MODIFIED", "object": handled}, "a", kopf.Memo())
            await asyncio.wait_for(passed.wait(), timeout=5)
            await kind.follow({"type": "MODIFIED", "object": handled}, "a", kopf.Memo())
            await asyncio.sleep(0.05)
        finally:
            await kind.aclose()
        assert versions == ["8"], "passed once, not again for each later event"


class TestTheMetricsEndpoint:
    async def test_closing_stops_it_off_the_event_loop_and_frees_its_port(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        port = free_port()
        runtime = Runtime.assemble(
            make_settings(), client=FakeCloud(), metrics=Metrics(), cluster_id=lambda: None, known_ids=lambda: ()
        )
        runtime.serve_metrics(port, "127.0.0.1")
        status, body = await probe(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "rocketmq_operator_cloud_api_calls" in body
        server = runtime.metrics_server
        assert server is not None
        loop, loop_ran, stop = asyncio.get_running_loop(), threading.Event(), server.shutdown

        def shutdown_once_the_loop_has_run() -> None:
            # Called on the loop's own thread, this waits in vain: the loop cannot run the callback.
            loop.call_soon_threadsafe(loop_ran.set)
            assert loop_ran.wait(timeout=5), "the metrics server was stopped on the event loop, blocking it"
            stop()

        monkeypatch.setattr(server, "shutdown", shutdown_once_the_loop_has_run)
        await runtime.aclose()
        assert runtime.metrics_server is None
        with socket.socket() as again:
            # What a restarted operator does: SO_REUSEADDR passes old connections, never a listening socket.
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))


class TestApiConnectionPool:
    """Every watch stream holds a pooled connection: the pool must outgrow the streams, or it starves."""

    def test_cluster_wide_the_requests_get_their_share_beside_the_watches(self) -> None:
        assert handlers.api_connection_limit(()) == handlers.API_CONNECTIONS + handlers.WATCHED_RESOURCES

    def test_named_namespaces_add_their_watches(self) -> None:
        limit = handlers.api_connection_limit(("team-a", "team-b", "team-c"))
        assert limit == handlers.API_CONNECTIONS + 3 * handlers.WATCHED_RESOURCES

    def test_a_pattern_can_match_any_number_of_namespaces_so_the_pool_is_unbounded(self) -> None:
        assert handlers.api_connection_limit(("rel-*",)) == 0
