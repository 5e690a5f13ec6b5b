"""ACL users of an instance (docs/simulator.md, "ACL users"): the field rules (each refusal names its
field), the secret key (show answers it, nothing the simulator records holds it, an empty key on
update keeps it, a new one rotates it), ACL as a prerequisite, paging, the instance's status and the
not-found answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sim_kit import INVALID, NAME_EXISTS, NO_INSTANCE, WRONG_STATE, Api, ChildApi, error_of

KEY = "Secret-Key-1"
NEW_KEY = "Rotated#Key22"
NO_USER = (400, "DMS.00500972")
ACL_OFF = (400, "DMS.00400970")


@pytest.fixture
async def users(manual_api: Api) -> ChildApi:
    seeded = await manual_api.seed({"engine_version": "5.x", "enable_acl": True})
    return ChildApi(manual_api, seeded[0]["instance_id"], "users")


def user(access_key: str = "app_user1", secret_key: str = KEY, **fields: Any) -> dict[str, Any]:
    return {"access_key": access_key, "secret_key": secret_key, **fields}


async def created(users: ChildApi, body: dict[str, Any]) -> dict[str, Any]:
    response = await users.create(body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def shown(users: ChildApi, name: str) -> dict[str, Any]:
    response = await users.show(name)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def key_matches(users: ChildApi, name: str, secret: str) -> bool:
    instance_id = users.base.split("/")[4]
    response = await users.api.admin("POST", f"/instances/{instance_id}/users/{name}/check-key", {"secret_key": secret})
    assert response.status_code == 200, response.text
    matches: bool = response.json()["matches"]
    return matches


def refusal(response: Any) -> tuple[tuple[int, str], str]:
    return error_of(response), str(response.json()["error_msg"])


# --- create, show, the shapes ---


async def test_a_user_is_created_with_its_fields_and_show_answers_them_with_the_key(users: ChildApi) -> None:
    body = user(
        white_remote_address="10.10.10.20",
        admin=False,
        default_topic_perm="SUB",
        default_group_perm="PUB",  # TF's acceptance test: the cloud takes PUB for groups too
        topic_perms=[{"name": "orders", "perm": "PUB|SUB"}],
        group_perms=[{"name": "billing", "perm": "SUB"}],
    )
    answer = await created(users, body)
    # CreateUserResponse fields, without the key (simulator choice).
    assert "secret_key" not in answer
    assert answer["access_key"] == "app_user1" and answer["topic_perms"] == [{"name": "orders", "perm": "PUB|SUB"}]
    # ShowUserResponse: every field, the key included (TF reads it back and checks it).
    assert await shown(users, "app_user1") == body
    assert await key_matches(users, "app_user1", KEY)


async def test_defaults_are_least_privilege(users: ChildApi) -> None:
    await created(users, user())
    assert await shown(users, "app_user1") == {
        "access_key": "app_user1",
        "secret_key": KEY,
        "white_remote_address": "",
        "admin": False,
        "default_topic_perm": "DENY",
        "default_group_perm": "DENY",
        "topic_perms": [],
        "group_perms": [],
    }


async def test_show_can_leave_the_key_out(users: ChildApi) -> None:
    await users.api.configure(user_secret_in_show=False)
    await created(users, user())
    assert "secret_key" not in await shown(users, "app_user1")
    assert await key_matches(users, "app_user1", KEY)


async def test_a_taken_name_and_the_quota_are_refused(users: ChildApi) -> None:
    await users.api.configure(user_quota=2)
    await created(users, user("app_user1"))
    assert error_of(await users.create(user("app_user1"))) == NAME_EXISTS
    await created(users, user("app_user2"))
    assert error_of(await users.create(user("app_user3"))) == (400, "DMS.00400039")


# --- every invalid field is refused, naming it ---

INVALID_BODIES = [
    pytest.param({"secret_key": KEY}, "access_key", id="access_key missing"),
    pytest.param(user(access_key="short1"), "access_key", id="access_key 6 chars"),
    pytest.param(user(access_key="a" * 65), "access_key", id="access_key 65 chars"),
    pytest.param(user(access_key="1user_name"), "access_key", id="access_key starts with a digit"),
    pytest.param(user(access_key="user.name1"), "access_key", id="access_key with a dot"),
    pytest.param({"access_key": 1234567, "secret_key": KEY}, "access_key", id="access_key not a string"),
    pytest.param({"access_key": "app_user1"}, "secret_key", id="secret_key missing"),
    pytest.param(user(secret_key=""), "secret_key", id="secret_key empty"),
    pytest.param(user(secret_key="Ab1-xyz"), "secret_key", id="secret_key 7 chars"),
    pytest.param(user(secret_key="Ab1-" + "x" * 29), "secret_key", id="secret_key 33 chars"),
    pytest.param(user(secret_key="abcdefgh12"), "secret_key", id="secret_key two classes"),
    pytest.param(user(secret_key="Abc def 12"), "secret_key", id="secret_key with a space"),
    pytest.param(user("App_user1", secret_key="App_user1"), "secret_key", id="secret_key is the access_key"),
    pytest.param(user("App_user1", secret_key="1resu_ppA"), "secret_key", id="secret_key is it reversed"),
    pytest.param(user(white_remote_address=10), "white_remote_address", id="white_remote_address not a string"),
    pytest.param(user(admin="yes"), "admin", id="admin not a bool"),
    pytest.param(user(default_topic_perm="ALL"), "default_topic_perm", id="default_topic_perm unknown"),
    pytest.param(user(default_group_perm="pub"), "default_group_perm", id="default_group_perm lowercase"),
    pytest.param(user(topic_perms={"name": "t1"}), "topic_perms", id="topic_perms not a list"),
    pytest.param(user(topic_perms=[{"perm": "PUB"}]), "topic_perms[].name", id="topic_perms name missing"),
    pytest.param(user(topic_perms=[{"name": "a b c", "perm": "PUB"}]), "topic_perms[].name", id="topic name bad"),
    pytest.param(user(topic_perms=[{"name": "orders"}]), "topic_perms[].perm", id="topic_perms perm missing"),
    pytest.param(
        user(topic_perms=[{"name": "orders", "perm": "X"}]), "topic_perms[].perm", id="topic_perms perm unknown"
    ),
    pytest.param(
        user(topic_perms=[{"name": "orders", "perm": "PUB"}, {"name": "orders", "perm": "SUB"}]),
        "topic_perms",
        id="topic_perms name twice",
    ),
    pytest.param(user(group_perms=["billing"]), "group_perms[]", id="group_perms item not an object"),
    pytest.param(
        user(group_perms=[{"name": "billing", "perm": "NONE"}]), "group_perms[].perm", id="group_perms perm unknown"
    ),
]


@pytest.mark.parametrize(("body", "field"), INVALID_BODIES)
async def test_an_invalid_field_is_refused_and_named(users: ChildApi, body: dict[str, Any], field: str) -> None:
    response = await users.create(body)
    code, message = refusal(response)
    assert code == INVALID, response.text
    assert f"'{field}'" in message
    assert (await users.list()).json()["total"] == 0
    secret = body.get("secret_key")
    if isinstance(secret, str) and secret:
        assert secret not in message  # the refusal never repeats the key


async def test_an_empty_or_non_object_body_is_refused(users: ChildApi) -> None:
    assert error_of(await users.api.call("POST", users.base)) == (400, "DMS.00400004")
    assert error_of(await users.create([user()])) == INVALID  # type: ignore[arg-type]


async def test_every_documented_special_character_counts_as_a_class(users: ChildApi) -> None:
    for index, special in enumerate("`~!@#$%^&*()-_=+\\|[{}];:'\",<.>/?"):
        await created(users, user(f"special_{index:02d}", secret_key=f"abcdefg1{special}"))
    assert (await users.list(limit="50")).json()["total"] == 32


# --- update: rotation and keeping the key ---


async def test_an_update_with_a_new_key_rotates_it(users: ChildApi) -> None:
    await created(users, user())
    response = await users.update("app_user1", {"secret_key": NEW_KEY})
    assert response.status_code == 200, response.text
    assert "secret_key" not in response.json()
    assert (await shown(users, "app_user1"))["secret_key"] == NEW_KEY
    assert await key_matches(users, "app_user1", NEW_KEY) and not await key_matches(users, "app_user1", KEY)


@pytest.mark.parametrize("body", [{"secret_key": ""}, {}, {"admin": True}], ids=["empty", "absent", "other field"])
async def test_an_update_without_a_key_keeps_it(users: ChildApi, body: dict[str, Any]) -> None:
    await created(users, user(default_topic_perm="PUB"))
    response = await users.update("app_user1", body)
    assert response.status_code == 200, response.text
    after = await shown(users, "app_user1")
    assert after["secret_key"] == KEY and after["default_topic_perm"] == "PUB"
    assert after["admin"] is body.get("admin", False)


async def test_an_update_changes_only_what_it_sends(users: ChildApi) -> None:
    await created(users, user(topic_perms=[{"name": "orders", "perm": "PUB"}], white_remote_address="10.0.0.1"))
    # TF's update body: the same access_key and secret_key as in its state, plus what changed.
    body = {"access_key": "app_user1", "secret_key": KEY, "default_group_perm": "SUB", "group_perms": []}
    assert (await users.update("app_user1", body)).status_code == 200
    after = await shown(users, "app_user1")
    assert (after["default_group_perm"], after["group_perms"]) == ("SUB", [])
    assert after["topic_perms"] == [{"name": "orders", "perm": "PUB"}] and after["white_remote_address"] == "10.0.0.1"
    view = (await users.api.admin("GET", f"/instances/{users.base.split('/')[4]}/children")).json()
    assert view["users"][0]["key_version"] == 1  # the same key again is no rotation
    assert (await users.update("app_user1", {"topic_perms": []})).status_code == 200
    assert (await shown(users, "app_user1"))["topic_perms"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"secret_key": "weakweak"}, "secret_key"),
        ({"secret_key": "1resu_ppa"}, "secret_key"),
        ({"access_key": "other_user"}, "access_key"),
        ({"default_topic_perm": "ALL"}, "default_topic_perm"),
        ({"group_perms": [{"name": "billing"}]}, "group_perms[].perm"),
    ],
)
async def test_an_invalid_update_is_refused_and_changes_nothing(
    users: ChildApi, body: dict[str, Any], field: str
) -> None:
    await created(users, user())
    before = await shown(users, "app_user1")
    code, message = refusal(await users.update("app_user1", body))
    assert code == INVALID and f"'{field}'" in message
    assert await shown(users, "app_user1") == before


# --- delete, 404s, instance status, ACL ---


async def test_delete_answers_a_message_and_the_user_is_gone(users: ChildApi) -> None:
    await created(users, user())
    response = await users.delete("app_user1")
    assert response.status_code == 200 and set(response.json()) == {"message"}
    assert error_of(await users.show("app_user1")) == NO_USER
    assert error_of(await users.delete("app_user1")) == NO_USER
    assert error_of(await users.update("app_user1", {"admin": True})) == NO_USER
    # The name is free again.
    await created(users, user())


async def test_an_unknown_user_can_be_answered_404(users: ChildApi) -> None:
    await users.api.configure(user_not_found_status=404)
    assert error_of(await users.show("nobody_here")) == (404, "DMS.00500972")


async def test_users_go_with_their_instance(users: ChildApi) -> None:
    await created(users, user())
    instance_id = users.base.split("/")[4]
    assert (await users.api.admin("DELETE", f"/instances/{instance_id}")).status_code == 200
    for response in (await users.list(), await users.show("app_user1"), await users.create(user("app_user2"))):
        assert error_of(response) == NO_INSTANCE


async def test_changes_need_a_running_instance_reads_do_not(users: ChildApi) -> None:
    await created(users, user())
    instance_id = users.base.split("/")[4]
    patched = await users.api.admin("PATCH", f"/instances/{instance_id}", {"status": "RESTARTING"})
    assert patched.status_code == 200, patched.text
    assert error_of(await users.create(user("app_user2"))) == WRONG_STATE
    assert error_of(await users.update("app_user1", {"admin": True})) == WRONG_STATE
    assert error_of(await users.delete("app_user1")) == WRONG_STATE
    assert (await shown(users, "app_user1"))["access_key"] == "app_user1"
    assert (await users.list()).json()["total"] == 1


async def test_users_need_acl_on_the_instance(manual_api: Api) -> None:
    seeded = await manual_api.seed({"engine_version": "4.8.0", "enable_acl": False})
    instance_id = seeded[0]["instance_id"]
    users = ChildApi(manual_api, instance_id, "users")
    assert error_of(await users.create(user())) == ACL_OFF
    assert (await users.list()).json() == {"users": [], "total": 0}
    patched = await manual_api.admin("PATCH", f"/instances/{instance_id}", {"enable_acl": True})
    assert patched.status_code == 200, patched.text
    await created(users, user())
    await manual_api.admin("PATCH", f"/instances/{instance_id}", {"enable_acl": False})
    # ACL turned off again: the user stays readable and deletable, but cannot be changed.
    assert error_of(await users.update("app_user1", {"admin": True})) == ACL_OFF
    assert (await shown(users, "app_user1"))["access_key"] == "app_user1"
    assert (await users.delete("app_user1")).status_code == 200
    await manual_api.configure(users_require_acl=False)
    await created(users, user())


# --- paging ---


async def test_the_list_pages_oldest_first_and_an_offset_past_the_end_is_an_empty_page(users: ChildApi) -> None:
    names = [f"app_user{index}" for index in range(5)]
    for name in names:
        await created(users, user(name))
    first = (await users.list(limit="2")).json()
    assert first["total"] == 5 and [u["access_key"] for u in first["users"]] == names[:2]
    assert set(first) == {"users", "total"}
    assert all("secret_key" not in item for item in first["users"])  # list never answers the key
    rest = (await users.list(limit="2", offset="4")).json()
    assert [u["access_key"] for u in rest["users"]] == names[4:]
    assert (await users.list(offset="5")).json() == {"users": [], "total": 5}  # how TF's walk ends
    assert [u["access_key"] for u in (await users.list()).json()["users"]] == names  # limit default 10


@pytest.mark.parametrize(
    ("params", "field"), [({"limit": "0"}, "limit"), ({"limit": "51"}, "limit"), ({"offset": "-1"}, "offset")]
)
async def test_bad_paging_is_refused(users: ChildApi, params: dict[str, str], field: str) -> None:
    code, message = refusal(await users.list(**params))
    assert code == INVALID and field in message


# --- the call log and the admin views never hold a key ---


async def test_no_secret_key_reaches_the_call_log_or_an_admin_view(users: ChildApi) -> None:
    api = users.api
    instance_id = users.base.split("/")[4]
    refused_key = "abcdefgh"  # two classes short: refused
    await created(users, user(topic_perms=[{"name": "orders", "perm": "PUB"}]))
    assert error_of(await users.create(user("app_user2", secret_key=refused_key))) == INVALID
    assert (await users.update("app_user1", {"secret_key": NEW_KEY})).status_code == 200
    assert (await users.show("app_user1")).json()["secret_key"] == NEW_KEY  # the API does answer it
    await users.list()
    await users.delete("app_user1")
    await created(users, user("app_user3"))

    calls = await api.calls()
    user_calls = [c for c in calls if c["operation"].startswith("user_")]
    assert [c["operation"] for c in user_calls] == [
        "user_create",
        "user_create",
        "user_update",
        "user_show",
        "user_list",
        "user_delete",
        "user_create",
    ]
    assert [c["names"] for c in user_calls] == [
        ["app_user1"],
        ["app_user2"],
        ["app_user1"],
        ["app_user1"],
        [],
        ["app_user1"],
        ["app_user3"],
    ]
    views = [
        json.dumps(calls),
        (await api.admin("GET", f"/instances/{instance_id}/children")).text,
        (await api.admin("GET", f"/instances/{instance_id}")).text,
        (await api.admin("GET", "/instances")).text,
    ]
    for text in views:
        for secret in (KEY, NEW_KEY, refused_key):
            assert secret not in text
    children = json.loads(views[1])
    assert [(u["access_key"], u["key_version"]) for u in children["users"]] == [("app_user3", 1)]
    assert "secret_key" not in children["users"][0]


async def test_check_key_and_out_of_band_removal(users: ChildApi) -> None:
    instance_id = users.base.split("/")[4]
    await created(users, user())
    missing = await users.api.admin(
        "POST", f"/instances/{instance_id}/users/nobody_here/check-key", {"secret_key": KEY}
    )
    assert error_of(missing) == (404, "SIM.0404")
    no_key = await users.api.admin("POST", f"/instances/{instance_id}/users/app_user1/check-key", {})
    assert error_of(no_key) == (400, "SIM.0400")
    removed = await users.api.admin("DELETE", f"/instances/{instance_id}/children/users/app_user1")
    assert removed.status_code == 200
    assert error_of(await users.show("app_user1")) == NO_USER
