"""Topics of an instance (docs/simulator.md, "Topics and consumer groups"): the SDK's shapes per
engine, the name and field rules, paging, 404s, the instance's status, and batch deletes that are
accepted with a job id and finish after ``topic_delete_seconds``."""

from __future__ import annotations

from typing import Any

import pytest
from sim_kit import (
    INVALID,
    NAME_EXISTS,
    NO_INSTANCE,
    NO_TOPIC,
    PID,
    PID2,
    WRONG_STATE,
    Api,
    ChildApi,
    error_of,
    seeded_children,
)

from dms_simulator import ManualClock

DELETE_SECONDS = 4.0


async def instance(api: Api, **spec: Any) -> str:
    seeded = await api.seed({"engine_version": "5.x", **spec})
    instance_id: str = seeded[0]["instance_id"]
    return instance_id


@pytest.fixture
async def v5(manual_api: Api) -> ChildApi:
    return await seeded_children(manual_api, "topics", DELETE_SECONDS)


@pytest.fixture
async def v4(manual_api: Api) -> ChildApi:
    """A 4.8.0 instance with brokers broker-0, broker-1 and broker-2."""
    return await seeded_children(manual_api, "topics", DELETE_SECONDS, engine_version="4.8.0", broker_num=3)


async def shown(topics: ChildApi, name: str) -> dict[str, Any]:
    response = await topics.show(name)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def created(topics: ChildApi, body: dict[str, Any]) -> None:
    response = await topics.create(body)
    assert response.status_code == 200, response.text
    # CreateTopicResp: the id is the name.
    assert response.json() == {"id": body["name"]}


# --- shapes per engine ---


async def test_a_5x_topic_has_a_message_type_and_no_brokers(v5: ChildApi) -> None:
    await created(v5, {"name": "orders", "message_type": "FIFO", "queue_num": 4})
    topic = await shown(v5, "orders")
    assert topic["message_type"] == "FIFO"
    assert (topic["total_read_queue_num"], topic["total_write_queue_num"]) == (4, 4)
    assert topic["brokers"] == [] and topic["permission"] == "all"
    assert isinstance(topic["created_at"], int) and topic["created_at"] > 10**12  # epoch ms


async def test_a_5x_topic_defaults_to_normal_messages_and_ignores_4x_fields(v5: ChildApi) -> None:
    await created(v5, {"name": "plain", "permission": "sub", "brokers": ["broker-7"]})
    topic = await shown(v5, "plain")
    assert (topic["message_type"], topic["permission"], topic["brokers"]) == ("NORMAL", "all", [])
    assert topic["total_write_queue_num"] == 8


async def test_a_4x_topic_splits_its_queue_total_over_the_brokers_named(v4: ChildApi) -> None:
    await created(v4, {"name": "split", "brokers": ["broker-0", "broker-2"], "queue_num": 5, "permission": "pub"})
    topic = await shown(v4, "split")
    assert "message_type" not in topic
    assert topic["permission"] == "pub"
    assert (topic["total_read_queue_num"], topic["total_write_queue_num"]) == (5, 5)
    assert topic["brokers"] == [
        {"broker_name": "broker-0", "read_queue_num": 3, "write_queue_num": 3},
        {"broker_name": "broker-2", "read_queue_num": 2, "write_queue_num": 2},
    ]


async def test_a_4x_topic_takes_per_broker_queues_or_defaults_to_every_broker(v4: ChildApi) -> None:
    await created(v4, {"name": "per-broker", "queues": [{"broker": "broker-1", "queue_num": 3}]})
    assert (await shown(v4, "per-broker"))["brokers"] == [
        {"broker_name": "broker-1", "read_queue_num": 3, "write_queue_num": 3}
    ]
    await created(v4, {"name": "everywhere"})
    everywhere = await shown(v4, "everywhere")
    assert [b["broker_name"] for b in everywhere["brokers"]] == ["broker-0", "broker-1", "broker-2"]
    assert everywhere["total_read_queue_num"] == 8


# --- rules ---


@pytest.mark.parametrize("name", ["ab", "x" * 65, "has space", "dot.ted", "slash/y", "中文名"])
async def test_a_bad_topic_name_is_refused(v5: ChildApi, name: str) -> None:
    assert error_of(await v5.create({"name": name})) == INVALID


async def test_names_may_use_percent_bar_hyphen_underscore_and_64_characters(v5: ChildApi) -> None:
    for name in ("a%b|c-d_e", "x" * 64, "123"):
        await created(v5, {"name": name})


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "t-1", "queue_num": 0},
        {"name": "t-1", "queue_num": 51},
        {"name": "t-1", "queue_num": "3"},
        {"name": "t-1", "permission": "write"},
        {"name": "t-1", "message_type": "normal"},
    ],
)
async def test_out_of_range_fields_are_refused(v5: ChildApi, body: dict[str, Any]) -> None:
    assert error_of(await v5.create(body)) == INVALID


