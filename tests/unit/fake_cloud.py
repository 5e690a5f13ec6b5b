"""An in-memory cloud and a virtual clock for pure unit tests of the services.

Why: the batcher and the observer are about *timing* (windows, intervals, gaps) and about *what
the cloud does between calls* (instances appearing and vanishing while a list is paged). Real
sleeps make tests slow and flaky, and a mock framework cannot express a cloud that changes state.
So, as kopf's ``looptime`` and httpx's ``MockTransport`` do:

- ``virtual_time`` runs an async test on an event loop whose clock jumps straight to the next
  timer whenever nothing is ready: ``await asyncio.sleep(60)`` returns at once with the loop's
  ``time()`` 60 s later. It also fails the test if it leaves tasks running.
- ``FakeCloud`` implements ``OperatorClient`` (every port a service takes, and no more) over a
  dict, logs every call with its virtual time, and has knobs for the behaviours the services must
  survive: a batch size limit, whole-call errors, per-id ``failed`` or missing results, and hooks
  that mutate the cloud between calls.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec

from rocketmq_operator.core import cloud
from rocketmq_operator.ports import errors, protocol

EPOCH = 1_700_000_000.0
"""Wall-clock seconds at virtual loop time 0, so stamps look like real epoch times."""

P = ParamSpec("P")


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, instead of blocking until the next timer, tells the loop to jump there."""

    def __init__(self, advance: Callable[[float], None]) -> None:
        super().__init__()
        self._advance = advance

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready:
            return ready
        if timeout is None:
            # No timer at all: only another thread can wake the loop, so wait for it for real.
            return super().select(None)
        if timeout > 0:
            self._advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task is waiting for a timer."""

    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(selector=_JumpingSelector(self._advance))

    def time(self) -> float:
        return self._now

    def _advance(self, seconds: float) -> None:
        self._now += seconds


def loop_clock() -> float:
    """A wall clock that follows the running loop's (virtual) time."""
    return EPOCH + asyncio.get_running_loop().time()


