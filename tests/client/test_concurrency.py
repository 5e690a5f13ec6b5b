"""Requests in flight: a thousand callers at once never queue inside httpx's pool."""

from __future__ import annotations

import asyncio
import json

import httpx
from client_kit import AK, ENDPOINT, IID1, PID, SK

from rocketmq_operator.adapters import dms_client
from rocketmq_operator.adapters.signing import AkSkCredentials
from rocketmq_operator.ports.protocol import Account


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
        body = {"instance_id": IID1, "name": "mq", "status": "RUNNING", "engine": "reliability"}
        return httpx.Response(200, content=json.dumps(body).encode())


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