async def test_an_unknown_broker_is_refused(v4: ChildApi) -> None:
    assert error_of(await v4.create({"name": "t-1", "brokers": ["broker-3"]})) == INVALID
    assert error_of(await v4.create({"name": "t-1", "queues": [{"broker": "broker-9", "queue_num": 1}]})) == INVALID
    assert await v4.names() == []


async def test_a_taken_name_is_refused_with_the_name_exists_code(v5: ChildApi) -> None:
    await created(v5, {"name": "dup"})
    assert error_of(await v5.create({"name": "dup"})) == NAME_EXISTS


async def test_the_topic_quota_is_the_lists_max(manual_api: Api, v5: ChildApi) -> None:
    await manual_api.configure(topic_quota=2)
    await created(v5, {"name": "q-1"})
    await created(v5, {"name": "q-2"})
    assert error_of(await v5.create({"name": "q-3"})) == (400, "DMS.00400039")
    body = (await v5.list()).json()
    assert (body["total"], body["max"], body["remaining"]) == (2, 2, 0)


async def test_an_unknown_topic_is_404(v5: ChildApi) -> None:
    assert error_of(await v5.show("nope")) == NO_TOPIC
    assert error_of(await v5.update("nope", {"topic_desc": "x"})) == NO_TOPIC
    assert error_of(await v5.delete("nope")) == NO_TOPIC


async def test_an_unknown_or_foreign_instance_is_404_on_every_topic_call(manual_api: Api) -> None:
    foreign = (await manual_api.seed({}, project=PID2))[0]
    for instance_id in ("no-such-instance", foreign["instance_id"]):
        topics = ChildApi(manual_api, instance_id, "topics")
        assert error_of(await topics.create({"name": "t-1"})) == NO_INSTANCE
        assert error_of(await topics.list()) == NO_INSTANCE
        assert error_of(await topics.show("t-1")) == NO_INSTANCE
        assert error_of(await topics.batch_delete("t-1")) == NO_INSTANCE


@pytest.mark.parametrize("status", ["CREATING", "RESTARTING", "EXTENDING", "ERROR", "FROZEN"])
async def test_changes_need_a_running_instance_but_reads_do_not(manual_api: Api, status: str) -> None:
    instance_id = await instance(manual_api)
    topics = ChildApi(manual_api, instance_id, "topics")
    await created(topics, {"name": "kept"})
    patched = await manual_api.admin("PATCH", f"/instances/{instance_id}", {"status": status})
    assert patched.status_code == 200, patched.text
    assert error_of(await topics.create({"name": "new"})) == WRONG_STATE
    assert error_of(await topics.update("kept", {"topic_desc": "d"})) == WRONG_STATE
    assert error_of(await topics.delete("kept")) == WRONG_STATE
    assert error_of(await topics.batch_delete("kept")) == WRONG_STATE
    assert await topics.names() == ["kept"]
    assert (await topics.show("kept")).status_code == 200


async def test_an_action_other_than_delete_is_refused(v5: ChildApi) -> None:
    response = await v5.api.call("POST", v5.base, params={"action": "remove"}, json_body={"name": "t-1"})
    assert error_of(response) == INVALID
    assert await v5.names() == []


# --- update ---


async def test_a_4x_update_sets_queue_totals_over_the_topics_brokers_and_the_permission(v4: ChildApi) -> None:
    await created(v4, {"name": "t-1", "brokers": ["broker-0"], "queue_num": 3})
    response = await v4.update("t-1", {"read_queue_num": 4, "write_queue_num": 5, "permission": "sub"})
    assert response.status_code == 204, response.text
    topic = await shown(v4, "t-1")
    assert (topic["total_read_queue_num"], topic["total_write_queue_num"], topic["permission"]) == (4, 5, "sub")
    assert topic["brokers"] == [{"broker_name": "broker-0", "read_queue_num": 4, "write_queue_num": 5}]


async def test_a_4x_update_can_spread_a_topic_to_another_broker(v4: ChildApi) -> None:
    await created(v4, {"name": "t-1", "brokers": ["broker-0"], "queue_num": 2})
    queues = [{"broker": "broker-1", "read_queue_num": 3, "write_queue_num": 1}]
    assert (await v4.update("t-1", {"queues": queues})).status_code == 204
    topic = await shown(v4, "t-1")
    brokers = {b["broker_name"]: (b["read_queue_num"], b["write_queue_num"]) for b in topic["brokers"]}
    assert brokers == {"broker-0": (2, 2), "broker-1": (3, 1)}


