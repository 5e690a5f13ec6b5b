"""The API gateway in front of the DMS handlers: routing, auth, throttling, faults, the call log.

On Huawei Cloud these concerns belong to the API gateway, not to DMS, and they happen in a fixed
order: an unknown API is 404 before anyone checks credentials; credentials are checked before the
throttle counts the call; only then does the service act. Keeping that order in one function makes it
visible and keeps each DMS handler down to "parse, act, answer". Nothing a client sends may crash the
server: anything unexpected becomes a Huawei-shaped 500 and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from dms_simulator import errors, ratelimit, responses, signing
from dms_simulator.auth import Authenticator, Principal
from dms_simulator.calllog import CallRecord
from dms_simulator.errors import DmsError
from dms_simulator.instances import ENGINES
from dms_simulator.simulator import SIMULATOR_KEY, Simulator

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 12 * 1024 * 1024
"""Signed requests may carry at most 12 MB (reference section 4)."""


@dataclass
class Call:
    """Everything a DMS handler needs about one authenticated call."""

    request: web.Request
    sim: Simulator
    params: dict[str, str]
    query: dict[str, str]
    body: bytes
    principal: Principal
    record: CallRecord
    request_id: str

    @property
    def project_id(self) -> str:
        return self.params["project_id"]

    @property
    def instance_id(self) -> str:
        return self.params["instance_id"]

    def json(self, *, required: bool = True) -> Any:
        """The decoded JSON body; ``None`` when it is empty and not required."""
        if not self.body.strip():
            if required:
                raise DmsError(400, errors.EMPTY_BODY, "The request body is empty.")
            return None
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise DmsError(400, errors.INVALID_JSON, f"The request body is not valid JSON: {exc}") from None

    def ok(self, data: Any, status: int = 200) -> web.Response:
        return responses.json_response(data, self.request_id, status)

    def no_content(self) -> web.Response:
        return responses.no_content(self.request_id)


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """``pattern`` segments: literals, ``{engine}`` (reliability|rocketmq) or ``{name}`` (any).

    ``action``: the route matches only calls whose query has this ``action`` (the topic and group
    batch deletes share their create's path and differ by ``?action=delete``); routes without one
    are tried after, for any query."""

    method: str
    pattern: str
    operation: str
    handler: Handler
    action: str | None = None
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.pattern.split("/")))

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        if len(segments) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for expected, actual in zip(self.segments, segments, strict=True):
            if expected.startswith("{"):
                name = expected[1:-1]
                if not actual or (name == "engine" and actual not in ENGINES):
                    return None
                params[name] = actual
            elif expected != actual:
                return None
        return params


def resolve(
    routes: Sequence[Route], method: str, raw_path: str, raw_query: str = ""
) -> tuple[Route, dict[str, str]] | None:
    # Decode per segment, so an encoded "/" stays inside its segment instead of splitting it.
    segments = [unquote(segment) for segment in raw_path.split("/")]
    action = dict(signing.parse_query(raw_query)[::-1]).get("action")  # first occurrence wins
    for route in sorted(routes, key=lambda r: r.action is None):
        if route.method == method and (route.action is None or route.action == action):
            params = route.match(segments)
            if params is not None:
                return route, params
    return None


class _Dropped(Exception):
    """Raised to end a call by closing the connection without an answer."""


class Gateway:
    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = list(routes)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        sim = request.app[SIMULATOR_KEY]
        request_id = responses.new_request_id()
        raw_path, _, raw_query = request.raw_path.partition("?")
        found = resolve(self._routes, request.method, raw_path, raw_query)
        route, params = found if found is not None else (None, {})
        headers = signing.lower_headers(request.headers.items())
        record = sim.calls.start(
            time=sim.clock.now(),
            method=request.method,
            path=raw_path,
            query=raw_query,
            operation=route.operation if route is not None else "unknown",
            request_id=request_id,
        )
        record.access_key = Authenticator.claimed_identity(headers)
        record.project_id = params.get("project_id")
        if "instance_id" in params:
            record.instance_ids = [params["instance_id"]]
        try:
            if route is None:
                raise errors.route_not_found(request.method, raw_path)
            response = await self._serve(request, sim, route, params, raw_path, raw_query, headers, record, request_id)
        except _Dropped:
            record.fault = "drop"
            return _drop(request)
        except DmsError as exc:
            response = responses.error_response(exc, request_id)
            record.error_code = exc.code
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, raw_path)
            error = DmsError(500, errors.INTERNAL_ERROR, "Internal server error.")
            response = responses.error_response(error, request_id)
            record.error_code = error.code
        record.status = response.status
        return response

    async def _serve(
        self,
        request: web.Request,
        sim: Simulator,
        route: Route,
        params: dict[str, str],
        raw_path: str,
        raw_query: str,
        headers: Mapping[str, str],
        record: CallRecord,
        request_id: str,
    ) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise DmsError(413, errors.GATEWAY_BAD_REQUEST, "Request entity too large (at most 12 MB).") from None
        principal = sim.auth.authenticate(
            method=request.method,
            path=raw_path,
            query=raw_query,
            headers=headers,
            body=body,
            now=datetime.now(UTC),
            max_skew_seconds=sim.config.max_clock_skew_seconds,
        )
        record.access_key = record.principal = principal.identity
        sim.auth.authorize(principal, params.get("project_id"), headers)
        self._throttle(sim, principal)

        operation = route.operation
        faults = sim.faults
        delay = faults.latency_seconds(operation)
        if delay > 0:
            record.fault = "latency"
            await asyncio.sleep(delay)
        if faults.take_drop(operation, "before"):
            raise _Dropped
        injected = faults.take_error(operation)
        if injected is not None:
            record.fault = "error"
            status, code = injected
            raise DmsError(status, code, f"Injected fault: the service answered {status}.")

        call = Call(
            request=request,
            sim=sim,
            params=params,
            query=dict(signing.parse_query(raw_query)[::-1]),  # first occurrence wins
            body=body,
            principal=principal,
            record=record,
            request_id=request_id,
        )
        try:
            response = await route.handler(call)
        except DmsError as exc:
            response = responses.error_response(exc, request_id)
            record.error_code = exc.code

        hold = faults.hold_seconds(operation)
        if hold > 0 and response.status < 300:
            # The cloud has acted; the client just does not hear about it yet.
            record.fault = "hold"
            await asyncio.sleep(hold)
        if faults.take_drop(operation, "after"):
            raise _Dropped
        if faults.take_malformed(operation):
            record.fault = "malformed"
            record.error_code = None
            return web.Response(
                status=200,
                body=responses.MALFORMED_BODY,
                content_type=responses.JSON_CONTENT_TYPE,
                headers={responses.REQUEST_ID_HEADER: request_id},
            )
        return response

    @staticmethod
    def _throttle(sim: Simulator, principal: Principal) -> None:
        wait = sim.limiter.acquire(principal.identity, principal.rate_limit)
        if wait is None:
            return
        policy = sim.limiter.policy(principal.rate_limit)
        rate = policy[0] if policy is not None else 0.0
        raise DmsError(
            429,
            errors.THROTTLED,
            "The throttling threshold has been reached: policy user over ratelimit,"
            f"limit:{ratelimit.limit_text(rate)},time:1 second",
            headers={"Retry-After": ratelimit.retry_after_header(wait)},
            with_request_id=True,
        )


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the socket without a response; aiohttp then quietly fails to write the dummy below."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)
