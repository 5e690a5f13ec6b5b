"""What the operator decides to do next, from one CR and one observation (pure, table-driven)."""

from __future__ import annotations

import pytest

from rocketmq_operator.core import cloud, decisions, evidence
from rocketmq_operator.core.decisions import Seen
from rocketmq_operator.core.mapping import owner_tags
from rocketmq_operator.core.resource import PAUSED_ANNOTATION, DeletionPolicy

from .builders import cr, view

NOW = 1_790_000_000.0
PENDING = {"creation": {"name": "team-a-orders-abcdef12", "pendingSince": "2026-11-27T10:00:00Z"}}


class TestCreating:
    def test_a_new_cr_first_persists_the_pending_marker(self) -> None:
        action = decisions.decide(cr(), Seen.unknown())
        assert isinstance(action, decisions.MarkCreatePending)
        assert action.name.startswith("team-a-orders-")
        assert action.verdict.reason == "Creating" and action.verdict.reconciling

    def test_with_the_marker_persisted_it_creates_with_the_marker_name(self) -> None:
        action = decisions.decide(cr(status={"creation": {"name": "my-name-1", "pendingSince": "x"}}), Seen.unknown())
        assert isinstance(action, decisions.Create)
        assert action.request is not None and action.request.name == "my-name-1"

    def test_spec_instance_id_adopts_instead_of_creating(self) -> None:
        action = decisions.decide(cr(spec={"instanceId": "i-9"}), Seen.unknown())
        assert isinstance(action, decisions.Adopt) and action.instance_id == "i-9"

    def test_paused_never_creates(self) -> None:
        action = decisions.decide(cr(annotations={PAUSED_ANNOTATION: "true"}), Seen.unknown())
        assert isinstance(action, decisions.Observe) and action.verdict.reason == "Paused"


class TestObserving:
    @pytest.mark.parametrize(
        ("status", "reason", "ready", "reconciling", "stalled"),
        [
            (cloud.CREATING, "Creating", False, True, False),
            (cloud.RUNNING, "Available", True, False, False),
            (cloud.CREATEFAILED, "CreateFailed", False, False, True),
            (cloud.EXTENDING, "Extending", False, True, False),
            (cloud.RESTARTING, "Restarting", False, True, False),
            (cloud.EXTENDEDFAILED, "ResizeFailed", False, False, True),
            (cloud.FROZEN, "Frozen", False, False, True),
            (cloud.ERROR, "InstanceError", False, False, False),
            (cloud.DELETING, "DeletingOutOfBand", False, False, True),
            (cloud.RECYCLE, "InstanceRecycled", False, False, True),
            ("SOMETHING_NEW", "UnknownStatus", False, False, False),
        ],
    )
    def test_cloud_status_maps_to_conditions(
        self, status: str, reason: str, ready: bool, reconciling: bool, stalled: bool
    ) -> None:
        action = decisions.decide(cr(status={"instanceId": "i-1"}), Seen.present(view(status=status)))
        assert isinstance(action, decisions.Observe)
        v = action.verdict
        assert (v.reason, v.ready, v.reconciling, v.stalled) == (reason, ready, reconciling, stalled)

    def test_unknown_observation_keeps_ready_as_it_was(self) -> None:
        ready = [{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "t"}]
        action = decisions.decide(cr(status={"instanceId": "i-1", "conditions": ready}), Seen.unknown("Throttled"))
        assert action.verdict.ready and action.verdict.reason == "Throttled"

    def test_an_observation_refused_for_good_is_stalled_with_its_reason(self) -> None:
        ready = [{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "t"}]
        seen = Seen.unknown("AuthFailed", "list: HTTP 401 APIGW.0301: refused", terminal=True)
        action = decisions.decide(cr(status={"instanceId": "i-1", "conditions": ready}), seen)
        v = action.verdict
        assert (v.reason, v.stalled, v.reconciling, v.ready) == ("AuthFailed", True, False, True)
        assert "401" in v.message

    def test_instance_gone_outside_the_operator_is_stalled_not_recreated(self) -> None:
        action = decisions.decide(cr(status={"instanceId": "i-1"}), Seen.absent())
        assert isinstance(action, decisions.Observe)
        assert action.verdict.reason == "InstanceMissing" and action.verdict.stalled

    def test_swept_failed_instance_is_recreated_only_when_asked(self) -> None:
        status = {"instanceId": "i-1", "failedInstanceIds": ["i-1"]}
        kept = decisions.decide(cr(status=status), Seen.absent())
        assert isinstance(kept, decisions.Observe) and kept.verdict.reason == "CreateFailed"
        spec = {**cr().spec.to_wire(), "recreateOnFailure": True}
        again = decisions.decide(cr(spec=spec, status=status), Seen.absent())
        assert isinstance(again, decisions.Recreate) and again.failed_instance_id == "i-1"

    def test_a_failed_instance_still_being_deleted_is_waited_for_not_recreated(self) -> None:
        status = {"instanceId": "i-1", "failedInstanceIds": ["i-1"]}
        spec = {**cr().spec.to_wire(), "recreateOnFailure": True}
        action = decisions.decide(cr(spec=spec, status=status), Seen.present(view(status=cloud.DELETING)))
        assert isinstance(action, decisions.Observe)
        assert (action.verdict.reason, action.verdict.reconciling) == ("DeletingFailedInstance", True)


