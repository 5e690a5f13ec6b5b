"""Topics and consumer groups, as the child reconciler handles them: on the fake cloud, in virtual time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rocketmq_operator.core import cloud
from rocketmq_operator.core.child_mapping import GROUPS, TOPICS, Parent
from rocketmq_operator.core.child_resource import RocketMQConsumerGroup, RocketMQTopic
from rocketmq_operator.core.vocabulary import DeletionResult, Presence
from rocketmq_operator.services.batching import ChildBatcher
from rocketmq_operator.services.child_observing import ChildObserver
from rocketmq_operator.services.children import ChildReconciler, ChildStep, Timing
from rocketmq_operator.services.observing import Observation

from .fake_cloud import EPOCH, FakeCloud, loop_clock, virtual_time

IID = "i-0000"


def wall() -> float:
    return EPOCH + loop_clock()


class World:
    def __init__(self, cloud_: FakeCloud, *, withhold: set[str] | None = None) -> None:
        self.cloud = cloud_
        self.absent: set[str] = set()
        self.observer = ChildObserver(cloud_, interval=10.0, clock=wall)
        held = withhold if withhold is not None else set()
        self.batcher = ChildBatcher(cloud_, window=1.0, max_size=50, withhold=held.__contains__, clock=wall)
        self.reconciler = ChildReconciler(
            client=cloud_,
            observer=self.observer,
            batcher=self.batcher,
            instances=self._lookup,
            timing=Timing(poll_interval=10.0, verify_interval=1.0),
            clock=wall,
        )

    def _lookup(self, instance_id: str) -> Observation:
        if instance_id in self.absent:
            return Observation(Presence.ABSENT, None, wall())
        view = self.cloud.instances.get(instance_id)
        return Observation(Presence.PRESENT if view else Presence.UNKNOWN, view, wall())

    async def aclose(self) -> None:
        await self.batcher.aclose()
        await self.observer.aclose()


def world(*, engine: str = "5.x", status: str = cloud.RUNNING, withhold: set[str] | None = None) -> World:
    fake = FakeCloud()
    fake.add(cloud.InstanceView(instance_id=IID, name="rmq", status=status, engine_version=engine))
    return World(fake, withhold=withhold)


def parent(
    *, status: str | None = cloud.RUNNING, engine: str | None = "5.x", deleting: bool = False, deletes: bool = True
) -> Parent:
    return Parent("ns/mq", IID, status, engine, deleting=deleting, deletes_instance=deletes)


def topic(
    name: str = "orders", *, status: dict[str, Any] | None = None, deleting: bool = False, **spec: Any
) -> RocketMQTopic:
    metadata: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    return RocketMQTopic.from_body(
        {"metadata": metadata, "spec": {"instanceRef": {"name": "mq"}, **spec}, "status": status or {}}
    )


def group(name: str = "billing", *, status: dict[str, Any] | None = None, **spec: Any) -> RocketMQConsumerGroup:
    metadata = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1}
    return RocketMQConsumerGroup.from_body(
        {"metadata": metadata, "spec": {"instanceRef": {"name": "mq"}, **spec}, "status": status or {}}
    )


def ready(step: ChildStep) -> tuple[str, str]:
    (condition,) = [c for c in step.status.conditions or [] if c.type == "Ready"]
    return condition.status, condition.reason


def stalled(step: ChildStep) -> bool:
    return any(c.type == "Stalled" and c.status == "True" for c in step.status.conditions or [])


def after(cr: RocketMQTopic, step: ChildStep) -> RocketMQTopic:
    """The CR as the API server holds it once the step's status patch is applied."""
    body = cr.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["status"] = {**body.get("status", {}), **step.patch}
    body["status"] = {k: v for k, v in body["status"].items() if v is not None}
    return RocketMQTopic.from_body(body)


class TestWaitingForTheInstance:
    @virtual_time
    async def test_nothing_is_called_until_the_instance_runs(self) -> None:
        w = world(status=cloud.CREATING)
        step = await w.reconciler.reconcile(topic(), TOPICS, parent(status=cloud.CREATING))
        assert ready(step) == ("False", "InstanceNotReady") and step.requeue_after == 1.0
        assert w.cloud.calls == []
        await w.aclose()

    @virtual_time
    async def test_a_missing_instance_resource_is_waited_for_too(self) -> None:
        w = world()
        step = await w.reconciler.reconcile(topic(), TOPICS, None)
        assert ready(step) == ("False", "InstanceNotReady") and "does not exist" in step.status.conditions[0].message  # type: ignore[index]
        assert w.cloud.calls == []
        await w.aclose()


