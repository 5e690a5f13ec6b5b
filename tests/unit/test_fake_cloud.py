"""The in-memory cloud stands in for the DMS client wherever the services take one.

Why a test: the unit tests are not type-checked, so a member added to a port and not to the fake
would fail only in the one test that happens to call it, with an AttributeError far from here.
The topic and group tests pin the rules the fake shares with the simulator (and the cloud), which
the services' tests then rely on without restating them.
"""

from __future__ import annotations

import asyncio

import pytest

from rocketmq_operator.core import cloud
from rocketmq_operator.ports import errors, protocol

from .fake_cloud import FakeCloud, instance, virtual_time


def test_the_fake_is_every_port_the_runtime_gives_the_services() -> None:
    assert isinstance(FakeCloud(), protocol.OperatorClient)


@virtual_time
async def test_topics_and_groups_are_created_paged_and_updated() -> None:
    fake = FakeCloud()
    fake.add(instance("i-1"))
    for n in range(3):
        await fake.create_topic("i-1", cloud.CreateTopicRequest(name=f"t-{n}", queue_num=4))
    await fake.create_group("i-1", cloud.CreateGroupRequest(name="g-1", retry_max_time=3))
    await fake.update_topic("i-1", "t-1", cloud.UpdateTopicRequest(permission="sub"))
    await fake.update_group("i-1", "g-1", cloud.UpdateGroupRequest(enabled=False, broadcast=True, retry_max_time=5))

    page = await fake.list_topics("i-1", cloud.ChildPage(limit=2, offset=1))
    groups = await fake.list_groups("i-1", cloud.ChildPage())

    assert (page.total, [t.name for t in page.topics]) == (3, ["t-1", "t-2"])
    assert (page.topics[0].permission, page.topics[0].total_write_queue_num) == ("sub", 4)
    assert [(g.name, g.enabled, g.broadcast, g.retry_max_time) for g in groups.groups] == [("g-1", False, True, 5)]
    assert len(fake.calls_of("create_topic")) == 3
    assert fake.calls_of("list_topics")[0].offset == 1


@virtual_time
async def test_child_errors_tell_a_missing_instance_from_a_missing_child() -> None:
    fake = FakeCloud()
    fake.add(instance("i-1"), instance("i-2", status=cloud.CREATING))
    fake.add_topics("i-1", "t-1")

    with pytest.raises(errors.InstanceNotFound):
        await fake.list_topics("i-gone", cloud.ChildPage())
    with pytest.raises(errors.NotFound) as missing:
        await fake.update_topic("i-1", "t-nope", cloud.UpdateTopicRequest(permission="pub"))
    with pytest.raises(errors.NameConflict):
        await fake.create_topic("i-1", cloud.CreateTopicRequest(name="t-1"))
    with pytest.raises(errors.WrongState):
        await fake.create_group("i-2", cloud.CreateGroupRequest(name="g-1"))

    assert not isinstance(missing.value, errors.InstanceNotFound)


@virtual_time
async def test_a_batch_delete_is_recorded_and_takes_effect_after_the_delay() -> None:
    fake = FakeCloud(child_delete_seconds=5.0)
    fake.add(instance("i-1"))
    fake.add_groups("i-1", "g-1", "g-2", "g-3")

    assert await fake.delete_children("i-1", "group", []) == ""
    job_id = await fake.delete_children("i-1", "group", ["g-1", "g-2", "g-unknown"])
    during = await fake.show_task("i-1", job_id)
    still = await fake.list_groups("i-1", cloud.ChildPage())
    await asyncio.sleep(5.0)
    after = await fake.show_task("i-1", job_id)
    left = await fake.list_groups("i-1", cloud.ChildPage())

    assert fake.child_deletions == [("i-1", "group", ("g-1", "g-2", "g-unknown"))]
    assert len(fake.calls_of("delete_children")) == 1
    assert (during.status, during.finished) == ("CREATED", False)
    assert still.total == 3
    assert (after.status, after.finished) == ("SUCCESS", True)
    assert [g.name for g in left.groups] == ["g-3"]
    with pytest.raises(errors.NotFound):
        await fake.show_task("i-1", "job-nope")


@virtual_time
async def test_with_no_delay_a_batch_delete_removes_at_once() -> None:
    fake = FakeCloud()
    fake.add(instance("i-1"))
    fake.add_topics("i-1", "t-1", "t-2")

    await fake.delete_children("i-1", "topic", ["t-1"])

    assert list(fake.topics["i-1"]) == ["t-2"]
