"""The reconciler carries out decisions against a cloud: one step per call, nothing lost between steps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from instance_spec import SPEC
from rocketmq_operator.core import cloud
from rocketmq_operator.core.mapping import OWNER_CLUSTER_TAG, OWNER_UID_TAG, owner_tags
from rocketmq_operator.core.resource import DeletionPolicy, RocketMQInstance
from rocketmq_operator.core.settings import OperatorSettings
from rocketmq_operator.core.status import StepResult
from rocketmq_operator.ports import errors
from rocketmq_operator.services.batching import DeletionBatcher
from rocketmq_operator.services.confirming import DeletionConfirmer
from rocketmq_operator.services.deleting import DeletionFlow
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.observing import Observer
from rocketmq_operator.services.reconciling import Reconciler
from rocketmq_operator.services.tracking import CrMemory

from .builders import cr, make_settings, view
from .fake_cloud import FakeCloud, loop_clock, virtual_time

SETTINGS = make_settings(
    DMS_POLL_INTERVAL_SECONDS="10", DMS_BATCH_WINDOW_SECONDS="0.5", DMS_DELETE_CONFIRM_WAIT_SECONDS="5"
)


@dataclass
class World:
    cloud: FakeCloud
    observer: Observer
    reconciler: Reconciler
    deletions: DeletionFlow
    confirmer: DeletionConfirmer
    memory: CrMemory


@asynccontextmanager
async def world(
    fake: FakeCloud | None = None,
    settings: OperatorSettings = SETTINGS,
    cluster_id: Callable[[], str | None] = lambda: "cluster-1",
) -> AsyncIterator[World]:
    fake = fake or FakeCloud()
    metrics = Metrics()
    observer = Observer(fake, interval=settings.poll_interval_seconds, min_gap=1.0, metrics=metrics, clock=loop_clock)
    batcher = DeletionBatcher(
        fake, window=settings.batch_window_seconds, max_size=50, metrics=metrics, clock=loop_clock
    )
    confirmer = DeletionConfirmer(
        fake,
        verify_interval=settings.verify_interval_seconds,
        max_gap=settings.poll_interval_seconds,
        listed=observer.lookup,
        metrics=metrics,
        clock=loop_clock,
    )
    memory = CrMemory()
    reconciler = Reconciler(
        client=fake,
        observer=observer,
        settings=settings,
        cluster_id=cluster_id,
        metrics=metrics,
        memory=memory,
        clock=loop_clock,
    )
    deletions = DeletionFlow(
        client=fake,
        observer=observer,
        batcher=batcher,
        confirmer=confirmer,
        settings=settings,
        memory=memory,
        clock=loop_clock,
    )
    await observer.start()
    await confirmer.start()
    try:
        yield World(fake, observer, reconciler, deletions, confirmer, memory)
    finally:
        await batcher.aclose()
        await confirmer.aclose()
        await observer.aclose()


def applied(resource: RocketMQInstance, result: StepResult, **metadata: Any) -> RocketMQInstance:
    """The CR as the API server holds it after kopf applied the step's status patch."""
    status = {**resource.status.to_wire()}
    for key, value in result.patch.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    body = {
        "metadata": {**resource.metadata.model_dump(by_alias=True), **metadata},
        "spec": resource.spec.to_wire(),
        "status": status,
    }
    return RocketMQInstance.model_validate(body)


class TestTheStatusPatch:
    @virtual_time
    async def test_of_a_first_pass_over_a_running_instance_has_the_keys_the_crd_has(self) -> None:
        fake = FakeCloud()
        fake.add(view("i-1"))
        async with world(fake) as w:
            await w.observer.snapshot_after(0, timeout=5)
            step = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
            now = step.patch["conditions"][0]["lastTransitionTime"]
        message = "instance i-1 is RUNNING"
        assert step.patch == {
            "instanceName": "team-a-orders-abcdef12",
            "cloudStatus": "RUNNING",
            "endpoints": {"namesrvAddress": "192.168.0.10:8100", "brokerAddress": "192.168.0.11:10100"},
            "storageSpace": 300,
            "brokerNum": 1,
            "productId": "rocketmq.b2.large.4",
            "conditions": [
                {"type": kind, "status": value, "reason": "Available", "message": message,
                 "lastTransitionTime": now, "observedGeneration": 1}
                for kind, value in (("Ready", "True"), ("Reconciling", "False"), ("Stalled", "False"))
            ],
            "observedGeneration": 1,
        }  # fmt: skip


