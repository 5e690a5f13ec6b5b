"""The RocketMQTopic and RocketMQConsumerGroup custom resources: spec and status as pydantic models.

Both are children of a ``RocketMQInstance`` in the same namespace (``spec.instanceRef.name``), whose
cloud instance holds them. As for the instance, these models are the one source of truth: the CRDs
are generated from them (``core.crdgen``), with the rules the API server can check on the object
itself (name rule, ranges, immutable fields) as JSON schema and CEL. What depends on the parent
(its engine version: 4.8.0 or 5.x) can only be checked by the operator, which refuses a field the
parent's engine does not have with ``Stalled`` and a reason naming the field (``engine_mismatch``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from rocketmq_operator.core.resource import (
    READ_BACK,
    CamelModel,
    Condition,
    DeletionPolicy,
    Metadata,
    StatusModel,
    cel,
    immutable,
)

TOPIC_KIND = "RocketMQTopic"
TOPIC_PLURAL = "rocketmqtopics"
TOPIC_SHORT_NAMES = ("rmqt",)
CONSUMER_GROUP_KIND = "RocketMQConsumerGroup"
CONSUMER_GROUP_PLURAL = "rocketmqconsumergroups"
CONSUMER_GROUP_SHORT_NAMES = ("rmqg",)

CHILD_NAME_PATTERN = r"^[A-Za-z0-9%|_-]{3,64}$"
"""The cloud's topic and group name rule: 3-64 letters, digits, ``%``, ``|``, ``-``, ``_``."""

ENGINE_4 = "4.8.0"
ENGINE_5 = "5.x"


class InstanceRef(CamelModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=253, description="A RocketMQInstance in the same namespace.")


def _child_rules(*immutable_fields: str) -> list[JsonValue]:
    """A transition rule on a field alone runs only when it is there before and after, so adding or
    removing an immutable optional field is refused here, at the spec."""
    return [
        cel(
            f"has(self.{field}) == has(oldSelf.{field})",
            f"spec.{field} is immutable: it cannot be added or removed after creation",
            field_path=f".{field}",
        )
        for field in ("name", *immutable_fields)
    ]


