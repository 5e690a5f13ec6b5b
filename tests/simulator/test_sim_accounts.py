"""Many accounts: each AK/SK account (or token) may carry its own rate limit, given on the command line."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sim_kit
from sim_kit import AK, AK2, PID, PID2, SK, SK2, TOKEN, Api, error_of

from dms_simulator import Account, ManualClock, SimulatorServer, TokenGrant
from dms_simulator.cli import accounts_from, build_parser
from dms_simulator.ratelimit import RateLimit

AK3 = "SIMAK0000000000000003"
SK3 = "sim-secret-key-0000000000000000000000003"
PID3 = "2a1b2c3d4e5f60718293a4b5c6d7e8f9"
SCRIPT = Path(sys.executable).parent / "dms-simulator"
STARTUP_SECONDS = 60.0


def list_path(project: str) -> str:
    return f"/v2/{project}/instances?engine=reliability"


async def statuses(
    api: Api, times: int, project: str, *, account: tuple[str, str] = (AK, SK), token: str | None = None
) -> list[int]:
    """Status codes of ``times`` list calls in a row."""
    return [(await api.call("GET", list_path(project), account=account, token=token)).status_code for _ in range(times)]


@pytest.fixture
async def limited_api(clock: ManualClock, http: httpx.AsyncClient) -> AsyncIterator[Api]:
    """AK limited to 1 call/s (burst 2), AK2 with no limit of its own, the token limited to 3/s."""
    accounts = [Account(AK, SK, frozenset({PID}), RateLimit(1, 2)), Account(AK2, SK2, frozenset({PID2}))]
    tokens = [TokenGrant(TOKEN, frozenset({PID}), RateLimit(3))]
    async with SimulatorServer(sim_kit.fast_config(), accounts=accounts, tokens=tokens, clock=clock) as server:
        yield Api(http, server.url)


# --- each account its own rate limit ---


async def test_an_account_with_its_own_limit_is_throttled_while_another_is_not(limited_api: Api) -> None:
    assert await statuses(limited_api, 3, PID) == [200, 200, 429]
    assert await statuses(limited_api, 30, PID2, account=(AK2, SK2)) == [200] * 30


async def test_the_429_names_the_accounts_own_rate_and_tokens_come_back_at_that_rate(
    limited_api: Api, clock: ManualClock
) -> None:
    await statuses(limited_api, 2, PID)
    throttled = await limited_api.call("GET", list_path(PID))
    assert error_of(throttled) == (429, "APIGW.0308")
    assert throttled.json()["error_msg"].endswith("limit:1,time:1 second")
    assert throttled.headers["Retry-After"] == "1"
    clock.advance(1.0)  # one token at 1/s
    assert await statuses(limited_api, 2, PID) == [200, 429]


async def test_a_token_with_its_own_limit_has_a_bucket_apart_from_the_account(limited_api: Api) -> None:
    assert await statuses(limited_api, 3, PID) == [200, 200, 429]
    # Burst omitted: the rate rounded up, as for the global policy.
    assert await statuses(limited_api, 4, PID, token=TOKEN) == [200, 200, 200, 429]


async def test_an_accounts_own_limit_replaces_the_global_one_both_ways(limited_api: Api) -> None:
    await limited_api.configure(rate_limit_rps=10, rate_limit_burst=10)
    # AK keeps its stricter own policy; AK2, without one, now gets the global one.
    assert await statuses(limited_api, 3, PID) == [200, 200, 429]
    assert await statuses(limited_api, 11, PID2, account=(AK2, SK2)) == [200] * 10 + [429]


@pytest.mark.parametrize(
    ("rps", "burst", "message"),
    [(0, None, "> 0"), (-1.5, None, "> 0"), (True, None, "number"), (float("inf"), None, "> 0"), (2, 0, "burst")],
)
def test_a_rate_limit_must_be_a_positive_rate_and_burst(rps: float, burst: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimit(rps, burst)


# --- accounts and their limits on the command line ---


def parsed(*args: str) -> tuple[list[Account], list[TokenGrant]]:
    return accounts_from(build_parser().parse_args(list(args)))


def test_the_account_form_takes_an_optional_rate_and_burst_after_the_projects() -> None:
    accounts, _ = parsed(
        "--account",
        f"{AK}:{SK}:{PID}",
        "--account",
        f"{AK2}:{SK2}:{PID2},{PID3}:5",
        "--account",
        f"{AK3}:{SK3}:{PID3}:0.5:3",
    )
    assert accounts == [
        Account(AK, SK, frozenset({PID})),
        Account(AK2, SK2, frozenset({PID2, PID3}), RateLimit(5.0)),
        Account(AK3, SK3, frozenset({PID3}), RateLimit(0.5, 3)),
    ]


def test_the_token_form_takes_a_rate_and_burst_too_with_or_without_projects() -> None:
    _, tokens = parsed(
        "--account",
        f"{AK}:{SK}:{PID},{PID2}",
        "--token",
        "plain",
        "--token",
        "scoped:" + PID2 + ":2:4",
        "--token",
        "all::7",
    )
    assert tokens == [
        TokenGrant("plain", frozenset({PID, PID2})),
        TokenGrant("scoped", frozenset({PID2}), RateLimit(2.0, 4)),
        TokenGrant("all", frozenset({PID, PID2}), RateLimit(7.0)),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account", f"{AK}:{SK}:{PID}:"], "give RPS or RPS:BURST"),
        (["--account", f"{AK}:{SK}:{PID}::3"], "give RPS or RPS:BURST"),
        (["--account", f"{AK}:{SK}:{PID}:fast"], "must be a number"),
        (["--account", f"{AK}:{SK}:{PID}:0"], "must be > 0"),
        (["--account", f"{AK}:{SK}:{PID}:5:0"], "burst must be an integer >= 1"),
        (["--account", f"{AK}:{SK}:{PID}:5:1.5"], "burst must be an integer >= 1"),
        (["--account", f"{AK}:{SK}:{PID}:5:5:5"], "expected AK:SK:PROJECT_ID"),
        (["--account", f"{AK}:{SK}:{PID}", "--account", f"{AK}:{SK2}:{PID2}"], "given more than once"),
        (["--token", f"{TOKEN}:{PID}:nan-ish"], "must be a number"),
        (["--token", f"{TOKEN}:{PID}:1:2:3"], "give RPS or RPS:BURST"),
    ],
)
def test_a_bad_rate_limit_on_the_command_line_is_refused_with_the_reason(args: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parsed(*args)
