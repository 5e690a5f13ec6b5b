"""How every answer looks on the wire: compact JSON, ``X-Request-Id``, Huawei's error body.

Huawei's SDK reads the request id from the ``X-Request-Id`` header and the error from
``error_code``/``error_msg``; one module builds all of them so no path can forget either.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

from aiohttp import web

from dms_simulator.errors import DmsError

REQUEST_ID_HEADER: Final = "X-Request-Id"
JSON_CONTENT_TYPE: Final = "application/json"


def new_request_id() -> str:
    return uuid.uuid4().hex


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def json_response(data: Any, request_id: str, status: int = 200) -> web.Response:
    response = web.json_response(data, status=status, dumps=_dumps)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def no_content(request_id: str) -> web.Response:
    return web.Response(status=204, headers={REQUEST_ID_HEADER: request_id})


def error_response(error: DmsError, request_id: str) -> web.Response:
    response = json_response(error.body(request_id), request_id, status=error.status)
    response.headers.update(error.headers)
    return response


MALFORMED_BODY: Final = b'{"instances": [{"instance_id": "'
"""What a malformed-body fault sends with 200: JSON cut off mid-string."""
