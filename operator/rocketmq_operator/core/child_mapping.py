"""Topics and consumer groups: spec -> cloud requests, the cloud's view -> status, and what differs.

Pure, so each rule is a table row: what a create sends per engine version, which differences an
update can fix (and which the cloud cannot change, so they are left alone), what status mirrors.
``KindRules`` bundles them per kind, so the service and the wiring treat both kinds alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rocketmq_operator.core import cloud
from rocketmq_operator.core.child_resource import (
    CONSUMER_GROUP_KIND,
    ENGINE_4,
    ENGINE_5,
    TOPIC_KIND,
    RocketMQConsumerGroup,
    RocketMQConsumerGroupSpec,
    RocketMQConsumerGroupStatus,
    RocketMQTopic,
    RocketMQTopicSpec,
    RocketMQTopicStatus,
)
from rocketmq_operator.core.connection import SpecDefaults


@dataclass(frozen=True)
class Parent:
    """What a child needs to know of its RocketMQInstance CR (from the operator's index, no API call)."""

    ref: str
    """namespace/name of the RocketMQInstance."""
    instance_id: str | None
    cloud_status: str | None
    engine_version: str | None
    deleting: bool
    """The RocketMQInstance CR has a deletionTimestamp (or its namespace is being deleted)."""
    deletes_instance: bool
    """Its deletion policy is Delete: the cloud instance goes, and its topics and groups with it."""
    spec_defaults: SpecDefaults = field(default_factory=SpecDefaults)
    """What of its spec its connection Secret falls back on (a user's connection Secret has the same keys)."""


def topic_create(spec: RocketMQTopicSpec, name: str, engine: str | None) -> cloud.CreateTopicRequest:
    return cloud.CreateTopicRequest(
        name=name,
        queue_num=spec.queue_num,
        brokers=spec.brokers if engine == ENGINE_4 else None,
        permission=spec.permission if engine == ENGINE_4 else None,
        message_type=spec.message_type if engine == ENGINE_5 else None,
    )


def topic_update(spec: RocketMQTopicSpec, view: cloud.TopicView, engine: str | None) -> cloud.UpdateTopicRequest | None:
    """What to change so the cloud matches the spec, or None. Queues and permission change on 4.8.0
    only (the SDK's UpdateTopicReq); on 5.x they are fixed at creation, so a difference is left."""
    if engine != ENGINE_4:
        return None
    changes: dict[str, Any] = {}
    if spec.queue_num is not None:
        if view.total_read_queue_num != spec.queue_num:
            changes["read_queue_num"] = spec.queue_num
        if view.total_write_queue_num != spec.queue_num:
            changes["write_queue_num"] = spec.queue_num
    if spec.permission is not None and view.permission != spec.permission:
        changes["permission"] = spec.permission
    return cloud.UpdateTopicRequest(**changes) if changes else None


def topic_status(view: cloud.TopicView) -> RocketMQTopicStatus:
    return RocketMQTopicStatus(
        read_queue_num=view.total_read_queue_num,
        write_queue_num=view.total_write_queue_num,
        permission=view.permission,
        message_type=view.message_type,
    )


def group_create(spec: RocketMQConsumerGroupSpec, name: str, engine: str | None) -> cloud.CreateGroupRequest:
    return cloud.CreateGroupRequest(
        name=name,
        brokers=spec.brokers if engine == ENGINE_4 else None,
        enabled=spec.enabled,
        broadcast=spec.broadcast,
        retry_max_time=spec.retry_max_time,
        consume_orderly=spec.consume_orderly if engine == ENGINE_5 else None,
        group_desc=spec.description,
    )


def group_update(
    spec: RocketMQConsumerGroupSpec, view: cloud.GroupView, engine: str | None
) -> cloud.UpdateGroupRequest | None:
    orderly = spec.consume_orderly if engine == ENGINE_5 else None
    same = (
        view.enabled == spec.enabled
        and view.broadcast == spec.broadcast
        and view.retry_max_time == spec.retry_max_time
        and (view.group_desc or "") == (spec.description or "")
        and (orderly is None or bool(view.consume_orderly) == orderly)
    )
    if same:
        return None
    # The update needs enabled, broadcast and retry_max_time, and clears an omitted description.
    return cloud.UpdateGroupRequest(
        enabled=spec.enabled,
        broadcast=spec.broadcast,
        retry_max_time=spec.retry_max_time,
        consume_orderly=orderly,
        group_desc=spec.description or "",
    )


def group_status(view: cloud.GroupView) -> RocketMQConsumerGroupStatus:
    return RocketMQConsumerGroupStatus(
        enabled=view.enabled,
        broadcast=view.broadcast,
        retry_max_time=view.retry_max_time,
        consume_orderly=view.consume_orderly,
    )


CrT = TypeVar("CrT", RocketMQTopic, RocketMQConsumerGroup)


@dataclass(frozen=True)
class KindRules(Generic[CrT]):
    """Everything that differs between topics and consumer groups, for the service to call."""

    kind: cloud.ChildKind
    k8s_kind: str
    noun: str

    def parse(self, body: Any) -> CrT:
        raise NotImplementedError

    def create_request(self, cr: CrT, engine: str | None) -> cloud.CreateTopicRequest | cloud.CreateGroupRequest:
        raise NotImplementedError

    def update_request(
        self, cr: CrT, view: cloud.TopicView | cloud.GroupView, engine: str | None
    ) -> cloud.UpdateTopicRequest | cloud.UpdateGroupRequest | None:
        raise NotImplementedError

    def observed(self, view: cloud.TopicView | cloud.GroupView) -> RocketMQTopicStatus | RocketMQConsumerGroupStatus:
        raise NotImplementedError

    def empty_status(self) -> RocketMQTopicStatus | RocketMQConsumerGroupStatus:
        raise NotImplementedError


class TopicRules(KindRules[RocketMQTopic]):
    def parse(self, body: Any) -> RocketMQTopic:
        return RocketMQTopic.from_body(body)

    def create_request(self, cr: RocketMQTopic, engine: str | None) -> cloud.CreateTopicRequest:
        return topic_create(cr.spec, cr.cloud_name, engine)

    def update_request(
        self, cr: RocketMQTopic, view: cloud.TopicView | cloud.GroupView, engine: str | None
    ) -> cloud.UpdateTopicRequest | None:
        assert isinstance(view, cloud.TopicView)
        return topic_update(cr.spec, view, engine)

    def observed(self, view: cloud.TopicView | cloud.GroupView) -> RocketMQTopicStatus:
        assert isinstance(view, cloud.TopicView)
        return topic_status(view)

    def empty_status(self) -> RocketMQTopicStatus:
        return RocketMQTopicStatus()


class GroupRules(KindRules[RocketMQConsumerGroup]):
    def parse(self, body: Any) -> RocketMQConsumerGroup:
        return RocketMQConsumerGroup.from_body(body)

    def create_request(self, cr: RocketMQConsumerGroup, engine: str | None) -> cloud.CreateGroupRequest:
        return group_create(cr.spec, cr.cloud_name, engine)

    def update_request(
        self, cr: RocketMQConsumerGroup, view: cloud.TopicView | cloud.GroupView, engine: str | None
    ) -> cloud.UpdateGroupRequest | None:
        assert isinstance(view, cloud.GroupView)
        return group_update(cr.spec, view, engine)

    def observed(self, view: cloud.TopicView | cloud.GroupView) -> RocketMQConsumerGroupStatus:
        assert isinstance(view, cloud.GroupView)
        return group_status(view)

    def empty_status(self) -> RocketMQConsumerGroupStatus:
        return RocketMQConsumerGroupStatus()


TOPICS = TopicRules(kind="topic", k8s_kind=TOPIC_KIND, noun="topic")
GROUPS = GroupRules(kind="group", k8s_kind=CONSUMER_GROUP_KIND, noun="consumer group")
