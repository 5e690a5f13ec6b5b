"""Huawei's own SDK drives the topic and consumer-group endpoints, and every answer parses into the
SDK's own response models with the values the simulator holds; its errors reach the SDK as
``ClientRequestException`` with the documented status and code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sim_kit
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkrocketmq.v2 import model as m

from dms_simulator import ManualClock, ThreadedSimulator

DELETE_SECONDS = 2.0


@pytest.fixture
def clock(module_clock: ManualClock) -> ManualClock:
    return module_clock


@pytest.fixture
def admin(simulator: ThreadedSimulator) -> Iterator[httpx.Client]:
    config = {"topic_delete_seconds": DELETE_SECONDS, "group_delete_seconds": DELETE_SECONDS}
    with sim_kit.admin_client(simulator.url, config) as client:
        yield client


@pytest.fixture
def client(simulator: ThreadedSimulator, admin: httpx.Client) -> Iterator[Any]:
    sdk = sim_kit.sdk_client(simulator.url)
    yield sdk
    sdk.close()


def seeded(admin: httpx.Client, **spec: Any) -> str:
    response = admin.post("/instances", json={"project_id": sim_kit.PID, "instances": [spec]})
    response.raise_for_status()
    instance_id: str = response.json()["instances"][0]["instance_id"]
    return instance_id


def refused(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value.status_code, caught.value.error_code


def job_status(client: Any, instance_id: str, job_id: str) -> str:
    task = client.show_background_task(m.ShowBackgroundTaskRequest(instance_id=instance_id, task_id=job_id))
    return str(task.tasks[0].status)


def create_topic(client: Any, instance_id: str, **fields: Any) -> Any:
    body = m.CreateTopicOrBatchDeleteTopicReq(**fields)
    return client.create_topic_or_batch_delete_topic(
        m.CreateTopicOrBatchDeleteTopicRequest(instance_id=instance_id, body=body)
    )


# --- topics ---


def test_topics_round_trip_through_the_sdk_models_on_4x(client: Any, admin: httpx.Client) -> None:
    instance_id = seeded(admin, engine_version="4.8.0", broker_num=2)
    made = create_topic(client, instance_id, name="sdk-topic", brokers=["broker-0", "broker-1"], queue_num=4)
    assert isinstance(made, m.CreateTopicOrBatchDeleteTopicResponse)
    assert (made.id, made.job_id) == ("sdk-topic", None)

    shown = client.show_one_topic(m.ShowOneTopicRequest(instance_id=instance_id, topic="sdk-topic"))
    assert isinstance(shown, m.ShowOneTopicResponse)
    assert (shown.name, shown.permission, shown.total_read_queue_num, shown.total_write_queue_num) == (
        "sdk-topic",
        "all",
        4,
        4,
    )
    assert [(b.broker_name, b.read_queue_num) for b in shown.brokers] == [("broker-0", 2), ("broker-1", 2)]
    assert all(isinstance(b, m.TopicBrokers) for b in shown.brokers)
    assert shown.message_type is None

    update = m.UpdateTopicReq(read_queue_num=6, write_queue_num=2, permission="pub")
    updated = client.update_topic(m.UpdateTopicRequest(instance_id=instance_id, topic="sdk-topic", body=update))
    assert isinstance(updated, m.UpdateTopicResponse) and updated.status_code == 204
    listed = client.list_rocket_instance_topics(m.ListRocketInstanceTopicsRequest(instance_id=instance_id, limit=10))
    assert isinstance(listed, m.ListRocketInstanceTopicsResponse)
    assert (listed.total, listed.max, listed.remaining) == (1, 4000, 3999)
    (topic,) = listed.topics
    assert isinstance(topic, m.Topic)
    assert (topic.total_read_queue_num, topic.total_write_queue_num, topic.permission) == (6, 2, "pub")


def test_topic_and_list_fields_are_exactly_the_sdk_models(client: Any, admin: httpx.Client) -> None:
    instance_id = seeded(admin, engine_version="5.x")
    create_topic(client, instance_id, name="typed", message_type="DELAY")
    shown = client.show_one_topic(m.ShowOneTopicRequest(instance_id=instance_id, topic="typed"))
    assert shown.message_type == "DELAY"
    assert set(json.loads(shown.raw_content)) == set(m.ShowOneTopicResponse.attribute_map.values())
    for index in range(2):
        create_topic(client, instance_id, name=f"more-{index}")
    page = client.list_rocket_instance_topics(m.ListRocketInstanceTopicsRequest(instance_id=instance_id, limit=2))
    assert set(json.loads(page.raw_content)) == set(m.ListRocketInstanceTopicsResponse.attribute_map.values()) - {
        "previous_offset"  # only from the second page on
    }
    assert (page.total, page.next_offset, [t.name for t in page.topics]) == (3, 2, ["typed", "more-0"])


def test_a_topic_batch_delete_through_the_sdk_answers_a_job_that_ends(
    client: Any, admin: httpx.Client, clock: ManualClock
) -> None:
    instance_id = seeded(admin)
    for name in ("del-1", "del-2"):
        create_topic(client, instance_id, name=name)
    accepted = client.create_topic_or_batch_delete_topic(
        m.CreateTopicOrBatchDeleteTopicRequest(
            instance_id=instance_id, action="delete", body=m.CreateTopicOrBatchDeleteTopicReq(topics=["del-1", "del-2"])
        )
    )
    assert isinstance(accepted, m.CreateTopicOrBatchDeleteTopicResponse)
    assert accepted.job_id and accepted.id is None
    assert job_status(client, instance_id, accepted.job_id) == "CREATED"
    listed = client.list_rocket_instance_topics(m.ListRocketInstanceTopicsRequest(instance_id=instance_id))
    assert listed.total == 2
    clock.advance(DELETE_SECONDS)
    assert client.list_rocket_instance_topics(m.ListRocketInstanceTopicsRequest(instance_id=instance_id)).total == 0
    assert job_status(client, instance_id, accepted.job_id) == "SUCCESS"
    calls = admin.get("/calls").json()["calls"]
    assert [c["names"] for c in calls if c["operation"] == "topic_batch_delete"] == [["del-1", "del-2"]]


def test_topic_errors_reach_the_sdk_with_their_codes(client: Any, admin: httpx.Client) -> None:
    instance_id = seeded(admin)
    create_topic(client, instance_id, name="once")
    assert refused(lambda: create_topic(client, instance_id, name="once")) == (400, "DMS.00400060")
    missing = m.ShowOneTopicRequest(instance_id=instance_id, topic="missing")
    assert refused(lambda: client.show_one_topic(missing)) == (404, "DMS.00404023")
    gone = m.ListRocketInstanceTopicsRequest(instance_id="no-such-instance")
    assert refused(lambda: client.list_rocket_instance_topics(gone)) == (404, "DMS.00404022")
    assert refused(lambda: create_topic(client, instance_id, name="x")) == (400, "DMS.00400001")
    deleted = client.delete_topic(m.DeleteTopicRequest(instance_id=instance_id, topic="once"))
    assert isinstance(deleted, m.DeleteTopicResponse) and deleted.status_code == 204


# --- consumer groups ---


def test_groups_round_trip_through_the_sdk_models(client: Any, admin: httpx.Client) -> None:
    instance_id = seeded(admin, engine_version="5.x")
    body = m.CreateConsumerGroupOrBatchDeleteConsumerGroupReq(
        name="sdk-group", retry_max_time=3, broadcast=True, consume_orderly=True, group_desc="made by the SDK"
    )
    made = client.create_consumer_group_or_batch_delete_consumer_group(
        m.CreateConsumerGroupOrBatchDeleteConsumerGroupRequest(instance_id=instance_id, body=body)
    )
    assert isinstance(made, m.CreateConsumerGroupOrBatchDeleteConsumerGroupResponse)
    assert made.name == "sdk-group"

    shown = client.show_group(m.ShowGroupRequest(instance_id=instance_id, group="sdk-group"))
    assert isinstance(shown, m.ShowGroupResponse)
    assert (shown.name, shown.retry_max_time, shown.broadcast, shown.consume_orderly, shown.enabled) == (
        "sdk-group",
        3,
        True,
        True,
        True,
    )
    assert set(json.loads(shown.raw_content)) == set(m.ShowGroupResponse.attribute_map.values())

    update = m.UpdateConsumerGroup(enabled=False, broadcast=False, retry_max_time=7)
    updated = client.update_consumer_group(
        m.UpdateConsumerGroupRequest(instance_id=instance_id, group="sdk-group", body=update)
    )
    assert isinstance(updated, m.UpdateConsumerGroupResponse) and updated.status_code == 204

    batch = m.BatchUpdateConsumerGroupReq(groups=[m.BatchUpdateConsumerGroup(name="sdk-group", group_desc="batch")])
    job = client.batch_update_consumer_group(m.BatchUpdateConsumerGroupRequest(instance_id=instance_id, body=batch))
    assert isinstance(job, m.BatchUpdateConsumerGroupResponse) and job.job_id

    listed = client.list_instance_consumer_groups(
        m.ListInstanceConsumerGroupsRequest(instance_id=instance_id, group="sdk", limit=10, offset=0)
    )
    assert isinstance(listed, m.ListInstanceConsumerGroupsResponse)
    (group,) = listed.groups
    assert isinstance(group, m.ConsumerGroup)
    assert (group.enabled, group.broadcast, group.retry_max_time, group.group_desc) == (False, False, 7, "batch")
    assert set(json.loads(listed.raw_content)["groups"][0]) == set(m.ConsumerGroup.attribute_map.values())
    assert (listed.total, listed.max, listed.remaining) == (1, 4000, 3999)


def test_a_group_batch_delete_through_the_sdk(client: Any, admin: httpx.Client, clock: ManualClock) -> None:
    instance_id = seeded(admin, engine_version="4.8.0", broker_num=1)
    create = m.CreateConsumerGroupOrBatchDeleteConsumerGroupReq(name="short-lived", brokers=["broker-0"])
    client.create_consumer_group_or_batch_delete_consumer_group(
        m.CreateConsumerGroupOrBatchDeleteConsumerGroupRequest(instance_id=instance_id, body=create)
    )
    accepted = client.create_consumer_group_or_batch_delete_consumer_group(
        m.CreateConsumerGroupOrBatchDeleteConsumerGroupRequest(
            instance_id=instance_id,
            action="delete",
            body=m.CreateConsumerGroupOrBatchDeleteConsumerGroupReq(groups=["short-lived"]),
        )
    )
    assert accepted.job_id and accepted.name is None
    clock.advance(DELETE_SECONDS)
    missing = m.ShowGroupRequest(instance_id=instance_id, group="short-lived")
    assert refused(lambda: client.show_group(missing)) == (404, "DMS.00404024")
    assert job_status(client, instance_id, accepted.job_id) == "SUCCESS"
