"""Test kit for the simulator's own tests: accounts, a signing HTTP client, request builders.

A module (not only fixtures) so test signatures can name the types. The client signs with
``dms_simulator.signing.sign_request``, whose output the signing tests pin to the reference vectors
and the SDK tests prove interoperable with Huawei's own signer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkrocketmq.v2.rocketmq_client import RocketMQClient

from dms_simulator import Account, SimulatorConfig, TokenGrant
from dms_simulator.signing import sign_request

AK = "SIMAK0000000000000001"
SK = "sim-secret-key-0000000000000000000000001"
PID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
AK2 = "SIMAK0000000000000002"
SK2 = "sim-secret-key-0000000000000000000000002"
PID2 = "1a1b2c3d4e5f60718293a4b5c6d7e8f9"
TOKEN = "sim-token-for-project-one"

ACCOUNTS = [Account(AK, SK, frozenset({PID})), Account(AK2, SK2, frozenset({PID2}))]
TOKENS = [TokenGrant(TOKEN, frozenset({PID}))]

# Huawei's (status, error_code) answers that the topic and consumer-group tests expect.
INVALID = (400, "DMS.00400001")
NAME_EXISTS = (400, "DMS.00400060")
WRONG_STATE = (400, "DMS.00400026")
NO_INSTANCE = (404, "DMS.00404022")
NO_TOPIC = (404, "DMS.00404023")
NO_GROUP = (404, "DMS.00404024")

FAST = 0.2
"""Sub-second timings for tests that run on the real clock."""


def fast_config(**overrides: Any) -> SimulatorConfig:
    values: dict[str, Any] = {
        "create_seconds": FAST,
        "delete_seconds": FAST,
        "extend_seconds": FAST,
        "restart_seconds": FAST,
        "seed": 7,
    }
    values.update(overrides)
    config = SimulatorConfig()
    config.update(values)
    return config


def sdk_client(url: str, ak: str = AK, sk: str = SK, pid: str = PID, **http: Any) -> Any:
    """Huawei's own RocketMQ client, signing with AK/SK, pointed at a simulator."""
    builder = RocketMQClient.new_builder().with_credentials(BasicCredentials(ak, sk, pid)).with_endpoints([url])
    if http:
        builder = builder.with_http_config(HttpConfig(**http))
    return builder.build()


@contextmanager
def admin_client(url: str, config: dict[str, Any]) -> Iterator[httpx.Client]:
    """A synchronous client for a simulator's admin API, after a reset and with ``config`` applied."""
    with httpx.Client(base_url=url + "/_sim", timeout=10) as client:
        client.post("/reset").raise_for_status()
        client.put("/config", json=config).raise_for_status()
        yield client