class TestWhichInstanceOfAName:
    """After a create refused for its name: the instance a crash left behind is adopted, no other."""

    MARKED = decisions.epoch("2026-11-27T10:00:00Z")
    NAME = "team-a-orders-abcdef12"

    @pytest.mark.parametrize(
        ("listed", "own", "others"),
        [
            pytest.param(view("i-1", tags=owner_tags(cr(), "c-1")), "i-1", [], id="tagged with this CR's uid"),
            pytest.param(view("i-1", created_at=int(MARKED * 1000)), "i-1", [], id="untagged, made after the marker"),
            pytest.param(
                view("i-1", created_at=int((MARKED - 100) * 1000)), "i-1", [], id="untagged, within the clock skew"
            ),
            pytest.param(view("i-1", created_at=int((MARKED - 600) * 1000)), None, ["i-1"], id="untagged, older"),
            pytest.param(view("i-1", tags=owner_tags(cr(uid="other"), "c-1")), None, ["i-1"], id="another CR's"),
            pytest.param(view("i-1", status=cloud.DELETING, tags=owner_tags(cr(), "c-1")), None, [], id="deleting"),
            pytest.param(view("i-1", status=cloud.RECYCLE), None, [], id="in the recycle bin"),
            pytest.param(view("i-1", name="another-name", tags=owner_tags(cr(), "c-1")), None, [], id="another name"),
        ],
    )
    def test_only_this_crs_live_instance_is_its_own(
        self, listed: cloud.InstanceView, own: str | None, others: list[str]
    ) -> None:
        marked = cr(status={"creation": {"name": self.NAME, "pendingSince": "2026-11-27T10:00:00Z"}})
        found, rest = decisions.name_holders(marked, self.NAME, [listed])
        assert (found.instance_id if found else None, [v.instance_id for v in rest]) == (own, others)

    def test_the_first_of_two_own_ones_is_adopted_and_the_other_holds_the_name(self) -> None:
        tags = owner_tags(cr(), "c-1")
        found, rest = decisions.name_holders(cr(), self.NAME, [view("i-1", tags=tags), view("i-2", tags=tags)])
        assert (found.instance_id if found else None, [v.instance_id for v in rest]) == ("i-1", ["i-2"])


class TestUpdating:
    def test_mutable_field_change_becomes_an_update(self) -> None:
        spec = {**cr().spec.to_wire(), "securityGroupId": "sg-2", "enableAcl": True}
        action = decisions.decide(cr(spec=spec, status={"instanceId": "i-1"}), Seen.present(view()))
        assert isinstance(action, decisions.Update)
        assert action.delta.update.to_wire() == {"security_group_id": "sg-2", "enable_acl": True}
        assert action.delta.resize is None

    def test_storage_growth_becomes_a_resize(self) -> None:
        spec = {**cr().spec.to_wire(), "storageSpace": 600}
        action = decisions.decide(cr(spec=spec, status={"instanceId": "i-1"}), Seen.present(view()))
        assert isinstance(action, decisions.Update) and action.verdict.reason == "Resizing"
        assert action.delta.resize is not None
        assert action.delta.resize.to_wire() == {"oper_type": "storage", "new_storage_space": 600}

    def test_changes_wait_while_the_instance_is_busy(self) -> None:
        spec = {**cr().spec.to_wire(), "storageSpace": 600}
        action = decisions.decide(cr(spec=spec, status={"instanceId": "i-1"}), Seen.present(view(status="EXTENDING")))
        assert isinstance(action, decisions.Observe)

    def test_paused_never_updates(self) -> None:
        spec = {**cr().spec.to_wire(), "storageSpace": 600}
        paused = cr(spec=spec, status={"instanceId": "i-1"}, annotations={PAUSED_ANNOTATION: "true"})
        assert isinstance(decisions.decide(paused, Seen.present(view())), decisions.Observe)