class TestEngineFields:
    @pytest.mark.parametrize(
        ("engine", "spec", "field"),
        [
            ("4.8.0", {"messageType": "FIFO"}, "spec.messageType"),
            ("5.x", {"permission": "pub"}, "spec.permission"),
            ("5.x", {"brokers": ["broker-0"]}, "spec.brokers"),
        ],
    )
    @virtual_time
    async def test_a_field_the_engine_lacks_stalls_naming_it_without_a_call(
        self, engine: str, spec: dict[str, Any], field: str
    ) -> None:
        w = world(engine=engine)
        step = await w.reconciler.reconcile(topic(**spec), TOPICS, parent(engine=engine))
        assert stalled(step) and ready(step) == ("False", "FieldNotSupported")
        assert field in (step.status.conditions or [])[0].message
        assert w.cloud.calls == []
        await w.aclose()

    @virtual_time
    async def test_an_adopted_instance_without_engine_in_its_spec_is_judged_by_the_cloud_view(self) -> None:
        w = world(engine="4.8.0")
        step = await w.reconciler.reconcile(topic(messageType="FIFO"), TOPICS, parent(engine=None))
        assert stalled(step)
        await w.aclose()


class TestCreating:
    @virtual_time
    async def test_the_marker_is_written_before_the_create_call(self) -> None:
        w = world()
        first = await w.reconciler.reconcile(topic(queueNum=4), TOPICS, parent())
        assert first.status.creation is not None and first.requeue_after == 0.0
        assert w.cloud.calls_of("create_topic") == []
        second = await w.reconciler.reconcile(after(topic(queueNum=4), first), TOPICS, parent())
        assert len(w.cloud.calls_of("create_topic")) == 1
        assert second.status.owned is True and ready(second) == ("True", "Created")
        assert [e.reason for e in second.events] == ["Created"]
        assert w.cloud.topics[IID]["orders"].total_read_queue_num == 4
        await w.aclose()

    @virtual_time
    async def test_a_create_that_landed_before_a_crash_is_recognised_as_ours(self) -> None:
        w = world()
        w.cloud.add_topics(IID, "orders")
        marked = topic(status={"instanceId": IID, "creation": {"pendingSince": "2026-12-01T00:00:00Z"}})
        step = await w.reconciler.reconcile(marked, TOPICS, parent())
        assert step.status.owned is True and ready(step)[0] == "True"
        assert w.cloud.calls_of("create_topic") == []
        await w.aclose()

    @virtual_time
    async def test_an_existing_name_is_refused_unless_the_resource_adopts_it(self) -> None:
        w = world()
        w.cloud.add_topics(IID, "orders")
        refused = await w.reconciler.reconcile(topic(), TOPICS, parent())
        assert stalled(refused) and ready(refused) == ("False", "AlreadyExists")
        adopted = await w.reconciler.reconcile(topic(adopt=True), TOPICS, parent())
        assert adopted.status.owned is True and adopted.status.adopted is True
        assert "Adopted" in [e.reason for e in adopted.events]
        assert w.cloud.calls_of("create_topic") == []
        await w.aclose()

    @virtual_time
    async def test_an_owned_topic_that_vanished_is_created_again_with_a_warning(self) -> None:
        w = world()
        owned = topic(status={"instanceId": IID, "owned": True, "cloudName": "orders"})
        step = await w.reconciler.reconcile(owned, TOPICS, parent())
        assert [e.reason for e in step.events] == ["RecreatedAfterDrift", "Created"]
        assert step.events[0].type == "Warning"
        assert "orders" in w.cloud.topics[IID]
        await w.aclose()


