"""The one place where HTTP failures become ``ports.errors``.

Why one place: the services decide on *kinds* of failure (retry later, stop and tell a person, treat
as done); if the mapping were spread over the operations, two of them would sooner or later disagree
about what a 404 or a timeout means. Everything the client can meet ends up here: httpx transport
errors and timeouts (``TransportError``, chained with ``from``), bodies that are not JSON or not the
documented shape (``MalformedResponse``), and error responses, read by their Huawei error code first
and their HTTP status second.

Error bodies are parsed as leniently as Huawei's SDK parses them (``error_code``/``error_msg``,
``errorCode``/``errorMsg``, ``code``/``message``, or any of these one object deeper); without a code
the HTTP status decides. Messages carry the code, the cloud's text, the status and ``X-Request-Id``,
and never a request header.
"""

from __future__ import annotations

import contextlib
import json
import math
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx
import pydantic

from rocketmq_operator.ports import errors

DEFAULT_RETRY_AFTER: Final = 2.0
"""Seconds to wait after a throttling answer without a usable Retry-After (Huawei's FAQ: 2-5 s)."""

MAX_MESSAGE_CHARS: Final = 300

NOT_FOUND_CODE: Final = "DMS.00404022"
THROTTLE_SUFFIX: Final = ".0308"
ROUTE_NOT_FOUND_CODE: Final = "APIGW.0101"

_BY_CODE: Final[dict[str, type[errors.CloudAPIError]]] = {
    NOT_FOUND_CODE: errors.InstanceNotFound,
    "DMS.00400026": errors.WrongState,
    "DMS.00400060": errors.NameConflict,
    # An ACL user that does not exist: 400 (TF's user resources turn exactly this into "deleted").
    "DMS.00500972": errors.NotFound,
    "DMS.00400039": errors.QuotaExceeded,
    "APIGW.0301": errors.AuthFailed,
    "DMS.10240101": errors.AuthFailed,
}

_CODE_MESSAGE_KEYS: Final = (("error_code", "error_msg"), ("errorCode", "errorMsg"), ("code", "message"))


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_MESSAGE_CHARS else flat[: MAX_MESSAGE_CHARS - 3] + "..."


def _code_and_message(body: dict[str, Any]) -> tuple[str, str] | None:
    for code_key, message_key in _CODE_MESSAGE_KEYS:
        code = body.get(code_key)
        if isinstance(code, str | int) and not isinstance(code, bool) and str(code):
            message = body.get(message_key)
            return str(code), "" if message is None else str(message)
    return None


def parse_error_body(content: bytes) -> tuple[str, str, str]:
    """``(code, message, request_id)`` from an error body; empty strings for what is not there.

    A body that is not a JSON object yields its (shortened) text as the message.
    """
    text = content.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        return "", _shorten(text), ""
    if not isinstance(body, dict):
        return "", _shorten(text), ""
    request_id = body.get("request_id")
    found = _code_and_message(body)
    if found is None:
        for value in body.values():
            if isinstance(value, dict):
                found = _code_and_message(value)
                if found is not None:
                    request_id = request_id or value.get("request_id")
                    break
    code, message = found if found is not None else ("", _shorten(text))
    return code, _shorten(message), request_id if isinstance(request_id, str) else ""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float:
    """Seconds to wait per a Retry-After header (delta-seconds or HTTP-date); a default otherwise."""
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        # A date already past means "now".
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return DEFAULT_RETRY_AFTER
    return seconds


def is_throttling(status: int, code: str) -> bool:
    # The gateway writes the code as APIGW.0308, the FAQs as APIG.0308: match the suffix.
    return status == 429 or code.endswith(THROTTLE_SUFFIX)


