"""What proves a deleted instance gone, and when to look for that proof (pure rules, tables)."""

from __future__ import annotations

import pytest

from rocketmq_operator.core import cloud, evidence
from rocketmq_operator.core.evidence import Sighting

from .builders import view

T = 1_790_000_000.0


class TestWhatALookProves:
    @pytest.mark.parametrize(
        ("status", "sighting", "proof"),
        [
            (None, Sighting.GONE, True),  # show answered 404 DMS.00404022
            (cloud.RECYCLE, Sighting.RECYCLED, True),
            (cloud.DELETING, Sighting.DELETING, False),
            (cloud.RUNNING, Sighting.PRESENT, False),
            (cloud.ERROR, Sighting.PRESENT, False),
            (cloud.CREATEFAILED, Sighting.PRESENT, False),
            ("SOMETHING_NEW", Sighting.PRESENT, False),
        ],
    )
    def test_a_show_answer(self, status: str | None, sighting: Sighting, proof: bool) -> None:
        look = evidence.from_show(None if status is None else view(status=status), at=T)
        assert (look.sighting, look.proves_gone, look.observed_at) == (sighting, proof, T)

    @pytest.mark.parametrize("sighting", [Sighting.UNLISTED, Sighting.UNKNOWN, Sighting.DELETING, Sighting.PRESENT])
    def test_nothing_but_404_and_the_recycle_bin_is_proof(self, sighting: Sighting) -> None:
        assert not evidence.Look(sighting, T).proves_gone

    def test_an_unknown_look_keeps_the_reason_and_a_throttle_delay(self) -> None:
        look = evidence.unknown("Throttled", "429", retry_after=3.0)
        assert (look.sighting, look.error_reason, look.retry_after, look.proves_gone) == (
            Sighting.UNKNOWN,
            "Throttled",
            3.0,
            False,
        )


class TestAFailureAfterAcceptance:
    @pytest.mark.parametrize(
        ("status", "seconds_after", "failed"),
        [
            (cloud.ERROR, 10.0, True),
            (cloud.RUNNING, 10.0, True),
            (cloud.RUNNING, evidence.SETTLE_SECONDS, True),
            (cloud.RUNNING, 1.0, False),  # may have been answered before the cloud switched it
            (cloud.RUNNING, -5.0, False),  # a look from before the acceptance
            (cloud.CREATING, 10.0, False),  # cannot go back to CREATING: the look is stale
            (cloud.DELETING, 10.0, False),
            (cloud.RECYCLE, 10.0, False),
            (None, 10.0, False),
        ],
    )
    def test_is_an_instance_alive_again_after_the_cloud_settled(
        self, status: str | None, seconds_after: float, failed: bool
    ) -> None:
        look = evidence.from_show(None if status is None else view(status=status), at=T + seconds_after)
        assert evidence.failed_after_acceptance(look, accepted_at=T) is failed

    def test_nothing_seen_is_no_failure(self) -> None:
        assert not evidence.failed_after_acceptance(evidence.unknown("CloudUnreachable"), accepted_at=T)


class TestWhenToLookAgain:
    @pytest.mark.parametrize(
        ("elapsed", "gap"),
        [(0.0, 2.0), (4.0, 2.0), (8.0, 2.0), (20.0, 5.0), (100.0, 25.0), (120.0, 30.0), (3600.0, 30.0)],
    )
    def test_a_quarter_of_the_time_elapsed_within_bounds(self, elapsed: float, gap: float) -> None:
        assert evidence.next_gap(elapsed, least=2.0, most=30.0) == gap


class TestLearningHowLongDeletionsTake:
    def test_before_any_sample_the_initial_guess_holds(self) -> None:
        estimate = evidence.DurationEstimate(initial=2.0)
        assert (estimate.seconds, estimate.samples) == (2.0, 0)

    def test_a_bracketed_sample_is_the_middle_of_the_bracket(self) -> None:
        estimate = evidence.DurationEstimate(initial=2.0)
        estimate.record(elapsed=12.0, last_still_deleting=8.0)
        assert estimate.seconds == 10.0

    def test_gone_at_the_first_look_counts_a_little_less_so_a_long_estimate_shrinks(self) -> None:
        estimate = evidence.DurationEstimate(initial=2.0)
        for _ in range(5):
            estimate.record(elapsed=estimate.seconds if estimate.samples else 20.0, last_still_deleting=None)
        assert estimate.seconds < 20.0 * 0.9**2

    def test_gone_at_a_late_first_look_counts_from_when_the_look_was_due(self) -> None:
        estimate = evidence.DurationEstimate(initial=10.0)
        for _ in range(5):  # each look due when the estimate said, and out 5 s late
            estimate.record(elapsed=estimate.seconds + 5.0, last_still_deleting=None, due=estimate.seconds)
        assert estimate.seconds < 10.0

    def test_the_median_ignores_an_outlier_and_old_samples_age_out(self) -> None:
        estimate = evidence.DurationEstimate(initial=2.0, size=5)
        for elapsed in (10.0, 10.0, 300.0, 10.0):
            estimate.record(elapsed=elapsed + 1, last_still_deleting=elapsed - 1)
        assert estimate.seconds == 10.0
        for _ in range(5):
            estimate.record(elapsed=41.0, last_still_deleting=39.0)
        assert estimate.seconds == 40.0

    def test_nonsense_samples_are_ignored(self) -> None:
        estimate = evidence.DurationEstimate(initial=2.0)
        estimate.record(elapsed=-1.0, last_still_deleting=None)
        assert estimate.samples == 0
