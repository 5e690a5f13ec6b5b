"""The DMS RocketMQ management API: every route the simulator answers, and its handlers.

The route table below is the simulator's API surface in one place, with the SDK's resource paths and
every documented alias (reference section 6 row 8) pointing at the same handlers. Each handler parses
its input (``payloads``), asks the ``Store`` to act, and renders the SDK's response shape
(``instances``); auth, throttling, faults and logging already happened in the gateway.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from dms_simulator import child_api, errors, payloads, user_api
from dms_simulator.gateway import Call, Route
from dms_simulator.instances import render_detail, render_progress, render_recycle_info, render_task


async def create_by_engine(call: Call) -> web.StreamResponse:
    return _create(call, legacy=False)


async def create_legacy(call: Call) -> web.StreamResponse:
    # CreatePostPaidInstanceReq: same fields minus bss_param and the IPv6 addresses.
    return _create(call, legacy=True)


def _create(call: Call, *, legacy: bool) -> web.StreamResponse:
    request = payloads.parse_create(call.json(), legacy=legacy)
    instance = call.sim.store.create(call.project_id, call.principal.identity, request)
    call.record.instance_ids = [instance.instance_id]
    return call.ok({"instance_id": instance.instance_id})


async def show(call: Call) -> web.StreamResponse:
    instance = call.sim.store.show(call.project_id, call.instance_id)
    return call.ok(render_detail(instance, instance.status, "show"))


async def list_instances(call: Call) -> web.StreamResponse:
    query = payloads.parse_list_query(call.query, strict=call.sim.config.strict)
    page, total = call.sim.store.search(call.project_id, query)
    return call.ok(
        {
            "instances": [render_detail(instance, instance.status, "list") for instance in page],
            # The total that match, not the page size (so a client can page).
            "instance_num": total,
        }
    )


async def update(call: Call) -> web.StreamResponse:
    request = payloads.parse_update(call.json())
    call.sim.store.update(call.project_id, call.instance_id, request)
    return call.no_content()


async def delete(call: Call) -> web.StreamResponse:
    call.sim.store.delete(call.project_id, call.instance_id, call.sim.faults.take_delete_failure)
    return call.no_content()


async def batch_action(call: Call) -> web.StreamResponse:
    config = call.sim.config
    body = call.json()
    if isinstance(body, dict):
        # Log what was asked even if it is then refused.
        raw_ids = body.get("instances")
        if isinstance(raw_ids, list):
            call.record.instance_ids = [str(item) for item in raw_ids]
        raw_all = body.get("all_failure", body.get("allFailure"))
        call.record.all_failure = raw_all if isinstance(raw_all, str) else None
        raw_force = body.get("force_delete")
        call.record.force_delete = raw_force if isinstance(raw_force, bool) else None
    request = payloads.parse_batch(body, strict=config.strict, max_size=config.batch_max_size)
    faults = call.sim.faults
    results = call.sim.store.batch_delete(call.project_id, request, faults.is_failed_id, faults.take_delete_failure)
    if results is None:
        # The all_failure form answers 204 without a body (reference section 6 row 2).
        return call.no_content()
    return call.ok({"results": [{"result": item.result, "instance": item.instance_id} for item in results]})


async def resize(call: Call) -> web.StreamResponse:
    request = payloads.parse_resize(call.json())
    task = call.sim.store.resize(call.project_id, call.instance_id, request)
    return call.ok({"job_id": task.task_id})


async def restart(call: Call) -> web.StreamResponse:
    nodes = payloads.parse_restart(call.json(required=False))
    restarted = call.sim.store.restart(call.project_id, call.instance_id, nodes)
    rendered: list[Any] = (
        [{"name": node} for node in restarted] if call.sim.config.restart_nodes_as_objects else restarted
    )
    return call.ok({"instance_id": call.instance_id, "nodes": rendered, "result": "success"})


async def tags_action(call: Call) -> web.StreamResponse:
    action = payloads.parse_tags_action(call.json())
    call.sim.store.change_tags(call.project_id, call.instance_id, action)
    return call.no_content()


async def instance_tags(call: Call) -> web.StreamResponse:
    instance = call.sim.store.get(call.project_id, call.instance_id)
    tags = [{"key": key, "value": value} for key, value in instance.tags.items()]
    return call.ok(_tag_page(call, tags))


async def project_tags(call: Call) -> web.StreamResponse:
    collected = call.sim.store.project_tags(call.project_id)
    tags = [{"key": key, "values": values} for key, values in collected.items()]
    return call.ok(_tag_page(call, tags))


def _tag_page(call: Call, tags: list[dict[str, Any]]) -> dict[str, Any]:
    limit = payloads.query_int(call.query, "limit", 10, 1, 1000)
    offset = payloads.query_int(call.query, "offset", 0, 0)
    return {"tags": tags[offset : offset + limit], "total": len(tags)}


def _recycle_view(call: Call) -> dict[str, Any]:
    store = call.sim.store
    policy = store.policy(call.project_id)
    return {
        "retention_days": max(1, round(policy.retention_days)),
        "default_use_recycle": policy.default_use_recycle,
        "recycle_instances": [render_recycle_info(instance) for instance in store.binned(call.project_id)],
    }


async def recycle_list(call: Call) -> web.StreamResponse:
    return call.ok(_recycle_view(call))


async def recycle_restore(call: Call) -> web.StreamResponse:
    body = call.json()
    ids = payloads.parse_restore(body)
    call.record.instance_ids = ids
    return call.ok({"results": call.sim.store.restore(call.project_id, ids)})


async def recycle_policy(call: Call) -> web.StreamResponse:
    call.sim.store.set_policy(call.project_id, payloads.parse_recycle_policy(call.json()))
    return call.ok(_recycle_view(call))


async def list_tasks(call: Call) -> web.StreamResponse:
    instance = call.sim.store.get(call.project_id, call.instance_id)
    now = call.sim.clock.now()
    start = payloads.query_int(call.query, "start", payloads.query_int(call.query, "offset", 0, 0), 0)
    limit = payloads.query_int(call.query, "limit", 10, 1, 1000)
    begin = _task_time(call, "begin_time")
    end = _task_time(call, "end_time")
    tasks = [
        task
        for task in reversed(instance.tasks)
        if (begin is None or task.started >= begin) and (end is None or task.started <= end)
    ]
    page = tasks[start : start + limit]
    return call.ok(
        {
            # A string on purpose: the API's own type for this count (reference section 6 row 12).
            "task_count": str(len(tasks)),
            "tasks": [render_task(instance, task, now) for task in page],
        }
    )


def _task_time(call: Call, key: str) -> float | None:
    raw = call.query.get(key)
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise errors.invalid_parameter(key, f"must be YYYYMMDDHHmmss, got {raw!r}") from None


async def show_task(call: Call) -> web.StreamResponse:
    instance, task = call.sim.store.task(call.project_id, call.instance_id, call.params["task_id"])
    return call.ok({"task_count": "1", "tasks": [render_task(instance, task, call.sim.clock.now())]})


async def task_progress(call: Call) -> web.StreamResponse:
    _, task = call.sim.store.task(call.project_id, call.instance_id, call.params["task_id"])
    return call.ok(render_progress(task, call.sim.clock.now()))


async def quotas(call: Call) -> web.StreamResponse:
    used = call.sim.store.count_live(call.project_id)
    resources = [{"type": "rocketmqInstance", "quota": call.sim.config.quota, "used": used}]
    return call.ok({"quotas": {"resources": resources}})


INSTANCE: Final = "/v2/{project_id}/instances/{instance_id}"

ROUTES: Final = (
    # create: by engine (SDK CreateInstanceByEngine), RocketMQ alias, legacy post-paid
    Route("POST", "/v2/{engine}/{project_id}/instances", "create", create_by_engine),
    Route("POST", "/v2/{project_id}/rocketmq/instances", "create", create_by_engine),
    Route("POST", "/v2/{project_id}/instances", "create", create_legacy),
    # read
    Route("GET", "/v2/{project_id}/instances", "list", list_instances),
    Route("GET", INSTANCE, "show", show),
    Route("GET", "/v2/{engine}/{project_id}/instances/{instance_id}", "show", show),
    # change
    Route("PUT", INSTANCE, "update", update),
    Route("DELETE", INSTANCE, "delete", delete),
    Route("POST", "/v2/{project_id}/instances/action", "batch_action", batch_action),
    Route("POST", "/v2/{engine}/{project_id}/instances/{instance_id}/extend", "resize", resize),
    Route("POST", "/v2/{project_id}/rocketmq/instances/{instance_id}/extend", "resize", resize),
    Route("POST", "/v2/{project_id}/{engine}/instances/{instance_id}/restart", "restart", restart),
    # tags
    Route("POST", "/v2/{project_id}/rocketmq/{instance_id}/tags/action", "tags", tags_action),
    Route("GET", "/v2/{project_id}/rocketmq/{instance_id}/tags", "tags", instance_tags),
    Route("GET", "/v2/{project_id}/rocketmq/tags", "tags", project_tags),
    # recycle bin
    Route("GET", "/v2/{project_id}/recycle", "recycle", recycle_list),
    Route("POST", "/v2/{project_id}/recycle", "recycle", recycle_restore),
    Route("PUT", "/v2/{project_id}/recycle", "recycle", recycle_policy),
    # background tasks and quotas
    Route("GET", INSTANCE + "/tasks", "tasks", list_tasks),
    Route("GET", INSTANCE + "/tasks/{task_id}", "tasks", show_task),
    Route("GET", INSTANCE + "/tasks/{task_id}/progress", "tasks", task_progress),
    Route("GET", "/v2/{project_id}/quotas", "quotas", quotas),
    # topics and consumer groups of an instance
    *child_api.ROUTES,
    # ACL users of an instance
    *user_api.ROUTES,
)
