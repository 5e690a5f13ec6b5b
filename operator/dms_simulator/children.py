"""Topics and consumer groups of an instance: their requests, rules, batch deletions and wire shapes.

The API (SDK 3.1.219 ``CreateTopicOrBatchDeleteTopic``, ``ListRocketInstanceTopics``, ``ShowOneTopic``,
``UpdateTopic``, ``DeleteTopic`` and the consumer-group twins, plus ``BatchUpdateConsumerGroup``) keeps
them per instance, so every operation first finds a live instance of the caller's project (404
``DMS.00404022`` otherwise) and every change needs it RUNNING (400 ``DMS.00400026``). A batch delete
answers only a ``job_id``: the named children stay visible until their deletion is due (config
``topic_delete_seconds`` / ``group_delete_seconds``), and the job, readable at
``GET .../instances/{id}/tasks/{job_id}``, says CREATED until then. docs/simulator.md gives the sources
and the choices made where they are silent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from dms_simulator import errors, payloads
from dms_simulator.child_models import BrokerQueues, Group, PendingDeletion, Topic
from dms_simulator.clock import Clock
from dms_simulator.config import SimulatorConfig
from dms_simulator.errors import DmsError, invalid_parameter
from dms_simulator.instances import RUNNING, Instance, epoch_ms, is_v5

if TYPE_CHECKING:
    from dms_simulator.store import Store

Kind = Literal["topic", "group"]

NAME_RE: Final = re.compile(r"^[A-Za-z0-9%|_-]{3,64}$")
"""Topic and group names: 3-64 letters, digits, ``%``, ``|``, ``-``, ``_`` (SDK models, TF docs)."""
PERMISSIONS: Final = ("all", "pub", "sub")
MESSAGE_TYPES: Final = ("NORMAL", "FIFO", "DELAY", "TRANSACTION")
QUEUE_MIN, QUEUE_MAX = 1, 50
DEFAULT_QUEUE_NUM: Final = 8
"""TF's documented default for ``queue_num`` (an older DOC page says 3)."""
RETRY_MIN, RETRY_MAX = 1, 16
DEFAULT_RETRY_MAX_TIME: Final = 16
GROUP_DESC_MAX: Final = 200
TOPIC_DESC_MAX: Final = 200
LIST_LIMIT_MAX: Final = 50
OFFSET_INVALID: Final = "DMS.40050010"
"""TF (rocketmq consumer group topics data source): an offset at or past the total is refused so."""

# --- simulator choices (no documented code for these situations) ---
TOPIC_NOT_FOUND: Final = "DMS.00404023"
GROUP_NOT_FOUND: Final = "DMS.00404024"


def not_found(kind: Kind, name: str) -> DmsError:
    code = TOPIC_NOT_FOUND if kind == "topic" else GROUP_NOT_FOUND
    noun = "topic" if kind == "topic" else "consumer group"
    return DmsError(404, code, f"The {noun} does not exist: {name}")


def name_exists(kind: Kind, name: str) -> DmsError:
    noun = "topic" if kind == "topic" else "consumer group"
    return DmsError(400, errors.NAME_EXISTS, f"The {noun} name already exists: {name}")


def quota_exceeded(kind: Kind, quota: int) -> DmsError:
    noun = "topic" if kind == "topic" else "consumer group"
    return DmsError(400, errors.QUOTA_EXCEEDED, f"The {noun} quota of this instance ({quota}) is used up.")


def check_name(name: str, field: str = "name") -> None:
    if not NAME_RE.match(name):
        raise invalid_parameter(
            field,
            f"{name!r}: 3 to 64 characters; only letters, digits, percent (%), vertical bars (|), "
            "hyphens (-) and underscores (_)",
        )


