"""Wire models of the DMS for RocketMQ management API (snake_case, as the cloud spells it).

Why here, in the pure core: the spec<->cloud mapping and the decisions need these shapes, and
only pydantic may describe them, so the client, the mapping and the tests agree by construction.

Requests forbid unknown fields (a typo must fail here, not at the cloud). Responses ignore unknown
fields (the cloud documents that new ones may appear at any time) and coerce the documented type
quirks: ``created_at`` is a string of epoch milliseconds, numbers and booleans may come as strings,
restart ``nodes`` may be strings or ``{"name": ...}`` objects, statuses are an open set.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, field_validator, model_validator

ENGINE = "reliability"
"""The engine name the SDK and Terraform send; ``rocketmq`` is an alias the cloud also accepts."""


class WireRequest(BaseModel):
    """A request body: unknown fields are a bug on our side, so they are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON body as the cloud expects it: unset optional fields are left out."""
        return self.model_dump(mode="json", exclude_none=True)


class WireResponse(BaseModel):
    """A response body: unknown fields are ignored, never an error."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def model_post_init(self, context: Any, /) -> None:
        # pydantic gives every model its own set of the fields it was given. The observer holds a view
        # of every instance (10,000 at scale), and an InstanceView's set (2.2 KiB) outweighs its
        # values; its five Tags add a set each. A frozen model never changes its set (model_copy
        # copies it first), so the responses of one shape can share one.
        object.__setattr__(self, "__pydantic_fields_set__", _shared_fields(self.__pydantic_fields_set__))


_SHAPES: dict[frozenset[str], set[str]] = {}
_MAX_SHAPES = 1024
"""Shapes are subsets of a model's declared fields (extra ones are ignored), so there are few; past
the bound a response keeps its own set rather than the table growing without end."""


def _shared_fields(fields: set[str]) -> set[str]:
    key = frozenset(fields)
    shared = _SHAPES.get(key)
    if shared is None:
        if len(_SHAPES) >= _MAX_SHAPES:
            return fields
        shared = _SHAPES[key] = fields
    return shared


# Instance statuses (reference section 3). The set is open: an unknown one passes through.
CREATING = "CREATING"
CREATEFAILED = "CREATEFAILED"
RUNNING = "RUNNING"
ERROR = "ERROR"
RESTARTING = "RESTARTING"
STARTING = "STARTING"
EXTENDING = "EXTENDING"
EXTENDEDFAILED = "EXTENDEDFAILED"
FREEZING = "FREEZING"
FROZEN = "FROZEN"
UPGRADING = "UPGRADING"
DELETING = "DELETING"
RECYCLE = "RECYCLE"
"""Show's answer for an instance that a non-forced deletion moved to the recycle bin (reference section 8)."""

TRANSITIONAL_STATUSES = frozenset(
    {CREATING, RESTARTING, STARTING, EXTENDING, FREEZING, UPGRADING, DELETING, "ROLLBACK", "ROLLINGBACK"}
)
"""States in which the cloud refuses mutations (DMS.00400026) until it settles."""


class Tag(WireResponse):
    key: str
    value: str = ""


class BssParam(WireRequest):
    charging_mode: Literal["postPaid", "prePaid"] | None = None
    is_auto_renew: bool | None = None
    is_auto_pay: bool | None = None
    period_type: Literal["month", "year"] | None = None
    period_num: int | None = None


class CreateInstanceRequest(WireRequest):
    """``POST /v2/{engine}/{project_id}/instances`` (SDK CreateInstanceByEngineReq)."""

    name: str
    description: str | None = None
    engine: str = ENGINE
    engine_version: str
    storage_space: int
    vpc_id: str
    subnet_id: str
    security_group_id: str
    available_zones: list[str]
    product_id: str
    storage_spec_code: str
    broker_num: int | None = None
    ssl_enable: bool | None = None
    enterprise_project_id: str | None = None
    enable_acl: bool | None = None
    ipv6_enable: bool | None = None
    proxy_enable: bool | None = None
    enable_publicip: bool | None = None
    publicip_id: str | None = None
    disk_encrypted_enable: bool | None = None
    disk_encrypted_key: str | None = None
    arch_type: str | None = None
    tls_mode: str | None = None
    bss_param: BssParam | None = None


class CreateInstanceResponse(WireResponse):
    instance_id: str


