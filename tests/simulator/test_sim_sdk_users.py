"""Huawei's own SDK drives the ACL user endpoints: create, list, show, update (rotation and keeping
the key) and delete parse into the SDK's response models with the values the simulator holds, and
its refusals reach the SDK as ``ClientRequestException`` with the status and code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sim_kit
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkrocketmq.v2 import model as m

from dms_simulator import ManualClock, ThreadedSimulator

KEY = "testRocketmqSK123"  # TF's acceptance test values
NAME = "testRocketmqAK"


@pytest.fixture
def clock(module_clock: ManualClock) -> ManualClock:
    return module_clock


@pytest.fixture
def admin(simulator: ThreadedSimulator) -> Iterator[httpx.Client]:
    with sim_kit.admin_client(simulator.url, {}) as client:
        yield client


@pytest.fixture
def client(simulator: ThreadedSimulator, admin: httpx.Client) -> Iterator[Any]:
    sdk = sim_kit.sdk_client(simulator.url)
    yield sdk
    sdk.close()


def seeded(admin: httpx.Client, **spec: Any) -> str:
    body = {"project_id": sim_kit.PID, "instances": [{"engine_version": "4.8.0", "enable_acl": True, **spec}]}
    response = admin.post("/instances", json=body)
    response.raise_for_status()
    instance_id: str = response.json()["instances"][0]["instance_id"]
    return instance_id


def refused(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value.status_code, caught.value.error_code


def key_matches(admin: httpx.Client, instance_id: str, name: str, secret: str) -> bool:
    response = admin.post(f"/instances/{instance_id}/users/{name}/check-key", json={"secret_key": secret})
    response.raise_for_status()
    return bool(response.json()["matches"])


def create_user(client: Any, instance_id: str, **fields: Any) -> Any:
    return client.create_user(m.CreateUserRequest(instance_id=instance_id, body=m.User(**fields)))


def show_user(client: Any, instance_id: str, name: str) -> Any:
    return client.show_user(m.ShowUserRequest(instance_id=instance_id, user_name=name))


def test_a_user_round_trips_through_the_sdk_models(client: Any, admin: httpx.Client) -> None:
    instance_id = seeded(admin)
    made = create_user(
        client,
        instance_id,
        access_key=NAME,
        secret_key=KEY,
        white_remote_address="10.10.10.20",
        default_topic_perm="SUB",
        default_group_perm="PUB",
        topic_perms=[m.UserTopicPerms(name="orders", perm="PUB|SUB")],
        group_perms=[m.UserGroupPerms(name="billing", perm="SUB")],
    )
    assert isinstance(made, m.CreateUserResponse)
    assert (made.access_key, made.secret_key, made.default_topic_perm) == (NAME, None, "SUB")

    shown = show_user(client, instance_id, NAME)
    assert isinstance(shown, m.ShowUserResponse)
    # TF's read sets secret_key from show and its acceptance test checks it.
    assert (shown.access_key, shown.secret_key, shown.white_remote_address) == (NAME, KEY, "10.10.10.20")
    assert (shown.admin, shown.default_topic_perm, shown.default_group_perm) == (False, "SUB", "PUB")
    assert [(p.name, p.perm) for p in shown.topic_perms] == [("orders", "PUB|SUB")]
    assert all(isinstance(p, m.UserRespGroupPerms) for p in shown.group_perms)
    assert set(json.loads(shown.raw_content)) == set(m.ShowUserResponse.attribute_map.values())

    listed = client.list_user(m.ListUserRequest(instance_id=instance_id, limit=10, offset=0))
    assert isinstance(listed, m.ListUserResponse)
    assert set(json.loads(listed.raw_content)) == set(m.ListUserResponse.attribute_map.values())
    (item,) = listed.users
    assert isinstance(item, m.UserResp)
    assert (listed.total, item.access_key, item.secret_key) == (1, NAME, None)


def test_an_update_through_the_sdk_keeps_or_rotates_the_key(client: Any, admin: httpx.Client) -> None:
    instance_id = seeded(admin)
    create_user(client, instance_id, access_key=NAME, secret_key=KEY, default_topic_perm="SUB")

    # TF's update body: the key from its state, the changed fields.
    same = m.User(access_key=NAME, secret_key=KEY, white_remote_address="10.10.10.10", default_topic_perm="PUB")
    updated = client.update_user(m.UpdateUserRequest(instance_id=instance_id, user_name=NAME, body=same))
    assert isinstance(updated, m.UpdateUserResponse)
    assert (updated.white_remote_address, updated.default_topic_perm) == ("10.10.10.10", "PUB")
    assert key_matches(admin, instance_id, NAME, KEY)

    empty = m.User(secret_key="", default_group_perm="SUB")
    client.update_user(m.UpdateUserRequest(instance_id=instance_id, user_name=NAME, body=empty))
    assert show_user(client, instance_id, NAME).secret_key == KEY

    rotated = m.User(secret_key="Rotated-Key-2")
    client.update_user(m.UpdateUserRequest(instance_id=instance_id, user_name=NAME, body=rotated))
    assert key_matches(admin, instance_id, NAME, "Rotated-Key-2")
    assert not key_matches(admin, instance_id, NAME, KEY)
    shown = show_user(client, instance_id, NAME)
    assert (shown.secret_key, shown.default_group_perm, shown.white_remote_address) == (
        "Rotated-Key-2",
        "SUB",
        "10.10.10.10",
    )


def test_delete_through_the_sdk_answers_a_message(client: Any, admin: httpx.Client) -> None:
    instance_id = seeded(admin)
    create_user(client, instance_id, access_key=NAME, secret_key=KEY)
    deleted = client.delete_user(m.DeleteUserRequest(instance_id=instance_id, user_name=NAME))
    assert isinstance(deleted, m.DeleteUserResponse) and deleted.message
    assert refused(lambda: show_user(client, instance_id, NAME)) == (400, "DMS.00500972")
    listed = client.list_user(m.ListUserRequest(instance_id=instance_id))
    assert (listed.total, listed.users) == (0, [])


def test_refusals_reach_the_sdk_with_their_codes(client: Any, admin: httpx.Client) -> None:
    instance_id = seeded(admin)
    create_user(client, instance_id, access_key=NAME, secret_key=KEY)
    assert refused(lambda: create_user(client, instance_id, access_key=NAME, secret_key=KEY)) == (
        400,
        "DMS.00400060",
    )
    assert refused(lambda: create_user(client, instance_id, access_key="short", secret_key=KEY)) == (
        400,
        "DMS.00400001",
    )
    assert refused(lambda: create_user(client, instance_id, access_key="weak_user", secret_key="weakweak")) == (
        400,
        "DMS.00400001",
    )
    no_acl = seeded(admin, enable_acl=False)
    assert refused(lambda: create_user(client, no_acl, access_key=NAME, secret_key=KEY)) == (400, "DMS.00400970")
    gone = "00000000-0000-0000-0000-000000000000"
    assert refused(lambda: client.list_user(m.ListUserRequest(instance_id=gone))) == (404, "DMS.00404022")


def test_sdk_calls_leave_no_key_in_the_call_log(client: Any, admin: httpx.Client) -> None:
    instance_id = seeded(admin)
    since = admin.get("/calls").json()["next"]
    create_user(client, instance_id, access_key=NAME, secret_key=KEY)
    client.update_user(
        m.UpdateUserRequest(instance_id=instance_id, user_name=NAME, body=m.User(secret_key="Rotated-Key-2"))
    )
    calls = admin.get(f"/calls?since={since}").json()["calls"]
    assert [(c["operation"], c["names"], c["status"]) for c in calls] == [
        ("user_create", [NAME], 200),
        ("user_update", [NAME], 200),
    ]
    text = json.dumps(calls) + admin.get(f"/instances/{instance_id}/children").text
    assert KEY not in text and "Rotated-Key-2" not in text