def _ranged(body: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    """An integer field in [low, high]; the SDK types queue counts as ``float``, so 3.0 is fine too."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_parameter(key, f"must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise invalid_parameter(key, f"must be {low} to {high}, got {value}")
    return value


def _choice(body: Mapping[str, Any], key: str, choices: Sequence[str]) -> str | None:
    value = payloads.opt_str(body, key)
    if value is not None and value not in choices:
        raise invalid_parameter(key, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _text(body: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = payloads.opt_str(body, key)
    if value is not None and len(value) > limit:
        raise invalid_parameter(key, f"at most {limit} characters, got {len(value)}")
    return value


def _names(body: Mapping[str, Any], key: str, max_size: int | None) -> list[str]:
    names = payloads.opt_str_list(body, key, required=True) or []
    if not names:
        raise invalid_parameter(key, "must not be empty")
    if max_size is not None and len(names) > max_size:
        raise invalid_parameter(key, f"{len(names)} names exceed the limit of {max_size} per batch request")
    return names


# --- requests ---


@dataclass(frozen=True)
class QueueSpec:
    broker: str
    queue_num: int


@dataclass(frozen=True)
class TopicCreate:
    name: str
    brokers: list[str] | None
    queue_num: int | None
    queues: list[QueueSpec] | None
    permission: str | None
    message_type: str | None


def _queue_entries(data: dict[str, Any], keys: str) -> Iterator[dict[str, Any]] | None:
    """The objects of an optional ``queues`` list, each checked as the caller reaches it (``keys``
    names their fields when the list itself is refused); ``None`` when there is no list."""
    raw_queues = data.get("queues")
    if raw_queues is None:
        return None
    if not isinstance(raw_queues, list):
        raise invalid_parameter("queues", f"must be a list of {{{keys}}} objects")
    return (payloads.require_object(item, "queues[]") for item in raw_queues)


def parse_topic_create(body: Any) -> TopicCreate:
    data = payloads.require_object(body)
    name = payloads.req_str(data, "name")
    check_name(name)
    queues: list[QueueSpec] | None = None
    entries = _queue_entries(data, "broker, queue_num")
    if entries is not None:
        queues = []
        for entry in entries:
            queue_num = _ranged(entry, "queue_num", QUEUE_MIN, QUEUE_MAX)
            broker = payloads.req_str(entry, "broker")
            queues.append(QueueSpec(broker, DEFAULT_QUEUE_NUM if queue_num is None else queue_num))
    return TopicCreate(
        name=name,
        brokers=payloads.opt_str_list(data, "brokers"),
        queue_num=_ranged(data, "queue_num", QUEUE_MIN, QUEUE_MAX),
        queues=queues or None,
        permission=_choice(data, "permission", PERMISSIONS),
        message_type=_choice(data, "message_type", MESSAGE_TYPES),
    )


@dataclass(frozen=True)
class QueueUpdate:
    broker: str
    read: int | None
    write: int | None


@dataclass(frozen=True)
class TopicUpdate:
    read_queue_num: int | None
    write_queue_num: int | None
    permission: str | None
    queues: list[QueueUpdate] | None
    description: str | None


def parse_topic_update(body: Any) -> TopicUpdate:
    data = payloads.require_object(body)
    queues: list[QueueUpdate] | None = None
    entries = _queue_entries(data, "broker, read_queue_num, write_queue_num")
    if entries is not None:
        queues = []
        for entry in entries:
            queues.append(
                QueueUpdate(
                    payloads.req_str(entry, "broker"),
                    _ranged(entry, "read_queue_num", QUEUE_MIN, QUEUE_MAX),
                    _ranged(entry, "write_queue_num", QUEUE_MIN, QUEUE_MAX),
                )
            )
    return TopicUpdate(
        read_queue_num=_ranged(data, "read_queue_num", QUEUE_MIN, QUEUE_MAX),
        write_queue_num=_ranged(data, "write_queue_num", QUEUE_MIN, QUEUE_MAX),
        permission=_choice(data, "permission", PERMISSIONS),
        queues=queues,
        description=_text(data, "topic_desc", TOPIC_DESC_MAX),
    )


@dataclass(frozen=True)
class GroupFields:
    """The settable fields of a group; ``None`` = not sent."""

    enabled: bool | None = None
    broadcast: bool | None = None
    retry_max_time: int | None = None
    consume_orderly: bool | None = None
    description: str | None = None


def _group_fields(data: Mapping[str, Any], *, required: Sequence[str] = ()) -> GroupFields:
    for key in required:
        if data.get(key) is None:
            raise invalid_parameter(key, "is required")
    return GroupFields(
        enabled=payloads.opt_bool(data, "enabled"),
        broadcast=payloads.opt_bool(data, "broadcast"),
        retry_max_time=_ranged(data, "retry_max_time", RETRY_MIN, RETRY_MAX),
        consume_orderly=payloads.opt_bool(data, "consume_orderly"),
        description=_text(data, "group_desc", GROUP_DESC_MAX),
    )


@dataclass(frozen=True)
class GroupCreate:
    name: str
    brokers: list[str] | None
    fields: GroupFields


def parse_group_create(body: Any) -> GroupCreate:
    data = payloads.require_object(body)
    name = payloads.req_str(data, "name")
    check_name(name)
    return GroupCreate(name=name, brokers=payloads.opt_str_list(data, "brokers"), fields=_group_fields(data))


def parse_group_update(body: Any) -> GroupFields:
    """UpdateConsumerGroup: the SDK makes enabled, broadcast and retry_max_time required."""
    data = payloads.require_object(body)
    return _group_fields(data, required=("enabled", "broadcast", "retry_max_time"))


def parse_group_batch_update(body: Any) -> list[tuple[str, GroupFields]]:
    """BatchUpdateConsumerGroupReq: ``{groups: [{name, ...optional fields}]}``."""
    data = payloads.require_object(body)
    raw = data.get("groups")
    if not isinstance(raw, list) or not raw:
        raise invalid_parameter("groups", "must be a non-empty list of {name, ...} objects")
    updates: list[tuple[str, GroupFields]] = []
    for item in raw:
        entry = payloads.require_object(item, "groups[]")
        name = payloads.req_str(entry, "name")
        updates.append((name, _group_fields(entry)))
    names = [name for name, _ in updates]
    if len(set(names)) != len(names):
        raise invalid_parameter("groups", "names a group more than once")
    return updates


def parse_batch_delete(body: Any, kind: Kind, max_size: int | None) -> list[str]:
    data = payloads.require_object(body)
    return _names(data, "topics" if kind == "topic" else "groups", max_size)


# --- paging (shared by both lists) ---

T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int


def parse_page(query: Mapping[str, str]) -> Page:
    return Page(
        offset=payloads.query_int(query, "offset", 0, 0),
        limit=payloads.query_int(query, "limit", 10, 1, LIST_LIMIT_MAX),
    )


def paged(
    items: Sequence[T], page: Page, key: str, quota: int, render: Callable[[T], dict[str, Any]]
) -> dict[str, Any]:
    """The list envelope shared by topics and groups: ``total``, ``max`` (how many may exist),
    ``remaining``, the page under ``key``, and ``next_offset`` / ``previous_offset`` where such a page
    exists (omitted otherwise)."""
    total = len(items)
    if page.offset > 0 and page.offset >= total:
        raise DmsError(400, OFFSET_INVALID, "Offset parameter is invalid.")
    chunk = items[page.offset : page.offset + page.limit]
    envelope: dict[str, Any] = {
        "total": total,
        "max": quota,
        "remaining": max(0, quota - total),
        key: [render(item) for item in chunk],
    }
    if page.offset + len(chunk) < total:
        envelope["next_offset"] = page.offset + len(chunk)
    if page.offset > 0:
        envelope["previous_offset"] = max(0, page.offset - page.limit)
    return envelope


# --- wire shapes ---


def render_topic(instance: Instance, topic: Topic) -> dict[str, Any]:
    """SDK ``Topic`` / ``ShowOneTopicResponse``; ``message_type`` only for 5.x."""
    if topic.brokers:
        read = sum(queues.read for queues in topic.brokers.values())
        write = sum(queues.write for queues in topic.brokers.values())
    else:
        read, write = topic.read_queue_num, topic.write_queue_num
    shape: dict[str, Any] = {
        "name": topic.name,
        "total_read_queue_num": read,
        "total_write_queue_num": write,
        "permission": topic.permission,
        "created_at": epoch_ms(topic.created),
        "brokers": [
            {"broker_name": broker, "read_queue_num": queues.read, "write_queue_num": queues.write}
            for broker, queues in topic.brokers.items()
        ],
    }
    if is_v5(instance):
        shape["message_type"] = topic.message_type or "NORMAL"
    return shape


def render_group(instance: Instance, group: Group, view: Literal["list", "show"]) -> dict[str, Any]:
    """SDK ``ConsumerGroup`` (list item) / ``ShowGroupResponse`` (show: no topic_subscription_count)."""
    shape: dict[str, Any] = {
        "enabled": group.enabled,
        "broadcast": group.broadcast,
        "brokers": list(group.brokers),
        "name": group.name,
        "group_desc": group.description,
        "retry_max_time": group.retry_max_time,
        "created_at": epoch_ms(group.created),
        "permissions": ["sub"],
        "consume_orderly": group.consume_orderly,
        "group_online": False,
    }
    if view == "list":
        shape["topic_subscription_count"] = 0
    return shape


# --- the rules ---


def _brokers_of(instance: Instance) -> list[str]:
    return [f"broker-{i}" for i in range(max(1, instance.broker_num))]


def _check_brokers(instance: Instance, field: str, names: Sequence[str]) -> None:
    known = _brokers_of(instance)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise invalid_parameter(field, f"unknown broker(s) {', '.join(unknown)}; this instance has {known}")
    if len(set(names)) != len(names):
        raise invalid_parameter(field, "names a broker more than once")


def _split(total: int, parts: int) -> list[int]:
    """``total`` queues over ``parts`` brokers, as evenly as possible (the first ones get the rest)."""
    base, rest = divmod(total, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


C = TypeVar("C", Topic, Group)


def _settle(table: dict[str, C], now: float) -> None:
    """End every batch deletion that is due: the child goes, or (a fault) stays and is no longer deleting."""
    for name, child in list(table.items()):
        pending = child.deleting
        if pending is not None and pending.due <= now:
            if pending.fails:
                child.deleting = None
            else:
                del table[name]


DeleteFailure = Callable[[str], bool]
"""Asked once per child whose batch deletion is accepted: does it fail (and is the fault spent)?"""


class Children:
    """Topic and group operations on the instances the ``Store`` keeps."""

    def __init__(self, store: Store, config: SimulatorConfig, clock: Clock) -> None:
        self._store = store
        self._config = config
        self._clock = clock

    # ------------------------------------------------------------------ lookups

    def instance(self, project_id: str, instance_id: str, *, change: str | None = None) -> Instance:
        """A live instance (404 otherwise) with its due child deletions settled; for a ``change``
        it must be RUNNING."""
        instance = self._store.get(project_id, instance_id)
        self.settle(instance)
        if change is not None and instance.status != RUNNING:
            raise errors.wrong_state(instance_id, instance.status, change)
        return instance

    def settle(self, instance: Instance) -> None:
        now = self._clock.now()
        _settle(instance.topics, now)
        _settle(instance.groups, now)

    def topics(self, project_id: str, instance_id: str) -> tuple[Instance, list[Topic]]:
        instance = self.instance(project_id, instance_id)
        # Oldest first; among equals, creation order (the dict keeps it and sorted is stable).
        return instance, sorted(instance.topics.values(), key=lambda t: t.created)

    def groups(self, project_id: str, instance_id: str, name_filter: str | None) -> tuple[Instance, list[Group]]:
        instance = self.instance(project_id, instance_id)
        found = [g for g in instance.groups.values() if name_filter is None or name_filter.lower() in g.name.lower()]
        return instance, sorted(found, key=lambda g: g.created)

    def topic(self, project_id: str, instance_id: str, name: str) -> tuple[Instance, Topic]:
        instance = self.instance(project_id, instance_id)
        topic = instance.topics.get(name)
        if topic is None:
            raise not_found("topic", name)
        return instance, topic

    def group(self, project_id: str, instance_id: str, name: str) -> tuple[Instance, Group]:
        instance = self.instance(project_id, instance_id)
        group = instance.groups.get(name)
        if group is None:
            raise not_found("group", name)
        return instance, group

    # ------------------------------------------------------------------ topics

    def create_topic(self, project_id: str, instance_id: str, request: TopicCreate) -> Topic:
        instance = self.instance(project_id, instance_id, change="create topic")
        if request.name in instance.topics:
            raise name_exists("topic", request.name)
        if len(instance.topics) >= self._config.topic_quota:
            raise quota_exceeded("topic", self._config.topic_quota)
        topic = Topic(name=request.name, created=self._clock.now(), permission=request.permission or "all")
        if is_v5(instance):
            # 4.8.0-only fields (brokers, queues, permission) are ignored here: docs/simulator.md.
            topic.permission = "all"
            total = request.queue_num or DEFAULT_QUEUE_NUM
            topic.read_queue_num = topic.write_queue_num = total
            topic.message_type = request.message_type or "NORMAL"
        elif request.queues:
            _check_brokers(instance, "queues[].broker", [q.broker for q in request.queues])
            topic.brokers = {q.broker: BrokerQueues(q.queue_num, q.queue_num) for q in request.queues}
        else:
            brokers = request.brokers or _brokers_of(instance)
            _check_brokers(instance, "brokers", brokers)
            total = request.queue_num or DEFAULT_QUEUE_NUM
            if total < len(brokers):
                raise invalid_parameter("queue_num", f"{total} queues cannot cover {len(brokers)} brokers")
            topic.brokers = {b: BrokerQueues(n, n) for b, n in zip(brokers, _split(total, len(brokers)), strict=True)}
        instance.topics[topic.name] = topic
        return topic

    def update_topic(self, project_id: str, instance_id: str, name: str, request: TopicUpdate) -> None:
        instance = self.instance(project_id, instance_id, change="update topic")
        topic = instance.topics.get(name)
        if topic is None:
            raise not_found("topic", name)
        if request.description is not None:
            topic.description = request.description
        if is_v5(instance):
            return  # queues and permission can be changed on 4.8.0 only (SDK UpdateTopicReq); ignored
        if request.queues:
            _check_brokers(instance, "queues[].broker", [q.broker for q in request.queues])
            for queue in request.queues:
                current = topic.brokers.get(queue.broker) or BrokerQueues(DEFAULT_QUEUE_NUM, DEFAULT_QUEUE_NUM)
                topic.brokers[queue.broker] = BrokerQueues(
                    queue.read if queue.read is not None else current.read,
                    queue.write if queue.write is not None else current.write,
                )
        for attr, total in (("read", request.read_queue_num), ("write", request.write_queue_num)):
            if total is None:
                continue
            if total < len(topic.brokers):
                brokers = len(topic.brokers)
                raise invalid_parameter(f"{attr}_queue_num", f"{total} queues cannot cover {brokers} brokers")
            for queues, count in zip(topic.brokers.values(), _split(total, len(topic.brokers)), strict=True):
                setattr(queues, attr, count)
        if request.permission is not None:
            topic.permission = request.permission

    # ------------------------------------------------------------------ groups

    def create_group(self, project_id: str, instance_id: str, request: GroupCreate) -> Group:
        instance = self.instance(project_id, instance_id, change="create consumer group")
        if request.name in instance.groups:
            raise name_exists("group", request.name)
        if len(instance.groups) >= self._config.group_quota:
            raise quota_exceeded("group", self._config.group_quota)
        fields = request.fields
        group = Group(name=request.name, created=self._clock.now())
        if not is_v5(instance):
            brokers = request.brokers or _brokers_of(instance)
            _check_brokers(instance, "brokers", brokers)
            group.brokers = list(brokers)
        self._apply_group(instance, group, fields)
        instance.groups[group.name] = group
        return group

    @staticmethod
    def _apply_group(instance: Instance, group: Group, fields: GroupFields) -> None:
        for attr in ("enabled", "broadcast", "retry_max_time"):
            value = getattr(fields, attr)
            if value is not None:
                setattr(group, attr, value)
        if fields.description is not None:
            group.description = fields.description
        if fields.consume_orderly is not None and is_v5(instance):
            # 5.x only (SDK); TF sends consume_orderly=false to 4.8.0 instances too, so it is ignored there.
            group.consume_orderly = fields.consume_orderly

    def update_group(self, project_id: str, instance_id: str, name: str, fields: GroupFields) -> None:
        instance = self.instance(project_id, instance_id, change="update consumer group")
        group = instance.groups.get(name)
        if group is None:
            raise not_found("group", name)
        self._apply_group(instance, group, fields)
        if fields.description is None:
            # TF's acceptance test drops an empty description from the PUT and then reads "": an
            # omitted group_desc clears it (docs/simulator.md).
            group.description = ""

    def batch_update_groups(self, project_id: str, instance_id: str, updates: list[tuple[str, GroupFields]]) -> str:
        instance = self.instance(project_id, instance_id, change="update consumer groups")
        missing = [name for name, _ in updates if name not in instance.groups]
        if missing:
            raise not_found("group", missing[0])  # the whole call is refused; nothing changes
        for name, fields in updates:
            self._apply_group(instance, instance.groups[name], fields)
        names = [name for name, _ in updates]
        return self._store.add_task(instance, "batchUpdateConsumerGroup", 0.0, {"groups": names}).task_id

    # ------------------------------------------------------------------ deletions

    def delete_one(self, project_id: str, instance_id: str, kind: Kind, name: str) -> None:
        """``DELETE .../topics/{topic}`` or ``.../groups/{group}``: gone at once (TF expects 204 and
        does not wait)."""
        instance = self.instance(project_id, instance_id, change=f"delete {kind}")
        table: dict[str, Any] = instance.topics if kind == "topic" else instance.groups
        if name not in table:
            raise not_found(kind, name)
        del table[name]

    def batch_delete(
        self, project_id: str, instance_id: str, kind: Kind, names: list[str], fails: DeleteFailure
    ) -> str:
        """Accept a batch deletion; the job id. Unknown names are skipped (no per-name answer exists);
        a name already being deleted keeps its first deletion."""
        instance = self.instance(project_id, instance_id, change=f"delete {kind}s")
        table: dict[str, Any] = instance.topics if kind == "topic" else instance.groups
        seconds = self._config.topic_delete_seconds if kind == "topic" else self._config.group_delete_seconds
        now = self._clock.now()
        accepted = [name for name in dict.fromkeys(names) if name in table and table[name].deleting is None]
        failing = {name for name in accepted if fails(name)}
        task = self._store.add_task(
            instance,
            "deleteTopic" if kind == "topic" else "deleteGroup",
            seconds,
            {"topics" if kind == "topic" else "groups": list(names)},
            failed=bool(failing),
        )
        for name in accepted:
            table[name].deleting = PendingDeletion(due=now + seconds, task_id=task.task_id, fails=name in failing)
        self.settle(instance)  # a zero delay deletes at once
        return task.task_id


def admin_view(instance: Instance) -> dict[str, Any]:
    """Every topic and group of an instance with what only the simulator knows (pending deletions)."""

    def pending(child: Topic | Group) -> dict[str, Any] | None:
        deleting = child.deleting
        return None if deleting is None else {"due": deleting.due, "job_id": deleting.task_id, "fails": deleting.fails}

    return {
        "instance_id": instance.instance_id,
        "topics": [render_topic(instance, t) | {"deleting": pending(t)} for t in instance.topics.values()],
        "groups": [render_group(instance, g, "list") | {"deleting": pending(g)} for g in instance.groups.values()],
    }
