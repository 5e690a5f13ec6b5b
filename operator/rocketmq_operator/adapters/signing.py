"""How a request proves who sent it: Huawei's ``SDK-HMAC-SHA256`` AK/SK signature and IAM tokens.

Why a module of its own: the signature is the one piece of the client that must agree byte for byte
with a server we cannot read. So the algorithm lives in small pure functions (canonical URI, query,
headers, request, string to sign, signature) that the reference vectors and a cross-check against
Huawei's own ``huaweicloudsdkcore`` Signer pin down without any I/O; ``AkSkAuth`` only applies them
to an ``httpx.Request``.

The algorithm is CORE's default one (reference section 5): headers whose name holds no ``_`` are
signed, values are stripped (and sent stripped), the canonical URI re-encodes every decoded path
segment and ends in ``/``, the query is sorted on decoded (key, value) pairs and is sent exactly as
signed, non-JSON bodies are signed as ``UNSIGNED-PAYLOAD``, and the signature is a plain HMAC of the
string to sign keyed by the secret key (no key derivation).

Secrets (the secret key, a temporary security token, an IAM token) never appear in a ``repr``, a
``str``, a log line or an exception raised here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qsl, quote, unquote

import httpx

ALGORITHM: Final = "SDK-HMAC-SHA256"
DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256: Final = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"

HEADER_DATE: Final = "X-Sdk-Date"
HEADER_CONTENT_SHA256: Final = "X-Sdk-Content-Sha256"
HEADER_PROJECT_ID: Final = "X-Project-Id"
HEADER_SECURITY_TOKEN: Final = "X-Security-Token"
HEADER_AUTH_TOKEN: Final = "X-Auth-Token"

# Headers the HTTP stack owns rather than the caller. CORE never signs them because ``requests``
# adds them after signing; signing them here would also break whenever a proxy legitimately rewrites
# a hop-by-hop header. ``authorization`` is the signature itself.
TRANSPORT_HEADERS: Final = frozenset(
    {
        "accept",
        "accept-encoding",
        "authorization",
        "connection",
        "content-length",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

QueryValue = str | bool | int | float | Sequence[str | bool | int | float]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AkSkCredentials:
    """A permanent or temporary (``security_token``) access key pair.

    The access key is an identifier (it travels in every Authorization header) and is shown; the
    secret key and the security token are not.
    """

    access_key: str
    secret_key: str
    security_token: str | None = None

    def __post_init__(self) -> None:
        if not self.access_key or not self.secret_key:
            raise ValueError("AK/SK credentials need both an access key and a secret key")

    def __repr__(self) -> str:
        temporary = ", temporary" if self.security_token else ""
        return f"AkSkCredentials(access_key={self.access_key!r}, secret_key=<hidden>{temporary})"

    __str__ = __repr__


@dataclass(frozen=True)
class TokenCredentials:
    """An IAM token (``X-Subject-Token`` of ``POST /v3/auth/tokens``), valid for 24 hours."""

    token: str

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("token credentials need a non-empty token")

    def __repr__(self) -> str:
        return "TokenCredentials(token=<hidden>)"

    __str__ = __repr__


Credentials = AkSkCredentials | TokenCredentials


# ---------------------------------------------------------------------------------------------------
# The pure algorithm, one step per function, in the order of reference section 5.


def _encode(text: str) -> str:
    # RFC 3986 unreserved characters stay literal; everything else, "/" included, is escaped.
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """The path as signed: decoded, split on ``/``, each segment re-encoded, ending in ``/``.

    An encoded ``%2F`` inside a segment therefore becomes a real ``/`` (CORE does the same).
    """
    url_path = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return url_path if url_path.endswith("/") else url_path + "/"


def _render(value: str | bool | int | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def query_pairs(params: Iterable[tuple[str, QueryValue]]) -> list[tuple[str, str]]:
    """Flatten parameters into decoded (key, value) string pairs; list values repeat their key."""
    pairs: list[tuple[str, str]] = []
    for key, value in params:
        if isinstance(value, str | bool | int | float):
            pairs.append((key, _render(value)))
        else:
            pairs.extend((key, _render(item)) for item in value)
    return pairs


def canonical_query(params: Iterable[tuple[str, QueryValue]]) -> str:
    """The query as signed *and* as sent: pairs sorted on decoded (key, value), then encoded."""
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in sorted(query_pairs(params)))


def signed_header_names(names: Iterable[str]) -> list[str]:
    """Every header name without ``_``, lowercased and sorted (duplicates collapse)."""
    return sorted({name.lower() for name in names if "_" not in name})


def canonical_headers(headers: Sequence[tuple[str, str]], signed: Sequence[str]) -> str:
    """``name:value\\n`` per signed header, value stripped; for a repeated name the last one wins."""
    values = {name.lower(): value.strip() for name, value in headers}
    return "".join(f"{name}:{values[name]}\n" for name in signed)


def payload_hash(body: bytes, content_sha256: str | None = None) -> str:
    """Hex SHA-256 of the body; an empty body always hashes as empty; else an explicit header wins."""
    if not body:
        return EMPTY_SHA256
    if content_sha256:
        return content_sha256
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    uri: str,
    query: str,
    headers: str,
    signed: Sequence[str],
    body_hash: str,
) -> str:
    return f"{method.upper()}\n{uri}\n{query}\n{headers}\n{';'.join(signed)}\n{body_hash}"


def string_to_sign(canonical: str, sdk_date: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(secret_key: str, to_sign: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(access_key: str, signed: Sequence[str], sig: str) -> str:
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed)}, Signature={sig}"


@dataclass(frozen=True)
class Signed:
    """Everything a signature consists of: what to send, and the intermediate strings for tests."""

    headers: tuple[tuple[str, str], ...]
    """The headers to send: the caller's (stripped) plus the ones signing adds, Authorization last."""
    query: str
    uri: str
    signed_headers: tuple[str, ...]
    canonical_request: str
    string_to_sign: str
    signature: str

    @property
    def authorization(self) -> str:
        return dict(self.headers)["Authorization"]