async def test_a_5x_update_changes_nothing_but_the_description(v5: ChildApi) -> None:
    await created(v5, {"name": "t-1", "queue_num": 4})
    before = await shown(v5, "t-1")
    response = await v5.update("t-1", {"read_queue_num": 2, "permission": "pub", "topic_desc": "about"})
    assert response.status_code == 204
    assert await shown(v5, "t-1") == before


# --- paging ---


async def test_the_list_pages_by_offset_and_limit_with_totals(v5: ChildApi) -> None:
    for index in range(5):
        await created(v5, {"name": f"page-{index}"})
    first = (await v5.list(limit="2")).json()
    assert [t["name"] for t in first["topics"]] == ["page-0", "page-1"]
    assert (first["total"], first["max"], first["remaining"]) == (5, 4000, 3995)
    assert first["next_offset"] == 2 and "previous_offset" not in first
    last = (await v5.list(limit="2", offset="4")).json()
    assert [t["name"] for t in last["topics"]] == ["page-4"]
    assert "next_offset" not in last and last["previous_offset"] == 2
    default = (await v5.list()).json()
    assert len(default["topics"]) == 5  # default limit 10


async def test_an_offset_past_the_end_is_refused_but_an_empty_first_page_is_not(v5: ChildApi) -> None:
    empty = await v5.list()
    assert empty.status_code == 200 and empty.json()["topics"] == [] and empty.json()["total"] == 0
    await created(v5, {"name": "only"})
    assert error_of(await v5.list(offset="1")) == (400, "DMS.40050010")


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "51"}, {"offset": "-1"}, {"limit": "ten"}])
async def test_bad_paging_parameters_are_refused(v5: ChildApi, params: dict[str, str]) -> None:
    assert error_of(await v5.list(**params)) == INVALID


# --- deleting ---


async def test_a_single_delete_is_immediate(v5: ChildApi) -> None:
    await created(v5, {"name": "t-1"})
    response = await v5.delete("t-1")
    assert response.status_code == 204
    assert error_of(await v5.show("t-1")) == NO_TOPIC
    await created(v5, {"name": "t-1"})  # the name is free again


async def test_a_batch_delete_is_accepted_and_the_topics_stay_until_it_is_due(v5: ChildApi, clock: ManualClock) -> None:
    for name in ("a-1", "a-2", "a-3"):
        await created(v5, {"name": name})
    response = await v5.batch_delete("a-1", "a-2")
    assert response.status_code == 200
    job_id = response.json()["job_id"]
    assert set(response.json()) == {"job_id"}
    assert await v5.job(job_id) == "CREATED"
    clock.advance(DELETE_SECONDS - 0.5)
    assert await v5.names() == ["a-1", "a-2", "a-3"]  # still there, still shown, name still taken
    assert (await v5.show("a-1")).status_code == 200
    assert error_of(await v5.create({"name": "a-1"})) == NAME_EXISTS
    clock.advance(0.5)
    assert await v5.names() == ["a-3"]
    assert error_of(await v5.show("a-2")) == NO_TOPIC
    assert await v5.job(job_id) == "SUCCESS"


async def test_a_batch_delete_skips_unknown_names_and_keeps_a_deletion_under_way(
    v5: ChildApi, clock: ManualClock
) -> None:
    await created(v5, {"name": "a-1"})
    assert (await v5.batch_delete("a-1", "never-was")).status_code == 200
    clock.advance(DELETE_SECONDS / 2)
    assert (await v5.batch_delete("a-1")).status_code == 200  # again: the first deletion stands
    clock.advance(DELETE_SECONDS / 2)
    assert await v5.names() == []


async def test_a_zero_delay_deletes_at_once(manual_api: Api, v5: ChildApi) -> None:
    await manual_api.configure(topic_delete_seconds=0)
    await created(v5, {"name": "a-1"})
    job_id = (await v5.batch_delete("a-1")).json()["job_id"]
    assert await v5.names() == []
    assert await v5.job(job_id) == "SUCCESS"


@pytest.mark.parametrize("body", [{}, {"topics": []}, {"topics": "a-1"}, {"groups": ["a-1"]}])
async def test_a_batch_delete_needs_a_list_of_names(v5: ChildApi, body: dict[str, Any]) -> None:
    response = await v5.api.call("POST", v5.base, params={"action": "delete"}, json_body=body)
    assert error_of(response) == INVALID


