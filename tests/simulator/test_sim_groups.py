"""Consumer groups of an instance (docs/simulator.md, "Topics and consumer groups"): the SDK's list and
show shapes, engine-specific fields, the rules, single and batch updates, paging with the ``group``
filter, 404s, the instance's status, and batch deletes that finish after ``group_delete_seconds``."""

from __future__ import annotations

from typing import Any

import pytest
from sim_kit import INVALID, NAME_EXISTS, NO_GROUP, NO_INSTANCE, WRONG_STATE, Api, ChildApi, error_of, seeded_children

from dms_simulator import ManualClock

DELETE_SECONDS = 3.0


async def groups_of(api: Api, **spec: Any) -> ChildApi:
    return await seeded_children(api, "groups", DELETE_SECONDS, **spec)


@pytest.fixture
async def v5(manual_api: Api) -> ChildApi:
    return await groups_of(manual_api)


@pytest.fixture
async def v4(manual_api: Api) -> ChildApi:
    """A 4.8.0 instance with brokers broker-0 and broker-1."""
    return await groups_of(manual_api, engine_version="4.8.0", broker_num=2)


async def created(groups: ChildApi, body: dict[str, Any]) -> None:
    response = await groups.create(body)
    assert response.status_code == 200, response.text
    assert response.json() == {"name": body["name"]}


async def shown(groups: ChildApi, name: str) -> dict[str, Any]:
    response = await groups.show(name)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- shapes and engines ---


async def test_a_new_group_has_the_documented_defaults_and_the_show_shape(v5: ChildApi) -> None:
    await created(v5, {"name": "g-1"})
    group = await shown(v5, "g-1")
    assert (group["enabled"], group["broadcast"], group["consume_orderly"]) == (True, False, False)
    assert (group["retry_max_time"], group["group_desc"], group["brokers"]) == (16, "", [])
    assert isinstance(group["created_at"], int) and group["created_at"] > 10**12
    assert "topic_subscription_count" not in group  # ShowGroupResponse has none; the list item has it
    item = (await v5.list()).json()["groups"][0]
    assert item["topic_subscription_count"] == 0
    assert {k: v for k, v in item.items() if k != "topic_subscription_count"} == group


async def test_a_5x_group_can_consume_orderly(v5: ChildApi) -> None:
    body = {"name": "g-1", "consume_orderly": True, "broadcast": True, "retry_max_time": 3, "group_desc": "d"}
    await created(v5, body)
    group = await shown(v5, "g-1")
    assert (group["consume_orderly"], group["broadcast"], group["retry_max_time"], group["group_desc"]) == (
        True,
        True,
        3,
        "d",
    )


async def test_a_4x_group_is_on_every_broker_unless_told_and_ignores_consume_orderly(v4: ChildApi) -> None:
    await created(v4, {"name": "all-brokers", "consume_orderly": True})
    group = await shown(v4, "all-brokers")
    assert (group["brokers"], group["consume_orderly"]) == (["broker-0", "broker-1"], False)
    await created(v4, {"name": "one-broker", "brokers": ["broker-1"]})
    assert (await shown(v4, "one-broker"))["brokers"] == ["broker-1"]
    assert error_of(await v4.create({"name": "bad-broker", "brokers": ["broker-2"]})) == INVALID


# --- rules ---


@pytest.mark.parametrize(
    "body",
    [
        {"name": "g"},
        {"name": "g 1"},
        {"name": "g-1", "retry_max_time": 0},
        {"name": "g-1", "retry_max_time": 17},
        {"name": "g-1", "group_desc": "x" * 201},
        {"name": "g-1", "enabled": "yes"},
        {"broadcast": True},
    ],
)
async def test_bad_fields_are_refused(v5: ChildApi, body: dict[str, Any]) -> None:
    assert error_of(await v5.create(body)) == INVALID
    assert await v5.names() == []


async def test_a_taken_name_is_refused_and_an_unknown_one_is_404(v5: ChildApi) -> None:
    await created(v5, {"name": "g%1|x"})
    assert error_of(await v5.create({"name": "g%1|x"})) == NAME_EXISTS
    assert error_of(await v5.show("nope")) == NO_GROUP
    assert error_of(await v5.update("nope", {"enabled": True, "broadcast": False, "retry_max_time": 2})) == NO_GROUP
    assert error_of(await v5.delete("nope")) == NO_GROUP


async def test_an_unknown_instance_is_404(manual_api: Api) -> None:
    groups = ChildApi(manual_api, "no-such-instance", "groups")
    assert error_of(await groups.create({"name": "g-1"})) == NO_INSTANCE
    assert error_of(await groups.list()) == NO_INSTANCE
    assert error_of(await groups.batch_delete("g-1")) == NO_INSTANCE


async def test_changes_need_a_running_instance(manual_api: Api, v5: ChildApi) -> None:
    await created(v5, {"name": "g-1"})
    instance_id = v5.base.split("/")[4]
    await manual_api.admin("PATCH", f"/instances/{instance_id}", {"status": "RESTARTING"})
    assert error_of(await v5.create({"name": "g-2"})) == WRONG_STATE
    assert error_of(await v5.update("g-1", {"enabled": False, "broadcast": False, "retry_max_time": 1})) == WRONG_STATE
    batch = await v5.api.call("PUT", v5.base, json_body={"groups": [{"name": "g-1", "enabled": False}]})
    assert error_of(batch) == WRONG_STATE
    assert error_of(await v5.batch_delete("g-1")) == WRONG_STATE
    assert (await shown(v5, "g-1"))["enabled"] is True


