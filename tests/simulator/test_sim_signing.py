"""The simulator's SDK-HMAC-SHA256 implementation reproduces the reference's test vectors exactly,
and verification rejects any change to what was signed."""

from __future__ import annotations

import pytest

from dms_simulator import signing

AK = "HPUAEXAMPLEAK0000001"
SK = "ExampleSecretKey0123456789abcdefghijKLMN"
HOST = "https://dms.cn-north-4.myhuaweicloud.com"
PID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
IID1 = "54602a9d-5e22-4239-9123-77e350df4a34"
IID2 = "7166cdea-dbad-4d79-9610-7163e6f8b640"
DATE = "20250102T030405Z"
JSON = {"Content-Type": "application/json", "X-Project-Id": PID}

# (id, method, path+query as sent, headers given, body, SignedHeaders, Signature): reference section 5.1
VECTORS = [
    (
        "V1-list-query-sorted",
        "GET",
        f"/v2/{PID}/instances?engine=reliability&status=RUNNING&include_failure=true&limit=10&offset=0",
        JSON,
        b"",
        "content-type;host;x-project-id;x-sdk-date",
        "7f2d719d2de934ee764657db59a436522a4249cea6fba7e200269e97b3bc3b02",
    ),
    (
        "V2-batch-body",
        "POST",
        f"/v2/{PID}/instances/action",
        {"Content-Type": "application/json;charset=UTF-8", "X-Project-Id": PID},
        f'{{"action":"delete","instances":["{IID1}","{IID2}"],"force_delete":true}}'.encode(),
        "content-type;host;x-project-id;x-sdk-date",
        "d66f4990bf13084317584a298562391120e9ea4278a24763451ba0c29a822c44",
    ),
    (
        "V3-encoded-path-and-query",
        "GET",
        f"/v2/{PID}/instances/{IID1}/topics/my%20topic%2Fa~b%2Bc?name=my%20inst%2B1%2Fx~y&exact_match_name=true&z=",
        {"Content-Type": "application/json"},
        b"",
        "content-type;host;x-sdk-date",
        "b9264a055544acfc0c3115bc0187b8060cd5c162823edf9a8fd2bdb3b4c11ce3",
    ),
    (
        "V4-no-content-type",
        "DELETE",
        f"/v2/{PID}/instances/{IID1}",
        {"X-Project-Id": PID},
        b"",
        "host;x-project-id;x-sdk-date",
        "a597dad15561093de75df2dc5d4732eb270c6fbf93fe5d26559f1f1b37537df9",
    ),
    (
        "V5-utf8-body",
        "PUT",
        f"/v2/{PID}/instances/{IID2}",
        JSON,
        '{"name": "rmq-prod_01", "description": "测试 instance"}'.encode(),
        "content-type;host;x-project-id;x-sdk-date",
        "07a7864711b1364d91903d69b219be2f65acb7f10d8fd3eef84efb93b963db3e",
    ),
    (
        "V6-stripped-and-unsigned-headers",
        "POST",
        f"/v2/{PID}/reliability/instances/{IID1}/restart",
        {**JSON, "User-Agent": "  my-client/1.0  ", "X_Not_Signed": "skip-me"},
        b"",
        "content-type;host;user-agent;x-project-id;x-sdk-date",
        "55cbcdfb58561125789fc2294081ae38dbf495cfa5cf9c13b2c3c44f3dae4601",
    ),
    (
        "V7-unsigned-payload",
        "POST",
        f"/v2/{PID}/instances/{IID1}/metadata?type=rocketmq&overwrite=false",
        {"Content-Type": "application/octet-stream", "X-Security-Token": "tmp-token-abc"},
        b'\x00\x01"binary"',
        "content-type;host;x-sdk-content-sha256;x-sdk-date;x-security-token",
        "f8e54764a5d6e36802a5ffeb4735c2469f89e514a7d632ea02558f5b4f9f70b3",
    ),
]