class TestCreating:
    @virtual_time
    async def test_the_marker_is_persisted_before_the_create_call(self) -> None:
        async with world() as w:
            step = await w.reconciler.prepare(cr())
            assert step.patch["creation"]["name"].startswith("team-a-orders-")
            assert not w.cloud.calls_of("create_instance"), "no cloud call before the marker is written"

    @virtual_time
    async def test_create_records_the_id_at_once_and_tags_the_instance(self) -> None:
        async with world() as w:
            prepared = await w.reconciler.prepare(cr())
            resource = applied(cr(), prepared)
            step = await w.reconciler.reconcile(resource)
            instance_id = step.patch["instanceId"]
            assert step.patch["creation"] is None
            assert len(w.cloud.calls_of("create_instance")) == 1
            tags = w.cloud.instances[instance_id].tag_map()
            assert tags[OWNER_UID_TAG] == resource.metadata.uid
            assert [e.reason for e in [*prepared.events, *step.events]] == ["Created"]

    @virtual_time
    async def test_the_creating_pass_says_what_the_next_pass_would_so_that_one_writes_nothing(self) -> None:
        async with world() as w:  # the fake cloud's instances stay CREATING
            prepared = applied(cr(), await w.reconciler.prepare(cr()))
            created = await w.reconciler.reconcile(prepared)
            ready = {c["type"]: c for c in created.patch["conditions"]}["Ready"]
            assert ready["message"] == f"instance {created.patch['instanceId']} is CREATING"
            await asyncio.sleep(SETTINGS.poll_interval_seconds)
            await w.observer.snapshot_after(loop_clock(), timeout=5)
            still_creating = await w.reconciler.reconcile(applied(prepared, created))
            assert still_creating.patch == {}

    @virtual_time
    async def test_a_stale_body_after_the_marker_does_not_write_another(self) -> None:
        async with world() as w:
            first = await w.reconciler.prepare(cr())
            # Kopf hands over the body from before its own status patch (it gave up waiting for it).
            again = await w.reconciler.prepare(cr())
            assert first.patch["creation"]["name"]
            assert again.patch == {}

    @virtual_time
    async def test_a_stale_body_after_the_create_does_not_create_again(self) -> None:
        async with world() as w:
            prepared = applied(cr(), await w.reconciler.prepare(cr()))
            created = await w.reconciler.reconcile(prepared)
            instance_id = created.patch["instanceId"]
            # The next pass gets the body with the marker only, not the instance id written since.
            later = await w.reconciler.reconcile(prepared)
            assert len(w.cloud.calls_of("create_instance")) == 1, "no second create, refused as a name conflict"
            assert later.patch.get("instanceId", instance_id) == instance_id
            assert "creation" not in later.patch or later.patch["creation"] is None

    @virtual_time
    async def test_a_stale_body_gets_the_instance_id_written_again_in_case_the_first_write_was_lost(
        self,
    ) -> None:
        async with world() as w:
            prepared = applied(cr(), await w.reconciler.prepare(cr()))
            instance_id = (await w.reconciler.reconcile(prepared)).patch["instanceId"]
            # The patch that recorded the id never reached the API server (lost while it restarted):
            # the body keeps the marker, and a pass that left the id out would leave the CR Ready
            # without one, for good.
            while_running = None
            for _ in range(5):
                while_running = await w.reconciler.reconcile(prepared)
            assert while_running is not None
            assert while_running.patch["instanceId"] == instance_id
            assert while_running.patch["creation"] is None
            assert len(w.cloud.calls_of("create_instance")) == 1

    @virtual_time
    async def test_a_create_repeated_after_a_crash_adopts_instead_of_making_a_second(self) -> None:
        async with world() as w:
            resource = applied(cr(), await w.reconciler.prepare(cr()))
            name = resource.status.creation.name  # type: ignore[union-attr]
            # The cloud made it; the operator died before recording the id or tagging it.
            w.cloud.add(cloud.InstanceView(instance_id="i-made", name=name, status=cloud.CREATING,
                                           created_at=int(loop_clock() * 1000)))  # fmt: skip
            step = await w.reconciler.reconcile(resource)
            assert step.patch["instanceId"] == "i-made"
            assert len(w.cloud.instances) == 1
            assert "Adopted" in {e.reason for e in step.events}
            assert w.cloud.instances["i-made"].tag_map()[OWNER_UID_TAG] == resource.metadata.uid

    @virtual_time
    async def test_a_name_taken_by_someone_else_is_never_adopted(self) -> None:
        async with world() as w:
            resource = applied(cr(), await w.reconciler.prepare(cr()))
            name = resource.status.creation.name  # type: ignore[union-attr]
            other = cr(uid="someone-else")
            w.cloud.add(cloud.InstanceView(instance_id="i-theirs", name=name, status=cloud.RUNNING,
                                           tags=owner_tags(other, "cluster-1")))  # fmt: skip
            step = await w.reconciler.reconcile(resource)
            assert "instanceId" not in step.patch
            stalled = {c["type"]: c for c in step.patch["conditions"]}["Stalled"]
            assert stalled["status"] == "True"
            assert stalled["reason"] == "NameConflict"

    @virtual_time
    async def test_a_terminal_error_stalls_and_is_not_repeated(self) -> None:
        fake = FakeCloud(call_errors={"create_instance": [errors.QuotaExceeded("quota", status=400)]})
        async with world(fake) as w:
            resource = applied(cr(), await w.reconciler.prepare(cr()))
            step = await w.reconciler.reconcile(resource)
            ready = {c["type"]: c for c in step.patch["conditions"]}["Ready"]
            assert ready["reason"] == "QuotaExceeded"
            await w.reconciler.reconcile(applied(resource, step))
            assert len(fake.calls_of("create_instance")) == 1, "no retry storm on a terminal error"


