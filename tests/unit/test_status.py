"""What a step writes into status, and the Events it posts (pure, table-driven)."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from rocketmq_operator.core import cloud, status
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.resource import (
    Condition,
    CreationStatus,
    DeletionStatus,
    Endpoints,
    RocketMQInstance,
    RocketMQInstanceStatus,
)
from rocketmq_operator.core.status import StepResult
from rocketmq_operator.core.vocabulary import DeletionResult, DeletionTrigger, EventType, Reason

from .builders import cr, view

NOW = "2026-11-27T10:00:00Z"
LATER = "2026-11-27T10:05:00Z"


def conditions(reason: str, *, ready: bool = False, at: str = NOW, generation: int = 1) -> list[dict[str, Any]]:
    return [
        {"type": kind, "status": str(value), "reason": reason, "message": "m", "lastTransitionTime": at,
         "observedGeneration": generation}
        for kind, value in (("Ready", ready), ("Reconciling", not ready), ("Stalled", False))
    ]  # fmt: skip


class TestThePatchAsTheApiServerReceivesIt:
    def test_every_field_a_step_can_set_has_the_camel_case_key_of_the_crd(self) -> None:
        patch = RocketMQInstanceStatus()
        patch.observed_generation = 3
        patch.instance_id = "i-1"
        patch.instance_name = "team-a-orders-abcdef12"
        patch.cloud_status = cloud.RUNNING
        patch.adopted = True
        patch.storage_space = 300
        patch.broker_num = 1
        patch.product_id = "rocketmq.b2.large.4"
        patch.endpoints = Endpoints(namesrv_address="10.0.0.1:8100", public_grpc_domain_name="grpc.example")
        patch.creation = CreationStatus(name="team-a-orders-abcdef12", pending_since="2026-11-27T10:00:00.000Z")
        patch.deletion = DeletionStatus(instance_id="i-1", batch_id="b-1", batch_size=2, submitted_at=NOW,
                                        result=DeletionResult.ACCEPTED, attempts=1, last_error=None,
                                        force_delete=False, trigger=DeletionTrigger.CR_DELETED)  # fmt: skip
        patch.failed_instance_ids = ["i-0"]
        patch.conditions = [Condition(type="Ready", status="True", reason="Available", last_transition_time=NOW)]

        assert patch.to_patch() == {
            "observedGeneration": 3,
            "instanceId": "i-1",
            "instanceName": "team-a-orders-abcdef12",
            "cloudStatus": "RUNNING",
            "adopted": True,
            "storageSpace": 300,
            "brokerNum": 1,
            "productId": "rocketmq.b2.large.4",
            "endpoints": {"namesrvAddress": "10.0.0.1:8100", "publicGrpcDomainName": "grpc.example"},
            "creation": {"name": "team-a-orders-abcdef12", "pendingSince": "2026-11-27T10:00:00.000Z", "attempts": 0},
            "deletion": {
                "instanceId": "i-1",
                "batchId": "b-1",
                "batchSize": 2,
                "submittedAt": NOW,
                "result": "Accepted",
                "attempts": 1,
                "lastError": None,
                "forceDelete": False,
                "trigger": "CRDeleted",
            },
            "failedInstanceIds": ["i-0"],
            "conditions": [{"type": "Ready", "status": "True", "reason": "Available", "message": "",
                            "lastTransitionTime": NOW}],
        }  # fmt: skip

    def test_only_the_fields_set_are_written_and_none_clears_one(self) -> None:
        patch = RocketMQInstanceStatus()
        patch.instance_id = None
        patch.cloud_status = None
        assert patch.to_patch() == {"instanceId": None, "cloudStatus": None}
        assert RocketMQInstanceStatus().to_patch() == {}

    def test_the_wire_values_are_plain_strings_not_enum_members(self) -> None:
        patch = RocketMQInstanceStatus()
        patch.deletion = status.amended_deletion(cr(), result=DeletionResult.HELD_BACK)
        assert type(patch.to_patch()["deletion"]["result"]) is str


class TestAMisspelledStatusFieldFails:
    def test_when_set_on_the_patch(self) -> None:
        patch = RocketMQInstanceStatus()
        with pytest.raises(pydantic.ValidationError):
            patch.cloud_staus = cloud.RUNNING  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("model", "fields"),
        [
            pytest.param(RocketMQInstanceStatus, {"cloudStaus": "RUNNING"}, id="status, by wire name"),
            pytest.param(DeletionStatus, {"instnce_id": "i-1"}, id="deletion, by field name"),
            pytest.param(CreationStatus, {"name": "x", "pending_since": NOW, "atempts": 1}, id="creation"),
            pytest.param(Endpoints, {"namesrvAdress": "10.0.0.1:8100"}, id="endpoints"),
        ],
    )
    def test_when_a_status_part_is_built(self, model: type[pydantic.BaseModel], fields: dict[str, Any]) -> None:
        with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
            model.model_validate(fields)

    def test_when_a_deletion_record_is_amended(self) -> None:
        with pytest.raises(pydantic.ValidationError):
            status.amended_deletion(cr(), reslt=DeletionResult.FAILED)

    def test_when_a_step_asks_whether_it_sets_one(self) -> None:
        with pytest.raises(KeyError):
            StepResult().sets("failedInstanceIds")

    def test_but_a_body_read_back_from_the_api_server_may_carry_fields_this_version_does_not_know(self) -> None:
        body = {
            "metadata": {"name": "orders", "uid": "u-1"},
            "spec": {},
            "status": {"instanceId": "i-1", "fromANewerOperator": 1, "deletion": {"attempts": 2, "newField": "x"}},
        }
        resource = RocketMQInstance.from_body(body)
        assert resource.status.instance_id == "i-1"
        assert resource.status.deletion is not None and resource.status.deletion.attempts == 2
        with pytest.raises(pydantic.ValidationError):
            RocketMQInstance.model_validate(body)


class TestMirroringTheCloudsView:
    def test_the_instance_is_written_as_the_cloud_shows_it(self) -> None:
        result = StepResult()
        status.mirror(cr(status={"instanceId": "i-1"}), view("i-1", total_storage_space=600), result)
        assert result.patch == {
            "instanceName": "team-a-orders-abcdef12",
            "cloudStatus": "RUNNING",
            "endpoints": {"namesrvAddress": "192.168.0.10:8100", "brokerAddress": "192.168.0.11:10100"},
            "storageSpace": 600,
            "brokerNum": 1,
            "productId": "rocketmq.b2.large.4",
        }
        assert result.events == []

    @pytest.mark.parametrize(
        ("recorded", "in_patch", "mirrored"),
        [
            pytest.param("i-1", None, True, id="the CR's recorded instance"),
            pytest.param(None, "i-1", True, id="the instance this step records"),
            pytest.param("i-1", "i-2", False, id="not once this step records another"),
            pytest.param("i-2", None, False, id="not another instance"),
        ],
    )
    def test_only_the_crs_own_instance(self, recorded: str | None, in_patch: str | None, mirrored: bool) -> None:
        result = StepResult()
        if in_patch is not None:
            result.status.instance_id = in_patch
        status.mirror(cr(status={"instanceId": recorded} if recorded else {}), view("i-1"), result)
        assert result.sets("cloud_status") is mirrored

    def test_no_endpoints_reported_writes_none(self) -> None:
        result = StepResult()
        status.mirror(cr(status={"instanceId": "i-1"}), view("i-1", namesrv_address="", broker_address=""), result)
        assert result.patch["endpoints"] is None

    @pytest.mark.parametrize(
        ("before", "after", "event"),
        [
            pytest.param(None, cloud.RUNNING, None, id="no Event for the first status seen"),
            pytest.param(cloud.RUNNING, cloud.RUNNING, None, id="no Event without a change"),
            pytest.param(cloud.EXTENDING, cloud.RUNNING, (EventType.NORMAL, "CloudRunning"), id="a change"),
            pytest.param(cloud.CREATING, cloud.RUNNING, None, id="no Event for what our create asked for"),
            pytest.param(cloud.RUNNING, cloud.ERROR, (EventType.WARNING, "CloudError"), id="a failure warns"),
            pytest.param(cloud.CREATING, cloud.CREATEFAILED, (EventType.WARNING, "CloudCreatefailed"), id="failed"),
        ],
    )
    def test_a_change_of_cloud_status_posts_one_event(
        self, before: str | None, after: str, event: tuple[EventType, str] | None
    ) -> None:
        result = StepResult()
        status.mirror(cr(status={"instanceId": "i-1", "cloudStatus": before}), view("i-1", status=after), result)
        assert [(e.type, e.reason) for e in result.events] == ([event] if event else [])

    def test_a_failed_creation_is_added_to_the_failed_instances_once(self) -> None:
        first, again = StepResult(), StepResult()
        failed = view("i-2", status=cloud.CREATEFAILED)
        status.mirror(cr(status={"instanceId": "i-2", "failedInstanceIds": ["i-1"]}), failed, first)
        status.mirror(cr(status={"instanceId": "i-2", "failedInstanceIds": ["i-1", "i-2"]}), failed, again)
        assert first.patch["failedInstanceIds"] == ["i-1", "i-2"]
        assert not again.sets("failed_instance_ids")


class TestConditions:
    def test_a_new_verdict_writes_the_three_conditions_and_the_observed_generation(self) -> None:
        result = StepResult()
        verdict = Verdict(ready=False, reason=Reason.CREATING, message="m", reconciling=True)
        status.set_conditions(cr(generation=2), verdict, result, now=NOW)
        assert result.patch == {"conditions": conditions("Creating", generation=2), "observedGeneration": 2}

    def test_the_same_verdict_again_writes_nothing(self) -> None:
        resource = cr(status={"conditions": conditions("Creating"), "observedGeneration": 1})
        result = StepResult()
        verdict = Verdict(ready=False, reason=Reason.CREATING, message="m", reconciling=True)
        status.set_conditions(resource, verdict, result, now=LATER)
        assert result.patch == {}

    def test_a_condition_whose_status_did_not_change_keeps_its_transition_time(self) -> None:
        resource = cr(status={"conditions": conditions("Creating"), "observedGeneration": 1})
        result = StepResult()
        status.set_conditions(resource, Verdict(ready=True, reason=Reason.AVAILABLE, message="m"), result, now=LATER)
        times = {c["type"]: c["lastTransitionTime"] for c in result.patch["conditions"]}
        assert times == {"Ready": LATER, "Reconciling": LATER, "Stalled": NOW}

    @pytest.mark.parametrize(
        ("verdict", "note", "reason"),
        [
            pytest.param(Verdict(False, Reason.CREATING, "m", reconciling=True), "429", "Throttled", id="under way"),
            pytest.param(Verdict(False, Reason.CREATING, "m", reconciling=True), None, "Creating", id="not throttled"),
            pytest.param(Verdict(True, Reason.AVAILABLE, "m"), "429", "Available", id="ready stays ready"),
            pytest.param(Verdict(False, "AuthFailed", "m", stalled=True), "429", "AuthFailed", id="stalled stays"),
            pytest.param(Verdict(False, Reason.FROZEN, "m"), "429", "Frozen", id="nothing under way"),
        ],
    )
    def test_work_under_way_says_throttled(self, verdict: Verdict, note: str | None, reason: str) -> None:
        assert status.throttled(verdict, note).reason == reason


class TestDeletionRecords:
    def test_an_accepted_deletion_clears_the_last_error(self) -> None:
        record = status.deletion_record(
            instance_id="i-1", batch_id="b-1", batch_size=3, submitted_at=NOW, result=DeletionResult.ACCEPTED,
            message="accepted in batch b-1 (3 instances)", attempts=2, force_delete=True,
            trigger=DeletionTrigger.SWEEP_CREATE_FAILED,
        )  # fmt: skip
        patch = RocketMQInstanceStatus(deletion=record).to_patch()
        assert patch["deletion"]["lastError"] is None
        assert patch["deletion"]["trigger"] == "SweepCreateFailed"

    def test_a_refused_deletion_says_why(self) -> None:
        record = status.deletion_record(
            instance_id="i-1", batch_id="b-1", batch_size=1, submitted_at=NOW, result=DeletionResult.FAILED,
            message="failed in batch b-1", attempts=1, force_delete=False, trigger=DeletionTrigger.CR_DELETED,
        )  # fmt: skip
        assert record.last_error == "failed in batch b-1"

    def test_an_amended_record_keeps_what_the_last_one_said(self) -> None:
        resource = cr(status={"deletion": {"instanceId": "i-1", "batchId": "b-1", "attempts": 2, "result": "Accepted"}})
        amended = status.amended_deletion(resource, result=DeletionResult.FAILED, last_error="ERROR again")
        assert RocketMQInstanceStatus(deletion=amended).to_patch()["deletion"] == {
            "instanceId": "i-1",
            "batchId": "b-1",
            "attempts": 2,
            "result": "Failed",
            "lastError": "ERROR again",
        }


class TestAQuietPassWritesNothing:
    def test_fields_that_already_have_their_value_are_dropped(self) -> None:
        resource = cr(status={"instanceId": "i-1", "cloudStatus": "RUNNING", "brokerNum": 1})
        patch = RocketMQInstanceStatus()
        patch.instance_id = "i-1"
        patch.cloud_status = "CREATING"
        patch.broker_num = 1
        patch.endpoints = None  # absent already
        patch.storage_space = None
        assert status.without_noop(resource, patch).to_patch() == {"cloudStatus": "CREATING"}

    def test_clearing_a_field_the_cr_has_is_kept(self) -> None:
        resource = cr(status={"instanceId": "i-1", "cloudStatus": "RUNNING"})
        patch = RocketMQInstanceStatus()
        patch.cloud_status = None
        assert status.without_noop(resource, patch).to_patch() == {"cloudStatus": None}


class TestInstanceMissing:
    @pytest.mark.parametrize(
        ("ready_before", "events"),
        [
            pytest.param("Available", [(EventType.WARNING, "InstanceMissing")], id="once, on the way in"),
            pytest.param("InstanceMissing", [], id="not again on every pass"),
        ],
    )
    def test_posts_one_warning(self, ready_before: str, events: list[tuple[EventType, str]]) -> None:
        resource = cr(status={"instanceId": "i-1", "conditions": conditions(ready_before)})
        result = StepResult()
        status.note_instance_missing(resource, Verdict(False, Reason.INSTANCE_MISSING, "gone", stalled=True), result)
        assert [(e.type, e.reason) for e in result.events] == events
