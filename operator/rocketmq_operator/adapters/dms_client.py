"""The DMS for RocketMQ client: every port of ``ports.protocol`` over an ``httpx.AsyncClient``.

Why it looks like this: every operation is one table row (name, retry safety, method, SDK path) plus
the wire model it sends and the one it reads, and all of them go through ``_call``, which owns what
must never differ between operations: the shared token bucket, the retry policy, the failure mapping
(``failures``) and the per-attempt record for metrics.

Wire conventions copied from Huawei's SDK: ``Content-Type: application/json`` on every call (GET and
DELETE included), paths exactly as ``huaweicloudsdkrocketmq`` spells them, and compact JSON bodies
whose exact bytes are what the signer hashes.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, Self, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from rocketmq_operator.adapters import failures, retrying, signing
from rocketmq_operator.adapters.lanes import Lanes
from rocketmq_operator.adapters.ratelimit import TokenBucket
from rocketmq_operator.adapters.retrying import RetryPolicy, Safety
from rocketmq_operator.core import cloud
from rocketmq_operator.ports import errors, protocol
from rocketmq_operator.ports.protocol import Account, CallRecorder

USER_AGENT: Final = "rocketmq-instance-operator"
JSON: Final = "application/json"
CONNECTIONS: Final = 32
"""Connections to the cloud per account, and requests in flight at once: at the cloud's usual
latency 32 carry several hundred requests a second, more than an account's rate limit allows."""

ModelT = TypeVar("ModelT", bound=cloud.WireResponse)
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class Operation:
    """One kind of call: its name in metrics and logs, and what repeating it may do.

    ``serves_many``: its answer serves many CRs (a page of a list, a batch). It goes ahead of the
    calls that serve one in the account's queues (``lanes``): a list page queued behind thousands of
    shows left the snapshot stale, and every CR then asked show itself.
    """

    name: str
    safety: Safety
    serves_many: bool = False


CREATE: Final = Operation("create", Safety.UNSAFE)
SHOW: Final = Operation("show", Safety.READ)
LIST: Final = Operation("list", Safety.READ, serves_many=True)
UPDATE: Final = Operation("update", Safety.UNSAFE)
DELETE: Final = Operation("delete", Safety.IDEMPOTENT)
BATCH_DELETE: Final = Operation("batch_delete", Safety.IDEMPOTENT, serves_many=True)
DELETE_ALL_FAILED: Final = Operation("delete_all_failed", Safety.IDEMPOTENT, serves_many=True)
RESIZE: Final = Operation("resize", Safety.UNSAFE)
RESTART: Final = Operation("restart", Safety.UNSAFE)
TAGS_CREATE: Final = Operation("tags_create", Safety.UNSAFE)
TAGS_DELETE: Final = Operation("tags_delete", Safety.UNSAFE)
TAGS_LIST: Final = Operation("tags_list", Safety.READ)
RECYCLE_LIST: Final = Operation("recycle_list", Safety.READ, serves_many=True)
RECYCLE_RESTORE: Final = Operation("recycle_restore", Safety.UNSAFE)
TOPIC_CREATE: Final = Operation("topic_create", Safety.UNSAFE)
TOPIC_LIST: Final = Operation("topic_list", Safety.READ, serves_many=True)
TOPIC_UPDATE: Final = Operation("topic_update", Safety.UNSAFE)
TOPIC_BATCH_DELETE: Final = Operation("topic_batch_delete", Safety.IDEMPOTENT, serves_many=True)
GROUP_CREATE: Final = Operation("group_create", Safety.UNSAFE)
GROUP_LIST: Final = Operation("group_list", Safety.READ, serves_many=True)
GROUP_UPDATE: Final = Operation("group_update", Safety.UNSAFE)
GROUP_BATCH_DELETE: Final = Operation("group_batch_delete", Safety.IDEMPOTENT, serves_many=True)
TASK_SHOW: Final = Operation("task_show", Safety.READ)
USER_CREATE: Final = Operation("user_create", Safety.UNSAFE)
USER_LIST: Final = Operation("user_list", Safety.READ, serves_many=True)
USER_UPDATE: Final = Operation("user_update", Safety.IDEMPOTENT)
USER_DELETE: Final = Operation("user_delete", Safety.IDEMPOTENT)

