"""A replica with peering works exactly while Kopf's peering lets it; on a kopf it was not written for,
following the pause refuses to start.

Kopf's own pause toggles (``ToggleSet``, ``Ensemble``) are driven here the way its orchestrator and
peering observer drive them: a peering toggle is born on, and goes off once no peer of higher
priority lives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.structs import references
from kopf._core.reactor import orchestration

from rocketmq_operator.services.activity import Activity
from rocketmq_operator.wiring import peering, toggles


@pytest.fixture(params=["kopf's toggle sets", "counted toggle sets"])
def toggle_sets(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pause is followed with kopf's own toggle sets, and with the ones the operator installs."""
    if request.param == "counted toggle sets":
        monkeypatch.setattr(aiotoggles, "ToggleSet", toggles.CountedToggleSet)


async def kopf_ensemble() -> Any:
    paused = aiotoggles.ToggleSet(any)
    missing = await paused.make_toggle(name="peering CRD is missing")
    return orchestration.Ensemble(
        operator_paused=paused, peering_missing=missing, operator_indexed=aiotoggles.ToggleSet(all)
    )


async def add_peering(ensemble: Any, name: str) -> aiotoggles.Toggle:
    """What kopf's ``spawn_missing_peerings`` does for a peering object: a toggle born on."""
    toggle: aiotoggles.Toggle = await ensemble.operator_paused.make_toggle(True, name=name)
    ensemble.conflicts_found[name] = toggle
    return toggle


async def settled() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@asynccontextmanager
async def following(ensemble: Any, *, complete: bool = True) -> AsyncIterator[Activity]:
    """A follower, handed ``ensemble`` by kopf's (wrapped) adjust_tasks as the orchestrator would."""

    async def adjust_tasks(**_: Any) -> None:
        pass

    follower = peering.Follower()
    activity = Activity(active=False)
    with follower.bound():
        follower.start(activity)
        insights = references.Insights()
        if complete:
            insights.ready_namespaces.set()
            insights.ready_resources.set()
        await peering._wrap(adjust_tasks)(
            processor=None, insights=insights, settings=None, identity=None, ensemble=ensemble
        )
        await settled()
        try:
            yield activity
            assert follower.failure() is None
        finally:
            await follower.aclose()


@pytest.mark.usefixtures("toggle_sets")
class TestAReplicaWithPeering:
    async def test_waits_until_its_peering_elects_it(self) -> None:
        ensemble = await kopf_ensemble()
        toggle = await add_peering(ensemble, "rocketmq-operator@team-a")
        async with following(ensemble) as activity:
            assert not activity.active
            await toggle.turn_to(False)
            await settled()
            assert activity.active

    async def test_works_once_a_peering_object_born_unpaused_appears(self) -> None:
        # kopf makes a peering's toggle off when peering is optional: the pause's state does not
        # change, only which toggles exist.
        ensemble = await kopf_ensemble()
        async with following(ensemble) as activity:
            assert not activity.active
            ensemble.conflicts_found["rocketmq-operator@team-a"] = await ensemble.operator_paused.make_toggle(
                False, name="rocketmq-operator@team-a"
            )
            await settled()
            assert activity.active

    async def test_pauses_when_a_peer_of_higher_priority_appears_and_works_again_when_it_is_gone(self) -> None:
        ensemble = await kopf_ensemble()
        toggle = await add_peering(ensemble, "rocketmq-operator@team-a")
        await toggle.turn_to(False)
        async with following(ensemble) as activity:
            assert activity.active
            await toggle.turn_to(True)
            await settled()
            assert not activity.active
            await toggle.turn_to(False)
            await settled()
            assert activity.active

    async def test_serving_several_namespaces_works_only_while_every_one_elects_it(self) -> None:
        ensemble = await kopf_ensemble()
        first = await add_peering(ensemble, "rocketmq-operator@team-a")
        await first.turn_to(False)
        async with following(ensemble) as activity:
            assert activity.active
            second = await add_peering(ensemble, "rocketmq-operator@team-b")
            await settled()
            assert not activity.active, "a new peering object pauses it until it is decided"
            await second.turn_to(False)
            await settled()
            assert activity.active

    async def test_with_no_peering_object_to_be_elected_by_stays_paused(self) -> None:
        # Listed namespaces of which none exists yet: kopf pauses nothing, having nothing to serve.
        ensemble = await kopf_ensemble()
        async with following(ensemble) as activity:
            assert ensemble.operator_paused.is_off()
            assert not activity.active
            toggle = await add_peering(ensemble, "rocketmq-operator@team-a")
            await toggle.turn_to(False)
            await settled()
            assert activity.active

    async def test_waits_while_the_peering_crd_is_missing(self) -> None:
        ensemble = await kopf_ensemble()
        await ensemble.peering_missing.turn_to(True)
        toggle = await add_peering(ensemble, "rocketmq-operator@team-a")
        await toggle.turn_to(False)
        async with following(ensemble) as activity:
            assert not activity.active

    async def test_ignores_an_adjustment_made_before_kopf_listed_namespaces_and_resources(self) -> None:
        ensemble = await kopf_ensemble()
        toggle = await add_peering(ensemble, "rocketmq-operator@team-a")
        await toggle.turn_to(False)
        async with following(ensemble, complete=False) as activity:
            assert not activity.active, "half a picture decides nothing"


