"""Fault injection, switched at runtime through the admin API: latency, 5xx, dropped connections,
malformed bodies, per-instance batch failures and a held-back create response, each scoped by
operation and by count. (Deletions that fail after being accepted: test_sim_deletion.py.)"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sim_kit import PID, Api, create_body, error_of

CREATE = f"/v2/reliability/{PID}/instances"


async def running(api: Api, name: str) -> str:
    instance_id = await api.create(name)
    for _ in range(100):
        if await api.status(instance_id) == "RUNNING":
            return instance_id
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never came up")


async def instance_names(api: Api) -> list[str]:
    listed = (await api.admin("GET", f"/instances?project_id={PID}")).json()["instances"]
    return [item["name"] for item in listed]


async def test_latency_delays_only_the_chosen_operations(api: Api) -> None:
    await api.faults(latency_ms=300, latency_jitter_ms=50, latency_operations=["show"])
    await api.list_instances()
    started = time.monotonic()
    await api.show("missing")
    assert time.monotonic() - started >= 0.3
    faults = [(c["operation"], c["fault"]) for c in await api.calls()]
    assert faults == [("list", None), ("show", "latency")]


async def test_error_next_fails_the_next_n_calls_then_recovers_without_side_effects(api: Api) -> None:
    await api.faults(error_next=2, error_status=503)
    for _ in range(2):
        response = await api.call("POST", CREATE, json_body=create_body("rmq-unlucky"))
        assert error_of(response) == (503, "DMS.00503000")
        assert response.headers["X-Request-Id"]
    assert await instance_names(api) == []  # the failed calls did nothing
    assert (await api.call("POST", CREATE, json_body=create_body("rmq-unlucky"))).status_code == 200
    assert (await api.admin("GET", "/faults")).json()["error_next"] == 0


async def test_an_error_rate_scoped_to_one_operation_leaves_the_others_alone(api: Api) -> None:
    await api.faults(error_rate=1.0, error_operations=["list"], error_status=500, error_code="DMS.00500123")
    assert error_of(await api.list_instances()) == (500, "DMS.00500123")
    assert error_of(await api.show("missing")) == (404, "DMS.00404022")


async def test_a_dropped_connection_gets_no_response_and_the_server_keeps_serving(api: Api) -> None:
    await api.faults(drop_next=1, drop_operations=["create"])
    with pytest.raises(httpx.RemoteProtocolError):
        await api.call("POST", CREATE, json_body=create_body("rmq-dropped"))
    assert await instance_names(api) == []  # dropped before the cloud acted
    assert await api.healthy()
    [call] = [c for c in await api.calls() if c["operation"] == "create"]
    assert (call["status"], call["fault"]) == (None, "drop")
    assert (await api.call("POST", CREATE, json_body=create_body("rmq-dropped"))).status_code == 200


async def test_a_drop_after_the_operation_leaves_the_client_guessing(api: Api) -> None:
    await api.faults(drop_rate=1.0, drop_phase="after", drop_operations=["create"])
    with pytest.raises(httpx.RemoteProtocolError):
        await api.call("POST", CREATE, json_body=create_body("rmq-acted"))
    assert await instance_names(api) == ["rmq-acted"]
    [call] = [c for c in await api.calls() if c["operation"] == "create"]
    assert call["instance_ids"] and call["fault"] == "drop"


async def test_a_malformed_body_is_invalid_json_with_200(api: Api) -> None:
    await api.faults(malformed_next=1, malformed_operations=["create", "list"])
    response = await api.call("POST", CREATE, json_body=create_body("rmq-garbled"))
    assert response.status_code == 200
    with pytest.raises(ValueError, match=r"Unterminated|Expecting"):
        response.json()
    assert await instance_names(api) == ["rmq-garbled"]  # the create itself happened
    assert (await api.list_instances()).json()["instance_num"] == 1  # next_ was one call


async def test_failed_ids_are_answered_failed_and_left_alone(api: Api) -> None:
    keep, drop = await running(api, "rmq-stuck"), await running(api, "rmq-goes")
    await api.configure(delete_seconds=60)  # so DELETING can be observed on the real clock
    await api.faults(failed_ids=[keep])
    response = await api.batch({"action": "delete", "instances": [keep, drop]})
    assert response.json()["results"] == [
        {"result": "failed", "instance": keep},
        {"result": "success", "instance": drop},
    ]
    assert await api.status(keep) == "RUNNING"
    assert await api.status(drop) == "DELETING"


async def test_failed_ids_also_survive_the_all_failure_sweep(api: Api) -> None:
    [stuck, swept] = await api.seed(
        {"name": "rmq-stuck-failed", "status": "CREATEFAILED"}, {"name": "rmq-swept", "status": "CREATEFAILED"}
    )
    await api.configure(delete_seconds=60)
    await api.faults(failed_ids=[stuck["instance_id"]])
    assert (await api.batch({"action": "delete", "all_failure": "reliability"})).status_code == 204
    assert await api.status(stuck["instance_id"]) == "CREATEFAILED"
    assert await api.status(swept["instance_id"]) == "DELETING"


async def test_a_held_create_exists_in_the_cloud_before_its_response_arrives(api: Api) -> None:
    await api.faults(hold_create_seconds=1.5)
    started = time.monotonic()
    pending = asyncio.create_task(api.call("POST", CREATE, json_body=create_body("rmq-held")))
    for _ in range(50):
        if await instance_names(api):
            break
        await asyncio.sleep(0.02)
    assert await instance_names(api) == ["rmq-held"]
    [call] = [c for c in await api.calls() if c["operation"] == "create"]
    assert call["status"] is None and call["fault"] == "hold" and call["instance_ids"]
    assert not pending.done()
    response = await pending
    assert response.status_code == 200
    assert time.monotonic() - started >= 1.5
    assert response.json()["instance_id"] == call["instance_ids"][0]


async def test_the_fault_plan_is_replaced_read_and_cleared(api: Api) -> None:
    await api.faults(error_next=3, latency_ms=10)
    await api.faults(malformed_rate=0.5)
    plan = (await api.admin("GET", "/faults")).json()
    assert (plan["error_next"], plan["latency_ms"], plan["malformed_rate"]) == (0, 0.0, 0.5)
    cleared = (await api.admin("DELETE", "/faults")).json()
    assert cleared["malformed_rate"] == 0.0 and cleared["failed_ids"] == []
    assert (cleared["delete_fail_ids"], cleared["delete_fail_next"], cleared["delete_fail_status"]) == ([], 0, "ERROR")


@pytest.mark.parametrize(
    "plan",
    [
        {"no_such_fault": 1},
        {"error_rate": 2},
        {"error_next": -1},
        {"error_status": 200},
        {"latency_operations": ["frobnicate"]},
        {"drop_phase": "during"},
        {"failed_ids": "abc"},
        {"delete_fail_ids": "abc"},
        {"delete_fail_ids": ["ok", 7]},
        {"delete_fail_next": -1},
        {"delete_fail_next": True},
        {"delete_fail_next": 1.5},
        {"delete_fail_status": "DELETING"},
        {"delete_fail_status": "error"},
        {"delete_fail_status": None},
    ],
)
async def test_an_invalid_fault_plan_is_refused_naming_the_key_and_the_old_one_kept(
    api: Api, plan: dict[str, object]
) -> None:
    await api.faults(error_next=1)
    response = await api.admin("PUT", "/faults", plan)
    assert error_of(response) == (400, "SIM.0400")
    assert next(iter(plan)) in response.json()["error_msg"]
    assert (await api.admin("GET", "/faults")).json()["error_next"] == 1
