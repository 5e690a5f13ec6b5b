"""How a deletion shows, as the real cloud shows it (docs/simulator.md, "How a deletion shows"): the
list drops an instance the moment its deletion starts while show keeps answering DELETING; with the
recycle bin a non-forced deletion ends in show answering RECYCLE, a forced one in 404; a deletion the
cloud accepted can still fail (a fault); and ``/_sim/deletions`` says when each one ended."""

from __future__ import annotations

from typing import Any

import pytest
from sim_kit import PID, Api, create_body, error_of

from dms_simulator import ManualClock

# manual_server's timings (conftest): delete 5 s. Seeded instances are RUNNING at once.
DELETE_SECONDS = 5.0
INSTANCES = f"/v2/{PID}/instances"
CREATE = f"/v2/reliability/{PID}/instances"
RECYCLE_BIN = f"/v2/{PID}/recycle"
NOT_FOUND = (404, "DMS.00404022")


async def seed_ids(api: Api, *specs: dict[str, Any]) -> list[str]:
    return [seeded["instance_id"] for seeded in await api.seed(*specs)]


async def delete_one(api: Api, instance_id: str) -> None:
    response = await api.call("DELETE", f"{INSTANCES}/{instance_id}")
    assert response.status_code == 204, response.text


async def delete_batch(api: Api, *instance_ids: str, **extra: Any) -> list[dict[str, str]]:
    response = await api.batch({"action": "delete", "instances": list(instance_ids), **extra})
    assert response.status_code == 200, response.text
    results: list[dict[str, str]] = response.json()["results"]
    return results


async def listed(api: Api, **params: str) -> tuple[list[str], int]:
    """(ids, instance_num) of one list call."""
    response = await api.list_instances(**params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [item["instance_id"] for item in body["instances"]], body["instance_num"]


async def binned_ids(api: Api) -> list[str]:
    response = await api.call("GET", RECYCLE_BIN)
    return [entry["instance_id"] for entry in response.json()["recycle_instances"]]


async def deletions(api: Api) -> list[dict[str, Any]]:
    response = await api.admin("GET", "/deletions")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["deletions"]
    return entries


async def fault_plan(api: Api) -> dict[str, Any]:
    plan: dict[str, Any] = (await api.admin("GET", "/faults")).json()
    return plan


# --- the list hides a deleting instance; show does not ---

GOING = "<the deleted instance's id>"


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"name": "rmq-going"},
        {"name": "rmq-going", "exact_match_name": "true"},
        {"instance_id": GOING},
        {"include_failure": "true"},
        {"enterprise_project_id": "ep-1"},
        {"limit": "1", "offset": "0"},
    ],
    ids=["no filter", "name", "exact name", "instance_id", "include_failure", "enterprise_project", "page"],
)
async def test_the_list_drops_a_deleting_instance_under_every_filter_and_from_instance_num(
    manual_api: Api, filters: dict[str, str]
) -> None:
    _, going = await seed_ids(
        manual_api,
        {"name": "rmq-going-stays", "enterprise_project_id": "ep-1", "created_at": "1700000000000"},
        {"name": "rmq-going", "enterprise_project_id": "ep-1", "created_at": "1700000001000"},
    )
    query = {key: going if value == GOING else value for key, value in filters.items()}
    before, before_num = await listed(manual_api, **query)
    assert going in before  # the filter does match it (newest first, so also on a one-item page)
    await delete_one(manual_api, going)
    after, after_num = await listed(manual_api, **query)
    assert going not in after
    assert after_num == before_num - 1
    assert await manual_api.status(going) == "DELETING"


async def test_asking_the_list_for_status_deleting_finds_nothing(manual_api: Api) -> None:
    [going] = await seed_ids(manual_api, {"name": "rmq-going"})
    await delete_one(manual_api, going)
    assert await listed(manual_api, status="DELETING") == ([], 0)
    assert await listed(manual_api, status="DELETING", include_failure="true") == ([], 0)


