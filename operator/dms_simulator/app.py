"""Assemble the aiohttp application: admin routes, the DMS gateway, and a last line of defence.

The middleware here is what makes "nothing a client sends can crash the simulator" true for every
route, admin included: any exception becomes a Huawei-shaped error with an ``X-Request-Id``.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from dms_simulator import admin, api, errors, responses
from dms_simulator.errors import DmsError
from dms_simulator.gateway import MAX_BODY_BYTES, Gateway
from dms_simulator.simulator import SIMULATOR_KEY, Simulator

log = logging.getLogger(__name__)


@web.middleware
async def huawei_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except DmsError as exc:
        response = responses.error_response(exc, responses.new_request_id())
    except web.HTTPException as exc:
        code = errors.ROUTE_NOT_FOUND if exc.status in (404, 405) else errors.GATEWAY_BAD_REQUEST
        response = responses.error_response(DmsError(exc.status, code, exc.reason), responses.new_request_id())
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        error = DmsError(500, errors.INTERNAL_ERROR, "Internal server error.")
        response = responses.error_response(error, responses.new_request_id())
    if responses.REQUEST_ID_HEADER not in response.headers:
        response.headers[responses.REQUEST_ID_HEADER] = responses.new_request_id()
    return response


def build_app(sim: Simulator) -> web.Application:
    app = web.Application(middlewares=[huawei_errors], client_max_size=MAX_BODY_BYTES)
    app[SIMULATOR_KEY] = sim
    admin.register(app)
    app.router.add_route("*", "/{tail:.*}", Gateway(api.ROUTES).handle)
    return app
