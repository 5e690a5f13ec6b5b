"""The list call's filters and paging, and the wire shape of an instance with the API's type quirks
(reference section 6 rows 12-16)."""

from __future__ import annotations

import json

from sim_kit import PID, Api

from dms_simulator import ManualClock


async def make(api: Api, clock: ManualClock, *names: str) -> list[str]:
    ids = []
    for name in names:
        ids.append(await api.create(name))
        clock.advance(1)  # distinct creation times: the list is newest first
    clock.advance(10)
    return ids


async def names(api: Api, **params: str) -> list[str]:
    response = await api.list_instances(**params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["instances"]]


async def test_pages_are_newest_first_and_instance_num_counts_all_matches(manual_api: Api, clock: ManualClock) -> None:
    await make(manual_api, clock, *(f"rmq-page-{i:02d}" for i in range(12)))
    default = (await manual_api.list_instances()).json()
    assert default["instance_num"] == 12
    assert [i["name"] for i in default["instances"]] == [f"rmq-page-{i:02d}" for i in range(11, 1, -1)]
    last = (await manual_api.list_instances(limit="5", offset="10")).json()
    assert last["instance_num"] == 12
    assert [i["name"] for i in last["instances"]] == ["rmq-page-01", "rmq-page-00"]
    assert (await manual_api.list_instances(offset="50")).json() == {"instances": [], "instance_num": 12}


async def test_a_listing_follows_the_instances_that_come_and_go_between_two_calls(
    manual_api: Api, clock: ManualClock
) -> None:
    """The list keeps its order between calls (a walk asks for many pages); what changes in between shows."""
    _, second = await make(manual_api, clock, "rmq-first", "rmq-second")
    assert await names(manual_api) == ["rmq-second", "rmq-first"]
    await make(manual_api, clock, "rmq-third")
    assert await names(manual_api) == ["rmq-third", "rmq-second", "rmq-first"]
    await manual_api.batch({"action": "delete", "instances": [second], "force_delete": True})
    clock.advance(60)
    assert await names(manual_api) == ["rmq-third", "rmq-first"]
    await manual_api.seed({"name": "rmq-seeded", "created_at": str(int((clock.now() - 3600) * 1000))})
    assert await names(manual_api) == ["rmq-third", "rmq-first", "rmq-seeded"], "in order of creation, not arrival"


async def test_name_is_fuzzy_unless_exact_match_is_asked(manual_api: Api, clock: ManualClock) -> None:
    await make(manual_api, clock, "orders-prod", "orders-prod-2", "billing-prod")
    assert sorted(await names(manual_api, name="orders-prod")) == ["orders-prod", "orders-prod-2"]
    assert sorted(await names(manual_api, name="PROD")) == ["billing-prod", "orders-prod", "orders-prod-2"]
    assert await names(manual_api, name="orders-prod", exact_match_name="true") == ["orders-prod"]
    assert await names(manual_api, name="orders", exact_match_name="true") == []


async def test_filters_by_instance_id_status_and_enterprise_project(manual_api: Api, clock: ManualClock) -> None:
    first, _ = await make(manual_api, clock, "rmq-f1", "rmq-f2")
    creating = await manual_api.create("rmq-f3", enterprise_project_id="ep-1")
    assert await names(manual_api, instance_id=first) == ["rmq-f1"]
    assert await names(manual_api, status="CREATING") == ["rmq-f3"]
    assert await names(manual_api, enterprise_project_id="ep-1") == ["rmq-f3"]
    assert sorted(await names(manual_api, enterprise_project_id="0")) == ["rmq-f1", "rmq-f2"]
    assert creating


async def test_failed_creates_are_hidden_and_uncounted_unless_include_failure(
    manual_api: Api, clock: ManualClock
) -> None:
    await manual_api.configure(create_fail_names=["rmq-failed"])
    await make(manual_api, clock, "rmq-ok", "rmq-failed")
    assert (await manual_api.list_instances()).json()["instance_num"] == 1
    assert (await manual_api.list_instances(include_failure="false")).json()["instance_num"] == 1
    assert sorted(await names(manual_api, include_failure="true")) == ["rmq-failed", "rmq-ok"]


