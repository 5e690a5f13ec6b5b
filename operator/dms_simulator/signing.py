"""Huawei's AK/SK request signature (``SDK-HMAC-SHA256``), reimplemented from the reference.

The simulator must check signatures the way Huawei's API gateway does, and it must not borrow the
operator's signer (the two must be able to disagree, or the tests prove nothing). So this module is
an independent implementation of reference section 5, checked against its published test vectors
and against the official SDK in the test suite.

Both directions live here because they share every canonicalisation step: ``verify_signature`` is
what the server runs, ``sign_request`` is a small client-side helper used by tests and by anyone who
wants to call the simulator with curl-like tools.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, unquote, urlsplit

ALGORITHM: Final = "SDK-HMAC-SHA256"
DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
EMPTY_PAYLOAD_HASH: Final = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
HEADER_DATE: Final = "X-Sdk-Date"
HEADER_CONTENT_SHA256: Final = "X-Sdk-Content-Sha256"

_AUTH_RE = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=(?P<access>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-fA-F]+)\s*$"
)


class SignatureFormatError(ValueError):
    """The Authorization header is not a well-formed SDK-HMAC-SHA256 header."""


@dataclass(frozen=True)
class Authorization:
    """The three parts of ``Authorization: SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...``."""

    access_key: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization:
    match = _AUTH_RE.match(value.strip())
    if match is None:
        raise SignatureFormatError("expected 'SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...'")
    signed = tuple(match.group("signed").split(";"))
    if any(not name for name in signed):
        raise SignatureFormatError("SignedHeaders contains an empty header name")
    return Authorization(match.group("access"), signed, match.group("signature").lower())


def encode(value: str) -> str:
    """RFC 3986 encoding in which only ``A-Za-z0-9_.-~`` stay literal (``/`` and ``+`` are encoded)."""
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """Decode, re-encode each segment, and end with ``/`` (the wire path has none).

    An encoded ``%2F`` inside one segment therefore becomes a real ``/`` here, exactly as in the SDK.
    """
    uri = "/".join(encode(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Split a raw query string into decoded pairs; ``k`` without ``=`` has the empty value."""
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sort decoded pairs by (key, value), encode both sides, join with ``&``."""
    return "&".join(f"{encode(key)}={encode(value)}" for key, value in sorted(pairs))


def payload_hash(body: bytes, content_sha256: str | None) -> str:
    if not body:
        return EMPTY_PAYLOAD_HASH
    if content_sha256:
        # The SDK signs the literal header value (UNSIGNED-PAYLOAD for non-JSON bodies).
        return content_sha256
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    body: bytes,
) -> str:
    """``METHOD\\nURI\\nQUERY\\nCANON_HEADERS\\nSIGNED_HEADERS\\nPAYLOAD_HASH``.

    ``headers`` must be keyed by lower-case name; every name in ``signed_headers`` must be present.
    """
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(parse_query(query)),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash(body, headers.get(HEADER_CONTENT_SHA256.lower())),
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def compute_signature(secret_key: str, to_sign: str) -> str:
    # No key derivation: the secret key itself is the HMAC key (unlike AWS SigV4).
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def lower_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case header names; the first occurrence of a repeated header wins."""
    result: dict[str, str] = {}
    for name, value in headers:
        result.setdefault(name.lower(), value)
    return result


def verify_signature(
    *,
    auth: Authorization,
    secret_key: str,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> str | None:
    """Recompute the signature from what was received; ``None`` when it matches, else the reason."""
    missing = [name for name in auth.signed_headers if name not in headers]
    if missing:
        return f"signed header(s) missing from the request: {', '.join(missing)}"
    sdk_date = headers.get(HEADER_DATE.lower())
    if sdk_date is None:
        return f"the {HEADER_DATE} header is missing"
    canonical = canonical_request(
        method=method,
        path=path,
        query=query,
        headers=headers,
        signed_headers=auth.signed_headers,
        body=body,
    )
    expected = compute_signature(secret_key, string_to_sign(canonical, sdk_date.strip()))
    if not hmac.compare_digest(expected, auth.signature):
        return "the signature does not match"
    return None


def parse_sdk_date(value: str) -> datetime:
    return datetime.strptime(value.strip(), DATE_FORMAT).replace(tzinfo=UTC)


def format_sdk_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def sign_request(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    sdk_date: str | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus ``X-Sdk-Date``, ``Host`` and ``Authorization``, as the SDK's signer would.

    Send the URL exactly as given (its query may be in any order: the canonical form sorts it).
    """
    result = {name: value.strip() for name, value in headers.items()}
    names = {name.lower() for name in result}
    split = urlsplit(url)
    if "content-type" in names:
        content_type = next(v for k, v in result.items() if k.lower() == "content-type")
        if not content_type.startswith(("application/json", "application/bson")):
            result[HEADER_CONTENT_SHA256] = UNSIGNED_PAYLOAD
    if HEADER_DATE.lower() not in names:
        result[HEADER_DATE] = sdk_date or format_sdk_date(datetime.now(UTC))
    if "host" not in names:
        result["Host"] = split.netloc
    lowered = lower_headers(result.items())
    signed = sorted(name for name in lowered if "_" not in name)
    canonical = canonical_request(
        method=method,
        path=split.path or "/",
        query=split.query,
        headers=lowered,
        signed_headers=signed,
        body=body,
    )
    signature = compute_signature(secret_key, string_to_sign(canonical, lowered[HEADER_DATE.lower()]))
    result["Authorization"] = (
        f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return result