async def test_show_answers_deleting_on_every_show_path_until_the_instance_is_gone(
    manual_api: Api, clock: ManualClock
) -> None:
    [going] = await seed_ids(manual_api, {"name": "rmq-going"})
    await delete_batch(manual_api, going)
    paths = [
        f"{INSTANCES}/{going}",
        f"/v2/reliability/{PID}/instances/{going}",
        f"/v2/rocketmq/{PID}/instances/{going}",
    ]
    for path in paths:
        response = await manual_api.call("GET", path)
        assert (response.status_code, response.json()["status"], response.json()["name"]) == (
            200,
            "DELETING",
            "rmq-going",
        )
    clock.advance(DELETE_SECONDS - 0.01)
    assert await manual_api.status(going) == "DELETING"
    clock.advance(0.01)
    for path in paths:
        assert error_of(await manual_api.call("GET", path)) == NOT_FOUND


async def test_a_deleting_instance_still_holds_its_name_and_its_quota(manual_api: Api, clock: ManualClock) -> None:
    await manual_api.configure(quota=2)
    going, _ = await seed_ids(manual_api, {"name": "rmq-held"}, {"name": "rmq-other"})
    await delete_one(manual_api, going)
    assert error_of(await manual_api.call("POST", CREATE, json_body=create_body("rmq-held"))) == (400, "DMS.00400060")
    assert error_of(await manual_api.call("POST", CREATE, json_body=create_body("rmq-new"))) == (400, "DMS.00400039")
    [quota] = (await manual_api.call("GET", f"/v2/{PID}/quotas")).json()["quotas"]["resources"]
    assert quota["used"] == 2
    clock.advance(DELETE_SECONDS)
    assert (await manual_api.call("POST", CREATE, json_body=create_body("rmq-held"))).status_code == 200


async def test_list_shows_deleting_restores_the_old_list_for_comparison_only(
    manual_api: Api, clock: ManualClock
) -> None:
    assert (await manual_api.admin("GET", "/config")).json()["list_shows_deleting"] is False
    [going] = await seed_ids(manual_api, {"name": "rmq-going"})
    await delete_one(manual_api, going)
    assert await listed(manual_api) == ([], 0)

    await manual_api.configure(list_shows_deleting=True)
    old_view = (await manual_api.list_instances()).json()
    assert [(item["instance_id"], item["status"]) for item in old_view["instances"]] == [(going, "DELETING")]
    assert old_view["instance_num"] == 1
    assert await listed(manual_api, status="DELETING") == ([going], 1)
    clock.advance(DELETE_SECONDS)
    assert await listed(manual_api) == ([], 0)


# --- the recycle bin: RECYCLE on show, in the recycle list, not in the list ---


@pytest.mark.parametrize(
    "how",
    ["DELETE", "batch without force_delete", "batch with force_delete false"],
)
async def test_with_the_bin_a_non_forced_deletion_ends_in_show_answering_recycle(
    manual_api: Api, clock: ManualClock, how: str
) -> None:
    await manual_api.configure(recycle_bin_enabled=True)
    [binned] = await seed_ids(manual_api, {"name": "rmq-binned", "storage_space": 600})
    if how == "DELETE":
        await delete_one(manual_api, binned)
    else:
        await delete_batch(manual_api, binned, **({"force_delete": False} if how.endswith("false") else {}))
    clock.advance(DELETE_SECONDS - 0.01)
    assert await manual_api.status(binned) == "DELETING"
    assert await binned_ids(manual_api) == []
    clock.advance(0.01)

    shown = await manual_api.show(binned)
    assert shown.status_code == 200
    detail = shown.json()
    assert (detail["status"], detail["instance_id"], detail["name"], detail["storage_space"]) == (
        "RECYCLE",
        binned,
        "rmq-binned",
        600,
    )
    assert await binned_ids(manual_api) == [binned]
    assert await listed(manual_api, include_failure="true") == ([], 0)
    # The recycle list reports the status the instance was deleted in, as before.
    [entry] = (await manual_api.call("GET", RECYCLE_BIN)).json()["recycle_instances"]
    assert entry["status"] == "RUNNING"


