"""Topics and consumer groups (reference section 9): each call's method, path, exact body and
query, how its answer is read, and which error class a failed one becomes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from client_kit import AK, IID1, PID, Cloud, error, huawei_sdk_authorization, make_client, reply

from rocketmq_operator.adapters.retrying import RetryPolicy
from rocketmq_operator.core import cloud
from rocketmq_operator.ports import errors

INSTANCE = f"/v2/{PID}/instances/{IID1}"
NO_RETRY = RetryPolicy(max_attempts=1)


async def _one_call(answer: httpx.Response, call: Any) -> tuple[Any, httpx.Request]:
    cloud_ = Cloud(answers=[answer])
    async with make_client(cloud_) as client:
        result = await call(client)
    assert cloud_.attempts == 1
    return result, cloud_.requests[0]


def _sent(request: httpx.Request) -> tuple[str, str, bytes]:
    return request.method, request.url.raw_path.decode(), request.content


def _assert_signed_and_json(request: httpx.Request) -> None:
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"].startswith(f"SDK-HMAC-SHA256 Access={AK}, ")
    assert request.headers["Authorization"] == huawei_sdk_authorization(request)


TOPIC = {
    "name": "orders",
    "total_read_queue_num": 8,
    "total_write_queue_num": 8,
    "permission": "all",
    "created_at": 1735787045000,
    "brokers": [{"broker_name": "broker-0", "read_queue_num": 8, "write_queue_num": 8}],
    "message_type": "NORMAL",
}
GROUP = {
    "name": "billing",
    "enabled": True,
    "broadcast": False,
    "brokers": ["broker-0"],
    "group_desc": "",
    "retry_max_time": 16,
    "created_at": "1735787045000",
    "permissions": ["sub"],
    "consume_orderly": False,
    "group_online": False,
    "topic_subscription_count": 0,
}


class TestTopics:
    async def test_list_sends_limit_and_offset_and_reads_the_page(self) -> None:
        body = {"total": 51, "max": 4000, "remaining": 3949, "next_offset": 50, "topics": [TOPIC]}
        page, request = await _one_call(
            reply(200, body), lambda c: c.list_topics(IID1, cloud.ChildPage(limit=50, offset=50))
        )

        assert _sent(request) == ("GET", f"{INSTANCE}/topics?limit=50&offset=50", b"")
        _assert_signed_and_json(request)
        assert page.total == 51
        [topic] = page.topics
        assert (topic.name, topic.created_at, topic.total_read_queue_num, topic.message_type) == (
            "orders",
            1735787045000,
            8,
            "NORMAL",
        )
        assert [(b.broker_name, b.write_queue_num) for b in topic.brokers] == [("broker-0", 8)]

    async def test_list_reads_null_lists_and_a_string_created_at(self) -> None:
        page, _ = await _one_call(
            reply(200, {"total": 0, "topics": None}), lambda c: c.list_topics(IID1, cloud.ChildPage())
        )
        quirky, _ = await _one_call(
            reply(200, {"total": 1, "topics": [{"name": "t-1", "created_at": "1735787045000", "brokers": None}]}),
            lambda c: c.list_topics(IID1, cloud.ChildPage()),
        )

        assert (page.total, page.topics) == (0, [])
        assert (quirky.topics[0].created_at, quirky.topics[0].brokers) == (1735787045000, [])

    async def test_create_posts_only_the_given_fields(self) -> None:
        request_ = cloud.CreateTopicRequest(name="orders", queue_num=8, message_type="FIFO")
        result, request = await _one_call(reply(200, {"id": "orders"}), lambda c: c.create_topic(IID1, request_))

        assert result is None
        assert _sent(request) == (
            "POST",
            f"{INSTANCE}/topics",
            b'{"name":"orders","queue_num":8,"message_type":"FIFO"}',
        )
        _assert_signed_and_json(request)

    async def test_update_puts_to_the_escaped_name(self) -> None:
        change = cloud.UpdateTopicRequest(read_queue_num=4, write_queue_num=4, permission="pub")
        _, request = await _one_call(reply(204), lambda c: c.update_topic(IID1, "a%b|c", change))

        assert _sent(request) == (
            "PUT",
            f"{INSTANCE}/topics/a%25b%7Cc",
            b'{"read_queue_num":4,"write_queue_num":4,"permission":"pub"}',
        )
        _assert_signed_and_json(request)

    async def test_an_empty_update_is_not_sent(self) -> None:
        cloud_ = Cloud()
        async with make_client(cloud_) as client:
            await client.update_topic(IID1, "orders", cloud.UpdateTopicRequest())

        assert cloud_.attempts == 0


class TestGroups:
    async def test_list_reads_the_page_with_created_at_as_a_string(self) -> None:
        page, request = await _one_call(
            reply(200, {"total": 1, "groups": [GROUP]}), lambda c: c.list_groups(IID1, cloud.ChildPage(offset=0))
        )

        assert _sent(request) == ("GET", f"{INSTANCE}/groups?limit=50&offset=0", b"")
        _assert_signed_and_json(request)
        [group] = page.groups
        assert (group.name, group.enabled, group.retry_max_time, group.created_at, group.brokers) == (
            "billing",
            True,
            16,
            1735787045000,
            ["broker-0"],
        )

    async def test_list_reads_null_lists(self) -> None:
        page, _ = await _one_call(
            reply(200, {"total": 1, "groups": [{"name": "g-1", "brokers": None, "created_at": 5}]}),
            lambda c: c.list_groups(IID1, cloud.ChildPage()),
        )
        empty, _ = await _one_call(reply(200, {"groups": None}), lambda c: c.list_groups(IID1, cloud.ChildPage()))

        assert (page.groups[0].brokers, page.groups[0].created_at) == ([], 5)
        assert (empty.total, empty.groups) == (0, [])

    async def test_create_posts_only_the_given_fields(self) -> None:
        request_ = cloud.CreateGroupRequest(name="billing", retry_max_time=3, enabled=True, group_desc="测试")
        _, request = await _one_call(reply(200, {"name": "billing"}), lambda c: c.create_group(IID1, request_))

        assert _sent(request) == (
            "POST",
            f"{INSTANCE}/groups",
            '{"name":"billing","retry_max_time":3,"enabled":true,"group_desc":"测试"}'.encode(),
        )
        _assert_signed_and_json(request)

    async def test_update_always_sends_the_description_so_it_is_not_cleared_by_accident(self) -> None:
        change = cloud.UpdateGroupRequest(enabled=False, broadcast=True, retry_max_time=5)
        _, request = await _one_call(reply(204), lambda c: c.update_group(IID1, "bill|ing", change))

        assert _sent(request) == (
            "PUT",
            f"{INSTANCE}/groups/bill%7Cing",
            b'{"enabled":false,"broadcast":true,"retry_max_time":5,"group_desc":""}',
        )
        _assert_signed_and_json(request)


class TestBatchDeleteAndTasks:
    @pytest.mark.parametrize(("kind", "key"), [("topic", "topics"), ("group", "groups")])
    async def test_one_batch_call_per_kind_answers_the_job_id(self, kind: str, key: str) -> None:
        job_id, request = await _one_call(
            reply(200, {"job_id": "job-7"}), lambda c: c.delete_children(IID1, kind, ["a-1", "a%2"])
        )

        assert job_id == "job-7"
        assert _sent(request) == ("POST", f"{INSTANCE}/{key}?action=delete", f'{{"{key}":["a-1","a%2"]}}'.encode())
        _assert_signed_and_json(request)

    @pytest.mark.parametrize("answer", [reply(204), reply(200), reply(200, {})], ids=["204", "200 empty", "{}"])
    async def test_no_job_id_is_an_empty_one(self, answer: httpx.Response) -> None:
        job_id, _ = await _one_call(answer, lambda c: c.delete_children(IID1, "topic", ["t-1"]))

        assert job_id == ""

    async def test_no_names_means_no_call(self) -> None:
        cloud_ = Cloud()
        async with make_client(cloud_) as client:
            assert await client.delete_children(IID1, "group", []) == ""

        assert cloud_.attempts == 0

    async def test_show_task_reads_the_one_task_of_the_list(self) -> None:
        body = {
            "task_count": "1",
            "tasks": [{"id": "job-7", "name": "deleteTopic", "status": "SUCCESS", "params": {"topics": ["t"]}}],
        }
        task, request = await _one_call(reply(200, body), lambda c: c.show_task(IID1, "job-7"))

        assert _sent(request) == ("GET", f"{INSTANCE}/tasks/job-7", b"")
        _assert_signed_and_json(request)
        assert (task.id, task.name, task.status, task.finished) == ("job-7", "deleteTopic", "SUCCESS", True)

    @pytest.mark.parametrize("body", [{"task_count": "0", "tasks": []}, {"tasks": None}, {}])
    async def test_show_task_without_a_task_is_a_malformed_answer(self, body: dict[str, Any]) -> None:
        async with make_client(Cloud(answers=[reply(200, body)]), retry=NO_RETRY) as client:
            with pytest.raises(errors.MalformedResponse, match="lists no task") as caught:
                await client.show_task(IID1, "job-7")

        assert caught.value.operation == "task_show"


GROUP_UPDATE = cloud.UpdateGroupRequest(enabled=True, broadcast=False, retry_max_time=1)


class TestGuards:
    @pytest.mark.parametrize(
        ("call", "what"),
        [
            (lambda c: c.list_topics("", cloud.ChildPage()), "instance id"),
            (lambda c: c.create_group("", cloud.CreateGroupRequest(name="g-1")), "instance id"),
            (lambda c: c.update_topic(IID1, "", cloud.UpdateTopicRequest(permission="pub")), "topic name"),
            (
                lambda c: c.update_group(
                    IID1, "", cloud.UpdateGroupRequest(enabled=True, broadcast=False, retry_max_time=1)
                ),
                "group name",
            ),
            (lambda c: c.delete_children("", "topic", ["t-1"]), "instance id"),
            (lambda c: c.show_task(IID1, ""), "task id"),
        ],
    )
    async def test_an_empty_segment_is_refused_before_anything_is_sent(self, call: Any, what: str) -> None:
        cloud_ = Cloud()
        async with make_client(cloud_) as client:
            with pytest.raises(errors.InvalidRequest, match=f"{what} must not be empty"):
                await call(client)

        assert cloud_.attempts == 0

    async def test_a_name_cannot_escape_its_path_segment(self) -> None:
        change = cloud.UpdateTopicRequest(permission="pub")
        _, request = await _one_call(reply(204), lambda c: c.update_topic(IID1, "../x?y", change))

        assert request.url.raw_path.decode() == f"{INSTANCE}/topics/..%2Fx%3Fy"


CHILD_ERRORS: dict[str, tuple[httpx.Response, type[errors.CloudAPIError]]] = {
    "instance gone": (error(404, "DMS.00404022", "instance not found"), errors.InstanceNotFound),
    "topic gone": (error(404, "DMS.00404023", "topic not found"), errors.NotFound),
    "group gone": (error(404, "DMS.00404024", "group not found"), errors.NotFound),
    "name taken": (error(400, "DMS.00400060", "name exists"), errors.NameConflict),
    "instance not running": (error(400, "DMS.00400026", "status is CREATING"), errors.WrongState),
}


@pytest.mark.parametrize(("response", "kind"), list(CHILD_ERRORS.values()), ids=list(CHILD_ERRORS))
async def test_child_errors_map_to_their_class(response: httpx.Response, kind: type[errors.CloudAPIError]) -> None:
    async with make_client(Cloud(answers=[response]), retry=NO_RETRY) as client:
        with pytest.raises(errors.CloudAPIError) as caught:
            await client.update_topic(IID1, "orders", cloud.UpdateTopicRequest(permission="pub"))

    assert type(caught.value) is kind
    assert caught.value.operation == "topic_update"
    assert isinstance(caught.value, errors.NotFound) == issubclass(kind, errors.NotFound)
