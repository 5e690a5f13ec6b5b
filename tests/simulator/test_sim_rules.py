"""The rules a real cloud enforces: unique names, the instance quota, operations refused in the wrong
state, not found, and the batch action's documented ambiguities resolved as the reference says."""

from __future__ import annotations

from typing import Any

import pytest
from sim_kit import PID, Api, create_body, error_of

from dms_simulator import ManualClock


async def running(api: Api, clock: ManualClock, name: str, **overrides: Any) -> str:
    instance_id = await api.create(name, **overrides)
    clock.advance(10)
    return instance_id


# --- names and quota ---


async def test_names_are_unique_per_project(manual_api: Api, clock: ManualClock) -> None:
    first = await running(manual_api, clock, "rmq-taken")
    other = await running(manual_api, clock, "rmq-other")
    duplicate = await manual_api.call("POST", f"/v2/{PID}/rocketmq/instances", json_body=create_body("rmq-taken"))
    assert error_of(duplicate) == (400, "DMS.00400060")
    rename = await manual_api.call("PUT", f"/v2/{PID}/instances/{other}", json_body={"name": "rmq-taken"})
    assert error_of(rename) == (400, "DMS.00400060")
    # Renaming to its own name is not a conflict; the name frees up once deletion completes.
    same = await manual_api.call("PUT", f"/v2/{PID}/instances/{first}", json_body={"name": "rmq-taken"})
    assert same.status_code == 204
    await manual_api.call("DELETE", f"/v2/{PID}/instances/{first}")
    assert error_of(await manual_api.call("POST", f"/v2/{PID}/instances", json_body=create_body("rmq-taken")))[1] == (
        "DMS.00400060"
    )
    clock.advance(5)
    assert (
        await manual_api.call("POST", f"/v2/{PID}/instances", json_body=create_body("rmq-taken"))
    ).status_code == 200


async def test_the_instance_quota_is_per_project(manual_api: Api) -> None:
    await manual_api.configure(quota=2)
    await manual_api.create("rmq-q1")
    await manual_api.create("rmq-q2")
    refused = await manual_api.call("POST", f"/v2/reliability/{PID}/instances", json_body=create_body("rmq-q3"))
    assert error_of(refused) == (400, "DMS.00400039")
    quotas = (await manual_api.call("GET", f"/v2/{PID}/quotas")).json()
    assert quotas == {"quotas": {"resources": [{"type": "rocketmqInstance", "quota": 2, "used": 2}]}}


