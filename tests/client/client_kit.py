"""Test doubles for the client tests: a fake clock, a call recorder, a scripted cloud.

Kept in a module (not only fixtures) so test signatures can name the types.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from rocketmq_operator.adapters import dms_client, signing
from rocketmq_operator.adapters.ratelimit import TokenBucket
from rocketmq_operator.adapters.retrying import CredentialGate, RetryPolicy
from rocketmq_operator.adapters.signing import AkSkCredentials
from rocketmq_operator.ports.protocol import Account

AK = "HPUAEXAMPLEAK0000001"
SK = "ExampleSecretKey0123456789abcdefghijKLMN"
PID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
IID1 = "54602a9d-5e22-4239-9123-77e350df4a34"
IID2 = "7166cdea-dbad-4d79-9610-7163e6f8b640"
ENDPOINT = "https://dms.cn-north-4.myhuaweicloud.com"


class FakeClock:
    """Loop-like time that only moves when someone sleeps; every sleep is recorded."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Recorder:
    """A CallRecorder that keeps what it is told."""

    records: list[tuple[str, str]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def record(self, *, operation: str, outcome: str, seconds: float) -> None:
        self.records.append((operation, outcome))
        self.seconds.append(seconds)


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Cloud:
    """A scripted cloud behind httpx.MockTransport: answers from a queue, remembers the requests."""

    answers: list[httpx.Response | Exception | Handler] = field(default_factory=list)
    default: httpx.Response | Exception | Handler | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else self.default
        if answer is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def reply(status: int = 200, body: Any = None, *, headers: dict[str, str] | None = None) -> httpx.Response:
    """A response; ``body`` as JSON (dict/list), raw (bytes/str) or absent (None)."""
    if body is None:
        return httpx.Response(status, headers=headers)
    if isinstance(body, bytes | str):
        return httpx.Response(status, content=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def error(status: int, code: str, msg: str = "boom", **headers: str) -> httpx.Response:
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    return httpx.Response(status, json={"error_code": code, "error_msg": msg}, headers=hdrs)


def make_client(
    cloud: Cloud,
    *,
    clock: FakeClock | None = None,
    recorder: Recorder | None = None,
    retry: RetryPolicy | None = None,
    bucket: TokenBucket | None = None,
    jitter: float = 0.5,
    gate: CredentialGate | None = None,
) -> dms_client.DmsClient:
    """A DmsClient over the scripted cloud, signing with the example keys, on a fake clock."""
    clock = clock or FakeClock()
    http = httpx.AsyncClient(
        base_url=ENDPOINT,
        transport=httpx.MockTransport(cloud),
        auth=signing.AkSkAuth(AkSkCredentials(AK, SK), project_id=PID),
    )
    return dms_client.DmsClient(
        http,
        account=Account(endpoint=ENDPOINT, project_id=PID),
        retry=retry or RetryPolicy(max_attempts=4, deadline=120.0, base_delay=0.5, max_delay=10.0),
        bucket=bucket,
        recorder=recorder,
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda: jitter,
        gate=gate,
    )


def huawei_sdk_authorization(request: httpx.Request, *, ak: str = AK, sk: str = SK) -> str:
    """What Huawei's own Signer computes for a request as *received* (a server-side check).

    Only the headers the request names in SignedHeaders are given to it, as a verifying gateway
    would do; if the client signed anything other than the bytes it sent, the two disagree.
    """
    from urllib.parse import parse_qsl

    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    signed = request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    sdk = SdkRequest(
        method=request.method,
        schema=request.url.scheme,
        host=request.url.netloc.decode(),
        resource_path=request.url.raw_path.split(b"?")[0].decode(),
        query_params=parse_qsl(request.url.query.decode(), keep_blank_values=True),
        header_params={name: request.headers[name] for name in signed},
        body=request.content,
    )
    Signer(BasicCredentials(ak, sk)).sign(sdk)
    authorization: str = sdk.header_params["Authorization"]
    return authorization