async def test_every_other_operation_on_a_binned_instance_is_404(manual_api: Api, clock: ManualClock) -> None:
    await manual_api.configure(recycle_bin_enabled=True)
    [binned] = await seed_ids(manual_api, {"name": "rmq-binned"})
    await delete_one(manual_api, binned)
    clock.advance(DELETE_SECONDS)
    assert await manual_api.status(binned) == "RECYCLE"

    calls: list[tuple[str, str, Any]] = [
        ("PUT", f"{INSTANCES}/{binned}", {"description": "still there?"}),
        ("DELETE", f"{INSTANCES}/{binned}", None),
        (
            "POST",
            f"/v2/reliability/{PID}/instances/{binned}/extend",
            {"oper_type": "storage", "new_storage_space": 600},
        ),
        ("POST", f"/v2/{PID}/reliability/instances/{binned}/restart", None),
        (
            "POST",
            f"/v2/{PID}/rocketmq/{binned}/tags/action",
            {"action": "create", "tags": [{"key": "k", "value": "v"}]},
        ),
        ("GET", f"/v2/{PID}/rocketmq/{binned}/tags", None),
        ("GET", f"{INSTANCES}/{binned}/tasks", None),
    ]
    for method, path, body in calls:
        assert error_of(await manual_api.call(method, path, json_body=body)) == NOT_FOUND, (method, path)

    # A batch naming it follows the unknown-id setting, and changes nothing.
    assert await delete_batch(manual_api, binned) == [{"result": "failed", "instance": binned}]
    await manual_api.configure(unknown_batch_ids="omit")
    assert await delete_batch(manual_api, binned, force_delete=True) == []
    assert await manual_api.status(binned) == "RECYCLE"
    assert len(await deletions(manual_api)) == 1


async def test_a_forced_deletion_ends_in_404_even_with_the_bin(manual_api: Api, clock: ManualClock) -> None:
    await manual_api.configure(recycle_bin_enabled=True)
    [forced] = await seed_ids(manual_api, {"name": "rmq-forced"})
    await delete_batch(manual_api, forced, force_delete=True)
    clock.advance(DELETE_SECONDS)
    assert error_of(await manual_api.show(forced)) == NOT_FOUND
    assert await binned_ids(manual_api) == []


@pytest.mark.parametrize("how", ["DELETE", "batch by id", "all_failure"])
async def test_a_failed_create_never_enters_the_bin(manual_api: Api, clock: ManualClock, how: str) -> None:
    await manual_api.configure(recycle_bin_enabled=True)
    [failed] = await seed_ids(manual_api, {"name": "rmq-failed", "status": "CREATEFAILED"})
    if how == "DELETE":
        await delete_one(manual_api, failed)
    elif how == "batch by id":
        await delete_batch(manual_api, failed)
    else:
        assert (await manual_api.batch({"action": "delete", "all_failure": "reliability"})).status_code == 204
    assert await manual_api.status(failed) == "DELETING"
    clock.advance(DELETE_SECONDS)
    assert error_of(await manual_api.show(failed)) == NOT_FOUND
    assert await binned_ids(manual_api) == []


async def test_a_restored_instance_shows_running_and_one_left_in_the_bin_expires_to_404(
    manual_api: Api, clock: ManualClock
) -> None:
    await manual_api.configure(recycle_bin_enabled=True, recycle_retention_days=1)
    kept, expiring = await seed_ids(manual_api, {"name": "rmq-kept"}, {"name": "rmq-expiring"})
    await delete_batch(manual_api, kept, expiring)
    clock.advance(DELETE_SECONDS)
    assert [await manual_api.status(kept), await manual_api.status(expiring)] == ["RECYCLE", "RECYCLE"]

    restored = await manual_api.call("POST", RECYCLE_BIN, json_body={"instances": [kept]})
    assert restored.json()["results"][0]["error_msg"] is None
    assert await manual_api.status(kept) == "RUNNING"
    assert await listed(manual_api) == ([kept], 1)

    clock.advance(86_400 - 0.01)
    assert await manual_api.status(expiring) == "RECYCLE"
    clock.advance(0.01)
    assert error_of(await manual_api.show(expiring)) == NOT_FOUND
    assert await binned_ids(manual_api) == []
    assert await manual_api.status(kept) == "RUNNING", "restored: the bin's expiry no longer applies to it"


