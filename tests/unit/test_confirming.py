"""Confirming accepted deletions: proof per instance, few calls, paced, on a virtual clock.

The fake cloud behaves as the real one does (reference section 8): the list hides an instance as
soon as its deletion starts, show answers DELETING until it is gone, then 404, or RECYCLE when a
non-forced deletion went to the recycle bin.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rocketmq_operator.core import cloud
from rocketmq_operator.core.evidence import Look, Sighting
from rocketmq_operator.ports import errors
from rocketmq_operator.services.confirming import BIN_PATIENCE_FLOOR, DeletionConfirmer
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.observing import Observer

from .fake_cloud import FakeCloud, loop_clock, virtual_time

VERIFY = 2.0
MAX_GAP = 30.0


@asynccontextmanager
async def confirming(fake: FakeCloud, *, observer: Observer | None = None) -> AsyncIterator[DeletionConfirmer]:
    confirmer = DeletionConfirmer(
        fake,
        verify_interval=VERIFY,
        max_gap=MAX_GAP,
        listed=observer.lookup if observer is not None else None,
        metrics=Metrics(),
        clock=loop_clock,
    )
    await confirmer.start()
    try:
        yield confirmer
    finally:
        await confirmer.aclose()


async def delete_batch(
    fake: FakeCloud,
    confirmer: DeletionConfirmer,
    ids: list[str],
    *,
    force: bool,
    timeout: float = 600,  # noqa: ASYNC109 -- handed to confirm()
) -> dict[str, tuple[Look, float]]:
    """Delete ``ids`` in one batch call and confirm each; what each confirmation said, and when."""
    await fake.delete_many(ids, force_delete=force)
    accepted_at = loop_clock()

    async def one(instance_id: str) -> tuple[Look, float]:
        look = await confirmer.confirm(instance_id, accepted_at=accepted_at, force=force, timeout=timeout)
        return look, asyncio.get_running_loop().time()

    answers = await asyncio.gather(*(one(i) for i in ids))
    return dict(zip(ids, answers, strict=True))


def shows(fake: FakeCloud) -> int:
    return len(fake.calls_of("show_instance"))


class TestForcedDeletions:
    @virtual_time
    async def test_each_is_released_on_a_404_soon_after_the_cloud_finished(self) -> None:
        fake = FakeCloud(delete_seconds=10.0)
        ids = fake.add_running(50)
        async with confirming(fake) as confirmer:
            answers = await delete_batch(fake, confirmer, ids, force=True)
        for instance_id, (look, at) in answers.items():
            assert look.sighting == Sighting.GONE
            assert at >= fake.ended[instance_id], "released before the cloud finished deleting"
            assert at - fake.ended[instance_id] <= VERIFY + 0.5

    @virtual_time
    async def test_a_cohort_waits_on_its_oldest_instance_so_most_need_one_show(self) -> None:
        fake = FakeCloud(delete_seconds=10.0)
        first, second = fake.add_running(50), fake.add_running(50)
        async with confirming(fake) as confirmer:
            await delete_batch(fake, confirmer, first, force=True)
            learning = shows(fake)
            await delete_batch(fake, confirmer, second, force=True)
            learned = shows(fake) - learning
            estimate = confirmer.estimate(force=True)
        # Before anything is known, one instance of the batch is looked at every few seconds.
        assert 50 < learning <= 50 + 6, learning
        # Then the first look goes out about when deletions end: about one show per instance.
        assert 50 <= learned <= 50 + 2, learned
        assert 8.0 <= estimate <= 12.0, estimate

    @virtual_time
    async def test_one_call_per_instance_sent_together_still_forms_one_cohort(self) -> None:
        fake = FakeCloud(delete_seconds=10.0)
        ids = fake.add_running(20)
        async with confirming(fake) as confirmer:

            async def alone(instance_id: str) -> Look:
                await fake.delete_many([instance_id], force_delete=True)  # batch size 1
                return await confirmer.confirm(instance_id, accepted_at=loop_clock(), force=True, timeout=60)

            looks = await asyncio.gather(*(alone(i) for i in ids))
        assert {look.sighting for look in looks} == {Sighting.GONE}
        assert shows(fake) <= 20 + 6, shows(fake)

    @virtual_time
    async def test_instances_that_join_their_cohort_late_wait_for_its_next_look(self) -> None:
        fake = FakeCloud(delete_seconds=10.0)
        ids = fake.add_running(50)
        async with confirming(fake) as confirmer:
            await fake.delete_many(ids, force_delete=True)
            accepted_at = loop_clock()

            async def confirm_later(index: int) -> Look:
                await asyncio.sleep(0.1 * index)  # the CRs' handlers come back one after the other
                return await confirmer.confirm(ids[index], accepted_at=accepted_at, force=True, timeout=60)

            looks = await asyncio.gather(*(confirm_later(i) for i in range(50)))
        assert {look.sighting for look in looks} == {Sighting.GONE}
        assert shows(fake) <= 50 + 6, shows(fake)

    @virtual_time
    async def test_an_instance_the_list_no_longer_shows_is_not_taken_for_gone(self) -> None:
        fake = FakeCloud(delete_seconds=60.0)
        (instance_id,) = fake.add_running(1)
        observer = Observer(fake, interval=5.0, min_gap=1.0, clock=loop_clock)
        await observer.start()
        try:
            async with confirming(fake, observer=observer) as confirmer:
                await fake.delete_many([instance_id], force_delete=True)
                accepted_at = loop_clock()
                await observer.snapshot_after(accepted_at, timeout=10)
                assert instance_id not in observer.latest().instances  # type: ignore[union-attr]
                look = await confirmer.confirm(instance_id, accepted_at=accepted_at, force=True, timeout=30)
                assert look.sighting == Sighting.DELETING
                final = await confirmer.confirm(instance_id, accepted_at=accepted_at, force=True, timeout=120)
        finally:
            await observer.aclose()
        assert final.sighting == Sighting.GONE
        assert final.observed_at is not None and final.observed_at - loop_clock() <= 0

    @virtual_time
    async def test_looks_thin_out_as_a_deletion_drags_on(self) -> None:
        fake = FakeCloud(delete_seconds=600.0)
        (instance_id,) = fake.add_running(1)
        async with confirming(fake) as confirmer:
            answers = await delete_batch(fake, confirmer, [instance_id], force=True, timeout=900)
        assert answers[instance_id][0].sighting == Sighting.GONE
        # Every 2 s at first, then a quarter of the elapsed time, at most every 30 s: ~30, not 300.
        assert shows(fake) <= 35, shows(fake)
        assert answers[instance_id][1] - fake.ended[instance_id] <= MAX_GAP

    @virtual_time
    async def test_looks_that_go_out_late_do_not_teach_the_estimate_their_lateness(self) -> None:
        # Slow shows and a batch every few seconds: a cohort's first look waits while the looks of
        # the cohorts before it are still out, and goes out late. Learned from when the looks went
        # out, the estimate grew with every cohort (18.7 s here for 10 s deletions).
        fake = FakeCloud(delete_seconds=10.0, latency=1.5)
        async with confirming(fake) as confirmer:
            batches = []
            for n in range(24):
                ids = fake.add_running(50, prefix=f"b{n}-")
                batches.append(asyncio.create_task(delete_batch(fake, confirmer, ids, force=True)))
                await asyncio.sleep(VERIFY * 1.5)
            answers = [answer for batch in await asyncio.gather(*batches) for answer in batch.items()]
            estimate = confirmer.estimate(force=True)
        assert {look.sighting for _id, (look, _at) in answers} == {Sighting.GONE}
        assert estimate <= 12.0, estimate


class TestPassesLooksAndProofs:
    @virtual_time
    async def test_a_proof_does_not_wait_behind_the_looks_of_passes_about_to_submit(self) -> None:
        """In a mass deletion, passes look at instances before submitting them while earlier deletions
        are being proven; a proof lets its CR go, and must not queue behind new work."""
        fake = FakeCloud(delete_seconds=10.0, latency=1.0)
        deleting, *others = fake.add_running(81)
        async with confirming(fake) as confirmer:
            await fake.delete_many([deleting], force_delete=True)
            proof = asyncio.create_task(confirmer.confirm(deleting, accepted_at=loop_clock(), force=True, timeout=600))
            await asyncio.sleep(9.0)
            looks = asyncio.gather(*(confirmer.look(i) for i in others))  # 80 looks: 10 s of them, 8 at a time
            look = await proof
            proven_at = asyncio.get_running_loop().time()
            assert not looks.done(), "the looks were still queued when the proof came"
            await looks
        assert look.sighting == Sighting.GONE
        assert proven_at - fake.ended[deleting] <= VERIFY + 2 * fake.latency + 0.5


class TestTheRecycleBin:
    @virtual_time
    async def test_one_bin_list_confirms_many_non_forced_deletions(self) -> None:
        fake = FakeCloud(delete_seconds=10.0, recycle_bin=True)
        ids = fake.add_running(50)
        async with confirming(fake) as confirmer:
            answers = await delete_batch(fake, confirmer, ids, force=False)
        assert {look.sighting for look, _ in answers.values()} == {Sighting.RECYCLED}
        assert shows(fake) == 0
        bin_calls = len(fake.calls_of("list_recycle_bin"))
        assert bin_calls <= 6, bin_calls
        for instance_id, (_, at) in answers.items():
            assert fake.ended[instance_id] <= at <= fake.ended[instance_id] + VERIFY + 0.5

    @virtual_time
    async def test_an_instance_the_bin_never_gets_is_asked_about_with_show(self) -> None:
        fake = FakeCloud(delete_seconds=10.0, recycle_bin=True)
        fake.add(cloud.InstanceView(instance_id="i-failed", name="x", status=cloud.CREATEFAILED))
        async with confirming(fake) as confirmer:
            answers = await delete_batch(fake, confirmer, ["i-failed"], force=False)
        look, at = answers["i-failed"]
        assert look.sighting == Sighting.GONE
        assert fake.calls_of("show_instance"), "a 404 can only come from show"
        # The bin is given its time first (a minute at least), then show asks.
        assert at - fake.ended["i-failed"] <= BIN_PATIENCE_FLOOR + MAX_GAP

    @virtual_time
    async def test_with_the_bin_off_non_forced_deletions_are_shown_after_one_bin_list(self) -> None:
        fake = FakeCloud(delete_seconds=4.0, recycle_bin=False)
        first, second = fake.add_running(3), fake.add_running(3)
        async with confirming(fake) as confirmer:
            await delete_batch(fake, confirmer, first, force=False)
            await delete_batch(fake, confirmer, second, force=False)
        assert len(fake.calls_of("list_recycle_bin")) == 1


class TestACloudThatPushesBack:
    @virtual_time
    async def test_throttling_slows_confirmations_and_never_releases_one(self) -> None:
        fake = FakeCloud(delete_seconds=4.0)
        (instance_id,) = fake.add_running(1)
        throttled = errors.Throttled("429", status=429, code="APIGW.0308", retry_after=10.0)
        fake.call_errors["show_instance"] = [throttled, throttled, throttled]
        async with confirming(fake) as confirmer:
            await fake.delete_many([instance_id], force_delete=True)
            accepted_at = loop_clock()
            early = await confirmer.confirm(instance_id, accepted_at=accepted_at, force=True, timeout=15)
            late = await confirmer.confirm(instance_id, accepted_at=accepted_at, force=True, timeout=60)
        assert not early.proves_gone and early.sighting == Sighting.UNKNOWN
        assert late.sighting == Sighting.GONE
        looks = [call.at for call in fake.calls_of("show_instance")]
        assert len(looks) == 4 and all(b - a >= 10.0 for a, b in itertools.pairwise(looks)), looks

    @virtual_time
    async def test_a_long_wait_ends_when_the_looks_start_failing_but_not_again_for_the_same_failure(self) -> None:
        fake = FakeCloud(delete_seconds=60.0)
        (instance_id,) = fake.add_running(1)
        fake.call_errors["show_instance"] = [
            errors.AuthFailed("the credentials were refused", status=401, code="APIGW.0301", request_id=f"r-{n}")
            for n in range(3)
        ]
        async with confirming(fake) as confirmer:
            await fake.delete_many([instance_id], force_delete=True)
            accepted_at = loop_clock()
            failing = await confirmer.confirm(instance_id, accepted_at=accepted_at, force=True, timeout=600)
            told_at = loop_clock()
            decided = await confirmer.confirm(instance_id, accepted_at=accepted_at, force=True, timeout=600)
        # The first failure is news for the CR's conditions: the waiting pass hears of it at once.
        assert failing.sighting == Sighting.UNKNOWN and "refused" in (failing.error_message or "")
        assert told_at - accepted_at <= VERIFY + 0.5
        # The same failure twice more is not (though each carries its own request id): the next wait
        # goes on to the proof.
        assert decided.sighting == Sighting.GONE
        assert shows(fake) >= 4 and loop_clock() >= fake.ended[instance_id]

    @virtual_time
    async def test_a_wait_ends_when_its_deletion_is_forgotten(self) -> None:
        fake = FakeCloud(delete_seconds=600.0)
        (instance_id,) = fake.add_running(1)
        async with confirming(fake) as confirmer:
            await fake.delete_many([instance_id], force_delete=True)
            waiting = asyncio.create_task(
                confirmer.confirm(instance_id, accepted_at=loop_clock(), force=True, timeout=300)
            )
            await asyncio.sleep(10)
            assert not waiting.done()
            confirmer.forget(instance_id)  # its CR is gone from the API server
            asked = loop_clock()
            look = await waiting
        assert loop_clock() == asked, "the wait ends at once"
        assert not look.proves_gone

    @virtual_time
    async def test_a_deletion_the_cloud_undoes_is_reported_alive_with_its_status(self) -> None:
        fake = FakeCloud(delete_seconds=6.0, undo={"i-0000": cloud.ERROR})
        fake.add_running(1)
        async with confirming(fake) as confirmer:
            answers = await delete_batch(fake, confirmer, ["i-0000"], force=True, timeout=60)
        look, _ = answers["i-0000"]
        assert look.sighting == Sighting.PRESENT and look.status == cloud.ERROR
        assert "i-0000" in fake.instances and "i-0000" not in fake.ended

    @virtual_time
    async def test_an_undone_deletion_that_a_list_walk_shows_costs_no_call(self) -> None:
        fake = FakeCloud(delete_seconds=3.0, undo={"i-0000": cloud.RUNNING})
        fake.add_running(1)
        observer = Observer(fake, interval=5.0, min_gap=1.0, clock=loop_clock)
        confirmer = DeletionConfirmer(
            fake,
            verify_interval=VERIFY,
            max_gap=MAX_GAP,
            initial_estimate=20.0,  # the first show would come late: the walk must tell first
            listed=observer.lookup,
            clock=loop_clock,
        )
        await observer.start()
        await confirmer.start()
        try:
            await fake.delete_many(["i-0000"], force_delete=True)
            accepted_at = loop_clock()
            await observer.snapshot_after(accepted_at + 5.0, timeout=30)
            look = await confirmer.confirm("i-0000", accepted_at=accepted_at, force=True, timeout=60)
        finally:
            await confirmer.aclose()
            await observer.aclose()
        assert look.sighting == Sighting.PRESENT and look.status == cloud.RUNNING
        assert not fake.calls_of("show_instance")

    @virtual_time
    async def test_after_a_restart_an_old_acceptance_is_looked_at_at_once(self) -> None:
        fake = FakeCloud(delete_seconds=0.0)
        (instance_id,) = fake.add_running(1)
        await fake.delete_many([instance_id], force_delete=True)
        await asyncio.sleep(300)  # the operator was down
        async with confirming(fake) as confirmer:
            started = asyncio.get_running_loop().time()
            look = await confirmer.confirm(instance_id, accepted_at=loop_clock() - 300, force=True, timeout=30)
            took = asyncio.get_running_loop().time() - started
        assert look.sighting == Sighting.GONE
        assert (shows(fake), took) == (1, 0.0)
