"""Names, owner tags, requests and diffs between the CR and the cloud."""

from __future__ import annotations

import re

from rocketmq_operator.core import cloud, mapping
from rocketmq_operator.core.resource import NAME_PATTERN

from .builders import cr, view


class TestNames:
    def test_default_name_is_deterministic_and_cloud_safe(self) -> None:
        a = mapping.instance_name(cr(name="orders.v2", namespace="9-team"))
        assert a == mapping.instance_name(cr(name="orders.v2", namespace="9-team"))
        assert re.match(NAME_PATTERN, a), a

    def test_different_uids_give_different_names(self) -> None:
        assert mapping.instance_name(cr(uid="u-1")) != mapping.instance_name(cr(uid="u-2"))

    def test_long_names_are_cut_to_64(self) -> None:
        name = mapping.instance_name(cr(name="x" * 200, namespace="y" * 60))
        assert len(name) <= 64 and re.match(NAME_PATTERN, name)

    def test_spec_name_wins(self) -> None:
        assert mapping.instance_name(cr(spec={**cr().spec.to_wire(), "name": "prod-mq"})) == "prod-mq"


class TestOwnership:
    def test_owner_tags_identify_cluster_and_cr(self) -> None:
        tags = {t.key: t.value for t in mapping.owner_tags(cr(), "cluster-1")}
        assert tags[mapping.OWNER_CLUSTER_TAG] == "cluster-1"
        assert tags[mapping.OWNER_UID_TAG] == cr().metadata.uid
        tagged = view(tags=[{"key": k, "value": v} for k, v in tags.items()])
        assert mapping.owned_by_cluster(tagged, "cluster-1")
        assert not mapping.owned_by_cluster(tagged, "cluster-2")
        assert mapping.owned_by_cr(tagged, cr().metadata.uid)
        assert not mapping.owned_by_cluster(view(), "cluster-1")


def test_create_request_carries_the_spec_in_cloud_spelling() -> None:
    body = mapping.create_request(cr()).to_wire()
    assert body["engine"] == "reliability"
    assert body["available_zones"] == ["az-1"]
    assert body["storage_space"] == 300
    assert "enable_acl" not in body  # unset stays unset


class TestDiff:
    def test_in_sync_is_empty(self) -> None:
        assert mapping.diff(cr(status={"instanceId": "i-1"}), view()).empty

    def test_unset_fields_are_not_managed(self) -> None:
        spec = {k: v for k, v in cr().spec.to_wire().items() if k != "securityGroupId"}
        assert mapping.diff(cr(spec=spec), view(security_group_id="sg-other")).empty

    def test_shrinking_storage_is_never_requested(self) -> None:
        assert mapping.diff(cr(), view(total_storage_space=900)).resize is None

    def test_user_tags_are_reconciled_and_owner_tags_left_alone(self) -> None:
        spec = {**cr().spec.to_wire(), "tags": {"team": "a", "env": "prod"}}
        current = view(
            tags=[
                {"key": "team", "value": "b"},
                {"key": "old", "value": "x"},
                {"key": mapping.OWNER_UID_TAG, "value": "u"},
            ]
        )
        delta = mapping.diff(cr(spec=spec), current)
        assert {(t.key, t.value) for t in delta.tags_to_create} == {("team", "a"), ("env", "prod")}
        assert [t.key for t in delta.tags_to_delete] == ["old"]

    def test_public_access_sends_the_eip(self) -> None:
        spec = {**cr().spec.to_wire(), "enablePublicip": True, "publicipId": "eip-1"}
        delta = mapping.diff(cr(spec=spec), view())
        assert delta.update.to_wire() == {"enable_publicip": True, "publicip_id": "eip-1"}

    def test_more_brokers_on_5x_name_the_product_too(self) -> None:
        spec = {**cr().spec.to_wire(), "brokerNum": 2}
        delta = mapping.diff(cr(spec=spec), view())
        assert delta.resize is not None and delta.resize.new_broker_num == 2
        assert delta.resize.new_product_id == cr().spec.product_id

    def test_product_change_on_5x_is_horizontal(self) -> None:
        spec = {**cr().spec.to_wire(), "productId": "rocketmq.b2.large.8"}
        delta = mapping.diff(cr(spec=spec), view())
        assert delta.resize == cloud.ResizeRequest(
            oper_type="horizontal", new_product_id="rocketmq.b2.large.8", new_broker_num=1
        )
