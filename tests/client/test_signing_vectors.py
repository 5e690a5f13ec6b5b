"""The seven reference vectors (dms-rocketmq-api.md section 5.1), reproduced exactly.

Each vector is checked twice: through the pure ``signing.sign`` (no httpx at all), and through
``AkSkAuth`` on an ``httpx.Request`` to prove that what goes on the wire is what was signed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from client_kit import AK, IID1, IID2, PID, SK

from rocketmq_operator.adapters import signing

HOST = "dms.cn-north-4.myhuaweicloud.com"
DATE = "20250102T030405Z"
CREDENTIALS = signing.AkSkCredentials(AK, SK)


@dataclass(frozen=True)
class Vector:
    method: str
    path: str
    query: list[tuple[str, signing.QueryValue]]
    headers: list[tuple[str, str]]
    body: bytes
    canonical_uri: str
    canonical_query: str
    payload_hash: str
    signed_headers: str
    signature: str


V2_BODY = f'{{"action":"delete","instances":["{IID1}","{IID2}"],"force_delete":true}}'.encode()
V5_BODY = '{"name": "rmq-prod_01", "description": "测试 instance"}'.encode()
JSON = ("Content-Type", "application/json")
PROJECT = ("X-Project-Id", PID)

VECTORS = {
    "V1 list, params given unsorted": Vector(
        "GET",
        f"/v2/{PID}/instances",
        [
            ("engine", "reliability"),
            ("status", "RUNNING"),
            ("include_failure", "true"),
            ("limit", "10"),
            ("offset", "0"),
        ],
        [JSON, PROJECT],
        b"",
        f"/v2/{PID}/instances/",
        "engine=reliability&include_failure=true&limit=10&offset=0&status=RUNNING",
        signing.EMPTY_SHA256,
        "content-type;host;x-project-id;x-sdk-date",
        "7f2d719d2de934ee764657db59a436522a4249cea6fba7e200269e97b3bc3b02",
    ),
    "V2 batch delete, JSON with charset": Vector(
        "POST",
        f"/v2/{PID}/instances/action",
        [],
        [("Content-Type", "application/json;charset=UTF-8"), PROJECT],
        V2_BODY,
        f"/v2/{PID}/instances/action/",
        "",
        hashlib.sha256(V2_BODY).hexdigest(),
        "content-type;host;x-project-id;x-sdk-date",
        "d66f4990bf13084317584a298562391120e9ea4278a24763451ba0c29a822c44",
    ),
    "V3 escapes in path and query, bool and empty values": Vector(
        "GET",
        f"/v2/{PID}/instances/{IID1}/topics/my%20topic%2Fa~b%2Bc",
        [("name", "my inst+1/x~y"), ("exact_match_name", True), ("z", "")],
        [JSON],
        b"",
        f"/v2/{PID}/instances/{IID1}/topics/my%20topic/a~b%2Bc/",
        "exact_match_name=true&name=my%20inst%2B1%2Fx~y&z=",
        signing.EMPTY_SHA256,
        "content-type;host;x-sdk-date",
        "b9264a055544acfc0c3115bc0187b8060cd5c162823edf9a8fd2bdb3b4c11ce3",
    ),
    "V4 delete without content type": Vector(
        "DELETE",
        f"/v2/{PID}/instances/{IID1}",
        [],
        [PROJECT],
        b"",
        f"/v2/{PID}/instances/{IID1}/",
        "",
        signing.EMPTY_SHA256,
        "host;x-project-id;x-sdk-date",
        "a597dad15561093de75df2dc5d4732eb270c6fbf93fe5d26559f1f1b37537df9",
    ),
    "V5 update, UTF-8 body with SDK separators": Vector(
        "PUT",
        f"/v2/{PID}/instances/{IID2}",
        [],
        [JSON, PROJECT],
        V5_BODY,
        f"/v2/{PID}/instances/{IID2}/",
        "",
        hashlib.sha256(V5_BODY).hexdigest(),
        "content-type;host;x-project-id;x-sdk-date",
        "07a7864711b1364d91903d69b219be2f65acb7f10d8fd3eef84efb93b963db3e",
    ),
    "V6 restart, padded and underscore headers": Vector(
        "POST",
        f"/v2/{PID}/reliability/instances/{IID1}/restart",
        [],
        [JSON, PROJECT, ("User-Agent", "  my-client/1.0  "), ("X_Not_Signed", "skip-me")],
        b"",
        f"/v2/{PID}/reliability/instances/{IID1}/restart/",
        "",
        signing.EMPTY_SHA256,
        "content-type;host;user-agent;x-project-id;x-sdk-date",
        "55cbcdfb58561125789fc2294081ae38dbf495cfa5cf9c13b2c3c44f3dae4601",
    ),
    "V7 binary body is an unsigned payload, temporary credentials": Vector(
        "POST",
        f"/v2/{PID}/instances/{IID1}/metadata",
        [("overwrite", False), ("type", "rocketmq")],
        [("Content-Type", "application/octet-stream"), ("X-Security-Token", "tmp-token-abc")],
        b'\x00\x01"binary"',
        f"/v2/{PID}/instances/{IID1}/metadata/",
        "overwrite=false&type=rocketmq",
        signing.UNSIGNED_PAYLOAD,
        "content-type;host;x-sdk-content-sha256;x-sdk-date;x-security-token",
        "f8e54764a5d6e36802a5ffeb4735c2469f89e514a7d632ea02558f5b4f9f70b3",
    ),
}

CASES = pytest.mark.parametrize("vector", list(VECTORS.values()), ids=list(VECTORS))


def _pure(vector: Vector) -> signing.Signed:
    return signing.sign(
        method=vector.method,
        host=HOST,
        path=vector.path,
        query=vector.query,
        headers=[("X-Sdk-Date", DATE), *vector.headers],
        body=vector.body,
        credentials=CREDENTIALS,
        # The X-Sdk-Date header wins over the clock, as in CORE; a wrong clock proves it.
        now=datetime(2031, 1, 1, tzinfo=UTC),
    )


@CASES
def test_pure_signer_reproduces_signed_headers_and_signature(vector: Vector) -> None:
    signed = _pure(vector)

    assert ";".join(signed.signed_headers) == vector.signed_headers
    assert signed.signature == vector.signature
    assert signed.authorization == (
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders={vector.signed_headers}, Signature={vector.signature}"
    )


@CASES
def test_canonical_request_pieces(vector: Vector) -> None:
    signed = _pure(vector)
    method, uri, query, *_headers, blank, signed_headers, payload = signed.canonical_request.split("\n")

    assert method == vector.method
    assert uri == signing.canonical_uri(vector.path) == vector.canonical_uri
    assert query == signing.canonical_query(vector.query) == vector.canonical_query
    assert blank == ""  # canonical headers end in "\n", so a blank line precedes the list
    assert signed_headers == vector.signed_headers
    assert payload == vector.payload_hash
    assert signed.string_to_sign == (
        f"SDK-HMAC-SHA256\n{DATE}\n{hashlib.sha256(signed.canonical_request.encode()).hexdigest()}"
    )
    assert signing.signature(SK, signed.string_to_sign) == vector.signature


def test_v1_canonical_request_in_full() -> None:
    signed = _pure(VECTORS["V1 list, params given unsorted"])

    assert signed.canonical_request == (
        "GET\n"
        f"/v2/{PID}/instances/\n"
        "engine=reliability&include_failure=true&limit=10&offset=0&status=RUNNING\n"
        "content-type:application/json\n"
        f"host:{HOST}\n"
        f"x-project-id:{PID}\n"
        f"x-sdk-date:{DATE}\n"
        "\n"
        "content-type;host;x-project-id;x-sdk-date\n"
        f"{signing.EMPTY_SHA256}"
    )


def _through_httpx(vector: Vector, *, with_date_header: bool = True) -> httpx.Request:
    request = httpx.Request(
        vector.method,
        f"https://{HOST}{vector.path}",
        params=vector.query,
        headers=[("X-Sdk-Date", DATE), *vector.headers] if with_date_header else vector.headers,
        content=vector.body,
    )
    auth = signing.AkSkAuth(CREDENTIALS, clock=lambda: datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    return next(auth.sync_auth_flow(request))


@CASES
def test_httpx_auth_sends_what_it_signed(vector: Vector) -> None:
    sent = _through_httpx(vector)

    assert sent.headers["Authorization"].endswith(
        f"SignedHeaders={vector.signed_headers}, Signature={vector.signature}"
    )
    # The wire query is exactly the canonical query, and the wire path is untouched.
    assert sent.url.query.decode() == vector.canonical_query
    assert sent.url.raw_path.split(b"?")[0].decode() == vector.path
    assert sent.headers["X-Sdk-Date"] == DATE


@CASES
def test_injected_clock_reproduces_the_vectors_without_a_date_header(vector: Vector) -> None:
    sent = _through_httpx(vector, with_date_header=False)

    assert sent.headers["X-Sdk-Date"] == DATE
    assert sent.headers["Authorization"].endswith(f"Signature={vector.signature}")


def test_v6_padded_values_are_sent_stripped_and_underscore_headers_sent_unsigned() -> None:
    sent = _through_httpx(VECTORS["V6 restart, padded and underscore headers"])

    assert sent.headers["User-Agent"] == "my-client/1.0"
    assert sent.headers["X_Not_Signed"] == "skip-me"
    assert "x_not_signed" not in sent.headers["Authorization"]


def test_v7_marks_the_payload_unsigned_on_the_wire() -> None:
    sent = _through_httpx(VECTORS["V7 binary body is an unsigned payload, temporary credentials"])

    assert sent.headers["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
