"""Per-access-key throttling answered as Huawei's gateway answers it: 429 APIGW.0308 with the request
id in the body and a Retry-After header; off unless configured."""

from __future__ import annotations

from sim_kit import AK2, PID, PID2, SK2, TOKEN, Api, error_of

from dms_simulator import ManualClock
from dms_simulator.ratelimit import RateLimiter


async def test_throttling_is_off_by_default(manual_api: Api) -> None:
    for _ in range(30):
        assert (await manual_api.list_instances()).status_code == 200


async def test_the_call_over_the_burst_is_429_apigw_0308_with_retry_after(manual_api: Api, clock: ManualClock) -> None:
    await manual_api.configure(rate_limit_rps=2, rate_limit_burst=2)
    assert (await manual_api.list_instances()).status_code == 200
    assert (await manual_api.list_instances()).status_code == 200
    throttled = await manual_api.list_instances()
    assert error_of(throttled) == (429, "APIGW.0308")
    assert throttled.headers["Retry-After"] == "1"
    body = throttled.json()
    assert body["error_msg"] == (
        "The throttling threshold has been reached: policy user over ratelimit,limit:2,time:1 second"
    )
    assert body["request_id"] == throttled.headers["X-Request-Id"]
    # Tokens come back at the configured rate.
    clock.advance(0.5)
    assert (await manual_api.list_instances()).status_code == 200
    assert (await manual_api.list_instances()).status_code == 429


async def test_each_access_key_and_token_has_its_own_bucket(manual_api: Api) -> None:
    await manual_api.configure(rate_limit_rps=1, rate_limit_burst=1)
    assert (await manual_api.list_instances()).status_code == 200
    assert (await manual_api.list_instances()).status_code == 429
    other = await manual_api.call("GET", f"/v2/{PID2}/instances?engine=reliability", account=(AK2, SK2))
    assert other.status_code == 200
    with_token = await manual_api.call("GET", f"/v2/{PID}/instances?engine=reliability", token=TOKEN)
    assert with_token.status_code == 200


async def test_throttled_calls_are_logged_and_changing_the_policy_refills(manual_api: Api) -> None:
    await manual_api.configure(rate_limit_rps=1, rate_limit_burst=1)
    await manual_api.list_instances()
    await manual_api.list_instances()
    calls = await manual_api.calls()
    assert [(c["status"], c["error_code"]) for c in calls] == [(200, None), (429, "APIGW.0308")]
    await manual_api.configure(rate_limit_rps=5)
    assert (await manual_api.list_instances()).status_code == 200
    await manual_api.configure(rate_limit_rps=None)
    for _ in range(10):
        assert (await manual_api.list_instances()).status_code == 200


def test_the_bucket_refills_continuously_up_to_its_burst() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    limiter.configure(4.0, 2)
    assert limiter.acquire("k") is None
    assert limiter.acquire("k") is None
    assert limiter.acquire("k") == 0.25
    clock.advance(10)  # long idle: refills only to the burst
    assert limiter.acquire("k") is None
    assert limiter.acquire("k") is None
    assert limiter.acquire("k") is not None
    assert limiter.acquire("other") is None
