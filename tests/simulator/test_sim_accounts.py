"""Many accounts: each AK/SK account (or token) may carry its own rate limit, accounts are given on the
command line or added, replaced and removed through ``/_sim/accounts`` while serving, the listing never
shows a secret, and the call log says which account called which project."""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sim_kit
from sim_kit import AK, AK2, PID, PID2, SK, SK2, TOKEN, Api, error_of

from devstack.simulator_process import DEFAULT_ACCESS_KEY, DEFAULT_PROJECT_ID, SimulatorProcess
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


@pytest.fixture
def process() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=30)


def test_the_command_starts_with_per_account_limits_and_refuses_a_bad_one(
    process: list[subprocess.Popen[str]],
) -> None:
    proc = subprocess.Popen(
        [str(SCRIPT), "--account", f"{AK}:{SK}:{PID}:1:1", "--account", f"{AK2}:{SK2}:{PID2}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.append(proc)
    assert proc.stdout is not None
    assert select.select([proc.stdout], [], [], STARTUP_SECONDS)[0], "the simulator printed nothing in time"
    url = proc.stdout.readline().removeprefix("listening on ").strip()
    listed = httpx.get(url + "/_sim/accounts").json()["accounts"]
    assert [(a["accessKey"], a["rateLimitRps"], a["rateLimitBurst"]) for a in listed] == [
        (AK, 1.0, 1),
        (AK2, None, None),
    ]
    refused = subprocess.run(
        [str(SCRIPT), "--account", f"{AK}:{SK}:{PID}:-1"], capture_output=True, text=True, timeout=STARTUP_SECONDS
    )
    assert refused.returncode == 2
    assert "dms-simulator: error: account 'SIMAK0000000000000001': the rate limit must be > 0" in refused.stderr


# --- accounts through the admin API ---


async def test_the_listing_shows_accounts_and_tokens_but_never_a_secret(api: Api) -> None:
    response = await api.admin("GET", "/accounts")
    assert response.status_code == 200
    assert response.json() == {
        "accounts": [
            {"accessKey": AK, "projectIds": [PID], "rateLimitRps": None, "rateLimitBurst": None},
            {"accessKey": AK2, "projectIds": [PID2], "rateLimitRps": None, "rateLimitBurst": None},
        ],
        "tokens": [
            {"identity": f"token:{TOKEN[:8]}", "projectIds": [PID], "rateLimitRps": None, "rateLimitBurst": None}
        ],
    }
    for secret in (SK, SK2, TOKEN):
        assert secret not in response.text


async def test_an_added_account_signs_for_its_projects_only(api: Api) -> None:
    added = await api.admin("PUT", f"/accounts/{AK3}", {"secretKey": SK3, "projectIds": [PID3, PID2]})
    assert added.status_code == 201
    assert added.json() == {
        "accessKey": AK3,
        "projectIds": sorted([PID3, PID2]),
        "rateLimitRps": None,
        "rateLimitBurst": None,
    }
    assert SK3 not in added.text
    assert (await api.list_instances(PID3)).status_code == 401  # AK is not bound to PID3
    assert await statuses(api, 1, PID3, account=(AK3, SK3)) == [200]
    assert await statuses(api, 1, PID2, account=(AK3, SK3)) == [200]
    assert error_of(await api.call("GET", list_path(PID), account=(AK3, SK3))) == (401, "DMS.10240104")


async def test_replacing_the_secret_key_refuses_the_old_signature(api: Api) -> None:
    replaced = await api.admin("PUT", f"/accounts/{AK2}", {"secretKey": "rotated-secret", "projectIds": [PID2]})
    assert replaced.status_code == 200
    old = await api.call("GET", list_path(PID2), account=(AK2, SK2))
    assert error_of(old) == (401, "APIGW.0301")
    assert "signature does not match" in old.json()["error_msg"]
    assert await statuses(api, 1, PID2, account=(AK2, "rotated-secret")) == [200]


async def test_a_deleted_account_is_refused_as_an_unknown_access_key(api: Api) -> None:
    assert (await api.admin("DELETE", f"/accounts/{AK2}")).json() == {"ok": True}
    refused = await api.call("GET", list_path(PID2), account=(AK2, SK2))
    assert error_of(refused) == (401, "APIGW.0301")
    assert f"the access key {AK2} does not exist" in refused.json()["error_msg"]
    listed = (await api.admin("GET", "/accounts")).json()["accounts"]
    assert [a["accessKey"] for a in listed] == [AK]
    again = await api.admin("DELETE", f"/accounts/{AK2}")
    assert error_of(again) == (404, "SIM.0404")


async def test_an_account_put_with_a_rate_limit_is_throttled_from_a_full_bucket(manual_api: Api) -> None:
    assert await statuses(manual_api, 5, PID2, account=(AK2, SK2)) == [200] * 5
    limit = {"secretKey": SK2, "projectIds": [PID2], "rateLimitRps": 2, "rateLimitBurst": 3}
    answer = (await manual_api.admin("PUT", f"/accounts/{AK2}", limit)).json()
    assert (answer["rateLimitRps"], answer["rateLimitBurst"]) == (2.0, 3)
    assert await statuses(manual_api, 4, PID2, account=(AK2, SK2)) == [200, 200, 200, 429]
    assert await statuses(manual_api, 10, PID) == [200] * 10
    # Burst left out: the rate rounded up, and the listing says so.
    await manual_api.admin("PUT", f"/accounts/{AK2}", {"secretKey": SK2, "projectIds": [PID2], "rateLimitRps": 1.5})
    listed = (await manual_api.admin("GET", "/accounts")).json()["accounts"]
    assert listed[1] == {"accessKey": AK2, "projectIds": [PID2], "rateLimitRps": 1.5, "rateLimitBurst": 2}
    assert await statuses(manual_api, 3, PID2, account=(AK2, SK2)) == [200, 200, 429]
    # Put again, same policy: a replaced account is a new one, with a full bucket.
    await manual_api.admin("PUT", f"/accounts/{AK2}", {"secretKey": SK2, "projectIds": [PID2], "rateLimitRps": 1.5})
    assert await statuses(manual_api, 3, PID2, account=(AK2, SK2)) == [200, 200, 429]


@pytest.mark.parametrize(
    ("access_key", "body", "message"),
    [
        (AK3, {"projectIds": [PID3]}, "secretKey (a non-empty string) is required"),
        (AK3, {"secretKey": "", "projectIds": [PID3]}, "secretKey (a non-empty string) is required"),
        (AK3, {"secretKey": SK3}, "projectIds (a non-empty list of non-empty strings) is required"),
        (AK3, {"secretKey": SK3, "projectIds": []}, "projectIds (a non-empty list"),
        (AK3, {"secretKey": SK3, "projectIds": PID3}, "projectIds (a non-empty list"),
        (AK3, {"secretKey": SK3, "projectIds": [PID3], "rateLimitRps": 0}, "must be > 0"),
        (AK3, {"secretKey": SK3, "projectIds": [PID3], "rateLimitRps": "5"}, "must be a number"),
        (AK3, {"secretKey": SK3, "projectIds": [PID3], "rateLimitRps": 1, "rateLimitBurst": 0.5}, "burst must be"),
        (AK3, {"secretKey": SK3, "projectIds": [PID3], "rateLimitBurst": 2}, "rateLimitBurst needs rateLimitRps"),
        (AK3, {"secretKey": SK3, "projectIds": [PID3], "secret_key": SK3}, "unknown account key(s): secret_key"),
        ("has:colon", {"secretKey": SK3, "projectIds": [PID3]}, "without ':' or spaces"),
    ],
)
async def test_a_bad_account_is_refused_with_400_and_changes_nothing(
    api: Api, access_key: str, body: dict[str, object], message: str
) -> None:
    before = (await api.admin("GET", "/accounts")).json()
    response = await api.admin("PUT", f"/accounts/{access_key}", body)
    assert error_of(response) == (400, "SIM.0400")
    assert message in response.json()["error_msg"]
    assert (await api.admin("GET", "/accounts")).json() == before


async def test_a_body_that_is_not_an_object_is_refused(api: Api) -> None:
    response = await api.http.put(f"{api.base_url}/_sim/accounts/{AK3}", content=b"[1]")
    assert error_of(response) == (400, "SIM.0400")


async def test_reset_keeps_the_accounts_as_they_are_now_like_the_config(api: Api) -> None:
    await api.admin("PUT", f"/accounts/{AK3}", {"secretKey": SK3, "projectIds": [PID3]})
    await api.admin("DELETE", f"/accounts/{AK2}")
    assert (await api.admin("POST", "/reset")).status_code == 200
    listed = (await api.admin("GET", "/accounts")).json()["accounts"]
    assert [a["accessKey"] for a in listed] == [AK, AK3]
    assert await statuses(api, 1, PID3, account=(AK3, SK3)) == [200]


async def test_the_local_stacks_process_and_admin_client_manage_accounts(tmp_path: Path) -> None:
    process = SimulatorProcess(log_path=tmp_path / "sim.log", accounts=[f"{AK3}:{SK3}:{PID3}:2:3"])
    process.start(STARTUP_SECONDS)
    try:
        admin = process.admin
        listed = admin.accounts()
        assert [(a["accessKey"], a["projectIds"], a["rateLimitRps"]) for a in listed["accounts"]] == [
            (DEFAULT_ACCESS_KEY, [DEFAULT_PROJECT_ID], None),  # the default account exactly as before
            (AK3, [PID3], 2.0),
        ]
        assert process.secret_key not in str(listed) and SK3 not in str(listed)
        put = admin.put_account(AK2, SK2, [PID2], rate_limit_rps=1, rate_limit_burst=4)
        assert put == {"accessKey": AK2, "projectIds": [PID2], "rateLimitRps": 1.0, "rateLimitBurst": 4}
        async with httpx.AsyncClient(timeout=10.0) as http:
            api = Api(http, process.url)
            assert await statuses(api, 5, PID2, account=(AK2, SK2)) == [200] * 4 + [429]
            admin.delete_account(AK2)
            assert error_of(await api.call("GET", list_path(PID2), account=(AK2, SK2))) == (401, "APIGW.0301")
        with pytest.raises(httpx.HTTPStatusError, match="404"):
            admin.delete_account(AK2)
    finally:
        process.stop()


# --- the call log names the caller ---


async def test_each_call_record_names_its_account_and_project_and_no_secret(api: Api) -> None:
    await api.admin("PUT", f"/accounts/{AK3}", {"secretKey": SK3, "projectIds": [PID3]})
    await api.batch({"action": "delete", "instances": ["no-such-id"]})
    await api.batch({"action": "delete", "instances": ["no-such-id"]}, project=PID2)  # AK is not bound to PID2
    await api.call(
        "POST", f"/v2/{PID2}/instances/action", json_body={"action": "delete", "instances": ["x"]}, account=(AK2, SK2)
    )
    await api.call(
        "POST", f"/v2/{PID3}/instances/action", json_body={"action": "delete", "instances": ["y"]}, account=(AK3, SK3)
    )
    await api.call("GET", list_path(PID), token=TOKEN)
    await api.call("GET", list_path(PID3), account=(AK3, "not-the-secret"))
    calls = await api.calls()
    assert (
        [(c["operation"], c["access_key"], c["principal"], c["project_id"], c["status"]) for c in calls]
        == [
            ("batch_action", AK, AK, PID, 200),
            ("batch_action", AK, AK, PID2, 401),  # signed by AK, refused for the project
            ("batch_action", AK2, AK2, PID2, 200),
            ("batch_action", AK3, AK3, PID3, 200),
            ("list", f"token:{TOKEN[:8]}", f"token:{TOKEN[:8]}", PID, 200),
            ("list", AK3, None, PID3, 401),  # claimed AK3, but the signature is not AK3's
        ]
    )
    text = str(calls)
    for secret in (SK, SK2, SK3, TOKEN):
        assert secret not in text
