"""Our signer against Huawei's own: random requests must get the same Authorization and query.

``huaweicloudsdkcore`` is a test-only dependency; the operator never imports it. Inputs are random
but seeded (each seed is a test id), and chosen to hit the awkward corners: escaped "/" and "+" in
path segments, spaces, "~", non-ASCII text, repeated and empty query values, booleans, padded
header values, underscore headers, JSON and non-JSON content types, empty and binary bodies.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from client_kit import AK, PID, SK
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from rocketmq_operator.adapters import signing

DATE = "20250102T030405Z"
ALPHABET = "abcXYZ019-_.~ +/%?&=#:@!$'()*,;测試é"


def _text(rng: random.Random, *, min_len: int = 0) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(min_len, 8)))


def _random_request(rng: random.Random) -> dict[str, Any]:
    method = rng.choice(["GET", "POST", "PUT", "DELETE"])
    segments = ["v2", PID, "instances"] + [_text(rng, min_len=1) for _ in range(rng.randint(0, 3))]
    path = "/" + "/".join(quote(segment, safe="") for segment in segments)
    query: list[tuple[str, Any]] = []
    for index in range(rng.randint(0, 5)):
        key = rng.choice(["name", "status", "a b", "k+", "x/y", f"p{index}"])
        if any(k == key for k, _ in query):
            continue  # CORE cannot sort a key given twice with a bool and a str
        query.append((key, rng.choice([True, False]) if rng.random() < 0.2 else _text(rng)))
    headers = {"X-Project-Id": PID}
    content_type = rng.choice([None, "application/json", "application/json;charset=UTF-8", "text/plain"])
    if content_type:
        headers["Content-Type"] = content_type
    if rng.random() < 0.5:
        headers["User-Agent"] = f"  agent {rng.randint(1, 9)}.0  "
    if rng.random() < 0.5:
        headers["X_Custom_Unsigned"] = _text(rng).encode("ascii", "ignore").decode() or "v"
    body = b"" if method in ("GET", "DELETE") else rng.choice([b"", rng.randbytes(rng.randint(1, 40))])
    host = rng.choice(["dms.cn-north-4.myhuaweicloud.com", "127.0.0.1:8443"])
    return {"method": method, "host": host, "path": path, "query": query, "headers": headers, "body": body}


def _core(req: dict[str, Any]) -> tuple[str, str]:
    sdk = SdkRequest(
        method=req["method"],
        schema="https",
        host=req["host"],
        resource_path=req["path"],
        query_params=list(req["query"]),
        header_params={**req["headers"], "X-Sdk-Date": DATE},
        body=req["body"],
    )
    Signer(BasicCredentials(AK, SK)).sign(sdk)
    query = sdk.uri.partition("?")[2]
    return sdk.header_params["Authorization"], query


def _ours(req: dict[str, Any]) -> httpx.Request:
    request = httpx.Request(
        req["method"],
        f"https://{req['host']}{req['path']}",
        params=req["query"],
        headers=req["headers"],
        content=req["body"],
    )
    auth = signing.AkSkAuth(signing.AkSkCredentials(AK, SK), clock=lambda: datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    return next(auth.sync_auth_flow(request))


@pytest.mark.parametrize("seed", range(40))
def test_same_authorization_and_wire_query_as_huawei_sdk(seed: int) -> None:
    req = _random_request(random.Random(seed))

    core_authorization, core_query = _core(req)
    sent = _ours(req)

    assert sent.headers["Authorization"] == core_authorization
    assert sent.url.query.decode() == core_query


def test_signature_depends_on_every_signed_part() -> None:
    """A sanity check of the cross-check: change one signed byte and both signers disagree with us."""
    req = _random_request(random.Random(7))
    req["headers"]["Content-Type"] = "application/json"
    baseline = _ours(req).headers["Authorization"]

    for mutate in (
        lambda r: r.update(method="PATCH"),
        lambda r: r.update(path=r["path"] + "x"),
        lambda r: r.update(query=[*r["query"], ("extra", "1")]),
        lambda r: r["headers"].update({"X-Project-Id": "other"}),
        lambda r: r.update(body=r["body"] + b"!"),
    ):
        changed = {**req, "headers": dict(req["headers"])}
        mutate(changed)
        assert _ours(changed).headers["Authorization"] != baseline
        assert _core(changed)[0] == _ours(changed).headers["Authorization"]