class TestOwnerTags:
    @virtual_time
    async def test_tags_that_failed_after_the_create_are_restored_a_few_intervals_later(self) -> None:
        fake = FakeCloud(call_errors={"create_tags": [errors.ServerError("tags backend down", status=500)]})
        async with world(fake) as w:
            resource = applied(cr(), await w.reconciler.prepare(cr()))
            created = await w.reconciler.reconcile(resource)
            instance_id = created.patch["instanceId"]
            assert "TaggingFailed" in {e.reason for e in created.events}
            assert not w.cloud.instances[instance_id].tags
            resource = applied(resource, created)

            # Not on every pass: the next try waits a few poll intervals.
            soon = await w.reconciler.reconcile(resource)
            assert len(fake.calls_of("create_tags")) == 1
            await asyncio.sleep(5 * SETTINGS.poll_interval_seconds)
            later = await w.reconciler.reconcile(applied(resource, soon))

            assert "OwnerTagsRestored" in {e.reason for e in later.events}
            assert w.cloud.instances[instance_id].tag_map()[OWNER_UID_TAG] == resource.metadata.uid

    @virtual_time
    async def test_an_instance_tagged_by_someone_else_or_adopted_by_id_is_never_retagged(self) -> None:
        async with world() as w:
            theirs = owner_tags(cr(uid="someone-else"), "cluster-2")
            w.cloud.add(view("i-theirs", tags=theirs), view("i-adopted"))
            mine = cr(status={"instanceId": "i-theirs", "instanceName": "rmq-i-theirs"})
            adopted = cr(spec={**SPEC, "instanceId": "i-adopted"}, uid="5f1c4c1e-0000-4000-8000-000000000002")

            await asyncio.sleep(SETTINGS.poll_interval_seconds)
            await w.reconciler.reconcile(mine)
            await w.reconciler.reconcile(adopted)

            assert w.cloud.calls_of("create_tags") == []
            assert w.cloud.instances["i-adopted"].tags == []


class TestWhileTheClusterIdIsUnknown:
    """Owner tags never carry a made-up cluster id: creating waits until the id is known."""

    @virtual_time
    async def test_a_create_waits_saying_why_with_one_warning_and_no_cloud_call(self) -> None:
        async with world(cluster_id=lambda: None) as w:
            resource = applied(cr(), await w.reconciler.prepare(cr()))
            first = await w.reconciler.reconcile(resource)
            second = await w.reconciler.reconcile(applied(resource, first))
        assert w.cloud.calls_of("create_instance") == []
        conditions = {c["type"]: c for c in first.patch["conditions"]}
        assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", "ClusterIdUnknown")
        assert "DMS_CLUSTER_ID" in conditions["Ready"]["message"]
        assert conditions["Reconciling"]["status"] == "True"
        assert first.requeue_after == SETTINGS.poll_interval_seconds
        assert [(e.type, e.reason) for e in first.events] == [("Warning", "ClusterIdUnknown")]
        assert second.events == [], "one Event on the way in, not one per pass"

    @virtual_time
    async def test_the_create_goes_ahead_tagged_with_the_id_once_it_is_known(self) -> None:
        known: list[str] = []
        async with world(cluster_id=lambda: known[0] if known else None) as w:
            resource = applied(cr(), await w.reconciler.prepare(cr()))
            waiting = applied(resource, await w.reconciler.reconcile(resource))
            known.append("cluster-7")
            created = await w.reconciler.reconcile(waiting)
            instance_id = created.patch["instanceId"]
            assert w.cloud.instances[instance_id].tag_map()[OWNER_CLUSTER_TAG] == "cluster-7"
        assert len(w.cloud.calls_of("create_instance")) == 1

    @virtual_time
    async def test_untagged_instances_are_not_tagged_until_the_id_is_known(self) -> None:
        known: list[str] = []
        async with world(cluster_id=lambda: known[0] if known else None) as w:
            w.cloud.add(view("i-1"))  # ours, its owner tags lost
            resource = cr(status={"instanceId": "i-1", "instanceName": "team-a-orders-abcdef12"})
            await asyncio.sleep(SETTINGS.poll_interval_seconds)
            await w.reconciler.reconcile(resource)
            assert w.cloud.calls_of("create_tags") == []
            known.append("cluster-7")
            await asyncio.sleep(5 * SETTINGS.poll_interval_seconds)
            restored = await w.reconciler.reconcile(resource)
        assert "OwnerTagsRestored" in {e.reason for e in restored.events}
        assert w.cloud.instances["i-1"].tag_map()[OWNER_CLUSTER_TAG] == "cluster-7"


class TestObservingAFailingCloud:
    @virtual_time
    async def test_live_crs_say_why_they_cannot_be_observed_without_a_show_call_each(self) -> None:
        fake = FakeCloud()
        fake.add(cloud.InstanceView(instance_id="i-1", name="x", status=cloud.RUNNING))
        async with world(fake) as w:
            await w.observer.snapshot_after(0, timeout=5)
            fake.call_errors["list_instances"] = [errors.ServerError("busy", status=503)] * 100
            await asyncio.sleep(3 * SETTINGS.poll_interval_seconds)  # the snapshot is now stale
            shows = len(fake.calls_of("show_instance"))

            step = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))

            ready = {c["type"]: c for c in step.patch["conditions"]}["Ready"]
            assert ready["reason"] == "CloudServerError"
            assert "503" in ready["message"]
            assert len(fake.calls_of("show_instance")) == shows, "no show per CR while listing fails"

    @virtual_time
    async def test_refused_credentials_stall_every_cr_with_auth_failed(self) -> None:
        refused = errors.AuthFailed("the signature does not match", status=401, code="APIGW.0301")
        fake = FakeCloud(call_errors={"list_instances": [refused] * 100, "create_instance": [refused]})
        async with world(fake) as w:
            await asyncio.sleep(1)
            existing = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
            resource = applied(cr(uid="new"), await w.reconciler.prepare(cr(uid="new")))
            new = await w.reconciler.reconcile(resource)

        for step in (existing, new):
            conditions = {c["type"]: c for c in step.patch["conditions"]}
            assert conditions["Stalled"]["status"] == "True"
            assert conditions["Stalled"]["reason"] == "AuthFailed"
            assert conditions["Reconciling"]["status"] == "False"


