"""ACL users (docs/simulator.md "ACL users"): each call's method, path and exact body, how the list is
read, which error class a failure becomes, and that the secret key shows nowhere but in the body."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from client_kit import IID1, PID, Cloud, error, make_client, reply
from pydantic import SecretStr

from rocketmq_operator.core import cloud
from rocketmq_operator.ports import errors

USERS = f"/v2/{PID}/instances/{IID1}/users"
KEY = "Sup3r-Secret-Key_42"


async def _one_call(answer: httpx.Response, call: Any) -> tuple[Any, httpx.Request]:
    cloud_ = Cloud(answers=[answer])
    async with make_client(cloud_) as client:
        result = await call(client)
    assert cloud_.attempts == 1
    return result, cloud_.requests[0]


def _create() -> cloud.CreateUserRequest:
    return cloud.CreateUserRequest(
        access_key="app-user",
        secret_key=SecretStr(KEY),
        admin=False,
        default_topic_perm="SUB",
        topic_perms=[cloud.UserPermEntry(name="orders", perm="PUB|SUB")],
    )


class TestRequests:
    def test_the_key_is_hidden_from_repr_str_and_a_plain_dump(self) -> None:
        request = _create()
        for shown in (repr(request), str(request), str(request.model_dump())):
            assert KEY not in shown
        update = cloud.UpdateUserRequest(secret_key=SecretStr(KEY))
        assert KEY not in repr(update)
        assert update.to_wire() == {"secret_key": KEY}

    async def test_create_posts_the_key_in_the_body_only(self) -> None:
        _, request = await _one_call(reply(200, {"access_key": "app-user"}), lambda c: c.create_user(IID1, _create()))
        assert (request.method, request.url.raw_path.decode()) == ("POST", USERS)
        assert json.loads(request.content) == {
            "access_key": "app-user",
            "secret_key": KEY,
            "admin": False,
            "default_topic_perm": "SUB",
            "topic_perms": [{"name": "orders", "perm": "PUB|SUB"}],
        }
        assert KEY not in str(request.url) and KEY not in str(dict(request.headers))

    async def test_update_puts_to_the_escaped_name(self) -> None:
        change = cloud.UpdateUserRequest(default_group_perm="DENY", group_perms=[])
        _, request = await _one_call(reply(200, {"access_key": "a/b"}), lambda c: c.update_user(IID1, "a/b", change))
        assert (request.method, request.url.raw_path.decode()) == ("PUT", f"{USERS}/a%2Fb")
        assert json.loads(request.content) == {"default_group_perm": "DENY", "group_perms": []}

    async def test_an_empty_update_is_not_sent(self) -> None:
        cloud_ = Cloud(answers=[])
        async with make_client(cloud_) as client:
            await client.update_user(IID1, "app-user", cloud.UpdateUserRequest())
        assert cloud_.attempts == 0

    async def test_delete_is_one_call_for_one_user(self) -> None:
        _, request = await _one_call(reply(200, {"message": "success"}), lambda c: c.delete_user(IID1, "app-user"))
        assert (request.method, request.url.raw_path.decode(), request.content) == ("DELETE", f"{USERS}/app-user", b"")

    async def test_list_pages_and_never_reads_a_key(self) -> None:
        body = {
            "total": 1,
            "users": [
                {
                    "access_key": "app-user",
                    "secret_key": KEY,
                    "admin": True,
                    "white_remote_address": "10.0.0.*",
                    "default_topic_perm": "PUB",
                    "default_group_perm": "SUB",
                    "topic_perms": None,
                    "group_perms": [{"name": "billing", "perm": "SUB"}],
                }
            ],
        }
        page, request = await _one_call(
            reply(200, body), lambda c: c.list_users(IID1, cloud.ChildPage(limit=50, offset=50))
        )
        assert request.url.raw_path.decode() == f"{USERS}?limit=50&offset=50"
        [user] = page.users
        assert (user.name, user.admin, user.topic_perms, user.group_perms[0].perm) == ("app-user", True, [], "SUB")
        assert "secret_key" not in cloud.UserView.model_fields
        assert KEY not in repr(page) and KEY not in page.model_dump_json()


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (error(400, "DMS.00500972", "The user does not exist: app-user"), errors.NotFound),
        (error(404, "DMS.00404022", "instance not found"), errors.InstanceNotFound),
        (error(400, "DMS.00400060", "The user name already exists: app-user"), errors.NameConflict),
        (error(400, "DMS.00400001", "Invalid 'secret_key': must be 8 to 32 characters"), errors.InvalidRequest),
    ],
)
async def test_user_errors_map_to_their_class(
    response: httpx.Response, kind: type[errors.CloudAPIError], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cloud_ = Cloud(answers=[response])
    async with make_client(cloud_) as client:
        with pytest.raises(errors.CloudAPIError) as caught:
            await client.create_user(IID1, _create())
    assert type(caught.value) is kind
    # The message is the cloud's, never the request body it answered.
    assert KEY not in str(caught.value) and KEY not in repr(caught.value) and KEY not in caplog.text
