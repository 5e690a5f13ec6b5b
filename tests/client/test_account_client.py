"""What an account's client does when its account changes: new credentials or trust (``DmsClient.rotate``),
a new rate (``TokenBucket.retune``), a CA bundle given as PEM text (``tls_verification(ca_data=...)``).

Credentials are checked against the real simulator over real HTTP: its call log says which account
the cloud verified (``principal``), not merely which key a request claimed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from client_kit import AK, PID, SK, FakeClock

import dms_simulator
from rocketmq_operator.adapters import dms_client, signing
from rocketmq_operator.adapters.ratelimit import TokenBucket
from rocketmq_operator.adapters.retrying import RetryPolicy
from rocketmq_operator.core import cloud
from rocketmq_operator.ports import errors
from rocketmq_operator.ports.protocol import Account

AK2 = "HPUAOTHERACCOUNT0002"
SK2 = "OtherSecretKey0123456789abcdefghijKLMNOP"
FAST = dms_simulator.SimulatorConfig(
    create_seconds=0.0, delete_seconds=0.0, extend_seconds=0.0, restart_seconds=0.0, seed=7
)
QUICK_RETRY = RetryPolicy(max_attempts=3, deadline=30.0, base_delay=0.01, max_delay=0.05)


class Sim:
    def __init__(self, server: dms_simulator.SimulatorServer, admin: httpx.AsyncClient) -> None:
        self.server = server
        self.admin = admin

    async def put_account(self, access_key: str, secret_key: str) -> None:
        response = await self.admin.put(
            f"/_sim/accounts/{access_key}", json={"secretKey": secret_key, "projectIds": [PID]}
        )
        assert response.status_code in (200, 201), response.text

    async def calls(self) -> list[dict[str, Any]]:
        response = await self.admin.get("/_sim/calls")
        assert response.status_code == 200, response.text
        calls: list[dict[str, Any]] = response.json()["calls"]
        return [c for c in calls if c["operation"] == "list"]

    def http(self, access_key: str, secret_key: str) -> httpx.AsyncClient:
        return dms_client.build_http(
            endpoint=self.server.url,
            project_id=PID,
            credentials=signing.AkSkCredentials(access_key, secret_key),
        )

    def client(self) -> dms_client.DmsClient:
        return dms_client.build_client(
            endpoint=self.server.url,
            project_id=PID,
            credentials=signing.AkSkCredentials(AK, SK),
            retry=QUICK_RETRY,
            rate=None,
        )


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    server = dms_simulator.SimulatorServer(
        dms_simulator.SimulatorConfig(**FAST.to_json()), accounts=[dms_simulator.Account(AK, SK, frozenset({PID}))]
    )
    async with server, httpx.AsyncClient(base_url=server.url) as admin:
        sim = Sim(server, admin)
        await sim.put_account(AK2, SK2)
        yield sim


async def list_once(client: dms_client.DmsClient) -> cloud.ListInstancesResponse:
    return await client.list_instances(cloud.ListQuery(limit=1))


class TestRotatingCredentials:
    async def test_calls_after_a_rotation_are_made_as_the_new_account(self, sim: Sim) -> None:
        async with sim.client() as client:
            await list_once(client)
            await client.rotate(sim.http(AK2, SK2))
            await list_once(client)
            await list_once(client)

        assert [c["principal"] for c in await sim.calls()] == [AK, AK2, AK2]

    async def test_a_refused_key_fails_auth_and_rotating_back_works_at_once(self, sim: Sim) -> None:
        async with sim.client() as client:
            await client.rotate(sim.http(AK2, "not-the-secret-key-of-AK2"))
            with pytest.raises(errors.AuthFailed):
                await list_once(client)
            with pytest.raises(errors.AuthFailed):
                await list_once(client)  # the credential gate: refused again without being sent
            refused = await sim.calls()

            await client.rotate(sim.http(AK2, SK2))
            page = await list_once(client)

        assert [(c["access_key"], c["principal"]) for c in refused] == [(AK2, None)]
        assert page.instance_num == 0
        calls = await sim.calls()
        assert [c["principal"] for c in calls[len(refused) :]] == [AK2]

    async def test_a_key_the_cloud_no_longer_knows_is_refused_after_rotating_to_it(self, sim: Sim) -> None:
        async with sim.client() as client:
            await client.rotate(sim.http("HPUANOSUCHACCOUNT003", SK))
            with pytest.raises(errors.AuthFailed):
                await list_once(client)

        [call] = await sim.calls()
        assert call["principal"] is None


class Held:
    """An httpx transport whose first request waits until released; every request is kept."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) == 1:
            self.entered.set()
            await self.release.wait()
        return httpx.Response(200, json={"instances": [], "instance_num": 0}, headers={"X-Served-By": self.name})