OPERATIONS: Final = (
    CREATE,
    SHOW,
    LIST,
    UPDATE,
    DELETE,
    BATCH_DELETE,
    DELETE_ALL_FAILED,
    RESIZE,
    RESTART,
    TAGS_CREATE,
    TAGS_DELETE,
    TAGS_LIST,
    RECYCLE_LIST,
    RECYCLE_RESTORE,
    TOPIC_CREATE,
    TOPIC_LIST,
    TOPIC_UPDATE,
    TOPIC_BATCH_DELETE,
    GROUP_CREATE,
    GROUP_LIST,
    GROUP_UPDATE,
    GROUP_BATCH_DELETE,
    TASK_SHOW,
    USER_CREATE,
    USER_LIST,
    USER_UPDATE,
    USER_DELETE,
)


class _NullRecorder:
    def record(self, *, operation: str, outcome: str, seconds: float) -> None:
        pass


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def _segment(value: str, *, what: str, operation: Operation) -> str:
    # An empty id would turn "show one" into "list all"; an unescaped "/" or ".." would reach
    # another resource. Both are bugs of the caller, refused before anything is sent.
    if not value:
        raise errors.InvalidRequest(f"{what} must not be empty", operation=operation.name)
    return quote(value, safe="")


def _body(model: cloud.WireRequest) -> bytes:
    return json.dumps(model.to_wire(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _model(kind: type[ModelT], response: httpx.Response) -> ModelT:
    return kind.model_validate_json(response.content)


def _model_or_default(kind: type[ModelT], response: httpx.Response) -> ModelT:
    # For calls whose documented success status and body we never saw confirmed (reference
    # "200*"): an empty success is still a success.
    return kind.model_validate_json(response.content) if response.content.strip() else kind()


def _ignore(response: httpx.Response) -> None:
    return None


def _first_task(response: httpx.Response) -> cloud.TaskView:
    # Showing one task answers a list of one; an empty list is no answer to the question asked.
    tasks = _model(cloud.TaskListResponse, response).tasks
    if not tasks:
        request_id = response.headers.get("X-Request-Id")
        where = f"HTTP {response.status_code}" + (f", request {request_id}" if request_id else "")
        raise errors.MalformedResponse(f"unreadable response ({where}): it lists no task", operation=TASK_SHOW.name)
    return tasks[0]


class DmsClient:
    """An async client for one account (endpoint + project) of DMS for RocketMQ.

    Use ``build_client`` to make one; this constructor takes a ready ``httpx.AsyncClient`` (whose
    base URL is the endpoint and whose auth signs), so tests can hand it a ``MockTransport``.

    Args:
        http: the HTTP client; closed by ``aclose`` when ``owns_http``.
        account: the endpoint and project this client speaks for.
        retry: attempts, deadline and backoff.
        bucket: the account's shared rate limiter; ``None`` for no client-side limit.
        gate: fails calls unsent while the account's credentials are refused; a fresh one by default.
        recorder: receives one record per attempt.
        clock, sleep, jitter: injectable time and randomness (loop time, ``asyncio.sleep``,
            ``random.random`` by default).
        connections: requests in flight at once (``CONNECTIONS`` by default); the rest queue.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        account: Account,
        retry: RetryPolicy | None = None,
        bucket: TokenBucket | None = None,
        gate: retrying.CredentialGate | None = None,
        recorder: CallRecorder | None = None,
        clock: Callable[[], float] = _loop_time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        owns_http: bool = True,
        connections: int | None = None,
    ) -> None:
        self._http = http
        # httpcore's pool rescans every queued request against every connection each time one
        # finishes: with a thousand CRs asking at once that quadratic scan took 70 % of the
        # operator's CPU and stalled it for minutes. Requests wait here instead, in arrival order
        # (calls that serve many CRs first), for a pool no wider than this.
        self._slots = Lanes(connections or CONNECTIONS)
        self._account = account
        self._retry = retry or RetryPolicy()
        self._bucket = bucket
        self._recorder: CallRecorder = recorder or _NullRecorder()
        self._clock = clock
        self._gate = gate or retrying.CredentialGate(clock=clock)
        self._sleep = sleep
        self._jitter = jitter
        self._owns_http = owns_http
        self._in_flight: dict[httpx.AsyncClient, int] = {}
        self._retired: set[httpx.AsyncClient] = set()
        if not account.project_id:
            raise ValueError("a DMS client needs a project id")
        self._pid = quote(account.project_id, safe="")

    def __repr__(self) -> str:
        return f"DmsClient({self._account})"

    @property
    def account(self) -> Account:
        return self._account

    @property
    def bucket(self) -> TokenBucket | None:
        return self._bucket

    def throttling(self) -> str | None:
        """A sentence while the cloud throttles this account (a 429 still slows the bucket), else None.

        Deliberately free of numbers that move (the recovering rate, seconds since the 429): CRs put
        it in their conditions, and a text that changes every pass would rewrite them every pass.
        """
        if self._bucket is None or not self._bucket.slowed_down():
            return None
        return (
            f"the cloud is throttling this account (HTTP 429): requests are paced below "
            f"{self._bucket.rate:g}/s until it stops"
        )

    async def aclose(self) -> None:
        retired, self._retired = self._retired, set()
        for http in retired:
            await http.aclose()
        if self._owns_http:
            await self._http.aclose()

    async def rotate(self, http: httpx.AsyncClient) -> None:
        """Speak through ``http`` from now on (new credentials or trust), with the same bucket and retries.

        Why not a new client: the token bucket, the queue and the services holding this client stay.
        The old connections close once the requests already on them are answered (never cut, or a
        create could be sent and its answer lost); the credential gate opens, since what it refused
        were the old credentials.
        """
        old, self._http = self._http, http
        self._gate.accepted()  # open, keeping its timings
        if self._owns_http and old is not http:
            if self._in_flight.get(old, 0):
                self._retired.add(old)
            else:
                await old.aclose()
        self._owns_http = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -------------------------------------------------------------------------------------------
    # The one road every call takes.

    async def _attempt(
        self,
        operation: Operation,
        method: str,
        path: str,
        params: dict[str, str] | None,
        content: bytes | None,
        parse: Callable[[httpx.Response], ResultT],
    ) -> ResultT:
        with failures.translating(operation.name):
            async with self._slots.hold(first=operation.serves_many):
                http = self._http
                self._in_flight[http] = self._in_flight.get(http, 0) + 1
                try:
                    response = await http.request(
                        method, path, params=params, content=content, headers={"Content-Type": JSON}
                    )
                finally:
                    await self._done_with(http)
        failures.check(response, operation=operation.name)
        try:
            return parse(response)
        except (pydantic.ValidationError, ValueError) as exc:
            raise failures.malformed(exc, operation=operation.name, response=response) from exc

    async def _done_with(self, http: httpx.AsyncClient) -> None:
        left = self._in_flight[http] - 1
        if left:
            self._in_flight[http] = left
            return
        del self._in_flight[http]
        if http in self._retired:
            self._retired.discard(http)
            await http.aclose()

    async def _call(
        self,
        operation: Operation,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], ResultT],
        *,
        params: dict[str, str] | None = None,
        body: cloud.WireRequest | None = None,
    ) -> ResultT:
        content = _body(body) if body is not None else None
        started = self._clock()
        attempt = 0
        throttled = 0
        while True:
            attempt += 1
            self._gate.check(operation.name)
            if self._bucket is not None:
                await self._bucket.acquire(first=operation.serves_many)
            sent = self._clock()
            try:
                result = await self._attempt(operation, method, path, params, content, parse)
            except errors.CloudError as error:
                self._recorder.record(operation=operation.name, outcome=error.reason, seconds=self._clock() - sent)
                if isinstance(error, errors.AuthFailed):
                    self._gate.refused(error)
                if isinstance(error, errors.Throttled):
                    throttled += 1
                await self._before_retry(operation, error, attempt, started, throttled)
                continue
            self._gate.accepted()
            self._recorder.record(operation=operation.name, outcome="ok", seconds=self._clock() - sent)
            return result

    async def _before_retry(
        self, operation: Operation, error: errors.CloudError, attempt: int, started: float, throttled: int
    ) -> None:
        """Wait before the next attempt, or re-raise ``error`` when there is to be none."""
        shared_pause = False
        if isinstance(error, errors.Throttled) and self._bucket is not None:
            # Everyone on this account backs off, and the account sends slower afterwards.
            self._bucket.throttled(error.retry_after)
            shared_pause = True
        if attempt >= self._retry.max_attempts or not retrying.retryable(operation.safety, error):
            raise error
        if throttled > self._retry.max_throttled_retries:
            raise error
        delay = self._retry.delay(error, attempt, self._jitter())
        if self._clock() + delay - started > self._retry.deadline:
            raise error
        if not shared_pause:
            await self._sleep(delay)
        # else: the next acquire() waits out the pause, together with every other caller.

    # -------------------------------------------------------------------------------------------
    # The operations of the port, with the SDK's paths.

    def _instance(self, instance_id: str, operation: Operation) -> str:
        return _segment(instance_id, what="instance id", operation=operation)

    async def create_instance(self, request: cloud.CreateInstanceRequest) -> str:
        path = f"/v2/{cloud.ENGINE}/{self._pid}/instances"
        response = await self._call(
            CREATE, "POST", path, lambda r: _model(cloud.CreateInstanceResponse, r), body=request
        )
        return response.instance_id

    async def show_instance(self, instance_id: str) -> cloud.InstanceView:
        path = f"/v2/{self._pid}/instances/{self._instance(instance_id, SHOW)}"
        return await self._call(SHOW, "GET", path, lambda r: _model(cloud.InstanceView, r))

    async def list_instances(self, query: cloud.ListQuery) -> cloud.ListInstancesResponse:
        path = f"/v2/{self._pid}/instances"
        return await self._call(
            LIST, "GET", path, lambda r: _model(cloud.ListInstancesResponse, r), params=query.to_params()
        )

    async def update_instance(self, instance_id: str, request: cloud.UpdateInstanceRequest) -> None:
        """PUT the changes (204). An empty change is not sent: the cloud would refuse ``{}``."""
        path = f"/v2/{self._pid}/instances/{self._instance(instance_id, UPDATE)}"
        if request.is_empty():
            return
        await self._call(UPDATE, "PUT", path, _ignore, body=request)

    async def delete_instance(self, instance_id: str) -> None:
        path = f"/v2/{self._pid}/instances/{self._instance(instance_id, DELETE)}"
        await self._call(DELETE, "DELETE", path, _ignore)

    async def delete_many(
        self, instance_ids: Sequence[str], *, force_delete: bool | None = None
    ) -> list[cloud.BatchActionResult]:
        """One batch delete of exactly these ids (none: no call). 200 brings results, 204 none."""
        if not instance_ids:
            return []
        request = cloud.BatchActionRequest(instances=list(instance_ids), force_delete=force_delete)
        response = await self._call(
            BATCH_DELETE,
            "POST",
            f"/v2/{self._pid}/instances/action",
            lambda r: _model_or_default(cloud.BatchActionResponse, r),
            body=request,
        )
        return list(response.results)

    async def delete_all_failed(self, *, force_delete: bool | None = None) -> None:
        """Delete every instance of the project whose creation failed.

        Newer documentation answers 204, older 200 with results; there is nothing per instance to
        report either way, so the body is not read.
        """
        request = cloud.BatchActionRequest(all_failure=cloud.ENGINE, force_delete=force_delete)
        await self._call(DELETE_ALL_FAILED, "POST", f"/v2/{self._pid}/instances/action", _ignore, body=request)

    async def resize_instance(self, instance_id: str, request: cloud.ResizeRequest) -> cloud.ResizeResponse:
        path = f"/v2/{cloud.ENGINE}/{self._pid}/instances/{self._instance(instance_id, RESIZE)}/extend"
        return await self._call(
            RESIZE, "POST", path, lambda r: _model_or_default(cloud.ResizeResponse, r), body=request
        )

    async def restart_instance(self, instance_id: str) -> cloud.RestartResponse:
        # The engine comes *after* the project here, and the SDK sends no body.
        path = f"/v2/{self._pid}/{cloud.ENGINE}/instances/{self._instance(instance_id, RESTART)}/restart"
        return await self._call(RESTART, "POST", path, lambda r: _model_or_default(cloud.RestartResponse, r))

    async def _tag_action(
        self,
        operation: Operation,
        instance_id: str,
        action: Literal["create", "delete"],
        tags: Sequence[cloud.Tag],
    ) -> None:
        path = f"/v2/{self._pid}/rocketmq/{self._instance(instance_id, operation)}/tags/action"
        request = cloud.TagActionRequest(action=action, tags=list(tags))
        await self._call(operation, "POST", path, _ignore, body=request)

    async def create_tags(self, instance_id: str, tags: Sequence[cloud.Tag]) -> None:
        await self._tag_action(TAGS_CREATE, instance_id, "create", tags)

    async def delete_tags(self, instance_id: str, tags: Sequence[cloud.Tag]) -> None:
        await self._tag_action(TAGS_DELETE, instance_id, "delete", tags)

    async def list_tags(self, instance_id: str) -> list[cloud.Tag]:
        path = f"/v2/{self._pid}/rocketmq/{self._instance(instance_id, TAGS_LIST)}/tags"
        response = await self._call(TAGS_LIST, "GET", path, lambda r: _model(cloud.TagListResponse, r))
        return list(response.tags)

    async def list_recycle_bin(self) -> cloud.RecycleBinResponse:
        path = f"/v2/{self._pid}/recycle"
        return await self._call(RECYCLE_LIST, "GET", path, lambda r: _model(cloud.RecycleBinResponse, r))

    async def restore_from_recycle_bin(self, instance_ids: Sequence[str]) -> list[cloud.RestoreResult]:
        request = cloud.RestoreRequest(instances=list(instance_ids))
        response = await self._call(
            RECYCLE_RESTORE,
            "POST",
            f"/v2/{self._pid}/recycle",
            lambda r: _model_or_default(cloud.RestoreResponse, r),
            body=request,
        )
        return list(response.results)

    # Topics and consumer groups (reference section 9): all under the instance's own path.

    def _children(self, instance_id: str, kind: protocol.ChildKind, operation: Operation) -> str:
        collection = "topics" if kind == "topic" else "groups"
        return f"/v2/{self._pid}/instances/{self._instance(instance_id, operation)}/{collection}"

    def _child(self, instance_id: str, kind: protocol.ChildKind, name: str, operation: Operation) -> str:
        # Names may hold "%" and "|": escaped, so "%2F" in a name is never read as a "/".
        segment = _segment(name, what=f"{kind} name", operation=operation)
        return f"{self._children(instance_id, kind, operation)}/{segment}"

    async def list_topics(self, instance_id: str, page: cloud.ChildPage) -> cloud.ListTopicsResponse:
        path = self._children(instance_id, "topic", TOPIC_LIST)
        return await self._call(
            TOPIC_LIST, "GET", path, lambda r: _model(cloud.ListTopicsResponse, r), params=page.to_params()
        )

    async def create_topic(self, instance_id: str, request: cloud.CreateTopicRequest) -> None:
        # The answer is only {"id": name}: nothing the caller does not know already.
        path = self._children(instance_id, "topic", TOPIC_CREATE)
        await self._call(TOPIC_CREATE, "POST", path, _ignore, body=request)

    async def update_topic(self, instance_id: str, name: str, request: cloud.UpdateTopicRequest) -> None:
        """PUT the changes (204). An empty change is not sent, as for instances."""
        path = self._child(instance_id, "topic", name, TOPIC_UPDATE)
        if request.is_empty():
            return
        await self._call(TOPIC_UPDATE, "PUT", path, _ignore, body=request)

    async def list_groups(self, instance_id: str, page: cloud.ChildPage) -> cloud.ListGroupsResponse:
        path = self._children(instance_id, "group", GROUP_LIST)
        return await self._call(
            GROUP_LIST, "GET", path, lambda r: _model(cloud.ListGroupsResponse, r), params=page.to_params()
        )

    async def create_group(self, instance_id: str, request: cloud.CreateGroupRequest) -> None:
        path = self._children(instance_id, "group", GROUP_CREATE)
        await self._call(GROUP_CREATE, "POST", path, _ignore, body=request)

    async def update_group(self, instance_id: str, name: str, request: cloud.UpdateGroupRequest) -> None:
        # Never empty: enabled, broadcast and retry_max_time are required fields.
        path = self._child(instance_id, "group", name, GROUP_UPDATE)
        await self._call(GROUP_UPDATE, "PUT", path, _ignore, body=request)

    async def delete_children(self, instance_id: str, kind: protocol.ChildKind, names: Sequence[str]) -> str:
        """One batch delete (none for no names: the cloud refuses an empty list); the job id."""
        if not names:
            return ""
        operation = TOPIC_BATCH_DELETE if kind == "topic" else GROUP_BATCH_DELETE
        path = self._children(instance_id, kind, operation)
        request: cloud.WireRequest = (
            cloud.BatchDeleteTopicsRequest(topics=list(names))
            if kind == "topic"
            else cloud.BatchDeleteGroupsRequest(groups=list(names))
        )
        response = await self._call(
            operation,
            "POST",
            path,
            lambda r: _model_or_default(cloud.JobResponse, r),
            params={"action": "delete"},
            body=request,
        )
        return response.job_id

    async def show_task(self, instance_id: str, task_id: str) -> cloud.TaskView:
        task = _segment(task_id, what="task id", operation=TASK_SHOW)
        path = f"/v2/{self._pid}/instances/{self._instance(instance_id, TASK_SHOW)}/tasks/{task}"
        return await self._call(TASK_SHOW, "GET", path, _first_task)

    # ACL users (docs/simulator.md "ACL users"): one path each, no batch. The secret key travels only
    # in the request body (``to_wire``); no error message echoes a request body.

    def _users(self, instance_id: str, operation: Operation) -> str:
        return f"/v2/{self._pid}/instances/{self._instance(instance_id, operation)}/users"

    def _user(self, instance_id: str, name: str, operation: Operation) -> str:
        return f"{self._users(instance_id, operation)}/{_segment(name, what='user name', operation=operation)}"

    async def list_users(self, instance_id: str, page: cloud.ChildPage) -> cloud.ListUsersResponse:
        path = self._users(instance_id, USER_LIST)
        return await self._call(
            USER_LIST, "GET", path, lambda r: _model(cloud.ListUsersResponse, r), params=page.to_params()
        )

    async def create_user(self, instance_id: str, request: cloud.CreateUserRequest) -> None:
        path = self._users(instance_id, USER_CREATE)
        await self._call(USER_CREATE, "POST", path, _ignore, body=request)

    async def update_user(self, instance_id: str, name: str, request: cloud.UpdateUserRequest) -> None:
        """PUT the changes (200); an empty change is not sent. Repeating it sets the same values again."""
        path = self._user(instance_id, name, USER_UPDATE)
        if request.is_empty():
            return
        await self._call(USER_UPDATE, "PUT", path, _ignore, body=request)

    async def delete_user(self, instance_id: str, name: str) -> None:
        """One user (the cloud has no batch for users); an unknown one raises ``NotFound``."""
        path = self._user(instance_id, name, USER_DELETE)
        await self._call(USER_DELETE, "DELETE", path, _ignore)


# -----------------------------------------------------------------------------------------------
# Building one from settings.


@dataclass(frozen=True)
class Timeouts:
    """Per-attempt timeouts in seconds (httpx's four phases); ``pool=None`` waits for a connection."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float | None = 10.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


def tls_verification(
    *, verify: bool = True, ca_file: str | os.PathLike[str] | None = None, ca_data: str | None = None
) -> ssl.SSLContext | bool:
    """What httpx should verify server certificates with.

    Verification is on by default (httpx's bundled roots); ``ca_file`` (a path) or ``ca_data`` (PEM text,
    an account's ``spec.caBundle``) trusts exactly that CA bundle instead (a private CA, or the
    simulator's). ``verify=False`` turns verification off and is meant for throwaway test setups only.
    """
    if not verify:
        if ca_file is not None or ca_data is not None:
            raise ValueError("ca_file makes no sense with verify=False (nor does ca_data)")
        return False
    if ca_file is None and ca_data is None:
        return True
    if ca_file is not None and ca_data is not None:
        raise ValueError("give ca_file or ca_data, not both")
    if ca_data is not None:
        if not ca_data.strip():
            # ssl would take "" as no bundle at all and trust the public roots: the opposite of asked.
            raise ValueError("the CA bundle is empty")
        try:
            return ssl.create_default_context(cadata=ca_data)
        except (ssl.SSLError, ValueError) as exc:
            raise ValueError("the CA bundle holds no PEM certificate this process can read") from exc
    assert ca_file is not None
    return ssl.create_default_context(cafile=os.fspath(ca_file))


def build_http(
    *,
    endpoint: str,
    project_id: str,
    credentials: signing.Credentials,
    tls: ssl.SSLContext | bool = True,
    timeouts: Timeouts | None = None,
    user_agent: str = USER_AGENT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The HTTP side of one account's client: base URL, signing, TLS, timeouts, a pool as wide as the
    client's queue. ``DmsClient.rotate`` takes a new one when credentials or trust change."""
    url = httpx.URL(endpoint)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"endpoint must be an http(s) URL with a host, got {endpoint!r}")
    return httpx.AsyncClient(
        base_url=url,
        limits=httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS),
        auth=signing.auth_for(credentials, project_id=project_id),
        headers={"User-Agent": user_agent},
        timeout=(timeouts or Timeouts()).to_httpx(),
        verify=tls,
        follow_redirects=False,
        transport=transport,
    )


def build_client(
    *,
    endpoint: str,
    project_id: str,
    credentials: signing.Credentials,
    security_token: str | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    ca_data: str | None = None,
    verify: bool = True,
    timeouts: Timeouts | None = None,
    rate: float | None = 5.0,
    burst: int = 10,
    bucket: TokenBucket | None = None,
    retry: RetryPolicy | None = None,
    recorder: CallRecorder | None = None,
    user_agent: str = USER_AGENT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> DmsClient:
    """A ready ``DmsClient`` for one account.

    Args:
        endpoint: ``https://dms.{region}.myhuaweicloud.com`` (or the simulator's URL).
        project_id: the project every path is scoped to.
        credentials: AK/SK (requests are signed) or an IAM token (sent as ``X-Auth-Token``).
        security_token: makes AK/SK credentials temporary ones (sent as ``X-Security-Token``).
        ca_file, ca_data, verify: TLS trust; see ``tls_verification``.
        timeouts: per-attempt timeouts; ``Timeouts()`` by default.
        rate, burst: the account's token bucket (requests per second, burst size); ``rate=None``
            disables client-side limiting. Ignored when a shared ``bucket`` is given.
        retry: attempts, deadline, backoff; ``RetryPolicy()`` by default.
        recorder: receives a record per attempt (metrics).
        transport: replaces the network (tests).
    """
    if security_token is not None:
        if not isinstance(credentials, signing.AkSkCredentials):
            raise ValueError("a security token belongs to temporary AK/SK credentials, not to a token")
        credentials = signing.AkSkCredentials(
            credentials.access_key, credentials.secret_key, security_token=security_token
        )
    if bucket is None and rate is not None:
        bucket = TokenBucket(rate, burst)
    http = build_http(
        endpoint=endpoint,
        project_id=project_id,
        credentials=credentials,
        tls=tls_verification(verify=verify, ca_file=ca_file, ca_data=ca_data),
        timeouts=timeouts,
        user_agent=user_agent,
        transport=transport,
    )
    url = http.base_url
    return DmsClient(
        http,
        account=Account(endpoint=str(url).rstrip("/"), project_id=project_id),
        retry=retry,
        bucket=bucket,
        recorder=recorder,
    )


if TYPE_CHECKING:
    # mypy proves here that DmsClient satisfies each port, and names the one it does not; a port
    # added to ports.protocol belongs here too (tests/client checks all of them at run time).

    def _ports(
        *,
        core: protocol.ExternalClient,
        tagging: protocol.Tagging,
        recycle_bin: protocol.RecycleBin,
        project_wide: protocol.ProjectWideDeletion,
        children: protocol.ChildOperations,
        users: protocol.UserOperations,
        manual: protocol.ManualOperations,
        reconciling: protocol.ReconcilingClient,
        confirming: protocol.ConfirmingClient,
        operator: protocol.OperatorClient,
    ) -> None: ...

    def _implements_every_port(client: DmsClient) -> None:
        _ports(
            core=client,
            tagging=client,
            recycle_bin=client,
            project_wide=client,
            children=client,
            users=client,
            manual=client,
            reconciling=client,
            confirming=client,
            operator=client,
        )