class TestPolicies:
    @pytest.mark.parametrize(
        ("spec_policy", "adopted", "namespace_value", "default", "expected", "source"),
        [
            ("Orphan", False, "Delete", DeletionPolicy.DELETE, DeletionPolicy.ORPHAN, "spec.deletionPolicy"),
            ("Delete", True, "Orphan", DeletionPolicy.ORPHAN, DeletionPolicy.DELETE, "spec.deletionPolicy"),
            (None, False, "Orphan", DeletionPolicy.DELETE, DeletionPolicy.ORPHAN, "namespace annotation"),
            (None, False, None, DeletionPolicy.ORPHAN, DeletionPolicy.ORPHAN, "operator default"),
            (None, False, None, DeletionPolicy.DELETE, DeletionPolicy.DELETE, "operator default"),
            (None, True, "Delete", DeletionPolicy.DELETE, DeletionPolicy.ORPHAN, "adopted instance"),
        ],
    )
    def test_precedence_is_cr_then_namespace_then_default(
        self,
        spec_policy: str | None,
        adopted: bool,
        namespace_value: str | None,
        default: DeletionPolicy,
        expected: DeletionPolicy,
        source: str,
    ) -> None:
        spec = {**cr().spec.to_wire(), **({"deletionPolicy": spec_policy} if spec_policy else {})}
        if adopted:
            spec["instanceId"] = "i-1"
        choice = decisions.resolve_policy(cr(spec=spec), namespace_value, default)
        assert (choice.policy, choice.source) == (expected, source)

    def test_unknown_namespace_value_keeps_the_instance_and_warns(self) -> None:
        choice = decisions.resolve_policy(cr(), "Retain", DeletionPolicy.DELETE)
        assert choice.policy is DeletionPolicy.ORPHAN
        assert choice.warning is not None and "Retain" in choice.warning


DELETE = decisions.PolicyChoice(DeletionPolicy.DELETE, "operator default")
ORPHAN = decisions.PolicyChoice(DeletionPolicy.ORPHAN, "spec.deletionPolicy")


ACCEPTED = {
    "instanceId": "i-1",
    "deletion": {"instanceId": "i-1", "result": "Accepted", "submittedAt": decisions.isoformat(NOW - 30)},
}


def _shown(status: str | None, *, at: float = NOW) -> evidence.Look:
    """What a show call at ``at`` answered: a status, or ``None`` for 404."""
    return evidence.from_show(None if status is None else view(status=status), at=at)