class ChildSpec(CamelModel):
    """What topics and groups share: the parent, the cloud name, adoption and the deletion policy."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"x-kubernetes-validations": _child_rules()})

    engine_fields: ClassVar[dict[str, str]] = {}
    """Field (camelCase) -> the only engine version that has it."""

    instance_ref: InstanceRef = Field(
        description="The RocketMQInstance (same namespace) whose cloud instance holds this (immutable).",
        json_schema_extra={"x-kubernetes-validations": [cel("self == oldSelf", "spec.instanceRef is immutable")]},
    )
    name: str | None = Field(
        default=None,
        pattern=CHILD_NAME_PATTERN,
        description="Name in the cloud (immutable). Default: metadata.name.",
        json_schema_extra=immutable("name"),
    )
    adopt: bool = Field(
        default=False,
        description="Take over an existing cloud object of this name; without it, an existing one is "
        "refused (Stalled, reason AlreadyExists) and left alone.",
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE,
        description="Delete the cloud object with the CR (Delete) or leave it (Orphan). Deleting the "
        "instance deletes its topics and groups whatever this says.",
    )

    def engine_mismatch(self, engine_version: str | None) -> str | None:
        """The first set field that ``engine_version`` does not have, as a sentence; None if all fit."""
        if engine_version is None:
            return None
        wire = self.to_wire()
        for field, only_on in self.engine_fields.items():
            if field in wire and only_on != engine_version:
                return f"spec.{field} is for engine version {only_on} only; instance is {engine_version}"
        return None


class RocketMQTopicSpec(ChildSpec):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _child_rules("brokers", "messageType")})

    engine_fields: ClassVar[dict[str, str]] = {
        "brokers": ENGINE_4,
        "permission": ENGINE_4,
        "messageType": ENGINE_5,
    }

    queue_num: int | None = Field(
        default=None,
        ge=1,
        le=50,
        description="Queues (the cloud's default is 8). On 4.8.0 it is the total over the brokers and can "
        "change; on 5.x it is fixed at creation.",
    )
    brokers: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="4.8.0 only: the brokers that hold the topic (default: all) (immutable).",
        json_schema_extra=immutable("brokers"),
    )
    permission: Literal["all", "pub", "sub"] | None = Field(
        default=None, description="4.8.0 only: all (default), pub or sub."
    )
    message_type: Literal["NORMAL", "FIFO", "DELAY", "TRANSACTION"] | None = Field(
        default=None,
        description="5.x only: the message type (default NORMAL) (immutable).",
        json_schema_extra=immutable("messageType"),
    )
    description: str | None = Field(default=None, max_length=200)


class RocketMQConsumerGroupSpec(ChildSpec):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _child_rules("brokers")})

    engine_fields: ClassVar[dict[str, str]] = {"brokers": ENGINE_4, "consumeOrderly": ENGINE_5}

    enabled: bool = Field(default=True, description="Whether consumers may consume.")
    broadcast: bool = Field(default=False, description="Broadcast consumption.")
    retry_max_time: int = Field(default=16, ge=1, le=16, description="Retries before a message is dead.")
    description: str | None = Field(default=None, max_length=200)
    brokers: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="4.8.0 only: the brokers of the group (default: all) (immutable).",
        json_schema_extra=immutable("brokers"),
    )
    consume_orderly: bool | None = Field(default=None, description="5.x only: consume in order.")


class ChildCreationStatus(StatusModel):
    """Written before the create call: a cloud object of this name that appears later is ours."""

    pending_since: str


class ChildDeletionStatus(StatusModel):
    """The last batch deletion of this object and what came of it."""

    instance_id: str | None = None
    batch_id: str | None = None
    batch_size: int | None = None
    job_id: str | None = None
    submitted_at: str | None = None
    result: str | None = Field(
        default=None, description="Accepted, Failed, NotFound, WrongState, Error, or WithInstance (no call)"
    )
    attempts: int = 0
    last_error: str | None = None


class ChildStatus(StatusModel):
    observed_generation: int | None = None
    instance_id: str | None = Field(default=None, description="The cloud instance that holds it.")
    cloud_name: str | None = None
    owned: bool | None = Field(
        default=None, description="The cloud object is this CR's: created by it, or adopted (spec.adopt)."
    )
    adopted: bool | None = None
    creation: ChildCreationStatus | None = None
    deletion: ChildDeletionStatus | None = None
    last_synced: str | None = None
    conditions: list[Condition] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class RocketMQTopicStatus(ChildStatus):
    read_queue_num: int | None = None
    write_queue_num: int | None = None
    permission: str | None = None
    message_type: str | None = None


class RocketMQConsumerGroupStatus(ChildStatus):
    enabled: bool | None = None
    broadcast: bool | None = None
    retry_max_time: int | None = None
    consume_orderly: bool | None = None


class _Child(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    metadata: Metadata

    @property
    def ref(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"


class RocketMQTopic(_Child):
    spec: RocketMQTopicSpec
    status: RocketMQTopicStatus = Field(default_factory=RocketMQTopicStatus)

    @classmethod
    def from_body(cls, body: Any) -> RocketMQTopic:
        return cls.model_validate(body, context={READ_BACK: True})

    @property
    def cloud_name(self) -> str:
        return self.spec.name or self.metadata.name


class RocketMQConsumerGroup(_Child):
    spec: RocketMQConsumerGroupSpec
    status: RocketMQConsumerGroupStatus = Field(default_factory=RocketMQConsumerGroupStatus)

    @classmethod
    def from_body(cls, body: Any) -> RocketMQConsumerGroup:
        return cls.model_validate(body, context={READ_BACK: True})

    @property
    def cloud_name(self) -> str:
        return self.spec.name or self.metadata.name


def metadata_name_rule() -> dict[str, JsonValue]:
    """At the root of the schema: without ``spec.name``, ``metadata.name`` is the cloud name and must fit."""
    return cel(
        f"has(self.spec.name) || self.metadata.name.matches('{CHILD_NAME_PATTERN}')",
        "metadata.name is used as the cloud name unless spec.name is set, and the cloud allows 3-64 "
        "letters, digits, %, |, - and _ (no dots): set spec.name",
        field_path=".metadata.name",
    )