class TestThrottling:
    @virtual_time
    async def test_work_under_way_says_throttled_while_the_account_is_throttled(self) -> None:
        fake = FakeCloud(throttle_note="the cloud is throttling this account (HTTP 429)")
        async with world(fake) as w:
            creating = await w.reconciler.prepare(cr())

        ready = {c["type"]: c for c in creating.patch["conditions"]}["Ready"]
        assert ready["reason"] == "Throttled"
        assert ready["message"].startswith("creating instance") and "HTTP 429" in ready["message"]

    @virtual_time
    async def test_ready_crs_are_not_disturbed_and_the_reason_goes_when_throttling_stops(self) -> None:
        fake = FakeCloud()
        fake.add(view("i-1"))
        async with world(fake) as w:
            await w.observer.snapshot_after(0, timeout=5)
            fake.throttle_note = "the cloud is throttling this account (HTTP 429)"
            ready_one = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
            throttled = await w.reconciler.prepare(cr(uid="new"))
            fake.throttle_note = None
            relieved = await w.reconciler.prepare(cr(uid="new-2"))

        def reason(step: StepResult) -> str:
            return str({c["type"]: c for c in step.patch["conditions"]}["Ready"]["reason"])

        assert (reason(ready_one), reason(throttled), reason(relieved)) == ("Available", "Throttled", "Creating")


class TestDeleting:
    @virtual_time
    async def test_a_deletion_proven_within_the_wait_is_released_in_the_same_pass_with_its_result(self) -> None:
        fake = FakeCloud()
        fake.delete_seconds = 1.0
        fake.add(cloud.InstanceView(instance_id="i-1", name="x", status=cloud.RUNNING))
        async with world(fake) as w:
            await w.observer.snapshot_after(0, timeout=5)
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            step = await w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            # The result goes to the status in the same write-out as the finalizer's removal.
            assert step.released
            assert step.patch["deletion"]["result"] == "Accepted"
            assert step.patch["deletion"]["batchId"]
            # One Event says both: what the batch answered, and the proof.
            assert [e.reason for e in step.events] == ["Deleted"]
            assert step.patch["deletion"]["batchId"] in step.events[0].message
            assert "404" in step.events[0].message
            assert len(fake.calls_of("delete_many")) == 1

    @virtual_time
    async def test_a_deletion_not_proven_within_the_wait_writes_its_result_then_one_pass_waits_for_the_proof(
        self,
    ) -> None:
        """Until the proof there is nothing new to write, and a pass that ends without it costs a write
        (kopf's record of the retry): the pass after the acceptance waits the long proof wait."""
        fake = FakeCloud()
        fake.delete_seconds = SETTINGS.delete_confirm_wait_seconds + 120.0
        fake.add(cloud.InstanceView(instance_id="i-1", name="x", status=cloud.RUNNING))
        async with world(fake) as w:
            await w.observer.snapshot_after(0, timeout=5)
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            started = loop_clock()
            first = await w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            assert loop_clock() - started <= SETTINGS.delete_confirm_wait_seconds + 2.0, "the acceptance waits"
            assert not first.released
            assert first.patch["deletion"]["result"] == "Accepted"
            assert first.patch["deletion"]["batchId"]
            assert [e.reason for e in first.events] == ["DeleteAccepted"]
            second = await w.deletions.finalize(
                applied(resource, first), namespace_policy=None, default_policy=DeletionPolicy.DELETE
            )
            assert second.released
            assert loop_clock() >= fake.ended["i-1"]
            assert [e.reason for e in second.events] == ["Deleted"]
            assert len(fake.calls_of("delete_many")) == 1

    @pytest.mark.parametrize(
        "before_parsing", [False, True], ids=["waited in finalize", "waited before the CR is parsed"]
    )
    @virtual_time
    async def test_a_proof_wait_that_runs_out_ends_the_pass_and_the_next_one_waits_again(
        self, before_parsing: bool
    ) -> None:
        """The wiring waits from the raw body (``await_proof``), then parses the CR and finalizes it:
        that pass must not wait a second proof wait when the first ran out."""
        settings = SETTINGS.model_copy(update={"delete_proof_wait_seconds": 30.0})
        fake = FakeCloud()
        fake.delete_seconds = 100.0
        fake.add(cloud.InstanceView(instance_id="i-1", name="x", status=cloud.RUNNING))
        async with world(fake, settings) as w:
            await w.observer.snapshot_after(0, timeout=5)
            assert not await w.deletions.await_proof("i-1"), "nothing is being confirmed yet: no wait"
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            resource = applied(
                resource,
                await w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE),
            )
            passes = []
            while True:
                started = loop_clock()
                waited = await w.deletions.await_proof("i-1") if before_parsing else False
                step = await w.deletions.finalize(
                    resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE, waited=waited
                )
                passes.append(loop_clock() - started)
                if step.released:
                    break
                assert step.events == [], "a pass that learned nothing says nothing"
                resource = applied(resource, step)
            assert loop_clock() >= fake.ended["i-1"]
            assert not await w.deletions.await_proof("i-1"), "proven: no wait"
        assert all(p <= 30.0 + 0.5 for p in passes), passes
        assert len(passes) >= 3

    @virtual_time
    async def test_before_the_first_list_walk_ends_a_deletion_waits_for_it_rather_than_ask_show(self) -> None:
        """A restarted operator whose CRs are deleted at once: one walk answers them all, where a show
        each would cost a call per CR (measured: 5,006 shows in the 10,000-CR teardown)."""
        fake = FakeCloud()
        fake.latency = 3.0  # the first walk is still under way when the deletion pass looks
        fake.add(cloud.InstanceView(instance_id="i-1", name="x", status=cloud.RUNNING))
        async with world(fake) as w:
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            first = await w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            assert first.patch["deletion"]["result"] in ("Accepted", "Deleted") or first.released
            shows_before_the_call = [
                c for c in fake.calls if c.operation == "show_instance" and c.at < fake.calls_of("delete_many")[0].at
            ]
            assert shows_before_the_call == []
            assert len(fake.calls_of("delete_many")) == 1

    @virtual_time
    async def test_a_stale_body_after_an_accepted_delete_does_not_send_it_again(self) -> None:
        fake = FakeCloud()
        fake.add(cloud.InstanceView(instance_id="i-1", name="x", status=cloud.RUNNING))
        async with world(fake) as w:
            await w.observer.snapshot_after(0, timeout=5)
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            first = await w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            assert first.patch["deletion"]["result"] == "Accepted"
            # Kopf hands over the body from before its own status patch (it gave up waiting for it).
            second = await w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            assert second.released
            assert len(fake.calls_of("delete_many")) == 1
            assert "DeleteFailed" not in {e.reason for e in second.events}

    @virtual_time
    async def test_orphan_releases_without_a_cloud_call(self) -> None:
        fake = FakeCloud()
        fake.add(cloud.InstanceView(instance_id="i-1", name="x", status=cloud.RUNNING))
        async with world(fake) as w:
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            step = await w.deletions.finalize(resource, namespace_policy="Orphan", default_policy=DeletionPolicy.DELETE)
            assert step.released
            assert not fake.calls_of("delete_many")
            assert "i-1" in fake.instances

    @virtual_time
    async def test_a_create_in_flight_is_found_by_name_and_deleted(self) -> None:
        fake = FakeCloud()
        async with world(fake) as w:
            resource = applied(cr(), await w.reconciler.prepare(cr()), deletionTimestamp="2026-11-27T10:00:00Z")
            name = resource.status.creation.name  # type: ignore[union-attr]
            fake.add(cloud.InstanceView(instance_id="i-lost", name=name, status=cloud.RUNNING,
                                        created_at=int(loop_clock() * 1000)))  # fmt: skip
            step = await w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            assert not step.released, "an instance we may have made must not be leaked"
            assert step.patch["instanceId"] == "i-lost"

    @virtual_time
    async def test_failed_results_keep_the_finalizer_with_the_reason(self) -> None:
        fake = FakeCloud(failed_ids={"i-1"})
        fake.add(cloud.InstanceView(instance_id="i-1", name="x", status=cloud.RUNNING))
        async with world(fake) as w:
            await w.observer.snapshot_after(0, timeout=5)
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            step = await w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            assert not step.released
            assert step.patch["deletion"]["result"] == "Failed"
            ready = {c["type"]: c for c in step.patch["conditions"]}["Ready"]
            assert ready["reason"] == "DeleteFailed"
            assert step.requeue_after is not None and step.requeue_after > 0