class TestDeleting:
    def test_orphan_releases_at_once(self) -> None:
        step = decisions.decide_deletion(cr(status={"instanceId": "i-1"}, deleting=True), ORPHAN, evidence.unknown())
        assert isinstance(step, decisions.Release) and step.reason == "Orphaned"

    def test_no_instance_and_no_pending_create_releases(self) -> None:
        step = decisions.decide_deletion(cr(deleting=True), DELETE, evidence.unknown())
        assert isinstance(step, decisions.Release) and step.reason == "NothingToDelete"

    def test_a_pending_create_is_looked_up_before_release(self) -> None:
        step = decisions.decide_deletion(cr(status=PENDING, deleting=True), DELETE, evidence.unknown())
        assert isinstance(step, decisions.FindByName) and step.name == "team-a-orders-abcdef12"

    def test_running_instance_is_submitted_with_the_force_flag(self) -> None:
        spec = {**cr().spec.to_wire(), "forceDelete": True}
        step = decisions.decide_deletion(
            cr(spec=spec, status={"instanceId": "i-1"}, deleting=True), DELETE, _shown(cloud.RUNNING)
        )
        assert isinstance(step, decisions.Submit) and step.instance_id == "i-1" and step.force_delete

    @pytest.mark.parametrize(
        ("look", "step_type", "reason"),
        [
            # Proof, and only proof, releases (reference section 8).
            (_shown(None), decisions.Release, "Deleted"),
            (_shown(cloud.RECYCLE), decisions.Release, "Recycled"),
            (evidence.Look(evidence.Sighting.RECYCLED, NOW), decisions.Release, "Recycled"),
            # Not listed any more: gone *or still deleting* on the real cloud. Not proof.
            (evidence.Look(evidence.Sighting.UNLISTED, NOW), decisions.AwaitGone, None),
            (evidence.unknown("Throttled", "slow down"), decisions.AwaitGone, None),
            (_shown(cloud.DELETING), decisions.AwaitGone, None),
            # Alive again after the cloud had accepted the deletion: it undid it.
            (_shown(cloud.ERROR), decisions.Undone, None),
            (_shown(cloud.RUNNING), decisions.Undone, None),
            # ... unless the look may predate the acceptance.
            (_shown(cloud.RUNNING, at=NOW - 29), decisions.AwaitGone, None),
        ],
    )
    def test_an_accepted_deletion_is_released_only_on_proof(
        self, look: evidence.Look, step_type: type, reason: str | None
    ) -> None:
        step = decisions.decide_deletion(cr(status=ACCEPTED, deleting=True), DELETE, look)
        assert isinstance(step, step_type)
        if reason is not None:
            assert isinstance(step, decisions.Release) and step.reason == reason

    def test_an_undone_deletion_names_the_status_the_cloud_shows(self) -> None:
        step = decisions.decide_deletion(cr(status=ACCEPTED, deleting=True), DELETE, _shown(cloud.ERROR))
        assert isinstance(step, decisions.Undone) and step.cloud_status == cloud.ERROR
        assert "ERROR" in step.message

    def test_an_unsubmitted_instance_the_list_no_longer_shows_is_not_released(self) -> None:
        deleting = cr(status={"instanceId": "i-1"}, deleting=True)
        unlisted = evidence.Look(evidence.Sighting.UNLISTED, NOW)
        assert isinstance(decisions.decide_deletion(deleting, DELETE, unlisted), decisions.AwaitGone)
        assert isinstance(decisions.decide_deletion(deleting, DELETE, _shown(None)), decisions.Release)

    def test_creating_instance_is_held_back(self) -> None:
        step = decisions.decide_deletion(
            cr(status={"instanceId": "i-1"}, deleting=True), DELETE, _shown(cloud.CREATING)
        )
        assert isinstance(step, decisions.HoldBack)

    def test_deleting_instance_is_awaited_not_submitted(self) -> None:
        step = decisions.decide_deletion(
            cr(status={"instanceId": "i-1"}, deleting=True), DELETE, _shown(cloud.DELETING)
        )
        assert isinstance(step, decisions.AwaitGone)

    def test_failed_and_errored_results_are_resubmitted(self) -> None:
        status = {"instanceId": "i-1", "deletion": {"instanceId": "i-1", "result": "Failed", "attempts": 2}}
        step = decisions.decide_deletion(cr(status=status, deleting=True), DELETE, _shown(cloud.ERROR))
        assert isinstance(step, decisions.Submit)


class TestWhatARestartResumes:
    """A restarted operator resumes only the CRs with a step under way; a settled one is left to the
    periodic pass, which observes it within a poll interval."""

    @staticmethod
    def ready(generation: int = 1, observed: int = 1, **status: object) -> dict[str, object]:
        return {
            "instanceId": "i-1",
            "observedGeneration": observed,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Available",
                    "observedGeneration": generation,
                    "lastTransitionTime": "2026-12-02T00:00:00Z",
                }
            ],
            **status,
        }

    def test_a_cr_ready_at_its_generation_is_settled(self) -> None:
        assert decisions.settled(cr(status=self.ready()))

    @pytest.mark.parametrize(
        "resource",
        [
            cr(status={}),
            cr(status={"instanceId": "i-1", "observedGeneration": 1}),
            cr(status={"instanceId": "i-1"}),
        ],
        ids=["new", "no conditions yet", "no generation observed"],
    )
    def test_a_cr_not_yet_ready_is_resumed(self, resource: object) -> None:
        assert not decisions.settled(resource)  # type: ignore[arg-type]

    def test_an_edit_not_yet_applied_is_resumed(self) -> None:
        edited = cr(status=self.ready(generation=1, observed=1), generation=2)
        assert not decisions.settled(edited)

    def test_a_ready_condition_of_an_older_generation_is_resumed(self) -> None:
        assert not decisions.settled(cr(status=self.ready(generation=1, observed=2), generation=2))

    def test_a_create_under_way_is_resumed(self) -> None:
        pending = {"name": "team-a-orders-abcdef12", "pendingSince": "2026-12-02T00:00:00.000000Z"}
        assert not decisions.settled(cr(status=self.ready(creation=pending)))

    def test_a_ready_false_cr_is_resumed(self) -> None:
        status = self.ready()
        status["conditions"][0]["status"] = "False"  # type: ignore[index]
        assert not decisions.settled(cr(status=status))