def http_over(transport: Held, access_key: str = AK, secret_key: str = SK) -> httpx.AsyncClient:
    return dms_client.build_http(
        endpoint="https://dms.test",
        project_id=PID,
        credentials=signing.AkSkCredentials(access_key, secret_key),
        transport=httpx.MockTransport(transport),
    )


def closed(http: httpx.AsyncClient) -> bool:
    """Read afresh each time (mypy would narrow the property across asserts)."""
    return http.is_closed


def client_over(http: httpx.AsyncClient, **options: Any) -> dms_client.DmsClient:
    return dms_client.DmsClient(http, account=Account(endpoint="https://dms.test", project_id=PID), **options)


class TestARequestInFlightDuringARotation:
    async def test_completes_and_the_old_client_closes_only_after_it(self) -> None:
        before, after = Held("before"), Held("after")
        after.release.set()
        old, new = http_over(before), http_over(after, AK2, SK2)
        async with client_over(old) as client:
            in_flight = asyncio.create_task(list_once(client))
            await before.entered.wait()

            await client.rotate(new)
            assert not closed(old), "closed under a request still waiting for its answer"
            await list_once(client)  # new calls take the new side at once
            assert not closed(old)

            before.release.set()
            page = await in_flight
            assert closed(old)
            assert not closed(new)

        assert page.instance_num == 0
        assert len(before.requests) == 1
        assert len(after.requests) == 1
        assert f"Access={AK2}" in after.requests[0].headers["Authorization"]
        assert closed(new)  # the client closes what it speaks through now

    async def test_an_idle_old_client_is_closed_at_once(self) -> None:
        first, second = Held("first"), Held("second")
        first.release.set()
        old, new = http_over(first), http_over(second)
        async with client_over(old) as client:
            await list_once(client)

            await client.rotate(new)

            assert closed(old)
            assert not closed(new)

    async def test_an_old_client_it_was_lent_is_not_closed(self) -> None:
        lent, second = Held("lent"), Held("second")
        second.release.set()
        old, new = http_over(lent), http_over(second)
        try:
            async with client_over(old, owns_http=False) as client:
                await client.rotate(new)
                await list_once(client)
            assert not closed(old)
            assert closed(new)
        finally:
            await old.aclose()


