"""Cloud responses as the operator holds them: the observer keeps a view of every instance (10,000 at
scale), so a view must be small, and sharing what views have in common must not let one change
another."""

from __future__ import annotations

import json
import tracemalloc

import pydantic
import pytest

from rocketmq_operator.core import cloud


def _item(n: int, **changes: object) -> dict[str, object]:
    """One instance as the list API returns it, with the endpoints and owner tags of a running one."""
    item: dict[str, object] = {
        "instance_id": f"5c2e1c1a-0000-4a4a-9b9b-{n:012d}",
        "name": f"team-{n:05d}",
        "status": cloud.RUNNING,
        "engine": cloud.ENGINE,
        "engine_version": "4.8.0",
        "type": "cluster",
        "specification": "c6.4u8g.cluster",
        "product_id": "c6.4u8g.cluster",
        "storage_spec_code": "dms.physical.storage.high.v2",
        "storage_space": 600,
        "broker_num": 1,
        "vpc_id": "vpc-0123456789",
        "subnet_id": "subnet-0123456789",
        "security_group_id": "sg-0123456789",
        "available_zones": ["az1"],
        "enable_acl": False,
        "ssl_enable": False,
        "charging_mode": 1,
        "created_at": 1764000000000,
        "namesrv_address": f"192.168.{n % 250}.10:8100,192.168.{n % 250}.11:8100",
        "broker_address": f"192.168.{n % 250}.12:10100",
        "grpc_address": f"192.168.{n % 250}.10:8080",
        "tags": [
            {"key": "rocketmq.operator/cluster", "value": "cluster-1"},
            {"key": "rocketmq.operator/namespace", "value": "team"},
            {"key": "rocketmq.operator/name", "value": f"mq-{n}"},
            {"key": "rocketmq.operator/uid", "value": f"0c1d2e3f-0000-4000-8000-{n:012d}"},
            {"key": "team", "value": "payments"},
        ],
    }
    item.update(changes)
    return item


def _page(items: list[dict[str, object]]) -> cloud.ListInstancesResponse:
    return cloud.ListInstancesResponse.model_validate_json(json.dumps({"instances": items, "instance_num": 1000}))


class TestViewsFromTheList:
    def test_a_view_knows_which_fields_the_cloud_sent(self) -> None:
        full, bare = _page([_item(1), {"instance_id": "i-2"}]).instances
        assert "namesrv_address" in full.model_fields_set
        assert bare.model_fields_set == {"instance_id"}

    def test_views_of_one_shape_share_their_record_of_sent_fields(self) -> None:
        first, second = _page([_item(1), _item(2)]).instances
        assert first.model_fields_set is second.model_fields_set
        assert first.tags[0].model_fields_set is second.tags[4].model_fields_set

    def test_a_changed_copy_leaves_the_views_it_shared_with_alone(self) -> None:
        first, second = _page([_item(1, description=None), _item(2, description=None)]).instances
        bare = _page([{"instance_id": "i-3"}]).instances[0]
        copied = bare.model_copy(update={"name": "renamed"})
        assert copied.model_fields_set == {"instance_id", "name"}
        assert bare.model_fields_set == {"instance_id"}
        assert _page([{"instance_id": "i-4"}]).instances[0].model_fields_set == {"instance_id"}
        assert first.model_fields_set == second.model_fields_set

    def test_a_view_cannot_be_changed_in_place(self) -> None:
        view = _page([_item(1)]).instances[0]
        with pytest.raises(pydantic.ValidationError):
            view.name = "other"  # type: ignore[misc]
        assert view.model_fields_set == _page([_item(2)]).instances[0].model_fields_set

    def test_a_thousand_views_hold_under_five_kib_each(self) -> None:
        # Each model's own set of sent fields made an InstanceView 7.7 KiB, 2.2 KiB of it that set.
        pages = [json.dumps({"instances": [_item(p * 50 + i) for i in range(50)]}) for p in range(20)]
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            views = [v for page in pages for v in cloud.ListInstancesResponse.model_validate_json(page).instances]
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert len(views) == 1000
        assert held / len(views) < 5 * 1024, f"{held / len(views):.0f} bytes per view"