def virtual_time(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test on a ``VirtualTimeLoop``; fail it if it leaks tasks.

    The wrapped test is a plain function to pytest, so pytest-asyncio leaves it alone.
    """

    @functools.wraps(test)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        async def main() -> list[str]:
            await test(*args, **kwargs)
            current = asyncio.current_task()
            leaked = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
            for task in leaked:
                task.cancel()
            await asyncio.gather(*leaked, return_exceptions=True)
            return [task.get_name() for task in leaked]

        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            leaked = runner.run(main())
        assert not leaked, f"the test left tasks running: {leaked}"

    return wrapper


@dataclass(frozen=True)
class Call:
    """One call the fake cloud served (or refused)."""

    at: float  # virtual loop time
    operation: str
    ids: tuple[str, ...] = ()
    force_delete: bool | None = None
    offset: int | None = None
    limit: int | None = None
    names: tuple[str, ...] = ()


def instance(instance_id: str, *, status: str = cloud.RUNNING, name: str | None = None) -> cloud.InstanceView:
    return cloud.InstanceView(instance_id=instance_id, name=name or f"rmq-{instance_id}", status=status)


@dataclass
class FakeCloud:
    """An in-memory DMS for RocketMQ account that implements ``OperatorClient``.

    Knobs:
        batch_limit: refuse (InvalidRequest) batch calls carrying more ids than this.
        unknown_ids: how a batch call treats an id it does not know: refuse the whole call with
            NotFound (``"refuse"``, what a strict cloud does) or report it ``failed``.
        failed_ids / omitted_ids: ids whose batch result is ``failed`` / missing from the response.
        call_errors: errors to raise, in order, from the next calls of an operation, before they
            do anything (``{"delete_many": [Throttled(...)]}``).
        before_list: called with the query before each list page is served, to mutate the cloud
            between the pages of one walk.
        latency: virtual seconds each call takes.
        delete_seconds: how long an accepted deletion stays DELETING. As on the real cloud, the
            list hides a deleting instance at once (unless ``list_shows_deleting``) while show
            answers it DELETING; then show answers 404, or status RECYCLE with ``recycle_bin`` on
            and a non-forced deletion (the recycle-bin list has it too).
        undo: ids whose next accepted deletion the cloud fails: when its time is up the instance is
            back, in the status given, and listed again.
        child_delete_seconds: how long after a topic or group batch delete the names are gone
            (0: at once); until then they are still listed and the job's task says CREATED.

    Topics and groups live in ``topics`` / ``groups`` (instance id -> name -> view); every batch
    delete of them is kept in ``child_deletions`` as (instance id, kind, names), as sent.
    """

    instances: dict[str, cloud.InstanceView] = field(default_factory=dict)
    batch_limit: int | None = None
    unknown_ids: Literal["refuse", "failed"] = "refuse"
    failed_ids: set[str] = field(default_factory=set)
    omitted_ids: set[str] = field(default_factory=set)
    call_errors: dict[str, list[errors.CloudError]] = field(default_factory=dict)
    before_list: Callable[[cloud.ListQuery], None] | None = None
    latency: float = 0.0
    throttle_note: str | None = None
    delete_seconds: float = 0.0
    recycle_bin: bool = False
    list_shows_deleting: bool = False
    undo: dict[str, str] = field(default_factory=dict)
    binned: dict[str, cloud.InstanceView] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    """Loop time at which each deletion ended (gone or binned)."""
    topics: dict[str, dict[str, cloud.TopicView]] = field(default_factory=dict)
    groups: dict[str, dict[str, cloud.GroupView]] = field(default_factory=dict)
    users: dict[str, dict[str, cloud.UserView]] = field(default_factory=dict)
    user_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    """(instance id, access key) -> the secret key the cloud holds, for tests to compare."""
    child_delete_seconds: float = 0.0
    child_deletions: list[tuple[str, protocol.ChildKind, tuple[str, ...]]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    _child_tasks: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    """Job id -> (instance id, task name, loop time it finishes)."""
    _child_deleting: list[tuple[float, str, protocol.ChildKind, str]] = field(default_factory=list)
    _deleting: dict[str, tuple[float, bool]] = field(default_factory=dict)
    _account: protocol.Account = field(default_factory=lambda: protocol.Account("https://dms.test", "p-1"))

    # Helpers for tests.

    def add(self, *views: cloud.InstanceView) -> None:
        for view in views:
            self.instances[view.instance_id] = view

    def add_running(self, count: int, *, prefix: str = "i-") -> list[str]:
        ids = [f"{prefix}{n:04d}" for n in range(len(self.instances), len(self.instances) + count)]
        self.add(*(instance(instance_id) for instance_id in ids))
        return ids

    def remove(self, *instance_ids: str) -> None:
        for instance_id in instance_ids:
            del self.instances[instance_id]

    def add_topics(self, instance_id: str, *names: str) -> None:
        table = self.topics.setdefault(instance_id, {})
        for name in names:
            table[name] = cloud.TopicView(name=name, total_read_queue_num=8, total_write_queue_num=8, permission="all")

    def add_groups(self, instance_id: str, *names: str) -> None:
        table = self.groups.setdefault(instance_id, {})
        for name in names:
            table[name] = cloud.GroupView(name=name, enabled=True, broadcast=False, retry_max_time=16)

    def calls_of(self, operation: str) -> list[Call]:
        return [call for call in self.calls if call.operation == operation]

    def settle(self) -> None:
        """End every deletion whose time has come."""
        now = self._now()
        for due, instance_id, kind, name in list(self._child_deleting):
            if due <= now:
                self._child_deleting.remove((due, instance_id, kind, name))
                self._table(instance_id, kind).pop(name, None)
        for instance_id, (due, to_bin) in sorted(self._deleting.items(), key=lambda item: item[1][0]):
            if due > now:
                continue
            del self._deleting[instance_id]
            view = self.instances.pop(instance_id)
            undone = self.undo.pop(instance_id, None)
            if undone is not None:
                self.instances[instance_id] = view.model_copy(update={"status": undone})
                continue
            self.ended[instance_id] = now
            if to_bin:
                self.binned[instance_id] = view.model_copy(update={"status": cloud.RECYCLE})

    def _start_delete(self, instance_id: str, *, force: bool) -> None:
        view = self.instances[instance_id]
        self.instances[instance_id] = view.model_copy(update={"status": cloud.DELETING})
        to_bin = self.recycle_bin and not force and view.status != cloud.CREATEFAILED
        self._deleting[instance_id] = (self._now() + self.delete_seconds, to_bin)
        self.settle()

    async def _serve(self, call: Call) -> None:
        self.settle()
        self.calls.append(call)
        if self.latency:
            await asyncio.sleep(self.latency)
        pending = self.call_errors.get(call.operation)
        if pending:
            raise pending.pop(0)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # OperatorClient.

    @property
    def account(self) -> protocol.Account:
        return self._account

    def throttling(self) -> str | None:
        return self.throttle_note

    async def create_instance(self, request: cloud.CreateInstanceRequest) -> str:
        await self._serve(Call(self._now(), "create_instance"))
        if any(view.name == request.name for view in self.instances.values()):
            raise errors.NameConflict("name exists", status=400, code="DMS.00400060")
        instance_id = f"i-{len(self.instances):04d}"
        self.add(instance(instance_id, status=cloud.CREATING, name=request.name))
        return instance_id

    async def show_instance(self, instance_id: str) -> cloud.InstanceView:
        await self._serve(Call(self._now(), "show_instance", ids=(instance_id,)))
        if instance_id in self.binned:
            return self.binned[instance_id]
        return self._get(instance_id)

    async def list_instances(self, query: cloud.ListQuery) -> cloud.ListInstancesResponse:
        await self._serve(Call(self._now(), "list_instances", offset=query.offset, limit=query.limit))
        if self.before_list is not None:
            self.before_list(query)
        matching = [
            view
            for view in self.instances.values()
            if (query.include_failure or view.status != cloud.CREATEFAILED)
            and (self.list_shows_deleting or view.status != cloud.DELETING)
        ]
        page = matching[query.offset : query.offset + query.limit]
        return cloud.ListInstancesResponse(instances=page, instance_num=len(matching))

    async def update_instance(self, instance_id: str, request: cloud.UpdateInstanceRequest) -> None:
        await self._serve(Call(self._now(), "update_instance", ids=(instance_id,)))
        view = self._get(instance_id)
        self.instances[instance_id] = view.model_copy(update=request.to_wire())

    async def delete_many(
        self, instance_ids: Sequence[str], *, force_delete: bool | None = None
    ) -> list[cloud.BatchActionResult]:
        ids = tuple(instance_ids)
        await self._serve(Call(self._now(), "delete_many", ids=ids, force_delete=force_delete))
        if self.batch_limit is not None and len(ids) > self.batch_limit:
            raise errors.InvalidRequest("too many instances", status=400, code="DMS.00400004")
        unknown = [instance_id for instance_id in ids if instance_id not in self.instances]
        if unknown and self.unknown_ids == "refuse":
            raise errors.InstanceNotFound(f"{unknown[0]} does not exist", status=404, code="DMS.00404022")
        creating = [i for i in ids if i in self.instances and self.instances[i].status == cloud.CREATING]
        if creating:
            raise errors.WrongState(f"{creating[0]} is {cloud.CREATING}", status=400, code="DMS.00400026")
        results: list[cloud.BatchActionResult] = []
        for instance_id in ids:
            if instance_id in self.omitted_ids:
                continue
            if instance_id in self.failed_ids or instance_id in unknown:
                results.append(cloud.BatchActionResult(instance=instance_id, result=cloud.BATCH_FAILED))
                continue
            if self.instances[instance_id].status != cloud.DELETING:
                self._start_delete(instance_id, force=bool(force_delete))
            results.append(cloud.BatchActionResult(instance=instance_id, result=cloud.BATCH_SUCCESS))
        return results

    async def delete_all_failed(self, *, force_delete: bool | None = None) -> None:
        await self._serve(Call(self._now(), "delete_all_failed", force_delete=force_delete))
        for instance_id, view in list(self.instances.items()):
            if view.status == cloud.CREATEFAILED:
                del self.instances[instance_id]

    async def resize_instance(self, instance_id: str, request: cloud.ResizeRequest) -> cloud.ResizeResponse:
        await self._serve(Call(self._now(), "resize_instance", ids=(instance_id,)))
        self._get(instance_id)
        return cloud.ResizeResponse(job_id=f"job-{len(self.calls)}")

    async def create_tags(self, instance_id: str, tags: Sequence[cloud.Tag]) -> None:
        await self._serve(Call(self._now(), "create_tags", ids=(instance_id,)))
        view = self._get(instance_id)
        merged = {tag.key: tag for tag in [*view.tags, *tags]}
        self.instances[instance_id] = view.model_copy(update={"tags": list(merged.values())})

    async def delete_tags(self, instance_id: str, tags: Sequence[cloud.Tag]) -> None:
        await self._serve(Call(self._now(), "delete_tags", ids=(instance_id,)))
        view = self._get(instance_id)
        gone = {tag.key for tag in tags}
        kept = [tag for tag in view.tags if tag.key not in gone]
        self.instances[instance_id] = view.model_copy(update={"tags": kept})

    async def list_recycle_bin(self) -> cloud.RecycleBinResponse:
        await self._serve(Call(self._now(), "list_recycle_bin"))
        binned = [
            cloud.RecycledInstance(instance_id=view.instance_id, name=view.name, status=cloud.RUNNING)
            for view in self.binned.values()
        ]
        return cloud.RecycleBinResponse(
            retention_days=1, default_use_recycle=self.recycle_bin, recycle_instances=binned
        )

    # ChildOperations: the rules the simulator keeps (children.py), minus brokers and quotas.

    async def list_topics(self, instance_id: str, page: cloud.ChildPage) -> cloud.ListTopicsResponse:
        await self._serve(Call(self._now(), "list_topics", ids=(instance_id,), offset=page.offset, limit=page.limit))
        found = list(self._children(instance_id, "topic").values())
        return cloud.ListTopicsResponse(total=len(found), topics=found[page.offset : page.offset + page.limit])

    async def create_topic(self, instance_id: str, request: cloud.CreateTopicRequest) -> None:
        await self._serve(Call(self._now(), "create_topic", ids=(instance_id,), names=(request.name,)))
        queues = request.queue_num or 8
        view = cloud.TopicView(
            name=request.name,
            total_read_queue_num=queues,
            total_write_queue_num=queues,
            permission=request.permission or "all",
            created_at=self._epoch_ms(),
            message_type=request.message_type,
        )
        self._create(instance_id, "topic", view)

    async def update_topic(self, instance_id: str, name: str, request: cloud.UpdateTopicRequest) -> None:
        await self._serve(Call(self._now(), "update_topic", ids=(instance_id,), names=(name,)))
        table, view = self._child(instance_id, "topic", name, change=True)
        changes = {
            "total_read_queue_num": request.read_queue_num,
            "total_write_queue_num": request.write_queue_num,
            "permission": request.permission,
        }
        table[name] = view.model_copy(update={k: v for k, v in changes.items() if v is not None})

    async def list_groups(self, instance_id: str, page: cloud.ChildPage) -> cloud.ListGroupsResponse:
        await self._serve(Call(self._now(), "list_groups", ids=(instance_id,), offset=page.offset, limit=page.limit))
        found = list(self._children(instance_id, "group").values())
        return cloud.ListGroupsResponse(total=len(found), groups=found[page.offset : page.offset + page.limit])

    async def create_group(self, instance_id: str, request: cloud.CreateGroupRequest) -> None:
        await self._serve(Call(self._now(), "create_group", ids=(instance_id,), names=(request.name,)))
        view = cloud.GroupView(
            name=request.name,
            enabled=True if request.enabled is None else request.enabled,
            broadcast=bool(request.broadcast),
            retry_max_time=request.retry_max_time or 16,
            group_desc=request.group_desc or "",
            created_at=self._epoch_ms(),
            consume_orderly=request.consume_orderly,
        )
        self._create(instance_id, "group", view)

    async def update_group(self, instance_id: str, name: str, request: cloud.UpdateGroupRequest) -> None:
        await self._serve(Call(self._now(), "update_group", ids=(instance_id,), names=(name,)))
        table, view = self._child(instance_id, "group", name, change=True)
        table[name] = view.model_copy(update=request.model_dump(exclude_none=True))

    async def delete_children(self, instance_id: str, kind: protocol.ChildKind, names: Sequence[str]) -> str:
        if not names:
            return ""
        await self._serve(Call(self._now(), "delete_children", ids=(instance_id,), names=tuple(names)))
        table = self._children(instance_id, kind, change=True)
        self.child_deletions.append((instance_id, kind, tuple(names)))
        due = self._now() + self.child_delete_seconds
        job_id = f"job-{len(self.calls)}"
        self._child_tasks[job_id] = (instance_id, "deleteTopic" if kind == "topic" else "deleteGroup", due)
        # As on the cloud: unknown names are skipped, and a name already going keeps its first deletion.
        going = {(i, k, n) for _, i, k, n in self._child_deleting}
        for name in dict.fromkeys(names):
            if name in table and (instance_id, kind, name) not in going:
                self._child_deleting.append((due, instance_id, kind, name))
        self.settle()
        return job_id

    # ACL users: one call per user, like the cloud (no batch); an unknown one is NotFound (DMS.00500972).

    def _users(self, instance_id: str, *, change: bool = False) -> dict[str, cloud.UserView]:
        view = self._get(instance_id)
        if change and view.status != cloud.RUNNING:
            raise errors.WrongState(f"{instance_id} is {view.status}", status=400, code="DMS.00400026")
        return self.users.setdefault(instance_id, {})

    def _user(self, instance_id: str, name: str, *, change: bool = False) -> dict[str, cloud.UserView]:
        table = self._users(instance_id, change=change)
        if name not in table:
            raise errors.NotFound(f"The user does not exist: {name}", status=400, code="DMS.00500972")
        return table

    async def list_users(self, instance_id: str, page: cloud.ChildPage) -> cloud.ListUsersResponse:
        await self._serve(Call(self._now(), "list_users", ids=(instance_id,), offset=page.offset, limit=page.limit))
        found = list(self._users(instance_id).values())
        return cloud.ListUsersResponse(total=len(found), users=found[page.offset : page.offset + page.limit])

    async def create_user(self, instance_id: str, request: cloud.CreateUserRequest) -> None:
        await self._serve(Call(self._now(), "create_user", ids=(instance_id,), names=(request.access_key,)))
        table = self._users(instance_id, change=True)
        if request.access_key in table:
            raise errors.NameConflict(f"user {request.access_key} exists", status=400, code="DMS.00400060")
        fields = request.model_dump(exclude_none=True, exclude={"secret_key"})
        table[request.access_key] = cloud.UserView.model_validate(
            {"admin": False, "default_topic_perm": "DENY", "default_group_perm": "DENY", "white_remote_address": ""}
            | fields
        )
        self.user_keys[(instance_id, request.access_key)] = request.secret_key.get_secret_value()

    async def update_user(self, instance_id: str, name: str, request: cloud.UpdateUserRequest) -> None:
        await self._serve(Call(self._now(), "update_user", ids=(instance_id,), names=(name,)))
        table = self._user(instance_id, name, change=True)
        fields = request.model_dump(exclude_none=True, exclude={"secret_key"})
        table[name] = cloud.UserView.model_validate(table[name].model_dump() | fields)
        if request.secret_key is not None and request.secret_key.get_secret_value():
            self.user_keys[(instance_id, name)] = request.secret_key.get_secret_value()

    async def delete_user(self, instance_id: str, name: str) -> None:
        await self._serve(Call(self._now(), "delete_user", ids=(instance_id,), names=(name,)))
        del self._user(instance_id, name, change=True)[name]
        self.user_keys.pop((instance_id, name), None)

    async def show_task(self, instance_id: str, task_id: str) -> cloud.TaskView:
        await self._serve(Call(self._now(), "show_task", ids=(instance_id,), names=(task_id,)))
        self._get(instance_id)
        task = self._child_tasks.get(task_id)
        if task is None or task[0] != instance_id:
            raise errors.NotFound(f"task {task_id} does not exist", status=404, code="DMS.00404001")
        _, name, due = task
        return cloud.TaskView(id=task_id, name=name, status="CREATED" if self._now() < due else "SUCCESS")

    async def aclose(self) -> None:
        return None

    def _get(self, instance_id: str) -> cloud.InstanceView:
        try:
            return self.instances[instance_id]
        except KeyError:
            raise errors.InstanceNotFound(f"{instance_id} does not exist", status=404, code="DMS.00404022") from None

    def _epoch_ms(self) -> int:
        return int((EPOCH + self._now()) * 1000)

    def _table(self, instance_id: str, kind: protocol.ChildKind) -> dict[str, Any]:
        tables: dict[str, Any] = self.topics if kind == "topic" else self.groups
        table: dict[str, Any] = tables.setdefault(instance_id, {})
        return table

    def _children(self, instance_id: str, kind: protocol.ChildKind, *, change: bool = False) -> dict[str, Any]:
        """The topics or groups of a live instance; a change needs it RUNNING."""
        view = self._get(instance_id)
        if change and view.status != cloud.RUNNING:
            raise errors.WrongState(f"{instance_id} is {view.status}", status=400, code="DMS.00400026")
        return self._table(instance_id, kind)

    def _child(
        self, instance_id: str, kind: protocol.ChildKind, name: str, *, change: bool = False
    ) -> tuple[dict[str, Any], Any]:
        table = self._children(instance_id, kind, change=change)
        if name not in table:
            code = "DMS.00404023" if kind == "topic" else "DMS.00404024"
            raise errors.NotFound(f"{kind} {name} does not exist", status=404, code=code)
        return table, table[name]

    def _create(self, instance_id: str, kind: protocol.ChildKind, view: cloud.TopicView | cloud.GroupView) -> None:
        table = self._children(instance_id, kind, change=True)
        if view.name in table:
            raise errors.NameConflict(f"{kind} {view.name} exists", status=400, code="DMS.00400060")
        table[view.name] = view
