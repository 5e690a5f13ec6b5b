"""Bad input gets the documented DMS error codes (or a 400 naming the field), and never crashes the
server: after each test the simulator still answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sim_kit import PID, Api, create_body, error_of

from dms_simulator import SimulatorServer

CREATE = f"/v2/reliability/{PID}/instances"


@pytest.fixture(autouse=True)
async def still_serving(api: Api) -> AsyncIterator[None]:
    yield
    assert await api.healthy()
    assert (await api.list_instances()).status_code == 200


async def test_malformed_json_is_dms_00400005(api: Api) -> None:
    response = await api.call("POST", CREATE, content=b'{"name": "rmq-x",')
    assert error_of(response) == (400, "DMS.00400005")


async def test_a_body_that_is_not_utf8_is_dms_00400005(api: Api) -> None:
    response = await api.call("POST", CREATE, content=b'{"name": "\xff\xfe"}')
    assert error_of(response) == (400, "DMS.00400005")


async def test_an_empty_body_is_dms_00400004(api: Api) -> None:
    response = await api.call("POST", CREATE, content=b"")
    assert error_of(response) == (400, "DMS.00400004")
    update = await api.call("PUT", f"/v2/{PID}/instances/{await api.create('rmq-empty')}", content=b"  ")
    assert error_of(update) == (400, "DMS.00400004")


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null"], ids=["array", "string", "number", "null"])
async def test_a_body_that_is_not_an_object_is_refused(api: Api, body: bytes) -> None:
    response = await api.call("POST", f"/v2/{PID}/instances/action", content=body)
    status, code = error_of(response)
    assert status == 400 and code in ("DMS.00400001", "DMS.00400004")


REQUIRED = [
    "name",
    "engine",
    "engine_version",
    "storage_space",
    "subnet_id",
    "security_group_id",
    "available_zones",
    "product_id",
    "storage_spec_code",
    "broker_num",
]


@pytest.mark.parametrize("field", REQUIRED)
async def test_each_missing_required_create_field_is_named(api: Api, field: str) -> None:
    body = create_body("rmq-missing")
    del body[field]
    response = await api.call("POST", CREATE, json_body=body)
    assert response.status_code == 400
    assert field in response.json()["error_msg"]


async def test_a_missing_vpc_id_has_its_own_code(api: Api) -> None:
    body = create_body("rmq-novpc")
    del body["vpc_id"]
    assert error_of(await api.call("POST", CREATE, json_body=body)) == (400, "DMS.00400013")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("storage_space", "300"),
        ("storage_space", 300.5),
        ("broker_num", True),
        ("available_zones", "cn-north-4a"),
        ("available_zones", [1, 2, 3]),
        ("ssl_enable", "yes"),
        ("name", 12345),
        ("bss_param", "prePaid"),
    ],
)
async def test_wrong_json_types_are_refused_naming_the_field(api: Api, field: str, value: Any) -> None:
    body = {**create_body("rmq-types"), field: value}
    response = await api.call("POST", CREATE, json_body=body)
    assert error_of(response) == (400, "DMS.00400001")
    assert field in response.json()["error_msg"]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"name": "abc"}, "DMS.00400010"),
        ({"name": "1starts-with-digit"}, "DMS.00400010"),
        ({"name": "has space"}, "DMS.00400010"),
        ({"name": "x" * 65}, "DMS.00400010"),
        ({"description": "d" * 1025}, "DMS.00400011"),
        ({"engine": "kafka"}, "DMS.00400007"),
        ({"engine_version": "4.9.9"}, "DMS.00400008"),
        ({"product_id": "c6.4u8g.cluster"}, "DMS.00400009"),
        ({"available_zones": []}, "DMS.00400042"),
        ({"available_zones": ["a", "b"]}, "DMS.00400001"),
        ({"storage_spec_code": "fast-disk"}, "DMS.00400001"),
        ({"enable_publicip": True}, "DMS.00400001"),
        ({"bss_param": {"charging_mode": "prePaid"}}, "DMS.00400001"),
    ],
)
async def test_invalid_create_values_get_their_documented_codes(api: Api, overrides: dict[str, Any], code: str) -> None:
    response = await api.call("POST", CREATE, json_body={**create_body("rmq-values"), **overrides})
    assert error_of(response) == (400, code)


async def test_names_with_underscores_and_hyphens_are_valid_on_create_and_update(api: Api) -> None:
    instance_id = await api.create("rmq_under-score")
    await api.admin("PATCH", f"/instances/{instance_id}", {"status": "RUNNING"})
    renamed = await api.call("PUT", f"/v2/{PID}/instances/{instance_id}", json_body={"name": "rmq_renamed-1"})
    assert renamed.status_code == 204
    bad = await api.call("PUT", f"/v2/{PID}/instances/{instance_id}", json_body={"name": "no"})
    assert error_of(bad) == (400, "DMS.00400010")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/nothing-here"),
        ("GET", "/v3/whatever"),
        ("PATCH", f"/v2/{PID}/instances"),
        ("DELETE", f"/v2/{PID}/instances"),
        ("GET", f"/v2/kafka/{PID}/instances/some-id"),
        ("GET", "/"),
    ],
)
async def test_an_unknown_route_is_apigw_0101_before_any_auth(api: Api, method: str, path: str) -> None:
    response = await api.http.request(method, api.base_url + path)
    assert error_of(response) == (404, "APIGW.0101")


@pytest.mark.parametrize(
    "query",
    [{"limit": "0"}, {"limit": "51"}, {"limit": "ten"}, {"offset": "-1"}, {"include_failure": "yes"}],
)
async def test_out_of_range_list_parameters_are_named(api: Api, query: dict[str, str]) -> None:
    response = await api.list_instances(**query)
    assert error_of(response) == (400, "DMS.00400001")
    assert next(iter(query)) in response.json()["error_msg"]


async def test_a_body_over_12_mb_is_refused_by_the_gateway(api: Api) -> None:
    response = await api.call("POST", CREATE, content=b"{" + b" " * (12 * 1024 * 1024 + 10) + b"}")
    assert error_of(response) == (413, "APIGW.0201")


async def test_garbage_on_the_socket_does_not_stop_the_server(server: SimulatorServer) -> None:
    for garbage in (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/9.9"):
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(garbage + b"\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(200), timeout=5)
        assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n", 1)[0]
        writer.close()
        await writer.wait_closed()


async def test_a_client_that_hangs_up_mid_request_does_not_stop_the_server(server: SimulatorServer, api: Api) -> None:
    _, writer = await asyncio.open_connection(server.host, server.port)
    # A create whose body stops 996 bytes short of its Content-Length.
    writer.write(f'POST {CREATE} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{"na'.encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    # The next client, on a new connection, is served (create answers 200); the cut-off request left
    # nothing behind.
    instance_id = await api.create("rmq-after-hangup")
    everything = (await api.admin("GET", "/instances")).json()["instances"]
    assert [item["instance_id"] for item in everything] == [instance_id]


async def test_an_internal_error_is_a_huawei_shaped_500(
    api: Api, server: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a bug in the simulator")

    monkeypatch.setattr(server.sim.store, "search", broken)
    response = await api.list_instances()
    assert error_of(response) == (500, "DMS.00500000")
    assert response.headers["X-Request-Id"]
    monkeypatch.undo()


async def test_the_error_body_is_exactly_error_code_and_error_msg(api: Api) -> None:
    response = await api.show("no-such-instance")
    assert set(response.json()) == {"error_code", "error_msg"}
    assert response.headers["Content-Type"].startswith("application/json")