class TestRetuningTheBucket:
    async def test_a_higher_rate_paces_the_next_requests_faster(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(1.0, 1, clock=clock, sleep=clock.sleep)
        await bucket.acquire()
        await bucket.acquire()
        assert clock.sleeps == [pytest.approx(1.0)]

        bucket.retune(10.0, 1)
        await bucket.acquire()
        await bucket.acquire()

        assert clock.sleeps[1:] == [pytest.approx(0.1), pytest.approx(0.1)]
        assert (bucket.rate, bucket.burst) == (10.0, 1)

    async def test_a_lower_rate_paces_them_slower(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(10.0, 1, clock=clock, sleep=clock.sleep)
        await bucket.acquire()

        bucket.retune(0.5, 1)
        await bucket.acquire()

        assert clock.sleeps == [pytest.approx(2.0)]

    async def test_a_smaller_burst_caps_the_tokens_already_saved(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(1.0, 10, clock=clock, sleep=clock.sleep)

        bucket.retune(1.0, 2)
        for _ in range(3):
            await bucket.acquire()

        assert clock.sleeps == [pytest.approx(1.0)]

    async def test_a_larger_burst_lets_more_through_once_saved_up(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(1.0, 1, clock=clock, sleep=clock.sleep)
        await bucket.acquire()

        bucket.retune(1.0, 3)
        clock.now += 60  # a quiet minute
        for _ in range(3):
            await bucket.acquire()

        assert clock.sleeps == []

    @pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
    def test_refuses_a_rate_or_burst_that_could_never_pass(self, rate: float, burst: int) -> None:
        bucket = TokenBucket(1.0, 1)

        with pytest.raises(ValueError, match="rate must be positive and burst at least 1"):
            bucket.retune(rate, burst)
        assert (bucket.rate, bucket.burst) == (1.0, 1)


class TestACaBundleAsPemText:
    @pytest.mark.parametrize(
        "pem",
        [
            "not a certificate",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ],
    )
    def test_that_holds_no_certificate_is_refused_clearly(self, pem: str) -> None:
        with pytest.raises(ValueError, match="the CA bundle holds no PEM certificate this process can read"):
            dms_client.tls_verification(ca_data=pem)

    @pytest.mark.parametrize("pem", ["", " \n"])
    def test_that_is_empty_is_refused_rather_than_trusting_the_public_roots(self, pem: str) -> None:
        with pytest.raises(ValueError, match="the CA bundle is empty"):
            dms_client.tls_verification(ca_data=pem)

    def test_cannot_come_with_a_ca_file_too_or_without_verification(self) -> None:
        with pytest.raises(ValueError, match="not both"):
            dms_client.tls_verification(ca_data="x", ca_file="/dev/null")
        with pytest.raises(ValueError, match="verify=False"):
            dms_client.tls_verification(ca_data="x", verify=False)

    async def test_the_simulators_ca_as_text_verifies_its_certificate(self) -> None:
        server = dms_simulator.SimulatorServer(
            dms_simulator.SimulatorConfig(**FAST.to_json()),
            accounts=[dms_simulator.Account(AK, SK, frozenset({PID}))],
            use_tls=True,
        )
        async with server:
            assert server.tls is not None
            ca_pem = server.tls.ca_pem.decode()
            async with dms_client.build_client(
                endpoint=server.url, project_id=PID, credentials=signing.AkSkCredentials(AK, SK), ca_data=ca_pem
            ) as client:
                page = await list_once(client)
            async with dms_client.build_client(
                endpoint=server.url, project_id=PID, credentials=signing.AkSkCredentials(AK, SK), retry=QUICK_RETRY
            ) as untrusting:
                with pytest.raises(errors.TransportError, match="TLS certificate verification failed"):
                    await list_once(untrusting)

        assert page.instance_num == 0

    async def test_rotating_to_the_right_ca_makes_a_refused_endpoint_work(self) -> None:
        server = dms_simulator.SimulatorServer(
            dms_simulator.SimulatorConfig(**FAST.to_json()),
            accounts=[dms_simulator.Account(AK, SK, frozenset({PID}))],
            use_tls=True,
        )
        async with server:
            assert server.tls is not None
            async with dms_client.build_client(
                endpoint=server.url, project_id=PID, credentials=signing.AkSkCredentials(AK, SK), retry=QUICK_RETRY
            ) as client:
                with pytest.raises(errors.TransportError):
                    await list_once(client)
                trusted = dms_client.tls_verification(ca_data=server.tls.ca_pem.decode())
                await client.rotate(
                    dms_client.build_http(
                        endpoint=server.url, project_id=PID, credentials=signing.AkSkCredentials(AK, SK), tls=trusted
                    )
                )
                page = await list_once(client)

        assert page.instance_num == 0