async def test_an_instance_on_the_wire_has_the_documented_types(manual_api: Api, clock: ManualClock) -> None:
    [instance_id] = await make(manual_api, clock, "rmq-wire")
    item = (await manual_api.list_instances()).json()["instances"][0]
    shown = (await manual_api.show(instance_id)).json()
    for detail in (item, shown):
        assert isinstance(detail["created_at"], str) and detail["created_at"].isdigit()
        assert int(detail["created_at"]) == int((clock.now() - 11) * 1000)
        assert detail["charging_mode"] == 1  # postPaid
        assert detail["engine"] == "reliability"
        assert detail["type"] == "cluster.basic"
        assert isinstance(detail["tags"], list)
        assert isinstance(json.loads(detail["cross_vpc_info"]), dict)
        assert detail["total_storage_space"] == detail["storage_space"] == 300
        assert "node_num" not in detail  # 4.8.0 only
        assert detail["grpc_address"]  # 5.x only
    assert "disk_encrypted_key" in item and "disk_encrypted_key" not in shown
    assert "subnet_name" in shown and "subnet_name" not in item
    assert "auto_volume_expand_enable" in shown and "auto_volume_expand_enable" not in item


async def test_a_480_instance_has_node_num_and_no_grpc(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await manual_api.create(
        "rmq-v4", engine_version="4.8.0", product_id="c6.4u8g.cluster", broker_num=2, available_zones=["a", "b", "c"]
    )
    clock.advance(10)
    shown = (await manual_api.show(instance_id)).json()
    assert (shown["type"], shown["node_num"]) == ("cluster", 6)
    assert not any(key.startswith(("grpc", "public_grpc")) for key in shown)


async def test_endpoints_appear_only_once_the_instance_is_up(manual_api: Api, clock: ManualClock) -> None:
    instance_id = await manual_api.create("rmq-endpoints")
    creating = (await manual_api.show(instance_id)).json()
    assert creating["namesrv_address"] == creating["broker_address"] == creating["cross_vpc_info"] == ""
    clock.advance(10)
    running = (await manual_api.show(instance_id)).json()
    assert running["namesrv_address"].count(":8100") == 3
    assert running["public_namesrv_address"] == ""  # no public access asked for


async def test_prepaid_creates_bill_yearly_monthly_and_show_an_order_id(manual_api: Api) -> None:
    bss = {"charging_mode": "prePaid", "period_type": "month", "period_num": 1, "is_auto_pay": True}
    instance_id = await manual_api.create("rmq-prepaid", bss_param=bss)
    shown = (await manual_api.show(instance_id)).json()
    assert shown["charging_mode"] == 0
    assert shown["order_id"]
    item = (await manual_api.list_instances()).json()["instances"][0]
    assert item["charging_mode"] == 0 and "order_id" not in item


async def test_the_engine_is_reported_as_reliability_whichever_alias_was_used(manual_api: Api) -> None:
    response = await manual_api.call(
        "POST",
        f"/v2/rocketmq/{PID}/instances",
        json_body={
            "name": "rmq-alias",
            "engine": "rocketmq",
            "engine_version": "5.x",
            "storage_space": 200,
            "vpc_id": "v",
            "subnet_id": "s",
            "security_group_id": "g",
            "available_zones": ["az"],
            "product_id": "rocketmq.p2.large.8",
            "storage_spec_code": "dms.physical.storage.ultra.v2",
            "broker_num": 2,
        },
    )
    shown = (await manual_api.show(response.json()["instance_id"])).json()
    assert (shown["engine"], shown["type"]) == ("reliability", "cluster.professional")
    assert (await manual_api.list_instances(engine="rocketmq")).json()["instance_num"] == 1


async def test_seeded_unknown_fields_are_rendered_as_new_api_fields(manual_api: Api) -> None:
    [seeded] = await manual_api.seed({"name": "rmq-future", "brand_new_field": {"nested": 1}, "vpc_name": "custom"})
    shown = (await manual_api.show(seeded["instance_id"])).json()
    item = (await manual_api.list_instances()).json()["instances"][0]
    assert shown["brand_new_field"] == item["brand_new_field"] == {"nested": 1}
    assert shown["vpc_name"] == item["vpc_name"] == "custom"