# --- updates ---


async def test_an_update_needs_enabled_broadcast_and_retry_max_time(v5: ChildApi) -> None:
    await created(v5, {"name": "g-1"})
    for missing in ("enabled", "broadcast", "retry_max_time"):
        body: dict[str, Any] = {"enabled": False, "broadcast": True, "retry_max_time": 5}
        del body[missing]
        assert error_of(await v5.update("g-1", body)) == INVALID


async def test_an_update_sets_the_fields_and_an_omitted_description_clears_it(v5: ChildApi) -> None:
    await created(v5, {"name": "g-1", "group_desc": "first", "broadcast": True, "retry_max_time": 3})
    response = await v5.update("g-1", {"enabled": False, "broadcast": False, "retry_max_time": 5})
    assert response.status_code == 204
    group = await shown(v5, "g-1")
    assert (group["enabled"], group["broadcast"], group["retry_max_time"], group["group_desc"]) == (False, False, 5, "")
    body = {"enabled": True, "broadcast": False, "retry_max_time": 5, "group_desc": "again", "consume_orderly": True}
    assert (await v5.update("g-1", body)).status_code == 204
    group = await shown(v5, "g-1")
    assert (group["group_desc"], group["consume_orderly"]) == ("again", True)


async def test_a_batch_update_changes_only_what_it_names(v5: ChildApi) -> None:
    await created(v5, {"name": "g-1", "group_desc": "one", "retry_max_time": 4})
    await created(v5, {"name": "g-2", "broadcast": True})
    body = {"groups": [{"name": "g-1", "enabled": False}, {"name": "g-2", "retry_max_time": 9, "group_desc": "two"}]}
    response = await v5.api.call("PUT", v5.base, json_body=body)
    assert response.status_code == 200, response.text
    assert await v5.job(response.json()["job_id"]) == "SUCCESS"
    one, two = await shown(v5, "g-1"), await shown(v5, "g-2")
    assert (one["enabled"], one["group_desc"], one["retry_max_time"]) == (False, "one", 4)
    assert (two["broadcast"], two["retry_max_time"], two["group_desc"]) == (True, 9, "two")


async def test_a_batch_update_naming_an_unknown_group_changes_nothing(v5: ChildApi) -> None:
    await created(v5, {"name": "g-1"})
    body = {"groups": [{"name": "g-1", "enabled": False}, {"name": "ghost", "enabled": False}]}
    assert error_of(await v5.api.call("PUT", v5.base, json_body=body)) == NO_GROUP
    assert (await shown(v5, "g-1"))["enabled"] is True


@pytest.mark.parametrize(
    "body",
    [{}, {"groups": []}, {"groups": [{"enabled": False}]}, {"groups": [{"name": "g-1"}, {"name": "g-1"}]}],
)
async def test_a_batch_update_needs_distinct_named_groups(v5: ChildApi, body: dict[str, Any]) -> None:
    await created(v5, {"name": "g-1"})
    assert error_of(await v5.api.call("PUT", v5.base, json_body=body)) == INVALID


# --- listing ---


async def test_the_list_filters_by_group_name_and_pages(v5: ChildApi) -> None:
    for name in ("orders-a", "orders-b", "billing", "ORDERS-c"):
        await created(v5, {"name": name})
    assert await v5.names(group="orders") == ["orders-a", "orders-b", "ORDERS-c"]
    page = (await v5.list(group="orders", limit="2", offset="2")).json()
    assert [g["name"] for g in page["groups"]] == ["ORDERS-c"]
    assert (page["total"], page["previous_offset"]) == (3, 0)
    assert "next_offset" not in page
    assert (page["max"], page["remaining"]) == (4000, 3997)
    assert error_of(await v5.list(offset="4")) == (400, "DMS.40050010")


# --- deleting ---


async def test_a_single_delete_is_immediate(v5: ChildApi) -> None:
    await created(v5, {"name": "g-1"})
    assert (await v5.delete("g-1")).status_code == 204
    assert error_of(await v5.show("g-1")) == NO_GROUP


async def test_a_batch_delete_finishes_after_the_configured_time(v5: ChildApi, clock: ManualClock) -> None:
    for name in ("g-1", "g-2"):
        await created(v5, {"name": name})
    response = await v5.batch_delete("g-1", "g-2", "unknown")
    assert response.status_code == 200 and set(response.json()) == {"job_id"}
    clock.advance(DELETE_SECONDS - 0.1)
    assert await v5.names() == ["g-1", "g-2"]
    assert await v5.job(response.json()["job_id"]) == "CREATED"
    clock.advance(0.1)
    assert await v5.names() == []
    assert await v5.job(response.json()["job_id"]) == "SUCCESS"


async def test_a_failing_group_deletion_leaves_the_group(manual_api: Api, v5: ChildApi, clock: ManualClock) -> None:
    for name in ("g-1", "g-2"):
        await created(v5, {"name": name})
    await manual_api.faults(group_delete_fail_names=["g-1"])
    job_id = (await v5.batch_delete("g-1", "g-2")).json()["job_id"]
    clock.advance(DELETE_SECONDS)
    assert await v5.names() == ["g-1"]
    assert await v5.job(job_id) == "FAILED"
    batches = [c for c in await manual_api.calls() if c["operation"] == "group_batch_delete"]
    assert [c["names"] for c in batches] == [["g-1", "g-2"]]
