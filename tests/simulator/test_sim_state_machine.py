"""The instance state machine, on a clock the test moves: each transition happens exactly when its
configured time has passed, and every status is computed from timestamps on read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sim_kit import PID, Api, error_of

from dms_simulator import ManualClock

# manual_server's timings (conftest): create 10 s, delete 5 s, extend 20 s, restart 3 s.


async def running(api: Api, clock: ManualClock, name: str, **overrides: Any) -> str:
    instance_id = await api.create(name, **overrides)
    clock.advance(10)
    assert await api.status(instance_id) == "RUNNING"
    return instance_id


async def test_create_is_creating_until_create_seconds_then_running(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await manual_api.create("rmq-state")
    assert await manual_api.status(instance_id) == "CREATING"
    clock.advance(9.99)
    assert await manual_api.status(instance_id) == "CREATING"
    clock.advance(0.01)
    assert await manual_api.status(instance_id) == "RUNNING"


async def test_a_listed_failure_name_ends_in_createfailed(manual_api: Api, clock: ManualClock) -> None:
    await manual_api.configure(create_fail_names=["rmq-doomed"])
    doomed = await manual_api.create("rmq-doomed")
    fine = await manual_api.create("rmq-fine")
    clock.advance(10)
    assert await manual_api.status(doomed) == "CREATEFAILED"
    assert await manual_api.status(fine) == "RUNNING"


async def test_a_failure_share_of_one_fails_every_create(manual_api: Api, clock: ManualClock) -> None:
    await manual_api.configure(create_fail_share=1.0)
    ids = [await manual_api.create(f"rmq-share-{index}") for index in range(3)]
    clock.advance(10)
    assert [await manual_api.status(i) for i in ids] == ["CREATEFAILED"] * 3


async def test_a_failure_share_is_reproducible_with_a_seed(manual_api: Api, clock: ManualClock) -> None:
    async def outcomes() -> list[str]:
        await manual_api.admin("POST", "/reset")
        await manual_api.configure(create_fail_share=0.5, seed=1234)
        ids = [await manual_api.create(f"rmq-seeded-{index}") for index in range(12)]
        clock.advance(10)
        return [await manual_api.status(i) for i in ids]

    first, second = await outcomes(), await outcomes()
    assert first == second
    assert {"RUNNING", "CREATEFAILED"} == set(first)


async def test_resize_is_extending_then_running_with_the_new_spec(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await running(manual_api, clock, "rmq-grow", storage_space=300, broker_num=2)
    response = await manual_api.call(
        "POST",
        f"/v2/rocketmq/{PID}/instances/{instance_id}/extend",
        json_body={"oper_type": "storage", "new_storage_space": 500},
    )
    assert response.status_code == 200 and response.json()["job_id"]
    assert await manual_api.status(instance_id) == "EXTENDING"
    assert (await manual_api.show(instance_id)).json()["storage_space"] == 300  # not yet applied
    clock.advance(20)
    shown = (await manual_api.show(instance_id)).json()
    assert (shown["status"], shown["storage_space"], shown["total_storage_space"], shown["extend_times"]) == (
        "RUNNING",
        500,
        500,
        1,
    )


async def test_restart_is_restarting_then_running(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await running(manual_api, clock, "rmq-bounce")
    response = await manual_api.call("POST", f"/v2/{PID}/reliability/instances/{instance_id}/restart")
    assert response.json() == {"instance_id": instance_id, "nodes": ["broker-0"], "result": "success"}
    assert await manual_api.status(instance_id) == "RESTARTING"
    clock.advance(3)
    assert await manual_api.status(instance_id) == "RUNNING"


async def test_restart_accepts_an_optional_nodes_body(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await running(manual_api, clock, "rmq-nodes", broker_num=3)
    path = f"/v2/{PID}/rocketmq/instances/{instance_id}/restart"
    response = await manual_api.call("POST", path, json_body={"nodes": ["broker-1", {"name": "broker-2"}]})
    assert response.json()["nodes"] == ["broker-1", "broker-2"]
    clock.advance(3)
    await manual_api.configure(restart_nodes_as_objects=True)
    response = await manual_api.call("POST", path)
    assert response.json()["nodes"] == [{"name": "broker-0"}, {"name": "broker-1"}, {"name": "broker-2"}]
    clock.advance(3)
    unknown = await manual_api.call("POST", path, json_body={"nodes": ["broker-9"]})
    assert error_of(unknown) == (400, "DMS.00400001")


async def test_delete_is_deleting_then_gone(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await running(manual_api, clock, "rmq-bye")
    assert (await manual_api.call("DELETE", f"/v2/{PID}/instances/{instance_id}")).status_code == 204
    assert await manual_api.status(instance_id) == "DELETING"
    # As in the real cloud, only show still sees it (test_sim_deletion.py has the details).
    assert (await manual_api.list_instances()).json() == {"instances": [], "instance_num": 0}
    clock.advance(4.99)
    assert await manual_api.status(instance_id) == "DELETING"
    clock.advance(0.01)
    assert error_of(await manual_api.show(instance_id)) == (404, "DMS.00404022")
    assert (await manual_api.list_instances()).json() == {"instances": [], "instance_num": 0}


async def test_with_the_recycle_bin_a_delete_lands_in_the_bin_and_restore_brings_it_back(
    manual_api: Api, clock: ManualClock
) -> None:
    await manual_api.configure(recycle_bin_enabled=True, recycle_retention_days=2)
    instance_id = await running(manual_api, clock, "rmq-binned")
    await manual_api.batch({"action": "delete", "instances": [instance_id]})
    clock.advance(5)
    assert await manual_api.status(instance_id) == "RECYCLE"
    assert (await manual_api.list_instances()).json()["instance_num"] == 0

    binned = (await manual_api.call("GET", f"/v2/{PID}/recycle")).json()
    assert (binned["default_use_recycle"], binned["retention_days"]) == (True, 2)
    [entry] = binned["recycle_instances"]
    assert entry["instance_id"] == instance_id and entry["status"] == "RUNNING"
    assert entry["in_recycle_time"] == int(clock.now() * 1000)
    assert entry["auto_delete_time"] - entry["in_recycle_time"] == 2 * 86_400_000

    restored = await manual_api.call("POST", f"/v2/{PID}/recycle", json_body={"instances": [instance_id, "nope"]})
    [ok, missing] = restored.json()["results"]
    assert ok["instance_id"] == instance_id and ok["job_id"] and ok["error_msg"] is None
    assert missing["job_id"] is None and "not in the recycle bin" in missing["error_msg"]
    assert await manual_api.status(instance_id) == "RUNNING"


async def test_force_delete_skips_the_bin_and_failed_creates_never_enter_it(
    manual_api: Api, clock: ManualClock
) -> None:
    await manual_api.configure(recycle_bin_enabled=True, create_fail_names=["rmq-failed"])
    forced = await running(manual_api, clock, "rmq-forced")
    failed = await manual_api.create("rmq-failed")
    clock.advance(10)
    await manual_api.batch({"action": "delete", "instances": [forced], "force_delete": True})
    await manual_api.batch({"action": "delete", "all_failure": "reliability"})
    clock.advance(5)
    assert await manual_api.status(forced) == await manual_api.status(failed) == "<404>"
    assert (await manual_api.call("GET", f"/v2/{PID}/recycle")).json()["recycle_instances"] == []


async def test_binned_instances_are_purged_after_the_retention_period(manual_api: Api, clock: ManualClock) -> None:
    await manual_api.call("PUT", f"/v2/{PID}/recycle", json_body={"retention_days": 1, "default_use_recycle": True})
    instance_id = await running(manual_api, clock, "rmq-expiring")
    await manual_api.call("DELETE", f"/v2/{PID}/instances/{instance_id}")
    clock.advance(5)
    assert len((await manual_api.call("GET", f"/v2/{PID}/recycle")).json()["recycle_instances"]) == 1
    clock.advance(86_400)
    assert (await manual_api.call("GET", f"/v2/{PID}/recycle")).json()["recycle_instances"] == []
    admin = (await manual_api.admin("GET", f"/instances/{instance_id}")).status_code
    assert admin == 404


async def test_background_tasks_follow_the_operation(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await manual_api.create("rmq-tasks")
    tasks = (await manual_api.call("GET", f"/v2/{PID}/instances/{instance_id}/tasks")).json()
    assert tasks["task_count"] == "1"
    [task] = tasks["tasks"]
    assert (task["name"], task["status"]) == ("createInstance", "CREATED")
    progress = await manual_api.call("GET", f"/v2/{PID}/instances/{instance_id}/tasks/{task['id']}/progress")
    assert progress.json()["step_list"][0]["statue"] == "IN_PROGRESS"
    clock.advance(10)
    shown = (await manual_api.call("GET", f"/v2/{PID}/instances/{instance_id}/tasks/{task['id']}")).json()
    assert shown["tasks"][0]["status"] == "SUCCESS"
    missing = await manual_api.call("GET", f"/v2/{PID}/instances/{instance_id}/tasks/nope")
    assert error_of(missing) == (404, "DMS.00404001")


async def test_public_ip_changes_are_background_tasks(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await running(manual_api, clock, "rmq-eip")
    path = f"/v2/{PID}/instances/{instance_id}"
    response = await manual_api.call("PUT", path, json_body={"enable_publicip": True, "publicip_id": "eip-1"})
    assert response.status_code == 204
    shown = (await manual_api.show(instance_id)).json()
    assert shown["enable_publicip"] is True and shown["public_namesrv_address"]
    tasks = (await manual_api.call("GET", path + "/tasks")).json()["tasks"]
    assert (tasks[0]["name"], tasks[0]["status"]) == ("bindInstancePublicIp", "CREATED")
    clock.advance(3)
    tasks = (await manual_api.call("GET", path + "/tasks")).json()["tasks"]
    assert tasks[0]["status"] == "SUCCESS"


async def test_the_real_clock_drives_the_same_machine(api: Api) -> None:
    """The default server runs on the system clock, here with a one-second create."""
    await api.configure(create_seconds=1.0)
    instance_id = await api.create("rmq-real-time")
    assert await api.status(instance_id) == "CREATING"
    for _ in range(100):
        if await api.status(instance_id) == "RUNNING":
            break
        await asyncio.sleep(0.05)
    assert await api.status(instance_id) == "RUNNING"


@pytest.mark.parametrize(
    ("seeded", "after", "advance"),
    [
        ("CREATING", "RUNNING", 10),
        ("EXTENDING", "RUNNING", 20),
        ("RESTARTING", "RUNNING", 3),
        ("STARTING", "RUNNING", 3),
        ("UPGRADING", "RUNNING", 20),
        ("ROLLBACK", "RUNNING", 20),
        ("ROLLINGBACK", "RUNNING", 20),
        ("FREEZING", "FROZEN", 3),
        ("DELETING", "<404>", 5),
    ],
)
async def test_seeded_transitional_states_move_on_only_when_asked(
    manual_api: Api, clock: ManualClock, seeded: str, after: str, advance: float
) -> None:
    [still] = await manual_api.seed({"name": "rmq-still", "status": seeded})
    [moving] = await manual_api.seed({"name": "rmq-moving", "status": seeded, "transition": True})
    assert await manual_api.status(still["instance_id"]) == seeded
    assert await manual_api.status(moving["instance_id"]) == seeded
    clock.advance(advance)
    assert await manual_api.status(still["instance_id"]) == seeded
    assert await manual_api.status(moving["instance_id"]) == after


@pytest.mark.parametrize(
    "status",
    ["RUNNING", "ERROR", "CREATEFAILED", "EXTENDEDFAILED", "FROZEN", "FREEZING", "UPGRADING", "ROLLBACK"],
)
async def test_every_documented_status_passes_through_show_and_list(manual_api: Api, status: str) -> None:
    [seeded] = await manual_api.seed({"name": "rmq-any", "status": status})
    assert await manual_api.status(seeded["instance_id"]) == status
    listed = (await manual_api.list_instances(include_failure="true", status=status)).json()
    assert [i["status"] for i in listed["instances"]] == [status]