def _sign(method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    return signing.sign_request(
        method=method,
        url=HOST + url,
        headers={**headers, "X-Sdk-Date": DATE},
        body=body,
        access_key=AK,
        secret_key=SK,
    )


@pytest.mark.parametrize(
    ("method", "url", "headers", "body", "signed_headers", "signature"),
    [vector[1:] for vector in VECTORS],
    ids=[vector[0] for vector in VECTORS],
)
def test_signing_reproduces_reference_vector(
    method: str, url: str, headers: dict[str, str], body: bytes, signed_headers: str, signature: str
) -> None:
    signed = _sign(method, url, headers, body)
    assert signed["Authorization"] == (
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders={signed_headers}, Signature={signature}"
    )


@pytest.mark.parametrize(
    ("method", "url", "headers", "body"),
    [vector[1:5] for vector in VECTORS],
    ids=[vector[0] for vector in VECTORS],
)
def test_verification_accepts_each_vector_as_received(
    method: str, url: str, headers: dict[str, str], body: bytes
) -> None:
    signed = _sign(method, url, headers, body)
    path, _, query = url.partition("?")
    received = signing.lower_headers(signed.items())
    auth = signing.parse_authorization(received["authorization"])
    problem = signing.verify_signature(
        auth=auth, secret_key=SK, method=method, path=path, query=query, headers=received, body=body
    )
    assert problem is None


def _verify_v2(**changes: object) -> str | None:
    _, method, url, headers, body, _, _ = VECTORS[1]
    signed = _sign(method, url, headers, body)
    received = signing.lower_headers(signed.items())
    request: dict[str, object] = {"method": method, "path": url, "query": "", "headers": received, "body": body}
    request.update(changes)
    auth = signing.parse_authorization(received["authorization"])
    return signing.verify_signature(auth=auth, secret_key=SK, **request)  # type: ignore[arg-type]


def test_verification_fails_when_anything_signed_changes() -> None:
    assert _verify_v2() is None
    assert _verify_v2(method="PUT") == "the signature does not match"
    assert _verify_v2(path=f"/v2/{PID}/instances/action2") == "the signature does not match"
    assert _verify_v2(query="x=1") == "the signature does not match"
    assert _verify_v2(body=b'{"action":"delete"}') == "the signature does not match"
    _, _, _, headers, _, _, _ = VECTORS[1]
    tampered = signing.lower_headers(_sign("POST", VECTORS[1][2], headers, VECTORS[1][4]).items())
    tampered["x-project-id"] = "another-project"
    assert _verify_v2(headers=tampered) == "the signature does not match"


def test_verification_names_a_signed_header_that_did_not_arrive() -> None:
    _, method, url, headers, body, _, _ = VECTORS[1]
    received = signing.lower_headers(_sign(method, url, headers, body).items())
    del received["x-project-id"]
    auth = signing.parse_authorization(received["authorization"])
    problem = signing.verify_signature(
        auth=auth, secret_key=SK, method=method, path=url, query="", headers=received, body=body
    )
    assert problem == "signed header(s) missing from the request: x-project-id"


def test_canonical_uri_decodes_then_reencodes_each_segment_and_ends_with_slash() -> None:
    # An encoded "/" inside a path parameter becomes a real separator (reference vector V3).
    assert signing.canonical_uri("/v2/p/topics/my%20topic%2Fa~b%2Bc") == "/v2/p/topics/my%20topic/a~b%2Bc/"
    assert signing.canonical_uri("/v2/p/instances/") == "/v2/p/instances/"


def test_canonical_query_sorts_decoded_pairs_and_keeps_empty_values() -> None:
    pairs = signing.parse_query("b=2&a=x%2By&a=x%20y&z=&flag")
    assert signing.canonical_query(pairs) == "a=x%20y&a=x%2By&b=2&flag=&z="


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Basic dXNlcjpwYXNz",
        "SDK-HMAC-SHA256 Access=AK, Signature=abc",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;;x-sdk-date, Signature=abc",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=not-hex",
    ],
)
def test_malformed_authorization_headers_are_rejected(header: str) -> None:
    with pytest.raises(signing.SignatureFormatError):
        signing.parse_authorization(header)