class TestObservingAndUpdating:
    @virtual_time
    async def test_a_hundred_topics_of_one_instance_cost_one_paged_walk(self) -> None:
        w = world()
        names = [f"t-{i:03d}" for i in range(100)]
        w.cloud.add_topics(IID, *names)
        crs = [topic(n, status={"instanceId": IID, "owned": True, "cloudName": n}) for n in names]
        steps = await asyncio.gather(*(w.reconciler.reconcile(cr, TOPICS, parent()) for cr in crs))
        assert all(ready(s)[0] == "True" for s in steps)
        pages = w.cloud.calls_of("list_topics")
        assert [c.offset for c in pages] == [0, 50], "one walk of two pages for all hundred"
        await w.aclose()

    @virtual_time
    async def test_a_changed_queue_count_on_4_8_0_is_one_update(self) -> None:
        w = world(engine="4.8.0")
        w.cloud.add_topics(IID, "orders")
        owned = topic(queueNum=12, status={"instanceId": IID, "owned": True, "cloudName": "orders"})
        step = await w.reconciler.reconcile(owned, TOPICS, parent(engine="4.8.0"))
        assert len(w.cloud.calls_of("update_topic")) == 1 and "Updated" in [e.reason for e in step.events]
        assert w.cloud.topics[IID]["orders"].total_write_queue_num == 12
        await w.aclose()

    @virtual_time
    async def test_a_group_follows_its_spec_with_the_fields_the_update_requires(self) -> None:
        w = world()
        w.cloud.add_groups(IID, "billing")
        owned = group(retryMaxTime=3, status={"instanceId": IID, "owned": True, "cloudName": "billing"})
        await w.reconciler.reconcile(owned, GROUPS, parent())
        assert w.cloud.groups[IID]["billing"].retry_max_time == 3
        await w.aclose()


class TestDeleting:
    @virtual_time
    async def test_deletions_that_arrive_together_leave_as_one_call_and_release_on_list_absence(self) -> None:
        w = world()
        w.cloud.child_delete_seconds = 2.0
        names = [f"t-{i}" for i in range(5)]
        w.cloud.add_topics(IID, *names)
        crs = [topic(n, deleting=True, status={"instanceId": IID, "owned": True}) for n in names]
        steps = await asyncio.gather(*(w.reconciler.finalize(cr, TOPICS, parent()) for cr in crs))
        assert w.cloud.child_deletions == [(IID, "topic", tuple(names))]
        for step in steps:
            assert not step.released and step.status.deletion is not None
            assert step.status.deletion.result == DeletionResult.ACCEPTED and step.status.deletion.batch_size == 5
            assert step.status.deletion.job_id
        crs = [after(cr, step) for cr, step in zip(crs, steps, strict=True)]
        still = await w.reconciler.finalize(crs[0], TOPICS, parent())
        assert not still.released, "not while its job runs"
        await asyncio.sleep(3)
        done = await asyncio.gather(*(w.reconciler.finalize(cr, TOPICS, parent()) for cr in crs))
        assert all(s.released for s in done)
        assert len(w.cloud.child_deletions) == 1, "no second call"
        await w.aclose()

    @virtual_time
    async def test_a_name_still_listed_after_its_job_ended_is_deleted_again(self) -> None:
        w = world()
        w.cloud.add_topics(IID, "orders")
        cr = topic(deleting=True, status={"instanceId": IID, "owned": True})
        first = await w.reconciler.finalize(cr, TOPICS, parent())
        w.cloud.add_topics(IID, "orders")  # the cloud kept it: the job ended, the topic is there
        await asyncio.sleep(2)
        failed = await w.reconciler.finalize(after(cr, first), TOPICS, parent())
        assert failed.status.deletion is not None and failed.status.deletion.result == DeletionResult.FAILED
        again = await w.reconciler.finalize(after(after(cr, first), failed), TOPICS, parent())
        assert again.status.deletion is not None and again.status.deletion.attempts == 2
        assert len(w.cloud.child_deletions) == 2
        await w.aclose()

    @virtual_time
    async def test_no_release_while_the_job_runs_even_if_the_list_stops_showing_the_name(self) -> None:
        w = world()
        w.cloud.child_delete_seconds = 5.0
        w.cloud.add_topics(IID, "orders")
        cr = topic(deleting=True, status={"instanceId": IID, "owned": True})
        first = await w.reconciler.finalize(cr, TOPICS, parent())
        w.cloud.topics[IID].pop("orders")  # a cloud that hides what it is deleting
        await asyncio.sleep(1)
        running = await w.reconciler.finalize(after(cr, first), TOPICS, parent())
        assert not running.released
        await asyncio.sleep(5)
        done = await w.reconciler.finalize(after(cr, first), TOPICS, parent())
        assert done.released and len(w.cloud.calls_of("show_task")) == 2
        await w.aclose()

    @virtual_time
    async def test_a_job_the_cloud_does_not_know_leaves_the_decision_to_the_list(self) -> None:
        w = world()
        w.cloud.add_topics(IID, "orders")
        cr = topic(deleting=True, status={"instanceId": IID, "owned": True})
        first = await w.reconciler.finalize(cr, TOPICS, parent())
        w.cloud._child_tasks.clear()  # the tasks endpoint answers 404 for the job
        await asyncio.sleep(1)
        done = await w.reconciler.finalize(after(cr, first), TOPICS, parent())
        assert done.released
        await w.aclose()

    @virtual_time
    async def test_a_child_of_an_instance_being_deleted_makes_no_call_and_goes_when_the_instance_does(self) -> None:
        w = world()
        w.cloud.add_topics(IID, "orders")
        cr = topic(deleting=True, status={"instanceId": IID, "owned": True})
        waiting = await w.reconciler.finalize(cr, TOPICS, parent(deleting=True))
        assert not waiting.released and ready(waiting) == ("False", "DeletingWithInstance")
        w.absent.add(IID)  # the instance CR was released: its instance is proven gone
        released = await w.reconciler.finalize(cr, TOPICS, None)
        assert released.released and [e.reason for e in released.events] == ["DeletedWithInstance"]
        assert w.cloud.child_deletions == []
        await w.aclose()

    @virtual_time
    async def test_an_instance_seen_deleting_only_when_the_call_is_due_withholds_the_call(self) -> None:
        w = world(withhold={IID})
        w.cloud.add_topics(IID, "orders")
        cr = topic(deleting=True, status={"instanceId": IID, "owned": True})
        step = await w.reconciler.finalize(cr, TOPICS, parent())
        assert not step.released and ready(step) == ("False", "DeletingWithInstance")
        assert w.cloud.child_deletions == []
        await w.aclose()

    @pytest.mark.parametrize(
        ("status", "spec", "reason"),
        [
            ({"instanceId": IID, "owned": True}, {"deletionPolicy": "Orphan"}, "Orphaned"),
            ({"instanceId": IID}, {}, "NothingToDelete"),
            ({}, {}, "NothingToDelete"),
        ],
    )
    @virtual_time
    async def test_released_at_once_without_a_call(
        self, status: dict[str, Any], spec: dict[str, Any], reason: str
    ) -> None:
        w = world()
        w.cloud.add_topics(IID, "orders")
        step = await w.reconciler.finalize(topic(deleting=True, status=status, **spec), TOPICS, parent())
        assert step.released and [e.reason for e in step.events] == [reason]
        assert w.cloud.calls == [] and "orders" in w.cloud.topics[IID]
        await w.aclose()


