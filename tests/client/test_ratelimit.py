"""The per-account token bucket: steady rate, bursts, FIFO waiting (a call serving many first), and the
shared 429 pause."""

from __future__ import annotations

import asyncio

import pytest
from client_kit import FakeClock

from rocketmq_operator.adapters.ratelimit import TokenBucket


def _bucket(clock: FakeClock, rate: float = 2.0, burst: int = 3) -> TokenBucket:
    return TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)


async def test_a_full_bucket_lets_a_burst_through_without_waiting() -> None:
    clock = FakeClock()
    bucket = _bucket(clock, burst=3)

    for _ in range(3):
        await bucket.acquire()

    assert clock.sleeps == []


async def test_beyond_the_burst_callers_are_spaced_at_the_rate() -> None:
    clock = FakeClock()
    bucket = _bucket(clock, rate=2.0, burst=3)
    times = []

    for _ in range(6):
        await bucket.acquire()
        times.append(clock.now - 1000.0)

    assert times == pytest.approx([0, 0, 0, 0.5, 1.0, 1.5])


async def test_a_quiet_period_refills_up_to_the_burst_and_no_more() -> None:
    clock = FakeClock()
    bucket = _bucket(clock, rate=2.0, burst=3)
    for _ in range(3):
        await bucket.acquire()

    clock.now += 60.0  # a long quiet time earns only `burst` tokens
    for _ in range(3):
        await bucket.acquire()
    assert clock.sleeps == []
    await bucket.acquire()
    assert clock.sleeps == [pytest.approx(0.5)]


async def test_concurrent_callers_are_served_in_arrival_order() -> None:
    clock = FakeClock()
    bucket = _bucket(clock, rate=1.0, burst=1)
    order: list[int] = []

    async def caller(n: int) -> None:
        await bucket.acquire()
        order.append(n)

    await asyncio.gather(*(caller(n) for n in range(5)))

    assert order == [0, 1, 2, 3, 4]
    assert clock.now - 1000.0 == pytest.approx(4.0)  # one per second after the first


async def test_a_caller_that_goes_first_is_served_before_the_callers_already_waiting() -> None:
    bucket = TokenBucket(20.0, 1)  # the loop's clock: the page arrives while show-1 sleeps 50 ms
    order: list[str] = []

    async def caller(name: str, *, first: bool = False) -> None:
        await bucket.acquire(first=first)
        order.append(name)

    waiting = [asyncio.create_task(caller(f"show-{n}")) for n in range(4)]
    await asyncio.sleep(0)
    await asyncio.gather(*waiting, caller("page", first=True))

    # show-0 had the token, show-1 was already asleep for the next one; the page went after it.
    assert order == ["show-0", "show-1", "page", "show-2", "show-3"]


async def test_pause_holds_every_caller_until_it_ends() -> None:
    clock = FakeClock()
    bucket = _bucket(clock, rate=10.0, burst=5)
    await bucket.acquire()

    bucket.pause(3.0)
    assert bucket.paused_until == pytest.approx(1003.0)
    await bucket.acquire()

    assert clock.now == pytest.approx(1003.0)


async def test_after_a_pause_traffic_resumes_with_one_call_not_a_stampede() -> None:
    clock = FakeClock()
    bucket = _bucket(clock, rate=2.0, burst=5)
    bucket.pause(10.0)

    await bucket.acquire()
    resumed = clock.now
    await bucket.acquire()

    assert resumed == pytest.approx(1010.0)
    assert clock.now - resumed == pytest.approx(0.5)  # the rest follow at the rate


async def test_a_shorter_pause_never_cuts_a_longer_one() -> None:
    clock = FakeClock()
    bucket = _bucket(clock)
    bucket.pause(5.0)
    bucket.pause(1.0)

    assert bucket.paused_until == pytest.approx(1005.0)


async def test_a_pause_during_a_wait_is_honoured_by_the_waiter() -> None:
    clock = FakeClock()

    async def sleep_then_pause(seconds: float) -> None:
        # Another caller's 429 arrives while this one waits for its token.
        await clock.sleep(seconds)
        if len(clock.sleeps) == 1:
            bucket.pause(4.0)

    bucket = TokenBucket(1.0, 1, clock=clock, sleep=sleep_then_pause)
    await bucket.acquire()  # a fresh bucket: immediate
    await bucket.acquire()  # waits 1 s for a token, meets the pause, waits it out

    assert clock.sleeps == [pytest.approx(1.0), pytest.approx(4.0)]
    assert clock.now == pytest.approx(1005.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_nonsense_settings_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate, burst)


async def test_defaults_to_the_running_loops_clock() -> None:
    bucket = TokenBucket(1000.0, 1)
    await bucket.acquire()
    bucket.pause(0.01)
    assert bucket.paused_until == pytest.approx(asyncio.get_running_loop().time() + 0.01, abs=0.005)
    await bucket.acquire()
    assert asyncio.get_running_loop().time() >= bucket.paused_until


# ---- a 429 slows the account down, not only pauses it ----------------------------------------


async def _send(bucket: TokenBucket, count: int) -> None:
    for _ in range(count):
        await bucket.acquire()


