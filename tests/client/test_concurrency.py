"""Requests in flight: a thousand callers at once never queue inside httpx's pool, and a call that
serves many CRs (a list page, a batch) waits for no call that serves one."""

from __future__ import annotations

import asyncio
import json

import httpx
from client_kit import AK, ENDPOINT, IID1, PID, SK

from rocketmq_operator.adapters import dms_client
from rocketmq_operator.adapters.ratelimit import TokenBucket
from rocketmq_operator.adapters.signing import AkSkCredentials
from rocketmq_operator.core import cloud as cloud_model
from rocketmq_operator.ports.protocol import Account

SHOW_BODY = json.dumps({"instance_id": IID1, "name": "mq", "status": "RUNNING", "engine": "reliability"}).encode()


class SlowCloud:
    """Answers every show after a moment, and counts how many requests it holds at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.served = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.002)
        self.in_flight -= 1
        self.served += 1
        return httpx.Response(200, content=SHOW_BODY)


async def test_no_more_requests_are_in_flight_than_the_pool_has_connections() -> None:
    cloud = SlowCloud()
    client = dms_client.build_client(
        endpoint=ENDPOINT,
        project_id=PID,
        credentials=AkSkCredentials(AK, SK),
        rate=None,
        transport=httpx.MockTransport(cloud),
    )
    async with client:
        await asyncio.gather(*(client.show_instance(IID1) for _ in range(300)))
    assert cloud.served == 300
    assert cloud.most == dms_client.CONNECTIONS


async def test_a_narrower_client_holds_the_rest_back() -> None:
    cloud = SlowCloud()
    http = httpx.AsyncClient(base_url=ENDPOINT, transport=httpx.MockTransport(cloud))
    client = dms_client.DmsClient(http, account=Account(endpoint=ENDPOINT, project_id=PID), connections=4)
    async with client:
        await asyncio.gather(*(client.show_instance(IID1) for _ in range(40)))
    assert (cloud.served, cloud.most) == (40, 4)


class GatedCloud:
    """Holds every request until released, and remembers the order it was asked in."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.gate = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.order.append("list" if request.url.path.endswith("/instances") else "show")
        await self.gate.wait()
        if request.url.path.endswith("/instances"):
            return httpx.Response(200, content=b'{"instances": [], "instance_num": 0}')
        return httpx.Response(200, content=SHOW_BODY)


async def test_a_list_page_goes_ahead_of_the_shows_waiting_for_a_connection() -> None:
    # A page answers for 50 instances: behind thousands of shows it left every CR's snapshot stale.
    cloud = GatedCloud()
    http = httpx.AsyncClient(base_url=ENDPOINT, transport=httpx.MockTransport(cloud))
    client = dms_client.DmsClient(http, account=Account(endpoint=ENDPOINT, project_id=PID), connections=2)
    async with client:
        shows = [asyncio.create_task(client.show_instance(IID1)) for _ in range(10)]
        await asyncio.sleep(0.01)
        page = asyncio.create_task(client.list_instances(cloud_model.ListQuery()))
        await asyncio.sleep(0.01)
        cloud.gate.set()
        await asyncio.gather(page, *shows)
    assert cloud.order[:3] == ["show", "show", "list"]


async def test_a_batch_goes_ahead_of_the_shows_waiting_for_the_rate_limit() -> None:
    sent: list[str] = []
    bucket = TokenBucket(50.0, 1)

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append("batch" if request.url.path.endswith("/action") else "show")
        if request.url.path.endswith("/action"):
            return httpx.Response(200, content=b'{"results": []}')
        return httpx.Response(200, content=SHOW_BODY)

    http = httpx.AsyncClient(base_url=ENDPOINT, transport=httpx.MockTransport(answer))
    client = dms_client.DmsClient(http, account=Account(endpoint=ENDPOINT, project_id=PID), bucket=bucket)
    async with client:
        shows = [asyncio.create_task(client.show_instance(IID1)) for _ in range(6)]
        await asyncio.sleep(0)
        batch = asyncio.create_task(client.delete_many([IID1]))
        await asyncio.gather(batch, *shows)
    # The first show took the one token and the second was already waiting for the next; the batch
    # came after them, ahead of the four shows still queued.
    assert sent[:3] == ["show", "show", "batch"]