class TestConfirmingDeletion:
    @virtual_time
    async def test_the_finalizer_stays_until_show_proves_the_instance_gone(self) -> None:
        settings = SETTINGS.model_copy(update={"delete_confirm_wait_seconds": 60.0})
        fake = FakeCloud(delete_seconds=40.0)
        fake.add(cloud.InstanceView(instance_id="i-1", name="x", status=cloud.RUNNING))
        async with world(fake, settings) as w:
            await w.observer.snapshot_after(0, timeout=5)
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            first = await w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            accepted = applied(resource, first)
            # The list hides the deleting instance from the next walk on: not proof of anything.
            await w.observer.snapshot_after(loop_clock() + 1, timeout=10)
            assert "i-1" not in w.observer.latest().instances  # type: ignore[union-attr]
            second = await w.deletions.finalize(accepted, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            released_at = asyncio.get_running_loop().time()
        assert second.released
        assert released_at >= fake.ended["i-1"], "released while the cloud was still deleting"
        assert released_at - fake.ended["i-1"] <= 40.0 / 4 + 0.1
        assert {e.reason for e in second.events} == {"Deleted"}

    @virtual_time
    async def test_a_deletion_the_cloud_undoes_says_delete_failed_and_is_sent_again(self) -> None:
        settings = SETTINGS.model_copy(update={"delete_confirm_wait_seconds": 30.0})
        fake = FakeCloud(delete_seconds=5.0, undo={"i-1": cloud.ERROR})
        fake.add(cloud.InstanceView(instance_id="i-1", name="x", status=cloud.RUNNING))
        async with world(fake, settings) as w:
            await w.observer.snapshot_after(0, timeout=5)
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            accepted = applied(resource, await w.deletions.finalize(resource, namespace_policy=None,
                                                                     default_policy=DeletionPolicy.DELETE))  # fmt: skip
            undone = await w.deletions.finalize(accepted, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            assert not undone.released
            assert undone.patch["deletion"]["result"] == "Failed"
            assert "ERROR" in undone.patch["deletion"]["lastError"]
            assert undone.patch["cloudStatus"] == cloud.ERROR
            ready = {c["type"]: c for c in undone.patch["conditions"]}["Ready"]
            assert ready["reason"] == "DeleteFailed" and "ERROR" in ready["message"]
            assert undone.requeue_after is not None and undone.requeue_after > 0
            failed = applied(accepted, undone)
            resent = await w.deletions.finalize(failed, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            assert resent.patch["deletion"]["result"] == "Accepted"
            assert resent.patch["deletion"]["attempts"] == 2
            final = await w.deletions.finalize(
                applied(failed, resent), namespace_policy=None, default_policy=DeletionPolicy.DELETE
            )
        assert final.released
        assert len(fake.calls_of("delete_many")) == 2

    @virtual_time
    async def test_a_new_cr_whose_name_is_held_by_a_deleting_instance_waits_and_never_adopts_it(self) -> None:
        fake = FakeCloud(delete_seconds=120.0)
        async with world(fake) as w:
            resource = cr(spec={**SPEC, "name": "shared-name"})
            fake.add(cloud.InstanceView(instance_id="i-old", name="shared-name", status=cloud.RUNNING))
            await fake.delete_many(["i-old"], force_delete=True)
            marked = applied(resource, await w.reconciler.prepare(resource))
            step = await w.reconciler.reconcile(marked)
            assert "instanceId" not in step.patch, "the deleting instance must never be adopted"
            ready = {c["type"]: c for c in step.patch["conditions"]}["Ready"]
            assert ready["reason"] == "NameHeldByDeletingInstance"
            reconciling = {c["type"]: c for c in step.patch["conditions"]}["Reconciling"]
            assert reconciling["status"] == "True"
            assert step.requeue_after == SETTINGS.poll_interval_seconds
            await asyncio.sleep(121)
            created = await w.reconciler.reconcile(applied(marked, step))
        assert created.patch["instanceId"] not in (None, "i-old")

    @virtual_time
    async def test_an_instance_already_deleting_with_no_acceptance_on_record_is_followed_not_resent(
        self,
    ) -> None:
        fake = FakeCloud(delete_seconds=60.0)
        fake.add(view("i-1"))
        async with world(fake) as w:
            # Accepted, but the status write was lost (a crash), or deleted outside the operator.
            await fake.delete_many(["i-1"], force_delete=True)
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            passes = 0
            while True:
                passes += 1
                step = await w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
                if step.released:
                    break
                assert passes < 30
                await asyncio.sleep(step.requeue_after or 0)
            released_at = asyncio.get_running_loop().time()
        assert released_at >= fake.ended["i-1"]
        assert len(fake.calls_of("delete_many")) == 1, "an instance already deleting is not sent again"
        # Paced by the confirmer (a quarter of the elapsed time), not a show per pass.
        assert len(fake.calls_of("show_instance")) <= 16, len(fake.calls_of("show_instance"))


class TestAnInstanceTheListNoLongerShows:
    @virtual_time
    async def test_is_asked_about_with_show_before_the_cr_calls_it_missing(self) -> None:
        fake = FakeCloud(delete_seconds=60.0)
        fake.add(view("i-1"))
        async with world(fake) as w:
            await fake.delete_many(["i-1"], force_delete=True)  # deleted outside the operator
            await w.observer.snapshot_after(loop_clock(), timeout=5)
            deleting = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
            await asyncio.sleep(61)
            await w.observer.snapshot_after(loop_clock(), timeout=5)
            missing = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
            shows = len(fake.calls_of("show_instance"))
            again = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
        ready = {c["type"]: c for c in deleting.patch["conditions"]}["Ready"]
        assert ready["reason"] == "DeletingOutOfBand"
        ready = {c["type"]: c for c in missing.patch["conditions"]}["Ready"]
        assert ready["reason"] == "InstanceMissing"
        assert len(fake.calls_of("show_instance")) == shows, "a 404 is remembered, not asked again"
        assert {c["type"]: c for c in again.patch["conditions"]}["Ready"]["reason"] == "InstanceMissing"

    @virtual_time
    async def test_once_proven_gone_it_clears_the_cloud_status_with_one_warning_event(self) -> None:
        fake = FakeCloud(delete_seconds=60.0)
        fake.add(view("i-1"))
        async with world(fake) as w:
            await w.observer.snapshot_after(loop_clock(), timeout=5)
            resource = cr(status={"instanceId": "i-1"})
            resource = applied(resource, await w.reconciler.reconcile(resource))
            assert resource.status.cloud_status == cloud.RUNNING
            await fake.delete_many(["i-1"], force_delete=True)  # deleted outside the operator
            await asyncio.sleep(SETTINGS.poll_interval_seconds)
            await w.observer.snapshot_after(loop_clock(), timeout=5)
            deleting = await w.reconciler.reconcile(resource)
            resource = applied(resource, deleting)
            await asyncio.sleep(61)
            await w.observer.snapshot_after(loop_clock(), timeout=5)
            missing = await w.reconciler.reconcile(resource)
            again = await w.reconciler.reconcile(applied(resource, missing))
        assert deleting.patch["cloudStatus"] == cloud.DELETING
        assert "InstanceMissing" not in {e.reason for e in deleting.events}
        assert [(e.type, e.reason) for e in missing.events] == [("Warning", "InstanceMissing")]
        assert "instance i-1 no longer exists" in missing.events[0].message
        assert "cloudStatus" in missing.patch and missing.patch["cloudStatus"] is None
        assert again.events == [], "one Event on the way in, not one per pass"
        assert again.patch == {}, "nothing left to write"

    @virtual_time
    async def test_a_failed_creation_the_sweep_deleted_is_no_missing_instance_but_its_status_is_cleared_too(
        self,
    ) -> None:
        fake = FakeCloud()
        async with world(fake) as w:  # i-1 failed to create and the sweep has deleted it
            await w.observer.snapshot_after(loop_clock(), timeout=5)
            resource = cr(status={"instanceId": "i-1", "cloudStatus": cloud.CREATEFAILED, "failedInstanceIds": ["i-1"]})
            step = await w.reconciler.reconcile(resource)
        assert {c["type"]: c for c in step.patch["conditions"]}["Ready"]["reason"] == "CreateFailed"
        assert "cloudStatus" in step.patch and step.patch["cloudStatus"] is None
        assert "InstanceMissing" not in {e.reason for e in step.events}


class TestASnapshotOlderThanTwoPollIntervals:
    """Whatever stopped the walks (the loop died, or a walk is stuck), a CR does not act on old data."""

    @staticmethod
    async def frozen_after_the_last_walk(fake: FakeCloud, w: World, *, walks: str) -> None:
        await w.observer.snapshot_after(0, timeout=5)
        if walks == "died":
            await w.observer.aclose()
        else:  # stuck: the next walk's first list call never returns
            never = asyncio.Event()

            async def hang(query: cloud.ListQuery) -> cloud.ListInstancesResponse:
                await never.wait()
                raise AssertionError("unreachable")

            fake.list_instances = hang  # type: ignore[method-assign]
        fake.instances["i-1"] = view("i-1", status=cloud.FROZEN)

    @virtual_time
    async def test_is_trusted_while_younger_than_two_intervals(self) -> None:
        fake = FakeCloud()
        fake.add(view("i-1"))
        async with world(fake) as w:
            await self.frozen_after_the_last_walk(fake, w, walks="died")
            await asyncio.sleep(1.5 * SETTINGS.poll_interval_seconds)
            step = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
        assert {c["type"]: c for c in step.patch["conditions"]}["Ready"]["reason"] == "Available"
        assert fake.calls_of("show_instance") == []

    @virtual_time
    async def test_is_counted_from_the_end_of_a_walk_that_took_longer_than_an_interval(self) -> None:
        fake = FakeCloud(latency=6.0)  # 3 pages, the last two at once: a walk takes 12 s, the interval 10 s
        crs = [cr(uid=f"uid-{i}", status={"instanceId": f"i-{i}"}) for i in range(120)]
        fake.add(*(view(f"i-{i}", tags=owner_tags(mine, "cluster-1")) for i, mine in enumerate(crs)))
        async with world(fake) as w:
            first = await w.observer.snapshot_after(0, timeout=30)
            assert first is not None and first.finished_at - first.started_at >= SETTINGS.poll_interval_seconds
            await asyncio.sleep(first.started_at + 2 * SETTINGS.poll_interval_seconds + 1 - loop_clock())
            assert w.observer.latest() is first, "the next walk has not ended yet"
            step = await w.reconciler.reconcile(crs[0])
        assert {c["type"]: c for c in step.patch["conditions"]}["Ready"]["reason"] == "Available"
        assert fake.calls_of("show_instance") == []

    @virtual_time
    async def test_then_a_show_answers_when_the_observer_loop_died(self) -> None:
        fake = FakeCloud()
        fake.add(view("i-1"))
        async with world(fake) as w:
            await self.frozen_after_the_last_walk(fake, w, walks="died")
            await asyncio.sleep(2 * SETTINGS.poll_interval_seconds + 1)
            step = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
        assert {c["type"]: c for c in step.patch["conditions"]}["Ready"]["reason"] == "Frozen"
        assert step.patch["cloudStatus"] == cloud.FROZEN
        assert len(fake.calls_of("show_instance")) == 1

    @virtual_time
    async def test_then_a_show_answers_when_a_walk_is_stuck(self) -> None:
        fake = FakeCloud()
        fake.add(view("i-1"))
        async with world(fake) as w:
            await self.frozen_after_the_last_walk(fake, w, walks="stuck")
            await asyncio.sleep(2 * SETTINGS.poll_interval_seconds + 1)
            step = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
        assert {c["type"]: c for c in step.patch["conditions"]}["Ready"]["reason"] == "Frozen"
        assert len(fake.calls_of("show_instance")) == 1

    @virtual_time
    async def test_a_fresh_show_is_not_trusted_longer_than_the_snapshot_it_stands_in_for(self) -> None:
        fake = FakeCloud()
        fake.add(view("i-1"))
        async with world(fake) as w:
            await self.frozen_after_the_last_walk(fake, w, walks="died")
            await asyncio.sleep(2 * SETTINGS.poll_interval_seconds + 1)
            await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))  # shows: FROZEN
            fake.instances["i-1"] = view("i-1")
            await asyncio.sleep(SETTINGS.poll_interval_seconds)
            trusted = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
            await asyncio.sleep(SETTINGS.poll_interval_seconds + 1)
            asked_again = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
        assert {c["type"]: c for c in trusted.patch["conditions"]}["Ready"]["reason"] == "Frozen"
        assert {c["type"]: c for c in asked_again.patch["conditions"]}["Ready"]["reason"] == "Available"
        assert len(fake.calls_of("show_instance")) == 2


class TestForgettingACrThatIsGone:
    """Whatever path took the CR away, ``forget(uid)`` drops what every service kept for it."""

    @virtual_time
    async def test_a_live_cr_leaves_no_memory_behind(self) -> None:
        fake = FakeCloud(call_errors={"create_instance": [errors.QuotaExceeded("quota", status=400)]})
        fake.add(view("i-old"))
        async with world(fake) as w:
            resource = applied(cr(), await w.reconciler.prepare(cr()))
            await w.reconciler.reconcile(resource)  # stalled on a terminal error: remembered
            adopted = cr(uid="adopter", spec={**SPEC, "instanceId": "i-old"})
            await w.reconciler.reconcile(adopted)  # a fresh show of i-old: remembered
            assert w.reconciler.remembers(resource.metadata.uid) and w.reconciler.views.remembers("i-old")

            w.memory.forget(resource.metadata.uid)
            w.memory.forget("adopter")

            assert not w.reconciler.remembers(resource.metadata.uid)
            assert not w.reconciler.views.remembers("i-old")
            assert not w.memory.tracks(resource.metadata.uid) and not w.memory.tracks("adopter")

    @virtual_time
    async def test_a_cr_whose_finalizer_was_removed_by_hand_mid_deletion_leaves_no_memory_behind(self) -> None:
        fake = FakeCloud(delete_seconds=600.0)
        fake.add(view("i-1"))
        async with world(fake) as w:
            await w.observer.snapshot_after(0, timeout=5)
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            step = await w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            assert step.patch["deletion"]["result"] == "Accepted"
            accepted = applied(resource, step)
            step = await w.deletions.finalize(accepted, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            assert not step.released, "still deleting: the confirmer follows it"
            assert w.deletions.remembers(resource.metadata.uid)
            assert w.confirmer.following_since("i-1") is not None

            # Not released by us: someone removed the finalizer, and the API server reports it gone.
            w.memory.forget(resource.metadata.uid)

            assert not w.deletions.remembers(resource.metadata.uid)
            assert w.confirmer.following_since("i-1") is None and w.confirmer.pending() == 0
            assert not w.memory.tracks(resource.metadata.uid)

    @virtual_time
    async def test_a_step_still_running_when_its_cr_goes_keeps_nothing_it_learned(self) -> None:
        fake = FakeCloud(delete_seconds=600.0)
        fake.add(view("i-1"))
        async with world(fake) as w:
            await w.observer.snapshot_after(0, timeout=5)
            resource = cr(status={"instanceId": "i-1"}, deleting=True)
            submitting = asyncio.create_task(
                w.deletions.finalize(resource, namespace_policy=None, default_policy=DeletionPolicy.DELETE)
            )
            await asyncio.sleep(SETTINGS.batch_window_seconds / 2)  # the step waits for the batch call
            assert not submitting.done()
            w.memory.forget(resource.metadata.uid)
            step = await submitting
            assert step.patch["deletion"]["result"] == "Accepted"

            assert not w.deletions.remembers(resource.metadata.uid)
            assert w.confirmer.following_since("i-1") is None
            assert not w.memory.tracks(resource.metadata.uid)

    @virtual_time
    async def test_forgetting_twice_or_a_cr_never_seen_is_harmless(self) -> None:
        async with world() as w:
            await w.reconciler.prepare(cr())
            w.memory.forget(cr().metadata.uid)
            w.memory.forget(cr().metadata.uid)
            w.memory.forget("never-seen")
            assert not w.memory.tracks(cr().metadata.uid)


class TestAnOperatorThatJustStarted:
    """Before the first list walk has ended, a pass waits for it rather than ask show per CR."""

    @staticmethod
    async def first_passes(fake: FakeCloud, passes: int) -> set[str]:
        """The Ready statuses of the first passes over ``passes`` of 120 listed CRs, all at once."""
        crs = [cr(uid=f"uid-{i}", status={"instanceId": f"i-{i}"}) for i in range(120)]
        fake.add(*(view(f"i-{i}", tags=owner_tags(mine, "cluster-1")) for i, mine in enumerate(crs)))
        async with world(fake) as w:
            steps = await asyncio.gather(*(w.reconciler.reconcile(mine) for mine in crs[:passes]))
        return {{c["type"]: c for c in step.patch["conditions"]}["Ready"]["status"] for step in steps}

    @virtual_time
    async def test_passes_over_many_crs_wait_for_the_first_walk_with_no_show_call(self) -> None:
        fake = FakeCloud(latency=0.5)
        assert await self.first_passes(fake, 120) == {"True"}
        assert {call.operation for call in fake.calls} == {"list_instances"}
        assert len(fake.calls_of("list_instances")) >= 3, "the walk took pages, and the passes waited for them"

    @virtual_time
    async def test_a_first_walk_longer_than_a_snapshot_is_trusted_is_still_waited_for(self) -> None:
        # 3 pages of 30 s, the last two at once: the walk ends after 60 s, three times the 20 s
        # that a snapshot is trusted (at 10,000 CRs a restarted operator's first walk took a minute).
        fake = FakeCloud(latency=30.0)
        assert await self.first_passes(fake, 10) == {"True"}
        assert fake.calls_of("show_instance") == []

    @virtual_time
    async def test_a_first_walk_that_fails_says_why_without_a_show_call(self) -> None:
        fake = FakeCloud()
        fake.add(view("i-1"))
        fake.call_errors["list_instances"] = [errors.ServerError("busy", status=503)] * 100
        async with world(fake) as w:
            step = await w.reconciler.reconcile(cr(status={"instanceId": "i-1"}))
        assert fake.calls_of("show_instance") == [], "no show per CR while listing fails"
        assert {c["type"]: c for c in step.patch["conditions"]}["Ready"]["reason"] == "CloudServerError"