async def test_a_429_lowers_the_rate_to_half_of_what_was_really_sent() -> None:
    clock = FakeClock()
    bucket = _bucket(clock, rate=100.0, burst=10)
    await _send(bucket, 10)  # a burst: 10 calls at once, i.e. 5/s over the last two seconds

    bucket.throttled(1.0)

    assert bucket.paused_until == pytest.approx(1001.0)
    assert bucket.current_rate() == pytest.approx(2.5)  # half of the 5/s really sent
    await _send(bucket, 3)
    # one at the end of the pause, then about 2.5/s (a little faster as the rate starts to recover)
    assert clock.now - 1001.0 == pytest.approx(0.8, rel=0.05)


async def test_the_429s_of_one_episode_lower_the_rate_once() -> None:
    clock = FakeClock()
    bucket = _bucket(clock, rate=100.0, burst=20)
    await _send(bucket, 20)

    for _ in range(5):  # the answers to calls that were all sent at the same pace
        bucket.throttled(1.0)

    assert bucket.current_rate() == pytest.approx(5.0)


async def test_a_429_after_the_pause_ended_is_a_new_episode() -> None:
    clock = FakeClock()
    bucket = _bucket(clock, rate=100.0, burst=20)
    await _send(bucket, 20)
    bucket.throttled(1.0)
    await _send(bucket, 2)  # still too fast for the cloud

    bucket.throttled(1.0)

    assert bucket.current_rate() == pytest.approx(5.0 / 2, rel=0.05)


async def test_the_rate_doubles_back_to_the_one_that_drew_the_429_then_probes_slowly_beyond_it() -> None:
    clock = FakeClock()
    bucket = TokenBucket(8.0, 8, clock=clock, sleep=clock.sleep, recovery_seconds=10.0)
    await _send(bucket, 8)
    bucket.throttled(2.0)  # 8 sent in the window: 4/s drew the 429, halved to 2/s from t=1002
    assert bucket.current_rate() == pytest.approx(2.0)

    assert bucket.current_rate(1007.0) == pytest.approx(2.0 * 2**0.5)
    assert bucket.current_rate(1012.0) == pytest.approx(4.0)  # back at the ceiling after one period
    assert bucket.current_rate(1022.0) == pytest.approx(4.4)  # 10% above it after the next
    assert bucket.current_rate(1032.0) == pytest.approx(5.2)  # then the excess doubles: 30%
    assert bucket.current_rate(1042.0) == pytest.approx(6.8)  # 70%
    assert bucket.current_rate(1052.0) == pytest.approx(8.0)  # never above the configured rate
    assert bucket.current_rate(1100.0) == pytest.approx(8.0)


async def test_while_slowed_down_a_quiet_spell_saves_up_one_second_of_calls_not_a_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(20.0, 20, clock=clock, sleep=clock.sleep, recovery_seconds=10.0)
    await _send(bucket, 20)
    bucket.throttled(1.0)  # 20 sent: 10/s drew the 429, halved to 5/s from t=1001
    clock.now = 1003.0  # nothing to send for 2 s; the rate has recovered to 5 * 2**0.2 = 5.7/s

    at_once = 0
    for _ in range(12):
        await bucket.acquire()
        at_once += clock.now == 1003.0

    assert at_once == 5  # one second's worth at 5.7/s, not the 12 that the burst of 20 would let go


async def test_under_a_steady_limit_the_account_settles_below_it() -> None:
    # The gateway's own bucket: 4/s, 4 at once; the operator is configured for 20/s, 20 at once,
    # and always has work. Every call counts, the refused ones too.
    clock = FakeClock()
    bucket = TokenBucket(20.0, 20, clock=clock, sleep=clock.sleep, recovery_seconds=10.0)
    limit, gateway, stamp, start = 4.0, 4.0, clock.now, clock.now
    sent: list[float] = []
    while clock.now < start + 300.0:
        await bucket.acquire()
        gateway = min(limit, gateway + (clock.now - stamp) * limit)
        stamp = clock.now
        sent.append(clock.now)
        if gateway >= 1.0:
            gateway -= 1.0
        else:
            bucket.throttled(1.0)

    settled = len([t for t in sent if t >= start + 10.0]) / (clock.now - start - 10.0)
    # 3.52/s; doubling straight past the ceiling, as this bucket once did, averaged 3.67/s
    assert limit * 0.75 < settled < limit * 0.9


async def test_the_rate_never_goes_below_min_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, 1, clock=clock, sleep=clock.sleep, min_rate=0.5)
    for _ in range(6):
        await bucket.acquire()
        bucket.throttled(1.0)
        clock.now += 5.0

    assert bucket.current_rate(bucket.paused_until) == pytest.approx(0.5)


async def test_a_pause_alone_does_not_change_the_rate() -> None:
    clock = FakeClock()
    bucket = _bucket(clock, rate=2.0, burst=5)
    await _send(bucket, 5)

    bucket.pause(3.0)

    assert bucket.current_rate() == 2.0


async def test_the_bucket_says_it_is_slowed_down_until_the_rate_is_back() -> None:
    clock = FakeClock()
    bucket = TokenBucket(8.0, 8, clock=clock, sleep=clock.sleep, recovery_seconds=10.0)
    assert not bucket.slowed_down()
    await _send(bucket, 8)

    bucket.throttled(1.0)

    assert bucket.slowed_down()  # paused
    assert bucket.slowed_down(1011.0)  # back at the 4/s that drew the 429, of 8/s
    assert bucket.slowed_down(1031.0)  # probing past it: 5.2/s
    assert not bucket.slowed_down(1046.0)  # back to 8/s