async def test_seeding_status_recycle_puts_the_instance_in_the_bin(manual_api: Api) -> None:
    [seeded] = await manual_api.seed({"name": "rmq-seeded-bin", "status": "RECYCLE"})
    assert (seeded["status"], seeded["in_recycle_bin"]) == ("RECYCLE", True)
    assert await manual_api.status(seeded["instance_id"]) == "RECYCLE"
    assert await listed(manual_api) == ([], 0)
    [entry] = (await manual_api.call("GET", RECYCLE_BIN)).json()["recycle_instances"]
    assert (entry["instance_id"], entry["status"]) == (seeded["instance_id"], "RUNNING")


# --- a deletion the cloud fails after accepting it (fault injection) ---


@pytest.mark.parametrize("fail_status", ["ERROR", "RUNNING"])
async def test_a_deletion_in_delete_fail_ids_fails_once_when_its_time_is_up(
    manual_api: Api, clock: ManualClock, fail_status: str
) -> None:
    await manual_api.configure(recycle_bin_enabled=True)  # a failed deletion stays out of it
    doomed, fine = await seed_ids(manual_api, {"name": "rmq-doomed"}, {"name": "rmq-fine"})
    await manual_api.faults(delete_fail_ids=[doomed, "never-deleted"], delete_fail_status=fail_status)
    results = await delete_batch(manual_api, doomed, fine)
    assert [item["result"] for item in results] == ["success", "success"]  # accepted, as the cloud would
    assert (await fault_plan(manual_api))["delete_fail_ids"] == ["never-deleted"]  # one-shot
    assert await manual_api.status(doomed) == "DELETING"
    assert await listed(manual_api) == ([], 0)

    clock.advance(DELETE_SECONDS)
    assert await manual_api.status(doomed) == fail_status
    assert await manual_api.status(fine) == "RECYCLE"
    assert await listed(manual_api) == ([doomed], 1)  # back in the list
    assert await binned_ids(manual_api) == [fine]
    view = (await manual_api.admin("GET", f"/instances/{doomed}")).json()
    assert (view["status"], view["in_recycle_bin"], view["pending"]) == (fail_status, False, None)
    assert (view["last_deletion"]["outcome"], view["last_deletion"]["status_after"]) == ("failed", fail_status)

    # The fault is spent: the resubmission goes through.
    await delete_one(manual_api, doomed)
    clock.advance(DELETE_SECONDS)
    assert await manual_api.status(doomed) == "RECYCLE"
    assert [entry["outcome"] for entry in await deletions(manual_api)] == ["failed", "binned", "binned"]


async def test_delete_fail_status_defaults_to_error(manual_api: Api, clock: ManualClock) -> None:
    [doomed] = await seed_ids(manual_api, {"name": "rmq-doomed"})
    await manual_api.faults(delete_fail_ids=[doomed])
    assert (await fault_plan(manual_api))["delete_fail_status"] == "ERROR"
    await delete_one(manual_api, doomed)
    clock.advance(DELETE_SECONDS)
    assert await manual_api.status(doomed) == "ERROR"


async def test_delete_fail_next_fails_the_next_n_accepted_deletions_of_any_id(
    manual_api: Api, clock: ManualClock
) -> None:
    first, second, third = await seed_ids(manual_api, {"name": "rmq-1"}, {"name": "rmq-2"}, {"name": "rmq-3"})
    await manual_api.faults(delete_fail_next=2)
    await delete_one(manual_api, first)
    await delete_batch(manual_api, second, third)
    assert (await fault_plan(manual_api))["delete_fail_next"] == 0
    clock.advance(DELETE_SECONDS)
    assert [await manual_api.status(i) for i in (first, second, third)] == ["ERROR", "ERROR", "<404>"]
    assert sorted((await listed(manual_api))[0]) == sorted([first, second])