def test_install_is_idempotent() -> None:
    peering.install()
    once = orchestration.adjust_tasks
    peering.install()
    assert orchestration.adjust_tasks is once


class TestOnAKopfItWasNotWrittenFor:
    """kopf's private modules promise nothing between releases: following the pause refuses to start."""

    @pytest.fixture
    def untouched(self) -> Iterator[Any]:
        before = orchestration.adjust_tasks
        yield before
        assert orchestration.adjust_tasks is before, "nothing may be patched when install refuses"

    @pytest.mark.usefixtures("untouched")
    def test_another_minor_release_stops_start_up_naming_the_version_and_the_wrapped_function(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(peering, "kopf_version", lambda: "1.46.0")
        with pytest.raises(RuntimeError, match=r"kopf 1\.46\.0 .*adjust_tasks.*written for kopf 1\.45\.x"):
            peering.install()

    @pytest.mark.usefixtures("untouched")
    @pytest.mark.parametrize("name", ["adjust_tasks", "Ensemble"])
    def test_a_missing_internal_stops_start_up_naming_it(self, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delattr(orchestration, name)
        with pytest.raises(RuntimeError, match=rf"kopf \S+: kopf\._core\.reactor\.orchestration\.{name} is missing"):
            peering.install()

    @pytest.mark.usefixtures("untouched")
    def test_an_internal_with_other_arguments_stops_start_up_naming_them(self, monkeypatch: pytest.MonkeyPatch) -> None:
        async def adjust_tasks(*, processor: Any, insights: Any, settings: Any, identity: Any) -> None:
            raise AssertionError("never called")

        monkeypatch.setattr(orchestration, "adjust_tasks", adjust_tasks)
        with pytest.raises(RuntimeError, match=r"adjust_tasks takes no ensemble"):
            peering.install()

    @pytest.mark.usefixtures("untouched")
    def test_an_ensemble_without_the_pause_toggles_stops_start_up_naming_them(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        class Ensemble:
            pass

        monkeypatch.setattr(orchestration, "Ensemble", Ensemble)
        with pytest.raises(RuntimeError, match=r"Ensemble has no conflicts_found, operator_paused"):
            peering.install()

    @pytest.mark.usefixtures("untouched")
    def test_toggles_that_notify_no_shared_condition_stop_start_up(self, monkeypatch: pytest.MonkeyPatch) -> None:
        class ToggleSet:
            def __init__(self, fn: Any) -> None:
                self.fn = fn

        monkeypatch.setattr(aiotoggles, "ToggleSet", ToggleSet)
        with pytest.raises(RuntimeError, match=r"ToggleSet keeps no _condition"):
            peering.install()