def create_body(name: str, **overrides: Any) -> dict[str, Any]:
    """A valid CreateInstanceByEngineReq for a 5.x cluster."""
    body: dict[str, Any] = {
        "name": name,
        "engine": "reliability",
        "engine_version": "5.x",
        "storage_space": 300,
        "vpc_id": "vpc-0001",
        "subnet_id": "subnet-0001",
        "security_group_id": "sg-0001",
        "available_zones": ["cn-north-4a"],
        "product_id": "rocketmq.b2.large.4",
        "storage_spec_code": "dms.physical.storage.high.v2",
        "broker_num": 1,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


class Api:
    """Signed (or token, or anonymous) requests to one simulator, plus its admin API."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.base_url = base_url

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        account: tuple[str, str] | None = (AK, SK),
        token: str | None = None,
        headers: dict[str, str] | None = None,
        sdk_date: str | None = None,
    ) -> httpx.Response:
        body = content if content is not None else b"" if json_body is None else json.dumps(json_body).encode()
        url = self.base_url + path
        if params:
            url += "?" + str(httpx.QueryParams(params))
        send_headers = {"Content-Type": "application/json", **(headers or {})}
        if account is not None and token is None:
            send_headers = sign_request(
                method=method,
                url=url,
                headers=send_headers,
                body=body,
                access_key=account[0],
                secret_key=account[1],
                sdk_date=sdk_date,
            )
        if token is not None:
            send_headers["X-Auth-Token"] = token
        return await self.http.request(method, url, content=body, headers=send_headers)

    async def admin(self, method: str, path: str, json_body: Any = None) -> httpx.Response:
        return await self.http.request(method, self.base_url + "/_sim" + path, json=json_body)

    # --- conveniences for the common calls ---

    async def create(self, name: str, project: str = PID, **overrides: Any) -> str:
        response = await self.call(
            "POST", f"/v2/reliability/{project}/instances", json_body=create_body(name, **overrides)
        )
        assert response.status_code == 200, response.text
        instance_id: str = response.json()["instance_id"]
        return instance_id

    async def show(self, instance_id: str, project: str = PID) -> httpx.Response:
        return await self.call("GET", f"/v2/{project}/instances/{instance_id}")

    async def status(self, instance_id: str) -> str:
        response = await self.show(instance_id)
        if response.status_code == 404:
            return "<404>"
        assert response.status_code == 200, response.text
        status: str = response.json()["status"]
        return status

    async def batch(self, body: dict[str, Any], project: str = PID) -> httpx.Response:
        return await self.call("POST", f"/v2/{project}/instances/action", json_body=body)

    async def list_instances(self, project: str = PID, **params: str) -> httpx.Response:
        return await self.call("GET", f"/v2/{project}/instances", params={"engine": "reliability", **params})

    async def seed(self, *instances: dict[str, Any], project: str = PID) -> list[dict[str, Any]]:
        response = await self.admin("POST", "/instances", {"project_id": project, "instances": list(instances)})
        assert response.status_code == 200, response.text
        seeded: list[dict[str, Any]] = response.json()["instances"]
        return seeded

    async def configure(self, **values: Any) -> None:
        response = await self.admin("PUT", "/config", values)
        assert response.status_code == 200, response.text

    async def faults(self, **values: Any) -> None:
        response = await self.admin("PUT", "/faults", values)
        assert response.status_code == 200, response.text

    async def calls(self, since: int = 0) -> list[dict[str, Any]]:
        response = await self.admin("GET", f"/calls?since={since}")
        calls: list[dict[str, Any]] = response.json()["calls"]
        return calls

    async def healthy(self) -> bool:
        response = await self.admin("GET", "/health")
        return response.status_code == 200 and response.json() == {"ok": True}


def error_of(response: httpx.Response) -> tuple[int, str]:
    """(status, error_code) of a Huawei-shaped error response."""
    body = response.json()
    assert set(body) >= {"error_code", "error_msg"}, body
    return response.status_code, str(body["error_code"])


class ChildApi:
    """Topics (``kind="topics"``) or consumer groups (``kind="groups"``) of one instance."""

    def __init__(self, api: Api, instance_id: str, kind: str, project: str = PID) -> None:
        self.api = api
        self.kind = kind
        self.base = f"/v2/{project}/instances/{instance_id}/{kind}"
        self.tasks = f"/v2/{project}/instances/{instance_id}/tasks"

    async def create(self, body: dict[str, Any]) -> httpx.Response:
        return await self.api.call("POST", self.base, json_body=body)

    async def show(self, name: str) -> httpx.Response:
        return await self.api.call("GET", f"{self.base}/{name}")

    async def list(self, **params: str) -> httpx.Response:
        return await self.api.call("GET", self.base, params=params or None)

    async def names(self, **params: str) -> list[str]:
        response = await self.list(limit="50", **params)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()[self.kind]]

    async def update(self, name: str, body: dict[str, Any]) -> httpx.Response:
        return await self.api.call("PUT", f"{self.base}/{name}", json_body=body)

    async def delete(self, name: str) -> httpx.Response:
        return await self.api.call("DELETE", f"{self.base}/{name}")

    async def batch_delete(self, *names: str) -> httpx.Response:
        return await self.api.call("POST", self.base, params={"action": "delete"}, json_body={self.kind: list(names)})

    async def job(self, job_id: str) -> str:
        """The status of a background task (the job a batch call answered with)."""
        response = await self.api.call("GET", f"{self.tasks}/{job_id}")
        assert response.status_code == 200, response.text
        status: str = response.json()["tasks"][0]["status"]
        return status


async def seeded_children(api: Api, kind: str, delete_seconds: float, **spec: Any) -> ChildApi:
    """Topics (``kind="topics"``) or groups (``"groups"``) of a freshly seeded 5.x instance (``spec``
    overrides), whose batch deletes finish after ``delete_seconds``."""
    await api.configure(**{f"{kind[:-1]}_delete_seconds": delete_seconds})
    seeded = await api.seed({"engine_version": "5.x", **spec})
    return ChildApi(api, seeded[0]["instance_id"], kind)
