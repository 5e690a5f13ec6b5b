"""The ACL user routes of the DMS RocketMQ API and their handlers.

Paths and operations are the SDK's (3.1.219 ``rocketmq_client``: ``create_user``, ``list_user``,
``show_user``, ``update_user``, ``delete_user``), under ``/v2/{project_id}/instances/{instance_id}``.
Each handler parses (``users.parse_*``), acts (``Users``) and answers with the SDK's response shape;
the call log gets the user's name in ``names`` and never anything of the secret key.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from dms_simulator import users
from dms_simulator.gateway import Call, Route


async def create_user(call: Call) -> web.StreamResponse:
    body = call.json()
    claimed = users.claimed_name(body)
    if claimed is not None:
        call.record.names = [claimed]  # logged even when refused
    access_key, fields = users.parse_create(body)
    user = call.sim.users.create(call.project_id, call.instance_id, access_key, fields)
    # CreateUserResponse has every User field; whether the real answer echoes the secret key is
    # unknown, so it does not (docs/simulator.md, "ACL users").
    return call.ok(users.render_user(user))


async def list_users(call: Call) -> web.StreamResponse:
    page = users.parse_page(call.query)
    return call.ok(call.sim.users.listing(call.project_id, call.instance_id, page))


async def show_user(call: Call) -> web.StreamResponse:
    name = call.params["user_name"]
    call.record.names = [name]
    return call.ok(call.sim.users.show(call.project_id, call.instance_id, name))


async def update_user(call: Call) -> web.StreamResponse:
    name = call.params["user_name"]
    call.record.names = [name]
    user = call.sim.users.update(call.project_id, call.instance_id, name, users.parse_update(call.json(), name))
    # TF expects 200; UpdateUserResponse has the User fields (without the key, as create).
    return call.ok(users.render_user(user))


async def delete_user(call: Call) -> web.StreamResponse:
    name = call.params["user_name"]
    call.record.names = [name]
    call.sim.users.delete(call.project_id, call.instance_id, name)
    # TF expects 200; DeleteUserResponse is {message}.
    return call.ok({"message": "success"})


USERS: Final = "/v2/{project_id}/instances/{instance_id}/users"

ROUTES: Final = (
    Route("POST", USERS, "user_create", create_user),
    Route("GET", USERS, "user_list", list_users),
    Route("GET", USERS + "/{user_name}", "user_show", show_user),
    Route("PUT", USERS + "/{user_name}", "user_update", update_user),
    Route("DELETE", USERS + "/{user_name}", "user_delete", delete_user),
)