# --- wrong state and not found ---


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PUT", "", {"description": "x"}),
        ("POST", "/extend", {"oper_type": "storage", "new_storage_space": 1000}),
        ("DELETE", "", None),
    ],
    ids=["update", "resize", "delete"],
)
async def test_operations_on_a_creating_instance_are_dms_00400026(
    manual_api: Api, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    instance_id = await manual_api.create("rmq-busy")
    path = f"/v2/{PID}/instances/{instance_id}{suffix}"
    if suffix == "/extend":
        path = f"/v2/reliability/{PID}/instances/{instance_id}/extend"
    response = await manual_api.call(method, path, json_body=body)
    assert error_of(response) == (400, "DMS.00400026")
    assert "CREATING" in response.json()["error_msg"]


async def test_restart_while_extending_is_dms_00400026(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await running(manual_api, clock, "rmq-extending")
    await manual_api.call(
        "POST",
        f"/v2/{PID}/rocketmq/instances/{instance_id}/extend",
        json_body={"oper_type": "storage", "new_storage_space": 400},
    )
    restart = await manual_api.call("POST", f"/v2/{PID}/reliability/instances/{instance_id}/restart")
    assert error_of(restart) == (400, "DMS.00400026")


async def test_deleting_a_deleting_instance_again_is_harmless(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await running(manual_api, clock, "rmq-twice")
    assert (await manual_api.call("DELETE", f"/v2/{PID}/instances/{instance_id}")).status_code == 204
    assert (await manual_api.call("DELETE", f"/v2/{PID}/instances/{instance_id}")).status_code == 204
    again = await manual_api.batch({"action": "delete", "instances": [instance_id]})
    assert again.json()["results"] == [{"result": "success", "instance": instance_id}]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/v2/{PID}/instances/missing", None),
        ("GET", f"/v2/reliability/{PID}/instances/missing", None),
        ("PUT", f"/v2/{PID}/instances/missing", {"description": "x"}),
        ("DELETE", f"/v2/{PID}/instances/missing", None),
        ("POST", f"/v2/rocketmq/{PID}/instances/missing/extend", {"oper_type": "storage", "new_storage_space": 9}),
        ("POST", f"/v2/{PID}/rocketmq/instances/missing/restart", None),
        ("GET", f"/v2/{PID}/rocketmq/missing/tags", None),
        ("POST", f"/v2/{PID}/rocketmq/missing/tags/action", {"action": "create", "tags": [{"key": "k"}]}),
        ("GET", f"/v2/{PID}/instances/missing/tasks", None),
    ],
)
async def test_an_unknown_instance_is_dms_00404022(
    manual_api: Api, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert error_of(await manual_api.call(method, path, json_body=body)) == (404, "DMS.00404022")


@pytest.mark.parametrize(
    ("resize", "field"),
    [
        ({"oper_type": "storage", "new_storage_space": 350}, "new_storage_space"),
        ({"oper_type": "storage"}, "new_storage_space"),
        ({"oper_type": "horizontal", "new_broker_num": 1}, "new_product_id"),
        ({"oper_type": "horizontal", "new_broker_num": 0, "new_product_id": "rocketmq.b2.large.8"}, "new_broker_num"),
        ({"oper_type": "vertical", "new_product_id": "c6.8u16g.cluster"}, "oper_type"),
        ({"oper_type": "sideways"}, "oper_type"),
    ],
)
async def test_invalid_resizes_are_refused_naming_the_field(
    manual_api: Api, clock: ManualClock, resize: dict[str, Any], field: str
) -> None:
    instance_id = await running(manual_api, clock, "rmq-resize-rules")
    response = await manual_api.call("POST", f"/v2/{PID}/rocketmq/instances/{instance_id}/extend", json_body=resize)
    assert error_of(response)[0] == 400
    assert field in response.json()["error_msg"]


async def test_a_480_cluster_resizes_vertically_and_horizontally(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await running(
        manual_api, clock, "rmq-480", engine_version="4.8.0", product_id="c6.4u8g.cluster", broker_num=1
    )
    path = f"/v2/reliability/{PID}/instances/{instance_id}/extend"
    await manual_api.call("POST", path, json_body={"oper_type": "vertical", "new_product_id": "c6.8u16g.cluster"})
    clock.advance(20)
    await manual_api.call("POST", path, json_body={"oper_type": "horizontal", "new_broker_num": 2})
    clock.advance(20)
    shown = (await manual_api.show(instance_id)).json()
    assert (shown["product_id"], shown["broker_num"], shown["node_num"]) == ("c6.8u16g.cluster", 2, 6)


# --- the batch action ---


async def test_batch_results_per_instance_for_mixed_ids(manual_api: Api, clock: ManualClock) -> None:
    ok = await running(manual_api, clock, "rmq-ok")
    creating = await manual_api.create("rmq-creating")
    response = await manual_api.batch({"action": "delete", "instances": [ok, creating, "ghost"]})
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"result": "success", "instance": ok},
            {"result": "failed", "instance": creating},
            {"result": "failed", "instance": "ghost"},
        ]
    }
    assert await manual_api.status(ok) == "DELETING"
    assert await manual_api.status(creating) == "CREATING"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("failed", [{"result": "failed", "instance": "ghost"}]),
        ("success", [{"result": "success", "instance": "ghost"}]),
        ("omit", []),
    ],
)
async def test_unknown_batch_ids_follow_the_configured_answer(
    manual_api: Api, mode: str, expected: list[dict[str, str]]
) -> None:
    await manual_api.configure(unknown_batch_ids=mode)
    response = await manual_api.batch({"action": "delete", "instances": ["ghost"]})
    assert response.json() == {"results": expected}


async def test_error_modes_refuse_the_whole_batch_and_change_nothing(manual_api: Api, clock: ManualClock) -> None:
    ok = await running(manual_api, clock, "rmq-untouched")
    creating = await manual_api.create("rmq-still-creating")
    await manual_api.configure(unknown_batch_ids="error")
    assert error_of(await manual_api.batch({"action": "delete", "instances": [ok, "ghost"]})) == (
        404,
        "DMS.00404022",
    )
    await manual_api.configure(unknown_batch_ids="failed", undeletable_batch_ids="error")
    assert error_of(await manual_api.batch({"action": "delete", "instances": [ok, creating]})) == (
        400,
        "DMS.00400026",
    )
    assert await manual_api.status(ok) == "RUNNING"


