"""The admin API under /_sim/: health, reset, config, seeding instances in any state, reading the
whole state, and the call log that end-to-end tests assert on."""

from __future__ import annotations

import httpx
import pytest
from sim_kit import AK, PID, PID2, Api, create_body, error_of

from dms_simulator import ManualClock, SimulatorConfig


async def test_health(api: Api) -> None:
    response = await api.admin("GET", "/health")
    assert response.json() == {"ok": True}
    assert response.headers["X-Request-Id"]


async def test_reset_forgets_state_faults_and_calls_but_keeps_config(api: Api) -> None:
    await api.configure(create_seconds=7.5, quota=3)
    await api.create("rmq-before-reset")
    await api.faults(error_rate=0.5)
    assert (await api.admin("POST", "/reset")).json() == {"ok": True}
    assert (await api.admin("GET", "/instances")).json() == {"instances": []}
    assert (await api.admin("GET", "/faults")).json()["error_rate"] == 0.0
    assert await api.calls() == []
    config = (await api.admin("GET", "/config")).json()
    assert (config["create_seconds"], config["quota"]) == (7.5, 3)


async def test_config_is_read_whole_and_updated_partially(api: Api) -> None:
    config = (await api.admin("GET", "/config")).json()
    assert set(config) == set(SimulatorConfig.keys())
    for key in (
        "create_seconds",
        "delete_seconds",
        "extend_seconds",
        "restart_seconds",
        "create_fail_share",
        "create_fail_names",
        "batch_max_size",
        "rate_limit_rps",
        "rate_limit_burst",
        "recycle_bin_enabled",
        "recycle_retention_days",
        "quota",
        "strict",
        "unknown_batch_ids",
        "list_shows_deleting",
    ):
        assert key in config
    updated = (await api.admin("PUT", "/config", {"batch_max_size": 50, "strict": False})).json()
    assert updated == {**config, "batch_max_size": 50, "strict": False}


@pytest.mark.parametrize(
    "change",
    [
        {"create_fail_share": 1.5},
        {"batch_max_size": 0},
        {"quota": None},
        {"strict": "yes"},
        {"unknown_batch_ids": "explode"},
        {"create_fail_names": "one"},
        {"nonsense": 1},
        {"create_seconds": 1, "rate_limit_rps": -1},
        {"list_shows_deleting": "yes"},
    ],
)
async def test_invalid_config_is_refused_atomically(api: Api, change: dict[str, object]) -> None:
    before = (await api.admin("GET", "/config")).json()
    response = await api.admin("PUT", "/config", change)
    assert response.status_code == 400
    assert response.json()["error_code"] == "SIM.0400"
    assert (await api.admin("GET", "/config")).json() == before


async def test_seeded_instances_are_owned_by_nobody_and_shown_in_full(api: Api) -> None:
    [seeded] = await api.seed(
        {
            "instance_id": "seeded-0001",
            "name": "rmq-seeded",
            "status": "CREATEFAILED",
            "engine_version": "4.8.0",
            "product_id": "c6.8u16g.cluster",
            "storage_space": 600,
        }
    )
    assert seeded["instance_id"] == "seeded-0001"
    assert (seeded["status"], seeded["tags"], seeded["storage_space"]) == ("CREATEFAILED", [], 600)
    assert (seeded["project_id"], seeded["in_recycle_bin"], seeded["pending"]) == (PID, False, None)
    shown = (await api.show("seeded-0001")).json()
    assert (shown["engine_version"], shown["product_id"]) == ("4.8.0", "c6.8u16g.cluster")


async def test_seeded_tags_and_creation_time_are_kept(api: Api) -> None:
    [seeded] = await api.seed(
        {"name": "rmq-owned", "tags": [{"key": "owner", "value": "me"}], "created_at": "1700000000000"}
    )
    shown = (await api.show(seeded["instance_id"])).json()
    assert (shown["tags"], shown["created_at"]) == ([{"key": "owner", "value": "me"}], "1700000000000")


@pytest.mark.parametrize(
    "bad",
    [
        {"status": "SLEEPING"},
        {"storage_space": "big"},
        {"status": "RUNNING", "transition": True},
        {"tags": "owner=me"},
    ],
)
async def test_a_bad_seed_is_refused_and_nothing_is_seeded(api: Api, bad: dict[str, object]) -> None:
    response = await api.admin(
        "POST", "/instances", {"project_id": PID, "instances": [{"name": "rmq-good"}, {"name": "rmq-bad", **bad}]}
    )
    assert response.status_code == 400
    assert (await api.admin("GET", "/instances")).json() == {"instances": []}


async def test_seeding_needs_a_project_and_unique_ids(api: Api) -> None:
    assert (await api.admin("POST", "/instances", {"instances": []})).status_code == 400
    await api.seed({"instance_id": "dup"})
    again = await api.admin("POST", "/instances", {"project_id": PID, "instances": [{"instance_id": "dup"}]})
    assert again.status_code == 400