class InstanceView(WireResponse):
    """One instance as show and list return it (SDK ShowInstanceResponse / InstanceDetail).

    Every field but the id is optional in the SDK model; we keep the ones the operator reads.
    """

    instance_id: str
    name: str = ""
    status: str = ""
    engine: str | None = None
    engine_version: str | None = None
    type: str | None = None
    specification: str | None = None
    description: str | None = None
    product_id: str | None = None
    storage_spec_code: str | None = None
    storage_space: int | None = None
    total_storage_space: int | None = None
    used_storage_space: int | None = None
    broker_num: int | None = None
    vpc_id: str | None = None
    subnet_id: str | None = None
    security_group_id: str | None = None
    available_zones: list[str] = Field(default_factory=list)
    enterprise_project_id: str | None = None
    enable_acl: bool | None = None
    enable_publicip: bool | None = None
    publicip_id: str | None = None
    publicip_address: str | None = None
    ssl_enable: bool | None = None
    tls_mode: str | None = None
    ipv6_enable: bool | None = None
    charging_mode: int | None = None
    created_at: int | None = None
    namesrv_address: str | None = None
    namesrv_domain_name: str | None = None
    broker_address: str | None = None
    public_namesrv_address: str | None = None
    public_namesrv_domain_name: str | None = None
    public_broker_address: str | None = None
    grpc_address: str | None = None
    grpc_domain_name: str | None = None
    public_grpc_address: str | None = None
    public_grpc_domain_name: str | None = None
    tags: list[Tag] = Field(default_factory=list)

    @field_validator("created_at", mode="before")
    @classmethod
    def _epoch_ms_string(cls, value: Any) -> Any:
        # The cloud sends created_at as a string holding epoch milliseconds ("1700000000000").
        if isinstance(value, str):
            stripped = value.strip()
            return int(stripped) if stripped.isdigit() else None
        return value

    @field_validator("tags", "available_zones", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    def tag_map(self) -> dict[str, str]:
        return {tag.key: tag.value for tag in self.tags}


class ListInstancesResponse(WireResponse):
    instances: list[InstanceView] = Field(default_factory=list)
    instance_num: int = 0

    @field_validator("instances", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class ListQuery(WireRequest):
    """Query of ``GET /v2/{project_id}/instances``; every value is a string on the wire."""

    engine: str = ENGINE
    name: str | None = None
    instance_id: str | None = None
    status: str | None = None
    # Always sent explicitly: without it, instances whose creation failed are hidden from the
    # list, and an operator reading "absent" as "deleted" would release a CR too early.
    include_failure: bool = True
    exact_match_name: bool | None = None
    enterprise_project_id: str | None = None
    limit: int = Field(default=50, ge=1, le=50)
    offset: int = Field(default=0, ge=0)

    def to_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        for key, value in self.model_dump(exclude_none=True).items():
            params[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return params


class UpdateInstanceRequest(WireRequest):
    """``PUT /v2/{project_id}/instances/{instance_id}``: the fields the cloud changes in place."""

    name: str | None = None
    description: str | None = None
    security_group_id: str | None = None
    enable_acl: bool | None = None
    enable_publicip: bool | None = None
    publicip_id: str | None = None
    enterprise_project_id: str | None = None

    def is_empty(self) -> bool:
        return not self.to_wire()


class BatchActionRequest(WireRequest):
    """``POST /v2/{project_id}/instances/action``: exactly one of ``instances`` / ``all_failure``."""

    action: Literal["delete"] = "delete"
    instances: list[str] | None = None
    all_failure: Literal["reliability"] | None = None
    force_delete: bool | None = None

    @model_validator(mode="after")
    def _exactly_one_target(self) -> BatchActionRequest:
        if (self.instances is None) == (self.all_failure is None):
            raise ValueError("give exactly one of 'instances' and 'all_failure'")
        if self.instances is not None and not self.instances:
            raise ValueError("'instances' must not be empty")
        return self


BATCH_SUCCESS = "success"
BATCH_FAILED = "failed"


class BatchActionResult(WireResponse):
    instance: str
    result: str

    @property
    def accepted(self) -> bool:
        return self.result.lower() == BATCH_SUCCESS


class BatchActionResponse(WireResponse):
    results: list[BatchActionResult] = Field(default_factory=list)

    @field_validator("results", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class ResizeRequest(WireRequest):
    """``POST /v2/{engine}/{project_id}/instances/{instance_id}/extend``."""

    oper_type: Literal["storage", "horizontal", "vertical"]
    new_storage_space: int | None = None
    new_product_id: str | None = None
    new_broker_num: int | None = None
    publicip_id: str | None = None


class ResizeResponse(WireResponse):
    job_id: str | None = None


class RestartResponse(WireResponse):
    instance_id: str | None = None
    nodes: list[str] = Field(default_factory=list)
    result: str | None = None

    @field_validator("nodes", mode="before")
    @classmethod
    def _names_or_objects(cls, value: Any) -> Any:
        # The SDK types nodes as list[str]; a documentation example shows [{"name": "broker-0"}].
        if value is None:
            return []
        if isinstance(value, list):
            return [item.get("name", "") if isinstance(item, dict) else item for item in value]
        return value


class TagActionRequest(WireRequest):
    """``POST /v2/{project_id}/rocketmq/{instance_id}/tags/action``."""

    action: Literal["create", "delete"]
    tags: list[Tag]


class TagListResponse(WireResponse):
    tags: list[Tag] = Field(default_factory=list)


class RecycledInstance(WireResponse):
    instance_id: str
    name: str | None = None
    status: str | None = None
    engine: str | None = None
    in_recycle_time: int | None = None
    save_time: int | None = None
    auto_delete_time: int | None = None
    product_id: str | None = None
    error_message: str | None = None


class RecycleBinResponse(WireResponse):
    retention_days: int | None = None
    default_use_recycle: bool | None = None
    recycle_instances: list[RecycledInstance] = Field(default_factory=list)

    @field_validator("recycle_instances", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class RestoreRequest(WireRequest):
    instances: list[str]


class RestoreResult(WireResponse):
    instance_id: str | None = None
    job_id: str | None = None
    error_msg: str | None = None


class RestoreResponse(WireResponse):
    results: list[RestoreResult] = Field(default_factory=list)


class ErrorBody(WireResponse):
    """Huawei's error body; the SDK also accepts ``errorCode``/``code`` spellings and nesting."""

    error_code: str | None = None
    error_msg: str | None = None
    request_id: str | None = None


# --- Topics and consumer groups (reference section 9; SDK 3.1.219 v2 rocketmq_client) -----------

ChildKind = Literal["topic", "group"]
"""The two kinds of child an instance has whose deletions go in batches."""

ListedKind = Literal["topic", "group", "user"]
"""The kinds of child observed by one shared paged walk of their list per instance (users included;
they are deleted one by one, not in batches)."""

CHILD_LIST_LIMIT = 50
"""The documented maximum ``limit`` of the topic and group lists."""


class ChildPage(WireRequest):
    """``limit`` and ``offset`` of a topic or group list; strings on the wire."""

    limit: int = Field(default=CHILD_LIST_LIMIT, ge=1, le=CHILD_LIST_LIMIT)
    offset: int = Field(default=0, ge=0)

    def to_params(self) -> dict[str, str]:
        return {"limit": str(self.limit), "offset": str(self.offset)}


class TopicQueue(WireRequest):
    broker: str
    queue_num: int


class CreateTopicRequest(WireRequest):
    """``POST I/topics``. ``brokers``, ``queues``, ``permission``: 4.8.0 only; ``message_type``: 5.x only."""

    name: str
    queue_num: int | None = None
    brokers: list[str] | None = None
    queues: list[TopicQueue] | None = None
    permission: Literal["all", "pub", "sub"] | None = None
    message_type: Literal["NORMAL", "FIFO", "DELAY", "TRANSACTION"] | None = None


class UpdateTopicRequest(WireRequest):
    """``PUT I/topics/{topic}``: queue totals and permission change on 4.8.0 only."""

    read_queue_num: int | None = None
    write_queue_num: int | None = None
    permission: Literal["all", "pub", "sub"] | None = None
    topic_desc: str | None = None

    def is_empty(self) -> bool:
        return not self.model_dump(exclude_none=True)


class TopicBroker(WireResponse):
    broker_name: str = ""
    read_queue_num: int | None = None
    write_queue_num: int | None = None


def _epoch_ms(value: Any) -> Any:
    """``created_at`` is epoch milliseconds, as a number for topics and groups, or a numeric string."""
    if isinstance(value, str):
        stripped = value.strip()
        return int(stripped) if stripped.isdigit() else None
    return value


class _ChildView(WireResponse):
    """What topic and group answers share: ``created_at`` in epoch ms (number or numeric string), and
    ``brokers`` that may come as null."""

    @field_validator("created_at", mode="before", check_fields=False)
    @classmethod
    def _created_ms(cls, value: Any) -> Any:
        return _epoch_ms(value)

    @field_validator("brokers", mode="before", check_fields=False)
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class TopicView(_ChildView):
    """One topic as list and show return it (SDK ``Topic`` / ``ShowOneTopicResponse``)."""

    name: str
    total_read_queue_num: int | None = None
    total_write_queue_num: int | None = None
    permission: str | None = None
    created_at: int | None = None
    brokers: list[TopicBroker] = Field(default_factory=list)
    message_type: str | None = None


class ListTopicsResponse(WireResponse):
    total: int = 0
    topics: list[TopicView] = Field(default_factory=list)

    @field_validator("topics", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class CreateGroupRequest(WireRequest):
    """``POST I/groups``. ``brokers``: 4.8.0 only; ``consume_orderly``: 5.x only."""

    name: str
    brokers: list[str] | None = None
    broadcast: bool | None = None
    retry_max_time: int | None = None
    enabled: bool | None = None
    consume_orderly: bool | None = None
    group_desc: str | None = None


class UpdateGroupRequest(WireRequest):
    """``PUT I/groups/{group}``: ``enabled``, ``broadcast`` and ``retry_max_time`` are required;
    an omitted ``group_desc`` clears the description, so it is always sent."""

    enabled: bool
    broadcast: bool
    retry_max_time: int
    consume_orderly: bool | None = None
    group_desc: str = ""


class GroupView(_ChildView):
    """One consumer group as list and show return it (SDK ``ConsumerGroup`` / ``ShowGroupResponse``)."""

    name: str
    enabled: bool | None = None
    broadcast: bool | None = None
    brokers: list[str] = Field(default_factory=list)
    group_desc: str | None = None
    retry_max_time: int | None = None
    created_at: int | None = None
    consume_orderly: bool | None = None


class ListGroupsResponse(WireResponse):
    total: int = 0
    groups: list[GroupView] = Field(default_factory=list)

    @field_validator("groups", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class BatchDeleteTopicsRequest(WireRequest):
    topics: list[str]


class BatchDeleteGroupsRequest(WireRequest):
    groups: list[str]


class JobResponse(WireResponse):
    """What a topic or group batch call answers: only the id of the job that does the work."""

    job_id: str = ""


TASK_RUNNING_STATUSES = frozenset({"CREATED", "RUNNING", "EXECUTING", "IN_PROGRESS"})


class TaskView(WireResponse):
    """One background job of an instance (``GET I/tasks/{task_id}``)."""

    id: str = ""
    name: str = ""
    status: str = ""

    @property
    def finished(self) -> bool:
        return bool(self.status) and self.status.upper() not in TASK_RUNNING_STATUSES


class TaskListResponse(WireResponse):
    tasks: list[TaskView] = Field(default_factory=list)

    @field_validator("tasks", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


# --- ACL users (SDK 3.1.219 CreateUser, ListUser, UpdateUser, DeleteUser; docs/simulator.md "ACL users") ---

UserPerm = Literal["PUB", "SUB", "PUB|SUB", "DENY"]
"""A user's permission on topics or groups; the cloud takes all four for both (TF)."""


class UserPermEntry(WireRequest):
    name: str
    perm: UserPerm


class _UserFields(WireRequest):
    """The settable fields a create and an update share.

    ``secret_key`` is a ``SecretStr``: ``repr``, ``str`` and a plain ``model_dump`` show ``**********``;
    only the JSON body (``to_wire``) holds it in clear, and the client sends that and never logs it.
    """

    secret_key: SecretStr | None = None
    white_remote_address: str | None = None
    admin: bool | None = None
    default_topic_perm: UserPerm | None = None
    default_group_perm: UserPerm | None = None
    topic_perms: list[UserPermEntry] | None = None
    group_perms: list[UserPermEntry] | None = None

    @field_serializer("secret_key", when_used="json")
    def _reveal(self, value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None


class CreateUserRequest(_UserFields):
    """``POST I/users``: ``access_key`` (the user's name) and ``secret_key`` are required."""

    access_key: str
    secret_key: SecretStr


class UpdateUserRequest(_UserFields):
    """``PUT I/users/{access_key}``: every field optional; an absent ``secret_key`` keeps the key."""

    def is_empty(self) -> bool:
        return not self.model_dump(exclude_none=True)


class UserPermView(WireResponse):
    name: str = ""
    perm: str = ""


class UserView(WireResponse):
    """One user as the list answers it (SDK ``UserResp``). No ``secret_key`` field on purpose: show
    answers the key in clear, and this model is what makes sure the operator never holds it."""

    access_key: str
    white_remote_address: str | None = None
    admin: bool | None = None
    default_topic_perm: str | None = None
    default_group_perm: str | None = None
    topic_perms: list[UserPermView] = Field(default_factory=list)
    group_perms: list[UserPermView] = Field(default_factory=list)

    @property
    def name(self) -> str:
        return self.access_key

    @field_validator("topic_perms", "group_perms", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class ListUsersResponse(WireResponse):
    total: int = 0
    users: list[UserView] = Field(default_factory=list)

    @field_validator("users", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value
