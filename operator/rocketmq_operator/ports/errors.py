"""The cloud error tree: every failure of a cloud call is one of these, never an httpx error.

Why a tree of our own (as httpx and kopf do): services and the reconciler decide on *kinds* of
failure (retry later, give up and tell a person, treat as done), and must not know about HTTP. The
adapter maps every transport error and every error response here, in one place.

    CloudError
    ├── TransportError          the request may not have reached the cloud (connect, timeout, reset)
    │   └── CertificateRefused  the endpoint's TLS certificate is not trusted   (terminal)
    ├── MalformedResponse       the cloud answered something we cannot read
    └── CloudAPIError           the cloud answered with an error status and (usually) an error code
        ├── NotFound            DMS.00404022 / 404
        ├── WrongState          DMS.00400026: not allowed in the instance's current status
        ├── NameConflict        DMS.00400060: an instance with that name exists
        ├── Throttled           429 / any *.0308 code; carries retry_after
        ├── QuotaExceeded       DMS.00400039            (terminal)
        ├── AuthFailed          401/403, APIGW.0301     (terminal)
        ├── InvalidRequest      other 4xx               (terminal)
        └── ServerError         5xx

``terminal`` errors cannot succeed by retrying the same request: they become ``Stalled`` with the
error's ``reason``. Messages carry the cloud's code, text and request id, never a credential.
"""

from __future__ import annotations


class CloudError(Exception):
    """Base of every cloud failure."""

    reason: str = "CloudError"
    terminal: bool = False

    def __init__(self, message: str, *, operation: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation

    def __str__(self) -> str:
        return f"{self.operation}: {self.message}" if self.operation else self.message


class TransportError(CloudError):
    """No usable answer: connection refused or reset, DNS, TLS, timeout."""

    reason = "CloudUnreachable"


class CertificateRefused(TransportError):
    """TLS verification refused the endpoint's certificate: it fails the same way until someone
    changes the configuration (``ca_file``, or the endpoint), so it is terminal, not retried."""

    reason = "TLSVerificationFailed"
    terminal = True


class MalformedResponse(CloudError):
    """The cloud answered, but the body does not match the documented shape."""

    reason = "MalformedResponse"


class CloudAPIError(CloudError):
    """The cloud answered with an error status."""

    reason = "CloudAPIError"

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        status: int = 0,
        code: str = "",
        request_id: str = "",
    ) -> None:
        super().__init__(message, operation=operation)
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        code = f" {self.code}" if self.code else ""
        request = f" (request {self.request_id})" if self.request_id else ""
        return f"{where}HTTP {self.status}{code}: {self.message}{request}"


class NotFound(CloudAPIError):
    reason = "NotFound"


class InstanceNotFound(NotFound):
    """The instance itself does not exist (``DMS.00404022``), as opposed to a topic or group of it:
    a call on a child of a deleted instance answers so, and every child is gone with it."""


class WrongState(CloudAPIError):
    reason = "WrongState"


class NameConflict(CloudAPIError):
    reason = "NameConflict"


class Throttled(CloudAPIError):
    reason = "Throttled"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float = 1.0,
        operation: str = "",
        status: int = 429,
        code: str = "",
        request_id: str = "",
    ) -> None:
        super().__init__(message, operation=operation, status=status, code=code, request_id=request_id)
        self.retry_after = retry_after


class QuotaExceeded(CloudAPIError):
    reason = "QuotaExceeded"
    terminal = True


class AuthFailed(CloudAPIError):
    reason = "AuthFailed"
    terminal = True


class InvalidRequest(CloudAPIError):
    reason = "InvalidRequest"
    terminal = True


class ServerError(CloudAPIError):
    reason = "CloudServerError"
