"""Huawei-shaped errors: one exception type that every layer raises, and the codes it carries.

The DMS API answers every failure with ``{"error_code": ..., "error_msg": ...}`` and clients branch on
the code, not the text. Keeping every code here as a named constant means a handler never spells a code
twice, and docs/simulator.md can list them from one place. Codes marked *simulator choice* are not
documented by Huawei for this situation; the reference (section 4) gives the pattern ``DMS.00`` + HTTP
status + three digits, and we follow it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

# --- documented DMS codes (reference section 4) ---
EMPTY_BODY: Final = "DMS.00400004"
INVALID_JSON: Final = "DMS.00400005"
UNSUPPORTED_ENGINE: Final = "DMS.00400007"
UNSUPPORTED_VERSION: Final = "DMS.00400008"
INVALID_PRODUCT: Final = "DMS.00400009"
INVALID_NAME: Final = "DMS.00400010"
DESCRIPTION_TOO_LONG: Final = "DMS.00400011"
VPC_MISSING: Final = "DMS.00400013"
WRONG_STATE: Final = "DMS.00400026"
QUOTA_EXCEEDED: Final = "DMS.00400039"
AZ_NOT_FOUND: Final = "DMS.00400042"
NAME_EXISTS: Final = "DMS.00400060"
INSTANCE_NOT_FOUND: Final = "DMS.00404022"
INVALID_TOKEN: Final = "DMS.10240101"
PROJECT_MISMATCH: Final = "DMS.10240104"

# --- documented API gateway codes ---
AUTH_FAILED: Final = "APIGW.0301"
ROUTE_NOT_FOUND: Final = "APIGW.0101"
GATEWAY_BAD_REQUEST: Final = "APIGW.0201"
THROTTLED: Final = "APIGW.0308"

# --- simulator choices (no documented code exists for these situations) ---
INVALID_PARAMETER: Final = "DMS.00400001"
"""Missing required field, wrong JSON type, out-of-range value, batch too large."""
TASK_NOT_FOUND: Final = "DMS.00404001"
"""A background task id that the instance does not have."""
INTERNAL_ERROR: Final = "DMS.00500000"
"""An unexpected exception inside the simulator (a bug), or an injected 5xx without a chosen code."""


class DmsError(Exception):
    """A failure answered with Huawei's error body; raised anywhere, rendered once by the gateway."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        with_request_id: bool = False,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        # Gateway errors (throttling) carry the request id in the body as well as in the header.
        self.with_request_id = with_request_id

    def body(self, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"error_code": self.code, "error_msg": self.message}
        if self.with_request_id:
            body["request_id"] = request_id
        return body


def invalid_parameter(field: str, reason: str) -> DmsError:
    """400 for a request field that is missing, of the wrong type or out of range; names the field."""
    return DmsError(400, INVALID_PARAMETER, f"Invalid parameter '{field}': {reason}")


def instance_not_found(instance_id: str) -> DmsError:
    return DmsError(404, INSTANCE_NOT_FOUND, f"The instance does not exist: {instance_id}")


def wrong_state(instance_id: str, status: str, operation: str) -> DmsError:
    return DmsError(
        400,
        WRONG_STATE,
        f"This operation ({operation}) is not allowed due to the instance status: instance {instance_id} is {status}",
    )


def route_not_found(method: str, path: str) -> DmsError:
    return DmsError(
        404,
        ROUTE_NOT_FOUND,
        f"The API does not exist or has not been published in the environment: {method} {path}",
    )


def auth_failed(reason: str) -> DmsError:
    return DmsError(401, AUTH_FAILED, f"Incorrect IAM authentication information: {reason}")