async def test_batch_max_size_limits_a_topic_batch(manual_api: Api, v5: ChildApi) -> None:
    await manual_api.configure(batch_max_size=2)
    assert error_of(await v5.batch_delete("a", "b", "c")) == INVALID
    assert (await v5.batch_delete("a", "b")).status_code == 200


async def test_the_call_log_records_each_batch_delete_with_its_names(v5: ChildApi) -> None:
    await created(v5, {"name": "a-1"})
    await v5.batch_delete("a-1", "x-2")
    await v5.batch_delete("a-1")
    batches = [c for c in await v5.api.calls() if c["operation"] == "topic_batch_delete"]
    assert [c["names"] for c in batches] == [["a-1", "x-2"], ["a-1"]]
    assert all(c["status"] == 200 and c["query"] == "action=delete" for c in batches)
    assert [c["operation"] for c in await v5.api.calls()].count("topic_create") == 1


async def test_a_failing_name_stays_and_fails_the_job_once(manual_api: Api, v5: ChildApi, clock: ManualClock) -> None:
    for name in ("a-1", "a-2"):
        await created(v5, {"name": name})
    await manual_api.faults(topic_delete_fail_names=["a-2"])
    job_id = (await v5.batch_delete("a-1", "a-2")).json()["job_id"]
    assert (await manual_api.admin("GET", "/faults")).json()["topic_delete_fail_names"] == []  # spent
    clock.advance(DELETE_SECONDS)
    assert await v5.names() == ["a-2"]
    assert await v5.job(job_id) == "FAILED"
    retry = (await v5.batch_delete("a-2")).json()["job_id"]
    clock.advance(DELETE_SECONDS)
    assert await v5.names() == []
    assert await v5.job(retry) == "SUCCESS"


async def test_an_injected_error_refuses_the_whole_batch(manual_api: Api, v5: ChildApi, clock: ManualClock) -> None:
    await created(v5, {"name": "a-1"})
    await manual_api.faults(error_next=1, error_status=500, error_operations=["topic_batch_delete"])
    assert error_of(await v5.batch_delete("a-1")) == (500, "DMS.00500000")
    clock.advance(DELETE_SECONDS)
    assert await v5.names() == ["a-1"]
    assert (await v5.show("a-1")).status_code == 200  # other topic calls are not hit


async def test_the_admin_view_shows_pending_deletions(manual_api: Api, v5: ChildApi) -> None:
    await created(v5, {"name": "a-1"})
    job_id = (await v5.batch_delete("a-1")).json()["job_id"]
    instance_id = v5.base.split("/")[4]
    view = (await manual_api.admin("GET", f"/instances/{instance_id}/children")).json()
    assert [(t["name"], t["deleting"]["job_id"]) for t in view["topics"]] == [("a-1", job_id)]


# --- the instance's own fate ---


async def test_topics_go_when_their_instance_is_gone(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await instance(manual_api)
    topics = ChildApi(manual_api, instance_id, "topics")
    await created(topics, {"name": "t-1"})
    assert (await manual_api.call("DELETE", f"/v2/{PID}/instances/{instance_id}")).status_code == 204
    assert error_of(await topics.create({"name": "t-2"})) == WRONG_STATE  # DELETING
    clock.advance(5.0)  # manual_server's delete_seconds
    assert error_of(await topics.list()) == NO_INSTANCE
    assert error_of(await topics.show("t-1")) == NO_INSTANCE


async def test_a_restored_instance_brings_its_topics_back(manual_api: Api, clock: ManualClock) -> None:
    await manual_api.configure(recycle_bin_enabled=True)
    instance_id = await instance(manual_api)
    topics = ChildApi(manual_api, instance_id, "topics")
    await created(topics, {"name": "t-1"})
    await manual_api.call("DELETE", f"/v2/{PID}/instances/{instance_id}")
    clock.advance(5.0)
    assert error_of(await topics.list()) == NO_INSTANCE  # binned
    restored = await manual_api.call("POST", f"/v2/{PID}/recycle", json_body={"instances": [instance_id]})
    assert restored.status_code == 200, restored.text
    assert await topics.names() == ["t-1"]


@pytest.mark.parametrize(
    "values", [{"topic_delete_seconds": -1}, {"group_delete_seconds": "1"}, {"topic_quota": 0}, {"group_quota": 1.5}]
)
async def test_the_admin_api_refuses_bad_child_settings(manual_api: Api, values: dict[str, Any]) -> None:
    response = await manual_api.admin("PUT", "/config", values)
    assert response.status_code == 400
    assert (await manual_api.admin("GET", "/config")).json()["topic_delete_seconds"] == 1.0