async def test_a_deletion_fault_is_spent_only_by_a_deletion_the_cloud_accepts(
    manual_api: Api, clock: ManualClock
) -> None:
    refused, creating, going = await seed_ids(
        manual_api, {"name": "rmq-refused"}, {"name": "rmq-creating", "status": "CREATING"}, {"name": "rmq-going"}
    )
    await manual_api.faults(failed_ids=[refused], delete_fail_ids=[refused, creating, "ghost"], delete_fail_next=1)
    results = await delete_batch(manual_api, refused, creating, "ghost")
    assert [item["result"] for item in results] == ["failed", "failed", "failed"]
    assert error_of(await manual_api.call("DELETE", f"{INSTANCES}/{creating}")) == (400, "DMS.00400026")
    plan = await fault_plan(manual_api)
    assert (plan["delete_fail_ids"], plan["delete_fail_next"]) == ([refused, creating, "ghost"], 1)
    assert await deletions(manual_api) == []

    # A resubmission of a deletion under way is no new deletion either.
    await manual_api.faults()
    await delete_one(manual_api, going)
    await manual_api.faults(delete_fail_ids=[going])
    await delete_one(manual_api, going)
    assert await delete_batch(manual_api, going) == [{"result": "success", "instance": going}]
    assert (await fault_plan(manual_api))["delete_fail_ids"] == [going]
    clock.advance(DELETE_SECONDS)
    assert await manual_api.status(going) == "<404>"


async def test_the_outcome_is_fixed_when_the_deletion_is_accepted(manual_api: Api, clock: ManualClock) -> None:
    [doomed] = await seed_ids(manual_api, {"name": "rmq-doomed"})
    await manual_api.faults(delete_fail_next=1, delete_fail_status="RUNNING")
    await delete_one(manual_api, doomed)
    assert (await manual_api.admin("DELETE", "/faults")).status_code == 200
    clock.advance(DELETE_SECONDS)
    assert await manual_api.status(doomed) == "RUNNING"


# --- /_sim/deletions: when each accepted deletion ended ---


async def test_deletions_record_each_accepted_deletion_in_order_and_when_it_ended(
    manual_api: Api, clock: ManualClock
) -> None:
    await manual_api.configure(recycle_bin_enabled=True)
    binned, gone, failed, swept = await seed_ids(
        manual_api,
        {"name": "rmq-binned"},
        {"name": "rmq-gone"},
        {"name": "rmq-failed"},
        {"name": "rmq-swept", "status": "CREATEFAILED"},
    )
    await manual_api.faults(delete_fail_ids=[failed])
    start = clock.now()
    await delete_one(manual_api, binned)
    clock.advance(1)
    await delete_batch(manual_api, gone, force_delete=True)
    await delete_batch(manual_api, gone)  # a resubmission: no second entry
    clock.advance(1)
    assert (await manual_api.batch({"action": "delete", "all_failure": "reliability"})).status_code == 204
    await delete_batch(manual_api, failed)

    def timeline(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(e["name"], e["accepted_at"], e["ended_at"], e["outcome"], e["status_after"]) for e in entries]

    in_flight = await deletions(manual_api)
    assert timeline(in_flight) == [
        ("rmq-binned", start, None, None, None),
        ("rmq-gone", start + 1, None, None, None),
        ("rmq-swept", start + 2, None, None, None),
        ("rmq-failed", start + 2, None, None, None),
    ]
    clock.advance(DELETE_SECONDS - 2)  # only the first one is due
    assert [entry["ended_at"] for entry in await deletions(manual_api)] == [start + 5, None, None, None]

    clock.advance(60)  # read long after: each keeps the time it was due, not the time it was read
    entries = await deletions(manual_api)
    assert timeline(entries) == [
        ("rmq-binned", start, start + 5, "binned", "RECYCLE"),
        ("rmq-gone", start + 1, start + 6, "gone", None),
        ("rmq-swept", start + 2, start + 7, "gone", None),
        ("rmq-failed", start + 2, start + 7, "failed", "ERROR"),
    ]
    assert [(e["instance_id"], e["project_id"], e["forced"]) for e in entries] == [
        (binned, PID, False),
        (gone, PID, True),
        (swept, PID, False),
        (failed, PID, False),
    ]
    assert set(entries[0]) == {
        "instance_id",
        "project_id",
        "name",
        "accepted_at",
        "ended_at",
        "outcome",
        "status_after",
        "forced",
    }
    assert all(isinstance(e["accepted_at"], float) and isinstance(e["ended_at"], float) for e in entries)

    assert (await manual_api.admin("POST", "/reset")).status_code == 200
    assert await deletions(manual_api) == []