async def test_the_admin_view_includes_deleting_and_binned_instances(manual_api: Api, clock: ManualClock) -> None:
    await manual_api.configure(recycle_bin_enabled=True)
    [deleting, binned, _] = await manual_api.seed(
        {"name": "rmq-going"}, {"name": "rmq-binned"}, {"name": "rmq-staying"}
    )
    await manual_api.seed({"name": "rmq-elsewhere"}, project=PID2)
    await manual_api.batch({"action": "delete", "instances": [binned["instance_id"]]})
    clock.advance(5)
    await manual_api.batch({"action": "delete", "instances": [deleting["instance_id"]]})

    everything = (await manual_api.admin("GET", f"/instances?project_id={PID}")).json()["instances"]
    state = {item["name"]: (item["status"], item["in_recycle_bin"]) for item in everything}
    assert state == {
        "rmq-going": ("DELETING", False),
        "rmq-binned": ("RECYCLE", True),
        "rmq-staying": ("RUNNING", False),
    }
    by_name = {item["name"]: item for item in everything}
    going, binned_view, staying = by_name["rmq-going"], by_name["rmq-binned"], by_name["rmq-staying"]
    assert going["pending"] == {"target": "GONE", "due": clock.now() + 5}
    # When each deletion ended, as /_sim/deletions records it.
    assert (going["last_deletion"]["ended_at"], going["last_deletion"]["outcome"]) == (None, None)
    assert (binned_view["last_deletion"]["ended_at"], binned_view["last_deletion"]["outcome"]) == (
        clock.now(),
        "binned",
    )
    assert staying["last_deletion"] is None
    all_projects = (await manual_api.admin("GET", "/instances")).json()["instances"]
    assert len(all_projects) == 4


async def test_one_instance_is_read_patched_and_removed(api: Api) -> None:
    [seeded] = await api.seed({"name": "rmq-patch"})
    path = f"/instances/{seeded['instance_id']}"
    assert (await api.admin("GET", path)).json()["name"] == "rmq-patch"
    patched = (await api.admin("PATCH", path, {"status": "ERROR", "description": "broken on purpose"})).json()
    assert (patched["status"], patched["description"]) == ("ERROR", "broken on purpose")
    assert (await api.show(seeded["instance_id"])).json()["status"] == "ERROR"
    assert (await api.admin("PATCH", path, {"instance_id": "other"})).status_code == 400
    assert (await api.admin("DELETE", path)).json() == {"ok": True}
    assert error_of(await api.admin("GET", path)) == (404, "SIM.0404")
    assert error_of(await api.show(seeded["instance_id"])) == (404, "DMS.00404022")


async def test_the_call_log_records_what_the_cloud_saw(api: Api, http: httpx.AsyncClient) -> None:
    instance_id = await api.create("rmq-logged")
    await api.batch({"action": "delete", "instances": [instance_id, "ghost"], "force_delete": True})
    await api.batch({"action": "delete", "all_failure": "reliability"})
    await api.call("GET", f"/v2/{PID}/instances", account=(AK, "wrong"))
    await http.get(api.base_url + "/v2/unknown/route/here")
    await api.admin("GET", "/config")  # admin calls are not logged

    calls = await api.calls()
    assert [c["seq"] for c in calls] == [1, 2, 3, 4, 5]
    create, by_ids, all_failure, unauthorized, unknown = calls
    assert (create["method"], create["operation"], create["status"]) == ("POST", "create", 200)
    assert (create["project_id"], create["access_key"], create["instance_ids"]) == (PID, AK, [instance_id])
    assert by_ids["operation"] == "batch_action"
    assert by_ids["path"] == f"/v2/{PID}/instances/action"
    assert (by_ids["instance_ids"], by_ids["all_failure"], by_ids["force_delete"]) == (
        [instance_id, "ghost"],
        None,
        True,
    )
    assert (all_failure["status"], all_failure["all_failure"], all_failure["force_delete"]) == (
        204,
        "reliability",
        None,
    )
    assert (unauthorized["status"], unauthorized["error_code"], unauthorized["access_key"]) == (
        401,
        "APIGW.0301",
        AK,
    )
    assert unauthorized["query"] == ""
    assert (unknown["operation"], unknown["status"]) == ("unknown", 404)
    assert all(isinstance(c["time"], float) for c in calls)


async def test_calls_are_read_incrementally_and_cleared(api: Api) -> None:
    await api.list_instances()
    await api.list_instances()
    first = (await api.admin("GET", "/calls?since=0")).json()
    assert first["next"] == 2 and len(first["calls"]) == 2
    await api.list_instances()
    newer = (await api.admin("GET", f"/calls?since={first['next']}")).json()
    assert [c["seq"] for c in newer["calls"]] == [3] and newer["next"] == 3
    assert (await api.admin("GET", "/calls?since=3")).json() == {"calls": [], "next": 3}
    cleared = (await api.admin("DELETE", "/calls")).json()
    assert cleared == {"ok": True, "next": 3}
    await api.list_instances()
    assert [c["seq"] for c in await api.calls()] == [4]  # numbering never restarts
    assert (await api.admin("GET", "/calls?since=abc")).status_code == 400


async def test_an_unknown_admin_route_is_a_shaped_404(api: Api) -> None:
    response = await api.admin("GET", "/nothing")
    assert error_of(response) == (404, "APIGW.0101")
    assert error_of(await api.admin("PATCH", "/config", {})) == (404, "APIGW.0101")


async def test_admin_needs_no_credentials_and_is_never_throttled_or_faulted(api: Api) -> None:
    await api.configure(rate_limit_rps=1, rate_limit_burst=1)
    await api.faults(error_rate=1.0, drop_rate=0.0)
    for _ in range(5):
        assert (await api.admin("GET", "/health")).status_code == 200
    assert (
        await api.call("POST", f"/v2/reliability/{PID}/instances", json_body=create_body("x1234"))
    ).status_code == 500
