"""Every failure the client can meet becomes exactly one ``ports.errors`` class, in one place.

Driven through the real client over ``httpx.MockTransport`` (retries off), so the table also proves
that the operations really go through the mapping; plus the lenient parsers on their own.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from client_kit import Cloud, error, make_client, reply

from rocketmq_operator.adapters import failures
from rocketmq_operator.adapters.retrying import RetryPolicy
from rocketmq_operator.ports import errors

NO_RETRY = RetryPolicy(max_attempts=1)


async def _show_fails_with(answer: httpx.Response | Exception) -> errors.CloudError:
    async with make_client(Cloud(answers=[answer]), retry=NO_RETRY) as client:
        with pytest.raises(errors.CloudError) as caught:
            await client.show_instance("i-1")
    return caught.value


ERROR_RESPONSES: dict[str, tuple[httpx.Response, type[errors.CloudAPIError], str]] = {
    "instance gone": (error(404, "DMS.00404022", "instance not found"), errors.InstanceNotFound, "DMS.00404022"),
    "topic gone is not the instance": (error(404, "DMS.00404023", "no topic"), errors.NotFound, "DMS.00404023"),
    "plain 404 without a body": (reply(404), errors.NotFound, ""),
    "wrong state": (error(400, "DMS.00400026", "status is CREATING"), errors.WrongState, "DMS.00400026"),
    "name taken": (error(400, "DMS.00400060", "name exists"), errors.NameConflict, "DMS.00400060"),
    "quota": (error(400, "DMS.00400039", "quota"), errors.QuotaExceeded, "DMS.00400039"),
    "bad signature": (error(401, "APIGW.0301", "IAM authentication failed"), errors.AuthFailed, "APIGW.0301"),
    "bad token": (error(401, "DMS.10240101", "invalid token"), errors.AuthFailed, "DMS.10240101"),
    "forbidden without a code": (reply(403, b"Forbidden"), errors.AuthFailed, ""),
    "throttled by the gateway": (error(429, "APIGW.0308", "limit:5"), errors.Throttled, "APIGW.0308"),
    "throttle code spelled APIG, any status": (error(400, "APIG.0308", "limit"), errors.Throttled, "APIG.0308"),
    "429 without a body": (reply(429), errors.Throttled, ""),
    "bad name": (error(400, "DMS.00400010", "bad name"), errors.InvalidRequest, "DMS.00400010"),
    "entity too large": (error(413, "APIGW.0201", "too large"), errors.InvalidRequest, "APIGW.0201"),
    "no such API is not an absent instance": (error(404, "APIGW.0101", "no route"), errors.InvalidRequest, ""),
    "internal error": (error(500, "DMS.00500000", "oops"), errors.ServerError, "DMS.00500000"),
    "bad gateway page": (reply(502, b"<html>Bad Gateway</html>"), errors.ServerError, ""),
    "unavailable": (reply(503), errors.ServerError, ""),
}


@pytest.mark.parametrize(("response", "kind", "code"), list(ERROR_RESPONSES.values()), ids=list(ERROR_RESPONSES))
async def test_error_responses_map_by_code_then_status(
    response: httpx.Response, kind: type[errors.CloudAPIError], code: str
) -> None:
    status = response.status_code
    err = await _show_fails_with(response)

    assert type(err) is kind
    assert isinstance(err, errors.CloudAPIError)
    assert err.status == status
    assert err.operation == "show"
    if code != "" or kind is not errors.InvalidRequest:
        assert err.code == code


async def test_the_error_carries_code_message_status_and_request_id() -> None:
    err = await _show_fails_with(error(400, "DMS.00400026", "status is CREATING", X_Request_Id="req-42"))

    assert isinstance(err, errors.WrongState)
    assert (err.code, err.message, err.status, err.request_id) == (
        "DMS.00400026",
        "status is CREATING",
        400,
        "req-42",
    )
    assert str(err) == "show: HTTP 400 DMS.00400026: status is CREATING (request req-42)"
    assert err.reason == "WrongState"


async def test_route_not_found_says_the_endpoint_is_wrong() -> None:
    err = await _show_fails_with(error(404, "APIGW.0101", "The API does not exist"))

    assert "no such API at this endpoint" in str(err)
    assert err.terminal


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("1.5", 1.5), ("0", 0.0), (None, 2.0), ("soon", 2.0), ("-3", 2.0), ("nan", 2.0)],
)
async def test_throttled_carries_retry_after_with_a_two_second_default(header: str | None, seconds: float) -> None:
    headers = {"Retry-After": header} if header is not None else None
    err = await _show_fails_with(reply(429, {"error_code": "APIGW.0308"}, headers=headers))

    assert isinstance(err, errors.Throttled)
    assert err.retry_after == seconds


def test_retry_after_may_be_an_http_date() -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

    assert failures.parse_retry_after("Thu, 02 Jan 2025 03:04:15 GMT", now=now) == 10.0
    assert failures.parse_retry_after("Thu, 02 Jan 2025 03:00:00 GMT", now=now) == 0.0


ERROR_BODIES: dict[str, tuple[Any, tuple[str, str, str]]] = {
    "huawei snake case": ({"error_code": "DMS.1", "error_msg": "m"}, ("DMS.1", "m", "")),
    "camel case": ({"errorCode": "DMS.2", "errorMsg": "m2"}, ("DMS.2", "m2", "")),
    "code and message": ({"code": "DMS.3", "message": "m3"}, ("DMS.3", "m3", "")),
    "nested one level": ({"error": {"code": "APIGW.0301", "message": "auth"}}, ("APIGW.0301", "auth", "")),
    "gateway request id in body": (
        {"error_code": "APIGW.0308", "error_msg": "limit", "request_id": "r-1"},
        ("APIGW.0308", "limit", "r-1"),
    ),
    "code without message": ({"error_code": "DMS.4"}, ("DMS.4", "", "")),
    "numeric code": ({"code": 500, "message": "x"}, ("500", "x", "")),
    "no code at all": ({"detail": "nothing"}, ("", '{"detail": "nothing"}', "")),
    "json array": ([1, 2], ("", "[1, 2]", "")),
}


@pytest.mark.parametrize(("body", "expected"), list(ERROR_BODIES.values()), ids=list(ERROR_BODIES))
def test_error_bodies_are_parsed_as_leniently_as_the_sdk(body: Any, expected: tuple[str, str, str]) -> None:
    import json

    assert failures.parse_error_body(json.dumps(body).encode()) == expected


def test_non_json_error_bodies_become_a_short_message() -> None:
    code, message, _ = failures.parse_error_body(b"<html>\n  <body>" + b"x" * 1000 + b"</body></html>")

    assert code == ""
    assert message.startswith("<html> <body>xxx")
    assert len(message) == failures.MAX_MESSAGE_CHARS


async def test_the_fallback_message_is_the_reason_phrase() -> None:
    err = await _show_fails_with(reply(503))

    assert err.message == "Service Unavailable"


TRANSPORT_FAILURES = {
    "connection refused": httpx.ConnectError("[Errno 111] Connection refused"),
    "connect timeout": httpx.ConnectTimeout(""),
    "read timeout": httpx.ReadTimeout(""),
    "write timeout": httpx.WriteTimeout(""),
    "pool timeout": httpx.PoolTimeout(""),
    "server hung up": httpx.RemoteProtocolError("Server disconnected without sending a response."),
    "reset": httpx.ReadError("[Errno 104] Connection reset by peer"),
}


@pytest.mark.parametrize("exc", list(TRANSPORT_FAILURES.values()), ids=list(TRANSPORT_FAILURES))
async def test_transport_failures_become_transport_error_chained_to_the_cause(exc: Exception) -> None:
    err = await _show_fails_with(exc)

    assert type(err) is errors.TransportError
    assert err.__cause__ is exc
    assert type(exc).__name__ in str(err)
    assert "GET dms.cn-north-4.myhuaweicloud.com/v2/" in str(err)
    assert err.reason == "CloudUnreachable"


MALFORMED = {
    "not json": reply(200, b"<html>maintenance</html>"),
    "empty body where one is required": reply(200),
    "json of the wrong shape": reply(200, {"instance_id": {"nested": True}}),
    "json missing the id": reply(200, {"name": "x"}),
    "json array": reply(200, [1, 2]),
    "invalid utf-8": reply(200, b"\xff\xfe{"),
    "broken gzip": httpx.Response(200, stream=httpx.ByteStream(b"not gzip"), headers={"Content-Encoding": "gzip"}),
    "a redirect": reply(302, headers={"Location": "https://elsewhere/"}),
}


@pytest.mark.parametrize("response", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_unreadable_success_responses_become_malformed_response(response: httpx.Response) -> None:
    err = await _show_fails_with(response)

    assert type(err) is errors.MalformedResponse
    assert err.operation == "show"


async def test_malformed_says_where_without_echoing_the_body() -> None:
    body = {"instance_id": {"secret-looking": "value-should-not-be-echoed"}}
    err = await _show_fails_with(reply(200, body, headers={"X-Request-Id": "req-7"}))

    assert "request req-7" in str(err)
    assert "instance_id" in str(err)
    assert "value-should-not-be-echoed" not in str(err)


async def test_a_gzip_body_is_read_normally() -> None:
    data = gzip.compress(b'{"instance_id": "i-1", "status": "RUNNING"}')
    async with make_client(
        Cloud(answers=[httpx.Response(200, content=data, headers={"Content-Encoding": "gzip"})])
    ) as client:
        view = await client.show_instance("i-1")

    assert view.status == "RUNNING"