def error_from_response(response: httpx.Response, *, operation: str) -> errors.CloudAPIError:
    """The error for an HTTP error response (status >= 400)."""
    status = response.status_code
    code, message, body_request_id = parse_error_body(response.content)
    request_id = response.headers.get("X-Request-Id") or body_request_id
    message = message or response.reason_phrase or f"HTTP {status}"
    if is_throttling(status, code):
        return errors.Throttled(
            message,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            operation=operation,
            status=status,
            code=code,
            request_id=request_id,
        )
    kind: type[errors.CloudAPIError]
    if code in _BY_CODE:
        kind = _BY_CODE[code]
    elif status in (401, 403):
        kind = errors.AuthFailed
    elif status == 404 and code.startswith("APIGW."):
        # The gateway knows no such API: the endpoint or path is wrong. Reading this as "instance
        # not found" would let the operator release a finalizer of an instance that still exists.
        kind = errors.InvalidRequest
        message = f"no such API at this endpoint: {message}"
    elif status == 404:
        kind = errors.NotFound
    elif status >= 500:
        kind = errors.ServerError
    else:
        kind = errors.InvalidRequest
    return kind(message, operation=operation, status=status, code=code, request_id=request_id)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error behind ``exc``, if that is what it is."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause
    return None


_UNTRUSTED = "; if the endpoint uses a private CA, pass its certificate as ca_file"
_WRONG_HOST = "; the certificate is for another host: check the endpoint"
# OpenSSL's X509_V_ERR_* codes: which failures a CA bundle fixes, and which a correct host name does.
_CERTIFICATE_HINTS: Final[dict[object, str]] = {
    2: _UNTRUSTED,  # unable to get issuer certificate
    18: _UNTRUSTED,  # self-signed certificate
    19: _UNTRUSTED,  # self-signed certificate in chain
    20: _UNTRUSTED,  # unable to get local issuer certificate
    21: _UNTRUSTED,  # unable to verify the first certificate
    62: _WRONG_HOST,  # hostname mismatch
    64: _WRONG_HOST,  # IP address mismatch
}


def error_from_transport(exc: httpx.HTTPError, *, operation: str) -> errors.TransportError:
    """The error for a failure below HTTP: nothing usable came back."""
    target = ""
    with contextlib.suppress(RuntimeError):  # an httpx error raised before it had a request
        url = exc.request.url
        target = f" {exc.request.method} {url.netloc.decode('ascii')}{url.path}"
    bad_certificate = certificate_failure(exc)
    if bad_certificate is not None:
        reason = str(getattr(bad_certificate, "verify_message", None) or bad_certificate).rstrip(".")
        hint = _CERTIFICATE_HINTS.get(getattr(bad_certificate, "verify_code", None), "")
        return errors.CertificateRefused(
            f"TLS certificate verification failed for{target}: {reason}{hint}", operation=operation
        )
    detail = str(exc) or type(exc).__name__
    return errors.TransportError(f"{type(exc).__name__} on{target}: {_shorten(detail)}", operation=operation)


def malformed(exc: Exception, *, operation: str, response: httpx.Response) -> errors.MalformedResponse:
    """The error for a success response whose body we cannot read."""
    where = f"HTTP {response.status_code}"
    request_id = response.headers.get("X-Request-Id")
    if request_id:
        where += f", request {request_id}"
    if isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"]) or "<body>"
        detail = f"{exc.error_count()} field error(s), first at {loc}: {first['msg']}"
    elif isinstance(exc, ValueError):  # json.JSONDecodeError, UnicodeDecodeError
        detail = f"body is not JSON ({type(exc).__name__})"
    else:
        detail = str(exc)
    return errors.MalformedResponse(f"unreadable response ({where}): {detail}", operation=operation)


@contextmanager
def translating(operation: str) -> Iterator[None]:
    """Turn httpx failures below HTTP into ``TransportError`` (or ``MalformedResponse``)."""
    try:
        yield
    except httpx.DecodingError as exc:
        raise errors.MalformedResponse(
            f"response body could not be decoded: {_shorten(str(exc))}", operation=operation
        ) from exc
    except httpx.HTTPError as exc:
        raise error_from_transport(exc, operation=operation) from exc


def check(response: httpx.Response, *, operation: str) -> None:
    """Raise the mapped error unless the response is a 2xx."""
    if response.status_code >= 400:
        raise error_from_response(response, operation=operation)
    if not 200 <= response.status_code < 300:
        raise errors.MalformedResponse(
            f"unexpected HTTP {response.status_code} {response.reason_phrase}".rstrip(), operation=operation
        )