async def test_the_batch_size_limit_is_configurable_and_named(manual_api: Api) -> None:
    unlimited = await manual_api.batch({"action": "delete", "instances": [f"id-{i}" for i in range(500)]})
    assert unlimited.status_code == 200 and len(unlimited.json()["results"]) == 500
    await manual_api.configure(batch_max_size=2)
    refused = await manual_api.batch({"action": "delete", "instances": ["a", "b", "c"]})
    assert error_of(refused) == (400, "DMS.00400001")
    assert "limit of 2" in refused.json()["error_msg"]
    assert (await manual_api.batch({"action": "delete", "instances": ["a", "b"]})).status_code == 200


@pytest.mark.parametrize("spelling", ["reliability", "rocketmq", "RocketMQ", "RELIABILITY"])
async def test_all_failure_deletes_only_failed_creates_and_answers_204(
    manual_api: Api, clock: ManualClock, spelling: str
) -> None:
    await manual_api.configure(create_fail_names=["rmq-broken"])
    keep = await manual_api.create("rmq-healthy")
    broken = await manual_api.create("rmq-broken")
    [orphan] = await manual_api.seed({"name": "rmq-orphan", "status": "CREATEFAILED"})
    clock.advance(10)
    response = await manual_api.batch({"action": "delete", "all_failure": spelling})
    assert response.status_code == 204 and response.content == b""
    assert await manual_api.status(broken) == await manual_api.status(orphan["instance_id"]) == "DELETING"
    assert await manual_api.status(keep) == "RUNNING"


async def test_all_failure_wins_over_an_id_list(manual_api: Api, clock: ManualClock) -> None:
    listed = await running(manual_api, clock, "rmq-listed")
    response = await manual_api.batch({"action": "delete", "instances": [listed], "all_failure": "reliability"})
    assert response.status_code == 204
    assert await manual_api.status(listed) == "RUNNING"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "delete"}, "instances"),
        ({"action": "delete", "instances": []}, "instances"),
        ({"action": "restart", "instances": ["a"]}, "action"),
        ({"instances": ["a"]}, "action"),
        ({"action": "delete", "instances": "a"}, "instances"),
        ({"action": "delete", "all_failure": "kafka"}, "all_failure"),
        ({"action": "delete", "instances": ["a"], "force_delete": "yes"}, "force_delete"),
    ],
)
async def test_malformed_batch_requests_are_refused(manual_api: Api, body: dict[str, Any], field: str) -> None:
    response = await manual_api.batch(body)
    assert error_of(response) == (400, "DMS.00400001")
    assert field in response.json()["error_msg"]


async def test_camel_case_all_failure_is_accepted_only_in_lenient_mode(manual_api: Api) -> None:
    seed_page_example = {"action": "delete", "allFailure": "rocketmq"}
    strict = await manual_api.batch(seed_page_example)
    assert error_of(strict) == (400, "DMS.00400001")
    assert "allFailure" in strict.json()["error_msg"]
    await manual_api.configure(strict=False)
    assert (await manual_api.batch(seed_page_example)).status_code == 204


async def test_list_without_engine_is_refused_in_strict_mode_and_defaulted_in_lenient(manual_api: Api) -> None:
    path = f"/v2/{PID}/instances"
    assert error_of(await manual_api.call("GET", path)) == (400, "DMS.00400001")
    await manual_api.configure(strict=False)
    assert (await manual_api.call("GET", path)).status_code == 200
    assert error_of(await manual_api.call("GET", path + "?engine=kafka")) == (400, "DMS.00400007")


# --- tags ---


async def test_an_instance_holds_at_most_20_tags(manual_api: Api) -> None:
    instance_id = await manual_api.create("rmq-tagged")
    path = f"/v2/{PID}/rocketmq/{instance_id}/tags/action"
    twenty = [{"key": f"k{i}", "value": "v"} for i in range(20)]
    assert (await manual_api.call("POST", path, json_body={"action": "create", "tags": twenty})).status_code == 204
    # Re-setting an existing key replaces its value and does not count twice.
    same_key = {"action": "create", "tags": [{"key": "k0", "value": "new"}]}
    assert (await manual_api.call("POST", path, json_body=same_key)).status_code == 204
    one_more = {"action": "create", "tags": [{"key": "k20", "value": "v"}]}
    assert error_of(await manual_api.call("POST", path, json_body=one_more)) == (400, "DMS.00400001")
    tags = (await manual_api.call("GET", f"/v2/{PID}/rocketmq/{instance_id}/tags?limit=50")).json()
    assert tags["total"] == 20 and {"key": "k0", "value": "new"} in tags["tags"]