def _find(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    wanted = name.lower()
    found = None
    for key, value in headers:
        if key.lower() == wanted:
            found = value
    return found


def sign(
    *,
    method: str,
    host: str,
    path: str,
    query: Iterable[tuple[str, QueryValue]],
    headers: Sequence[tuple[str, str]],
    body: bytes,
    credentials: AkSkCredentials,
    now: datetime,
) -> Signed:
    """Sign one request as CORE's Signer does; pure, so every step is testable without I/O.

    ``path`` is the path as sent (percent-encoded); ``headers`` are the ones to sign and send, in
    their original spelling. ``X-Sdk-Date`` and ``Host`` are added when absent (an existing
    ``X-Sdk-Date`` is reused, as CORE does); ``X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD`` is added
    for a content type that is neither JSON nor BSON.
    """
    out: list[tuple[str, str]] = [(name, value.strip()) for name, value in headers]
    content_type = _find(out, "Content-Type")
    if content_type and not content_type.startswith(("application/json", "application/bson")):
        out.append((HEADER_CONTENT_SHA256, UNSIGNED_PAYLOAD))
    sdk_date = _find(out, HEADER_DATE)
    if sdk_date is None:
        sdk_date = now.astimezone(UTC).strftime(DATE_FORMAT)
        out.append((HEADER_DATE, sdk_date))
    else:
        # Fail here, with a clear message, rather than with an opaque signature mismatch later.
        datetime.strptime(sdk_date, DATE_FORMAT)
    if _find(out, "Host") is None:
        out.append(("Host", host))

    names = signed_header_names(name for name, _ in out)
    uri = canonical_uri(path)
    canonical_q = canonical_query(query)
    canonical = canonical_request(
        method,
        uri,
        canonical_q,
        canonical_headers(out, names),
        names,
        payload_hash(body, _find(out, HEADER_CONTENT_SHA256)),
    )
    to_sign = string_to_sign(canonical, sdk_date)
    sig = signature(credentials.secret_key, to_sign)
    out.append(("Authorization", authorization(credentials.access_key, names, sig)))
    return Signed(
        headers=tuple(out),
        query=canonical_q,
        uri=uri,
        signed_headers=tuple(names),
        canonical_request=canonical,
        string_to_sign=to_sign,
        signature=sig,
    )


# ---------------------------------------------------------------------------------------------------
# The same, applied to httpx requests.


class AkSkAuth(httpx.Auth):
    """Signs every request with AK/SK; adds ``X-Project-Id`` and, if temporary, ``X-Security-Token``.

    The flow is pure (it yields the signed request and never looks at the response), so it serves the
    sync and the async client alike. The clock is injected so fixed-date vectors reproduce.
    """

    requires_request_body = True

    def __init__(
        self,
        credentials: AkSkCredentials,
        *,
        project_id: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._credentials = credentials
        self._project_id = project_id
        self._clock = clock

    def __repr__(self) -> str:
        return f"AkSkAuth(access_key={self._credentials.access_key!r}, project_id={self._project_id!r})"

    __str__ = __repr__

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._project_id and HEADER_PROJECT_ID not in request.headers:
            request.headers[HEADER_PROJECT_ID] = self._project_id
        if self._credentials.security_token and HEADER_SECURITY_TOKEN not in request.headers:
            request.headers[HEADER_SECURITY_TOKEN] = self._credentials.security_token

        encoding = request.headers.encoding
        to_sign = [
            (name.decode(encoding), value.decode(encoding))
            for name, value in request.headers.raw
            if name.decode(encoding).lower() not in TRANSPORT_HEADERS
        ]
        # The query is read back from the wire form (where httpx wrote spaces as "+") and then
        # replaced by the canonical form, so that what is sent is exactly what was signed.
        wire_query = request.url.query.decode("ascii")
        signed = sign(
            method=request.method,
            host=request.url.netloc.decode("ascii"),
            path=request.url.raw_path.split(b"?", 1)[0].decode("ascii"),
            query=parse_qsl(wire_query, keep_blank_values=True),
            headers=to_sign,
            body=request.content,
            credentials=self._credentials,
            now=self._clock(),
        )
        for name, value in signed.headers:
            request.headers[name] = value
        request.url = request.url.copy_with(query=signed.query.encode("ascii") or None)
        yield request


class TokenAuth(httpx.Auth):
    """Authenticates with an IAM token in ``X-Auth-Token``; nothing is signed."""

    def __init__(self, credentials: TokenCredentials) -> None:
        self._credentials = credentials

    def __repr__(self) -> str:
        return "TokenAuth(token=<hidden>)"

    __str__ = __repr__

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[HEADER_AUTH_TOKEN] = self._credentials.token
        yield request


def auth_for(
    credentials: Credentials,
    *,
    project_id: str | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> httpx.Auth:
    """The ``httpx.Auth`` matching a kind of credentials."""
    if isinstance(credentials, AkSkCredentials):
        return AkSkAuth(credentials, project_id=project_id, clock=clock)
    return TokenAuth(credentials)
