"""The sweep of failed creations: which CREATEFAILED instances are ours to delete, and when.

Ownership is positive evidence only: this cluster's owner tag, or an instance id a CR here has
recorded. Everything else is foreign and never deleted by the owned sweep. The sweeper tests run
on a virtual clock (``fake_cloud.virtual_time``) against the in-memory cloud.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from rocketmq_operator.core import cloud
from rocketmq_operator.core.mapping import OWNER_CLUSTER_TAG, OWNER_NAMESPACE_TAG, OWNER_UID_TAG
from rocketmq_operator.core.settings import SweepMode
from rocketmq_operator.core.vocabulary import DeletionResult
from rocketmq_operator.services import sweeping
from rocketmq_operator.services.batching import DeletionBatcher
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.observing import Observer
from rocketmq_operator.services.sweeping import Sweeper, select_failed

from .fake_cloud import FakeCloud, loop_clock, virtual_time

CLUSTER = "cluster-1"
INTERVAL = 10.0


def failed(instance_id: str, status: str = cloud.CREATEFAILED, **tags: str) -> cloud.InstanceView:
    return cloud.InstanceView(
        instance_id=instance_id,
        name=f"rmq-{instance_id}",
        status=status,
        tags=[cloud.Tag(key=key, value=value) for key, value in tags.items()],
    )


def ours(instance_id: str, status: str = cloud.CREATEFAILED) -> cloud.InstanceView:
    return failed(instance_id, status, **{OWNER_CLUSTER_TAG: CLUSTER, OWNER_UID_TAG: "uid-1"})


class TestWhichFailedInstancesAreOwned:
    @pytest.mark.parametrize(
        ("view", "known_ids", "expected"),
        [
            pytest.param(ours("i-1"), (), "owned", id="tagged with this cluster's id"),
            pytest.param(failed("i-1"), ("i-1",), "owned", id="untagged, but a CR here recorded its id"),
            pytest.param(
                failed("i-1", **{OWNER_CLUSTER_TAG: "cluster-2"}),
                ("i-1",),
                "owned",
                id="another cluster's tag, but a CR here recorded its id",
            ),
            pytest.param(failed("i-1", **{OWNER_CLUSTER_TAG: "cluster-2"}), (), "foreign", id="another cluster's"),
            pytest.param(failed("i-1"), ("i-2",), "foreign", id="untagged and recorded by no CR"),
            pytest.param(
                failed("i-1", **{OWNER_NAMESPACE_TAG: "team-a", OWNER_UID_TAG: "uid-1"}),
                (),
                "foreign",
                id="owner tags of a look-alike CR but no cluster tag",
            ),
            pytest.param(
                failed("i-1", **{f"x-{OWNER_CLUSTER_TAG}": CLUSTER}), (), "foreign", id="a look-alike tag key"
            ),
            pytest.param(ours("i-1", cloud.RUNNING), ("i-1",), "neither", id="ours but RUNNING"),
            pytest.param(ours("i-1", cloud.DELETING), ("i-1",), "neither", id="ours and already DELETING"),
            pytest.param(failed("i-1", cloud.ERROR), (), "neither", id="foreign and ERROR"),
        ],
    )
    def test_ownership_is_positive_evidence_only(
        self, view: cloud.InstanceView, known_ids: Collection[str], expected: str
    ) -> None:
        owned, foreign = select_failed([view], cluster_id=CLUSTER, known_ids=known_ids)
        found = {"owned": [v.instance_id for v in owned], "foreign": [v.instance_id for v in foreign]}
        if expected == "neither":
            assert found == {"owned": [], "foreign": []}
        else:
            assert found[expected] == ["i-1"] and sum(map(len, found.values())) == 1, found

    def test_an_empty_cluster_id_owns_nothing_by_tag_even_an_instance_tagged_with_an_empty_one(self) -> None:
        owned, foreign = select_failed([failed("i-1", **{OWNER_CLUSTER_TAG: ""})], cluster_id="", known_ids=())
        assert (owned, [v.instance_id for v in foreign]) == ([], ["i-1"])

    def test_a_mixed_listing_is_split_keeping_each_instance_once(self) -> None:
        listing = [
            ours("i-1"),
            failed("i-2", **{OWNER_CLUSTER_TAG: "cluster-2"}),
            failed("i-3"),
            ours("i-4", cloud.RUNNING),
        ]
        owned, foreign = select_failed(listing, cluster_id=CLUSTER, known_ids={"i-3"})
        assert [v.instance_id for v in owned] == ["i-1", "i-3"]
        assert [v.instance_id for v in foreign] == ["i-2"]


@dataclass
class SweepWorld:
    cloud: FakeCloud
    observer: Observer
    batcher: DeletionBatcher
    sweeper: Sweeper
    metrics: Metrics

    async def listed(self) -> None:
        """Wait for a list walk that started now, so the sweep sees the cloud as it is."""
        assert await self.observer.snapshot_after(loop_clock(), timeout=5) is not None


@asynccontextmanager
async def sweep_world(
    fake: FakeCloud,
    *,
    cluster_id: Callable[[], str] = lambda: CLUSTER,
    known_ids: Collection[str] = (),
    min_failed_age: float = 0.0,
    mode: SweepMode = SweepMode.OWNED,
) -> AsyncIterator[SweepWorld]:
    metrics = Metrics()
    observer = Observer(fake, interval=INTERVAL, min_gap=1.0, metrics=metrics, clock=loop_clock)
    batcher = DeletionBatcher(fake, window=0.5, max_size=50, metrics=metrics, clock=loop_clock)
    sweeper = Sweeper(
        client=fake,
        observer=observer,
        batcher=batcher,
        interval=60.0,
        mode=mode,
        cluster_id=cluster_id,
        known_ids=lambda: known_ids,
        metrics=metrics,
        min_failed_age=min_failed_age,
        clock=loop_clock,
    )
    await observer.start()
    try:
        yield SweepWorld(fake, observer, batcher, sweeper, metrics)
    finally:
        await sweeper.aclose()
        await batcher.aclose()
        await observer.aclose()


def deleted_ids(fake: FakeCloud) -> list[tuple[str, ...]]:
    return [call.ids for call in fake.calls_of("delete_many")]


class TestASweep:
    @virtual_time
    async def test_deletes_the_owned_failed_instances_in_one_batch_call_and_keeps_each_outcome(self) -> None:
        fake = FakeCloud()
        fake.add(ours("i-1"), ours("i-2"), failed("i-3"), failed("i-4", **{OWNER_CLUSTER_TAG: "cluster-2"}))
        async with sweep_world(fake, known_ids={"i-2"}) as w:
            await w.listed()
            report = await w.sweeper.sweep_once()
        assert deleted_ids(fake) == [("i-1", "i-2")]
        assert report.owned == ("i-1", "i-2") and report.foreign == ("i-3", "i-4")
        assert report.outcomes == {"i-1": DeletionResult.ACCEPTED, "i-2": DeletionResult.ACCEPTED}
        outcome = w.sweeper.outcome_for("i-1")
        assert outcome is not None and outcome.result == DeletionResult.ACCEPTED
        assert w.sweeper.outcome_for("i-3") is None
        assert w.metrics.registry.get_sample_value("rocketmq_operator_swept_instances_total", {"mode": "owned"}) == 2

    @virtual_time
    async def test_an_outcome_is_kept_until_the_cr_it_was_kept_for_is_gone(self) -> None:
        fake = FakeCloud()
        fake.add(ours("i-1"), ours("i-2"))
        async with sweep_world(fake) as w:
            await w.listed()
            await w.sweeper.sweep_once()
            w.sweeper.forget("uid-1", {"i-1"})
        assert w.sweeper.outcome_for("i-1") is None
        assert w.sweeper.outcome_for("i-2") is not None, "another CR's outcome stays"

    @virtual_time
    async def test_waits_until_a_failed_instance_is_old_enough_for_its_cr_to_have_seen_it(self) -> None:
        fake = FakeCloud()
        fake.add(ours("i-1"))
        async with sweep_world(fake, min_failed_age=2 * INTERVAL) as w:
            await w.listed()
            young = await w.sweeper.sweep_once()
            assert deleted_ids(fake) == []
            await asyncio.sleep(2 * INTERVAL)
            await w.listed()
            due = await w.sweeper.sweep_once()
        assert (young.waiting, young.owned) == (("i-1",), ())
        assert (due.waiting, due.owned) == ((), ("i-1",))
        assert deleted_ids(fake) == [("i-1",)]

    @virtual_time
    async def test_an_owned_instance_whose_deletion_is_already_queued_joins_that_call(self) -> None:
        fake = FakeCloud()
        fake.add(ours("i-1"), ours("i-2"))
        async with sweep_world(fake) as w:
            await w.listed()
            queued, report = await asyncio.gather(w.batcher.submit("i-1", force_delete=True), w.sweeper.sweep_once())
        assert deleted_ids(fake) == [("i-1", "i-2")]
        swept = w.sweeper.outcome_for("i-1")
        assert swept is not None and swept.batch_id == queued.batch_id, "one call carried both requests"
        assert report.owned == ("i-1", "i-2")

    @virtual_time
    async def test_in_report_mode_it_names_the_foreign_ones_and_deletes_none_of_them(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        fake = FakeCloud()
        fake.add(ours("i-1"), failed("i-2"))
        async with sweep_world(fake, mode=SweepMode.REPORT) as w:
            await w.listed()
            with caplog.at_level(logging.INFO, logger=sweeping.__name__):
                await w.sweeper.sweep_once()
        assert deleted_ids(fake) == [("i-1",)]
        assert not fake.calls_of("delete_all_failed")
        assert any("would delete 1 failed instances not owned here: i-2" in r.getMessage() for r in caplog.records)

    @virtual_time
    async def test_project_wide_it_also_asks_the_cloud_to_delete_every_failed_instance(self) -> None:
        fake = FakeCloud()
        fake.add(ours("i-1"), failed("i-2"))
        async with sweep_world(fake, mode=SweepMode.PROJECT_WIDE) as w:
            await w.listed()
            report = await w.sweeper.sweep_once()
        assert deleted_ids(fake) == [("i-1",)]
        assert len(fake.calls_of("delete_all_failed")) == 1 and report.project_wide_call


class TestWhileTheClusterIdIsUnknown:
    """No stand-in id: one shared by every cluster in that state would make each sweep the others'."""

    @pytest.mark.parametrize("mode", list(SweepMode))
    @virtual_time
    async def test_nothing_is_deleted_and_each_skip_is_counted_but_warned_about_once(
        self, mode: SweepMode, caplog: pytest.LogCaptureFixture
    ) -> None:
        fake = FakeCloud()
        fake.add(ours("i-1"), failed("i-2"), failed("i-3", **{OWNER_CLUSTER_TAG: ""}))
        async with sweep_world(fake, cluster_id=lambda: None, known_ids={"i-2"}, mode=mode) as w:
            await w.listed()
            with caplog.at_level(logging.INFO, logger=sweeping.__name__):
                first = await w.sweeper.sweep_once()
                second = await w.sweeper.sweep_once()
        assert deleted_ids(fake) == [] and fake.calls_of("delete_all_failed") == []
        assert first.skipped is not None and "cluster id" in first.skipped
        assert (first.owned, first.foreign, second.owned) == ((), (), ())
        skipped = w.metrics.registry.get_sample_value(
            "rocketmq_operator_sweeps_skipped_total", {"reason": "cluster_id_unknown"}
        )
        assert skipped == 2
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "DMS_CLUSTER_ID" in warnings[0].getMessage()

    @virtual_time
    async def test_the_sweep_resumes_once_the_id_is_known_and_says_so(self, caplog: pytest.LogCaptureFixture) -> None:
        fake = FakeCloud()
        fake.add(ours("i-1"))
        known: list[str] = []
        async with sweep_world(fake, cluster_id=lambda: known[0] if known else None) as w:
            await w.listed()
            with caplog.at_level(logging.INFO, logger=sweeping.__name__):
                await w.sweeper.sweep_once()
                known.append(CLUSTER)
                resumed = await w.sweeper.sweep_once()
        assert resumed.skipped is None and resumed.owned == ("i-1",)
        assert deleted_ids(fake) == [("i-1",)]
        assert any(f"cluster id {CLUSTER} is known now" in r.getMessage() for r in caplog.records)

    @virtual_time
    async def test_a_known_id_from_the_start_is_not_announced(self, caplog: pytest.LogCaptureFixture) -> None:
        async with sweep_world(FakeCloud()) as w:
            await w.listed()
            with caplog.at_level(logging.INFO, logger=sweeping.__name__):
                await w.sweeper.sweep_once()
        assert [r.getMessage() for r in caplog.records if "cluster id" in r.getMessage()] == []
