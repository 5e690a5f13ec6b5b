"""The topic and consumer-group routes of the DMS RocketMQ API and their handlers.

Paths and operations are the SDK's (3.1.219 ``rocketmq_client``): everything hangs under
``/v2/{project_id}/instances/{instance_id}``; a batch delete is the create path with
``?action=delete``. Each handler parses (``children.parse_*``), acts (``Children``) and answers with
the SDK's response shape; auth, throttling, faults and the call log already happened in the gateway.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from dms_simulator import children, errors
from dms_simulator.children import Kind
from dms_simulator.gateway import Call, Route


def _no_action(call: Call) -> None:
    """The create path answers only ``action=delete`` differently; any other action is refused."""
    action = call.query.get("action")
    if action:
        raise errors.invalid_parameter("action", f"only 'delete' is supported, got {action!r}")


async def create_topic(call: Call) -> web.StreamResponse:
    _no_action(call)
    request = children.parse_topic_create(call.json())
    call.record.names = [request.name]
    topic = call.sim.children.create_topic(call.project_id, call.instance_id, request)
    # CreateTopicResp: the id is the topic's name (TF builds its resource id from it).
    return call.ok({"id": topic.name})


async def list_topics(call: Call) -> web.StreamResponse:
    page = children.parse_page(call.query)
    instance, topics = call.sim.children.topics(call.project_id, call.instance_id)
    quota = call.sim.config.topic_quota
    return call.ok(children.paged(topics, page, "topics", quota, lambda t: children.render_topic(instance, t)))


async def show_topic(call: Call) -> web.StreamResponse:
    name = call.params["topic"]
    call.record.names = [name]
    instance, topic = call.sim.children.topic(call.project_id, call.instance_id, name)
    return call.ok(children.render_topic(instance, topic))


async def update_topic(call: Call) -> web.StreamResponse:
    name = call.params["topic"]
    call.record.names = [name]
    call.sim.children.update_topic(call.project_id, call.instance_id, name, children.parse_topic_update(call.json()))
    return call.no_content()


async def delete_topic(call: Call) -> web.StreamResponse:
    return _delete_one(call, "topic", call.params["topic"])


async def delete_group(call: Call) -> web.StreamResponse:
    return _delete_one(call, "group", call.params["group"])


def _delete_one(call: Call, kind: Kind, name: str) -> web.StreamResponse:
    call.record.names = [name]
    call.sim.children.delete_one(call.project_id, call.instance_id, kind, name)
    return call.no_content()


async def batch_delete_topics(call: Call) -> web.StreamResponse:
    return _batch_delete(call, "topic")


async def batch_delete_groups(call: Call) -> web.StreamResponse:
    return _batch_delete(call, "group")


def _batch_delete(call: Call, kind: Kind) -> web.StreamResponse:
    body = call.json()
    key = "topics" if kind == "topic" else "groups"
    if isinstance(body, dict) and isinstance(body.get(key), list):
        # Log what was asked even if it is then refused.
        call.record.names = [str(name) for name in body[key]]
    names = children.parse_batch_delete(body, kind, call.sim.config.batch_max_size)
    faults = call.sim.faults
    fails = faults.take_topic_delete_failure if kind == "topic" else faults.take_group_delete_failure
    job_id = call.sim.children.batch_delete(call.project_id, call.instance_id, kind, names, fails)
    return call.ok({"job_id": job_id})


async def create_group(call: Call) -> web.StreamResponse:
    _no_action(call)
    request = children.parse_group_create(call.json())
    call.record.names = [request.name]
    group = call.sim.children.create_group(call.project_id, call.instance_id, request)
    return call.ok({"name": group.name})


async def list_groups(call: Call) -> web.StreamResponse:
    page = children.parse_page(call.query)
    instance, groups = call.sim.children.groups(call.project_id, call.instance_id, call.query.get("group") or None)
    quota = call.sim.config.group_quota
    return call.ok(children.paged(groups, page, "groups", quota, lambda g: children.render_group(instance, g, "list")))


async def show_group(call: Call) -> web.StreamResponse:
    name = call.params["group"]
    call.record.names = [name]
    instance, group = call.sim.children.group(call.project_id, call.instance_id, name)
    return call.ok(children.render_group(instance, group, "show"))


async def update_group(call: Call) -> web.StreamResponse:
    name = call.params["group"]
    call.record.names = [name]
    call.sim.children.update_group(call.project_id, call.instance_id, name, children.parse_group_update(call.json()))
    return call.no_content()


async def batch_update_groups(call: Call) -> web.StreamResponse:
    updates = children.parse_group_batch_update(call.json())
    call.record.names = [name for name, _ in updates]
    job_id = call.sim.children.batch_update_groups(call.project_id, call.instance_id, updates)
    return call.ok({"job_id": job_id})


CHILD: Final = "/v2/{project_id}/instances/{instance_id}"

ROUTES: Final = (
    Route("POST", CHILD + "/topics", "topic_batch_delete", batch_delete_topics, action="delete"),
    Route("POST", CHILD + "/topics", "topic_create", create_topic),
    Route("GET", CHILD + "/topics", "topic_list", list_topics),
    Route("GET", CHILD + "/topics/{topic}", "topic_show", show_topic),
    Route("PUT", CHILD + "/topics/{topic}", "topic_update", update_topic),
    Route("DELETE", CHILD + "/topics/{topic}", "topic_delete", delete_topic),
    Route("POST", CHILD + "/groups", "group_batch_delete", batch_delete_groups, action="delete"),
    Route("POST", CHILD + "/groups", "group_create", create_group),
    Route("GET", CHILD + "/groups", "group_list", list_groups),
    Route("PUT", CHILD + "/groups", "group_batch_update", batch_update_groups),
    Route("GET", CHILD + "/groups/{group}", "group_show", show_group),
    Route("PUT", CHILD + "/groups/{group}", "group_update", update_group),
    Route("DELETE", CHILD + "/groups/{group}", "group_delete", delete_group),
)