class TestChildObserver:
    @virtual_time
    async def test_a_walk_whose_total_keeps_changing_proves_no_absence(self) -> None:
        w = world()
        w.cloud.add_topics(IID, *(f"t-{i:03d}" for i in range(60)))
        original = w.cloud.list_topics

        async def shrinking(instance_id: str, page: cloud.ChildPage) -> cloud.ListTopicsResponse:
            answer = await original(instance_id, page)
            w.cloud.topics[IID].pop(next(iter(w.cloud.topics[IID])))  # a deletion ends mid-walk
            return answer

        w.cloud.list_topics = shrinking  # type: ignore[method-assign]
        listed = await w.observer.view(IID, "topic", newer_than=wall())
        assert not listed.consistent and not listed.absent("nowhere")
        await w.aclose()

    @virtual_time
    async def test_a_walk_from_before_our_own_change_of_a_name_never_answers_about_it(self) -> None:
        w = world()
        w.cloud.latency = 1.0
        walk = asyncio.ensure_future(w.observer.view(IID, "topic", newer_than=wall()))
        await asyncio.sleep(0.5)
        w.observer.changed(IID, "topic", "fresh")  # e.g. we created it while that walk was in flight
        await walk
        await w.observer.view(IID, "topic", newer_than=wall() - 10, about="other")
        assert len(w.cloud.calls_of("list_topics")) == 1, "about another name, the walk stands"
        await w.observer.view(IID, "topic", newer_than=wall() - 10, about="fresh")
        assert len(w.cloud.calls_of("list_topics")) == 2, "about the changed name, a walk from after it"
        await w.aclose()

    @virtual_time
    async def test_a_burst_of_creates_shares_walks(self) -> None:
        w = world()
        names = [f"t-{i:03d}" for i in range(100)]
        crs = [topic(n) for n in names]
        marked = await asyncio.gather(*(w.reconciler.reconcile(cr, TOPICS, parent()) for cr in crs))
        crs = [after(cr, step) for cr, step in zip(crs, marked, strict=True)]
        created = await asyncio.gather(*(w.reconciler.reconcile(cr, TOPICS, parent()) for cr in crs))
        assert all(ready(s) == ("True", "Created") for s in created)
        assert len(w.cloud.calls_of("create_topic")) == 100
        assert len(w.cloud.calls_of("list_topics")) <= 2, "one walk (of one page) for the markers, shared"
        await w.aclose()
