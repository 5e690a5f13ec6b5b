"""The deletion batcher: what leaves as one batch call, and what each caller gets back.

Every test runs on a virtual clock (``fake_cloud.virtual_time``): windows of seconds pass instantly
and the fake cloud logs the loop time of each call, so timing is asserted exactly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from rocketmq_operator.core import cloud
from rocketmq_operator.core.vocabulary import DeletionResult
from rocketmq_operator.ports import errors
from rocketmq_operator.services import batching
from rocketmq_operator.services.metrics import Metrics

from .fake_cloud import EPOCH, FakeCloud, instance, loop_clock, virtual_time


def make_batcher(
    fake: FakeCloud, *, window: float = 0.5, max_size: int = 50, metrics: Metrics | None = None
) -> batching.DeletionBatcher:
    return batching.DeletionBatcher(fake, window=window, max_size=max_size, metrics=metrics, clock=loop_clock)


async def submit_all(
    batcher: batching.DeletionBatcher, ids: Sequence[str], *, force_delete: bool = False
) -> list[batching.DeleteOutcome]:
    return list(await asyncio.gather(*(batcher.submit(i, force_delete=force_delete) for i in ids)))


async def submit_at(batcher: batching.DeletionBatcher, delay: float, instance_id: str) -> batching.DeleteOutcome:
    await asyncio.sleep(delay)
    return await batcher.submit(instance_id, force_delete=False)


def sizes(fake: FakeCloud) -> list[int]:
    return [len(call.ids) for call in fake.calls_of("delete_many")]


class TestWhatLeavesAsOneCall:
    @virtual_time
    async def test_ids_submitted_within_one_window_leave_in_one_call_when_it_closes(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(5)
        batcher = make_batcher(fake, window=0.5)

        outcomes = await submit_all(batcher, ids)

        [call] = fake.calls_of("delete_many")
        assert call.ids == tuple(ids)
        assert call.at == pytest.approx(0.5)
        assert call.force_delete is False
        assert {o.result for o in outcomes} == {DeletionResult.ACCEPTED}
        assert len({o.batch_id for o in outcomes}) == 1
        assert {o.batch_size for o in outcomes} == {5}
        assert all(o.submitted_at == pytest.approx(EPOCH + 0.5) for o in outcomes)

    @virtual_time
    async def test_a_burst_spread_over_several_windows_still_leaves_as_one_call(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(6)
        batcher = make_batcher(fake, window=0.5)

        async def submit_at(delay: float, instance_id: str) -> batching.DeleteOutcome:
            await asyncio.sleep(delay)
            return await batcher.submit(instance_id, force_delete=False)

        # Arrivals 0.4 s apart: each one comes before the window after the previous one closes.
        await asyncio.gather(*(submit_at(0.4 * n, i) for n, i in enumerate(ids)))

        [call] = fake.calls_of("delete_many")
        assert call.ids == tuple(ids)
        assert call.at == pytest.approx(2.0 + 0.5)

    @virtual_time
    async def test_a_trickle_cannot_delay_the_call_beyond_max_wait(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(12)
        batcher = batching.DeletionBatcher(fake, window=0.5, max_wait=2.0, max_size=50, clock=loop_clock)

        async def submit_at(delay: float, instance_id: str) -> batching.DeleteOutcome:
            await asyncio.sleep(delay)
            return await batcher.submit(instance_id, force_delete=False)

        await asyncio.gather(*(submit_at(0.3 * n, i) for n, i in enumerate(ids)))

        calls = fake.calls_of("delete_many")
        assert calls[0].at == pytest.approx(2.0), "sent max_wait after the first id, though ids kept coming"
        assert sorted(i for c in calls for i in c.ids) == sorted(ids)

    @virtual_time
    async def test_a_quiet_window_after_the_last_id_sends_the_call(self) -> None:
        fake = FakeCloud()
        first, second, late = fake.add_running(3)
        batcher = make_batcher(fake, window=0.5)

        async def submit_at(delay: float, instance_id: str) -> batching.DeleteOutcome:
            await asyncio.sleep(delay)
            return await batcher.submit(instance_id, force_delete=False)

        await asyncio.gather(submit_at(0.0, first), submit_at(0.4, second), submit_at(1.5, late))

        calls = fake.calls_of("delete_many")
        assert [c.ids for c in calls] == [(first, second), (late,)]
        assert [c.at for c in calls] == pytest.approx([0.9, 2.0])

    @virtual_time
    async def test_reaching_the_size_limit_sends_at_once(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(4)
        batcher = batching.DeletionBatcher(fake, window=10.0, max_wait=20.0, max_size=3, clock=loop_clock)

        outcomes = await submit_all(batcher, ids)

        # The rest of a burst that filled a call waits for more up to max_wait (below).
        assert [(c.at, len(c.ids)) for c in fake.calls_of("delete_many")] == [(0.0, 3), (20.0, 1)]
        assert [o.batch_size for o in outcomes] == [3, 3, 3, 1]

    @virtual_time
    async def test_a_pause_in_a_burst_that_filled_a_call_does_not_send_the_next_one_part_filled(self) -> None:
        """kubectl's deletions, or the watch that brings them, stall for a second or two under load: a
        group opened right after a full call waits out such a pause (up to max_wait), not one window."""
        fake = FakeCloud()
        ids = fake.add_running(100)
        batcher = batching.DeletionBatcher(fake, window=0.5, max_wait=3.0, max_size=50, clock=loop_clock)

        # 60 ids at once, a pause of 2 s (4 windows), then the other 40.
        await asyncio.gather(*(submit_at(batcher, 0.0 if n < 60 else 2.0, i) for n, i in enumerate(ids)))

        assert [(c.at, len(c.ids)) for c in fake.calls_of("delete_many")] == [(0.0, 50), (2.0, 50)]

    @virtual_time
    async def test_the_rest_of_a_burst_leaves_max_wait_after_its_first_id(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(53)
        batcher = batching.DeletionBatcher(fake, window=0.5, max_wait=3.0, max_size=50, clock=loop_clock)

        await submit_all(batcher, ids)

        assert [(c.at, len(c.ids)) for c in fake.calls_of("delete_many")] == [(0.0, 50), (3.0, 3)]

    @virtual_time
    async def test_a_group_after_a_call_sent_part_filled_waits_one_window_again(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(53)
        batcher = batching.DeletionBatcher(fake, window=0.5, max_wait=3.0, max_size=50, clock=loop_clock)

        # The burst's rest (2 ids) leaves at max_wait; an id 1 s later is no burst: one window.
        await asyncio.gather(*(submit_at(batcher, 0.0 if n < 52 else 4.0, i) for n, i in enumerate(ids)))

        assert [(c.at, len(c.ids)) for c in fake.calls_of("delete_many")] == [(0.0, 50), (3.0, 2), (4.5, 1)]

    @virtual_time
    async def test_each_force_flag_is_its_own_call(self) -> None:
        fake = FakeCloud()
        soft, hard = fake.add_running(2)
        batcher = make_batcher(fake)

        soft_outcome, hard_outcome = await asyncio.gather(
            batcher.submit(soft, force_delete=False), batcher.submit(hard, force_delete=True)
        )

        calls = {call.force_delete: call.ids for call in fake.calls_of("delete_many")}
        assert calls == {False: (soft,), True: (hard,)}
        assert soft_outcome.batch_id != hard_outcome.batch_id

    @virtual_time
    async def test_a_thousand_deletions_with_a_limit_of_50_take_exactly_20_calls(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(1000)
        batcher = make_batcher(fake, window=2.0, max_size=50)

        outcomes = await submit_all(batcher, ids)

        assert sizes(fake) == [50] * 20
        assert sorted(i for call in fake.calls_of("delete_many") for i in call.ids) == sorted(ids)
        assert {o.result for o in outcomes} == {DeletionResult.ACCEPTED}
        assert fake.instances == {}

    @virtual_time
    async def test_calls_run_as_tasks_so_several_are_in_flight_at_once(self) -> None:
        fake = FakeCloud(latency=5.0)
        ids = fake.add_running(4)
        batcher = make_batcher(fake, window=10.0, max_size=2)

        await submit_all(batcher, ids)

        assert [call.at for call in fake.calls_of("delete_many")] == [0.0, 0.0]
        assert asyncio.get_running_loop().time() == pytest.approx(5.0)


class TestDeduplication:
    @virtual_time
    async def test_an_id_submitted_twice_while_pending_is_sent_once_and_both_get_its_result(self) -> None:
        fake = FakeCloud()
        a, b = fake.add_running(2)
        batcher = make_batcher(fake)

        first, second, other = await asyncio.gather(
            batcher.submit(a, force_delete=False),
            batcher.submit(a, force_delete=False, trigger="Sweep"),
            batcher.submit(b, force_delete=False),
        )

        assert fake.calls_of("delete_many")[0].ids == (a, b)
        assert first is second
        assert other.result == DeletionResult.ACCEPTED

    @virtual_time
    async def test_an_id_submitted_again_after_its_call_was_sent_goes_in_a_new_call(self) -> None:
        fake = FakeCloud(unknown_ids="failed")
        [a] = fake.add_running(1)
        batcher = make_batcher(fake)

        first = await batcher.submit(a, force_delete=False)
        again = await batcher.submit(a, force_delete=False)

        assert sizes(fake) == [1, 1]
        assert first.batch_id != again.batch_id
        assert again.result == DeletionResult.FAILED  # the fake cloud no longer knows it


class TestPerInstanceResults:
    @virtual_time
    async def test_each_result_goes_to_the_waiter_of_its_own_id(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(4)
        fake.failed_ids = {ids[1], ids[3]}
        batcher = make_batcher(fake)

        outcomes = await submit_all(batcher, ids)

        assert [(o.instance_id, o.result) for o in outcomes] == [
            (ids[0], DeletionResult.ACCEPTED),
            (ids[1], DeletionResult.FAILED),
            (ids[2], DeletionResult.ACCEPTED),
            (ids[3], DeletionResult.FAILED),
        ]
        assert all(o.error is None for o in outcomes)

    @virtual_time
    async def test_an_id_missing_from_the_response_gets_no_result(self) -> None:
        fake = FakeCloud()
        a, b = fake.add_running(2)
        fake.omitted_ids = {b}
        batcher = make_batcher(fake)

        got_a, got_b = await submit_all(batcher, [a, b])

        assert (got_a.result, got_b.result) == (DeletionResult.ACCEPTED, DeletionResult.NO_RESULT)

    @virtual_time
    async def test_results_for_ids_that_were_not_sent_are_ignored(self) -> None:
        fake = FakeCloud()
        [a] = fake.add_running(1)
        batcher = make_batcher(fake)

        async def chatty_delete_many(
            instance_ids: Sequence[str], *, force_delete: bool | None = None
        ) -> list[cloud.BatchActionResult]:
            return [
                cloud.BatchActionResult(instance="stranger", result="failed"),
                cloud.BatchActionResult(instance=a, result="success"),
            ]

        fake.delete_many = chatty_delete_many  # type: ignore[method-assign]

        assert (await batcher.submit(a, force_delete=False)).result == DeletionResult.ACCEPTED


class TestWholeCallFailures:
    @virtual_time
    async def test_a_throttled_call_gives_every_waiter_the_error_and_is_not_retried(self) -> None:
        throttled = errors.Throttled("slow down", retry_after=3.0, code="APIGW.0308")
        fake = FakeCloud(call_errors={"delete_many": [throttled]})
        ids = fake.add_running(3)
        batcher = make_batcher(fake)

        outcomes = await submit_all(batcher, ids)

        assert sizes(fake) == [3]
        assert {o.result for o in outcomes} == {DeletionResult.ERROR}
        assert all(o.error is throttled for o in outcomes)
        assert set(fake.instances) == set(ids)

    @pytest.mark.parametrize(
        "error",
        [
            errors.TransportError("connection reset"),
            errors.ServerError("boom", status=503),
            errors.MalformedResponse("not JSON"),
            errors.AuthFailed("bad signature", status=401, code="APIGW.0301"),
            errors.QuotaExceeded("quota", status=400, code="DMS.00400039"),
        ],
        ids=lambda error: type(error).__name__,
    )
    @virtual_time
    async def test_other_whole_call_failures_are_errors_for_all_without_splitting(
        self, error: errors.CloudError
    ) -> None:
        fake = FakeCloud(call_errors={"delete_many": [error]})
        ids = fake.add_running(4)
        batcher = make_batcher(fake)

        outcomes = await submit_all(batcher, ids)

        assert sizes(fake) == [4]
        assert all((o.result, o.error) == (DeletionResult.ERROR, error) for o in outcomes)

    @virtual_time
    async def test_an_unexpected_exception_in_the_client_still_resolves_every_waiter(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(2)
        batcher = make_batcher(fake)

        async def broken(
            instance_ids: Sequence[str], *, force_delete: bool | None = None
        ) -> list[cloud.BatchActionResult]:
            raise RuntimeError("bug")

        fake.delete_many = broken  # type: ignore[method-assign]

        outcomes = await submit_all(batcher, ids)

        assert {o.result for o in outcomes} == {DeletionResult.ERROR}
        assert all(isinstance(o.error, errors.CloudError) and "bug" in str(o.error) for o in outcomes)


class TestSplittingAmbiguousRefusals:
    @virtual_time
    async def test_a_cloud_refusing_big_batches_gets_halves_and_the_limit_is_learned(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        fake = FakeCloud(batch_limit=2)
        ids = fake.add_running(11)
        batcher = make_batcher(fake, max_size=50)

        with caplog.at_level(logging.INFO, logger=batching.__name__):
            outcomes = await submit_all(batcher, ids[:6])

        # 6 -> refused -> 3 -> refused -> 2 + 1, then the other 3 the same way.
        assert sizes(fake) == [6, 3, 2, 1, 3, 2, 1]
        assert {o.result for o in outcomes} == {DeletionResult.ACCEPTED}
        assert batcher.effective_max_size == 2
        learned = [r for r in caplog.records if "from now on" in r.getMessage()]
        assert [r.levelno for r in learned] == [logging.WARNING]

        fake.calls.clear()
        later = await submit_all(batcher, ids[6:])

        assert sizes(fake) == [2, 2, 1]
        assert {o.result for o in later} == {DeletionResult.ACCEPTED}

    @virtual_time
    async def test_a_limit_learned_while_ids_are_pending_applies_to_their_call(self) -> None:
        fake = FakeCloud(batch_limit=2, latency=1.0)
        ids = fake.add_running(9)
        batcher = make_batcher(fake, window=5.0, max_size=4)

        first = asyncio.gather(*(batcher.submit(i, force_delete=False) for i in ids[:4]))
        await asyncio.sleep(0.5)  # the first call is in flight; the next ids queue behind it
        second = asyncio.gather(*(batcher.submit(i, force_delete=False) for i in ids[4:7]))
        await asyncio.gather(first, second)

        assert batcher.effective_max_size == 2
        assert sizes(fake)[-2:] == [2, 1]

    @virtual_time
    async def test_an_unknown_id_is_isolated_and_the_others_are_still_deleted(self) -> None:
        fake = FakeCloud(unknown_ids="refuse")
        ids = fake.add_running(4)
        fake.remove(ids[2])
        batcher = make_batcher(fake)

        outcomes = await submit_all(batcher, ids)

        assert [o.result for o in outcomes] == [
            DeletionResult.ACCEPTED,
            DeletionResult.ACCEPTED,
            DeletionResult.NOT_FOUND,
            DeletionResult.ACCEPTED,
        ]
        assert isinstance(outcomes[2].error, errors.NotFound)
        assert outcomes[2].batch_size == 1
        assert sizes(fake) == [4, 2, 2, 1, 1]
        assert batcher.effective_max_size == 50  # not a size problem: nothing learned
        assert fake.instances == {}

    @virtual_time
    async def test_an_instance_still_creating_is_isolated_as_wrong_state(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(3)
        fake.add(instance("i-creating", status=cloud.CREATING))
        batcher = make_batcher(fake)

        outcomes = await submit_all(batcher, [*ids, "i-creating"])

        assert [o.result for o in outcomes] == [DeletionResult.ACCEPTED] * 3 + [DeletionResult.WRONG_STATE]
        assert isinstance(outcomes[3].error, errors.WrongState)
        assert "i-creating" in fake.instances

    @virtual_time
    async def test_an_invalid_single_id_is_an_error_and_teaches_no_limit(self) -> None:
        invalid = errors.InvalidRequest("bad id", status=400, code="DMS.00400002")
        # The 4-id call, its 2-id left half and that half's first id are refused.
        fake = FakeCloud(call_errors={"delete_many": [invalid, invalid, invalid]})
        ids = fake.add_running(4)
        batcher = make_batcher(fake)

        outcomes = await submit_all(batcher, ids)

        assert sizes(fake) == [4, 2, 1, 1, 2]
        assert [o.result for o in outcomes] == [DeletionResult.ERROR] + [DeletionResult.ACCEPTED] * 3
        assert outcomes[0].error is invalid
        assert batcher.effective_max_size == 50

    @virtual_time
    async def test_a_single_id_refused_as_not_found_counts_as_not_found(self) -> None:
        fake = FakeCloud(unknown_ids="refuse")
        batcher = make_batcher(fake)

        outcome = await batcher.submit("i-gone", force_delete=True)

        assert (outcome.result, sizes(fake)) == (DeletionResult.NOT_FOUND, [1])


class TestNoWaiterIsEverLost:
    @virtual_time
    async def test_aclose_gives_pending_waiters_an_error_without_sending(self) -> None:
        fake = FakeCloud()
        ids = fake.add_running(3)
        batcher = make_batcher(fake, window=60.0)

        waiting = asyncio.gather(*(batcher.submit(i, force_delete=False) for i in ids))
        await asyncio.sleep(1.0)
        assert batcher.queue_depth() == 3
        await batcher.aclose()
        outcomes = await waiting

        assert {o.result for o in outcomes} == {DeletionResult.ERROR}
        assert all(o.error is not None and "closed" in str(o.error) for o in outcomes)
        assert fake.calls == []
        assert batcher.queue_depth() == 0

    @virtual_time
    async def test_aclose_interrupts_calls_in_flight_and_their_waiters_get_an_error(self) -> None:
        fake = FakeCloud(latency=30.0)
        ids = fake.add_running(2)
        batcher = make_batcher(fake, window=0.5)

        waiting = asyncio.gather(*(batcher.submit(i, force_delete=False) for i in ids))
        await asyncio.sleep(1.0)
        await batcher.aclose()
        outcomes = await waiting

        assert len(fake.calls_of("delete_many")) == 1
        assert {o.result for o in outcomes} == {DeletionResult.ERROR}
        assert all(o.error is not None and "outcome unknown" in str(o.error) for o in outcomes)
        assert {(o.batch_size, o.submitted_at) for o in outcomes} == {(2, EPOCH + 0.5)}
        assert outcomes[0].batch_id == outcomes[1].batch_id != ""
        assert asyncio.get_running_loop().time() == pytest.approx(1.0)

    @virtual_time
    async def test_submitting_after_aclose_is_an_immediate_error(self) -> None:
        fake = FakeCloud()
        batcher = make_batcher(fake)
        await batcher.aclose()

        outcome = await batcher.submit("i-1", force_delete=False)

        assert outcome.result == DeletionResult.ERROR
        assert fake.calls == []

    @virtual_time
    async def test_a_cancelled_submitter_does_not_withdraw_the_id_its_twin_waits_for(self) -> None:
        fake = FakeCloud()
        [a] = fake.add_running(1)
        batcher = make_batcher(fake)

        impatient = asyncio.create_task(batcher.submit(a, force_delete=False))
        patient = asyncio.create_task(batcher.submit(a, force_delete=False))
        await asyncio.sleep(0.1)
        impatient.cancel()
        outcome = await patient

        assert impatient.cancelled()
        assert outcome.result == DeletionResult.ACCEPTED
        assert sizes(fake) == [1]


class TestMetricsAndMessages:
    @virtual_time
    async def test_batch_sizes_results_and_queue_depth_are_recorded(self) -> None:
        metrics = Metrics()
        fake = FakeCloud()
        ids = fake.add_running(3)
        fake.failed_ids = {ids[0]}
        batcher = make_batcher(fake, metrics=metrics)

        waiting = asyncio.gather(*(batcher.submit(i, force_delete=False) for i in ids))
        await asyncio.sleep(0.1)
        depth_while_pending = metrics.registry.get_sample_value("rocketmq_operator_delete_queue_depth")
        await waiting

        def sample(name: str, **labels: str) -> float | None:
            return metrics.registry.get_sample_value(name, labels)

        assert depth_while_pending == 3
        assert sample("rocketmq_operator_delete_queue_depth") == 0
        assert sample("rocketmq_operator_delete_batch_size_count", trigger="delete") == 1
        assert sample("rocketmq_operator_delete_batch_size_sum", trigger="delete") == 3
        assert sample("rocketmq_operator_delete_batch_results_total", result=DeletionResult.ACCEPTED) == 2
        assert sample("rocketmq_operator_delete_batch_results_total", result=DeletionResult.FAILED) == 1

    @virtual_time
    async def test_one_info_line_per_call_names_the_batch_and_its_counts(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        fake = FakeCloud()
        ids = fake.add_running(3)
        fake.failed_ids = {ids[0]}
        batcher = make_batcher(fake)

        with caplog.at_level(logging.INFO, logger=batching.__name__):
            outcomes = await submit_all(batcher, ids)

        [record] = caplog.records
        assert record.levelno == logging.INFO
        assert outcomes[0].batch_id in record.getMessage()
        assert "3 instances" in record.getMessage()
        assert "2 accepted, 1 failed" in record.getMessage()

    @pytest.mark.parametrize(
        ("result", "error", "expected"),
        [
            (DeletionResult.ACCEPTED, None, "accepted in batch b-1a2b (50 instances)"),
            (DeletionResult.FAILED, None, "failed in batch b-1a2b (50 instances)"),
            (DeletionResult.NO_RESULT, None, "no result for this instance in batch b-1a2b (50 instances)"),
            (DeletionResult.NOT_FOUND, errors.NotFound("gone", status=404), "not found in batch b-1a2b"),
            (DeletionResult.ERROR, errors.Throttled("slow down", code="APIGW.0308"), "HTTP 429 APIGW.0308: slow down"),
        ],
    )
    def test_the_message_says_what_happened_in_which_batch(
        self, result: str, error: errors.CloudError | None, expected: str
    ) -> None:
        outcome = batching.DeleteOutcome("i-1", result, "b-1a2b", 50, EPOCH, error=error)

        assert expected in outcome.message

    def test_an_error_before_any_call_says_so(self) -> None:
        closed = errors.CloudError("the deletion batcher is closed")
        outcome = batching.DeleteOutcome("i-1", DeletionResult.ERROR, "", 0, EPOCH, error=closed)

        assert outcome.message == "error in no batch call: the deletion batcher is closed"
