"""wiring.secrets over real HTTP: paths, conditional writes, and the API server's answers mapped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from rocketmq_operator.ports.secrets import SecretApiError
from rocketmq_operator.wiring.secrets import KubeSecrets

SECRET = {
    "metadata": {
        "name": "orders-rocketmq",
        "uid": "s-1",
        "resourceVersion": "42",
        "labels": {"app.kubernetes.io/managed-by": "rocketmq-operator"},
        "ownerReferences": [{"uid": "cr-1"}],
    },
    "data": {
        "PASSWORD": "c2VjcmV0",
        # " AK-1\n" and "SK-1\n": credentials as kubectl create secret --from-file leaves them
        "accessKey": "IEFLLTEK",
        "secretKey": "U0stMQo=",
        "broken": "not base64!",
    },
}


@pytest.fixture
async def server() -> AsyncIterator[tuple[KubeSecrets, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.text()
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "body": body,
                "type": request.content_type,
            }
        )
        name = request.match_info.get("name")
        if name == "missing":
            return web.json_response({"kind": "Status", "reason": "NotFound", "message": "not found"}, status=404)
        if name == "forbidden" or request.match_info["ns"] == "forbidden":
            message = 'secrets "x" is forbidden: User "system:serviceaccount:op:op" cannot get resource'
            return web.json_response({"kind": "Status", "reason": "Forbidden", "message": message}, status=403)
        if request.method == "GET":
            return web.json_response(SECRET)
        return web.json_response(json.loads(body) if body else {}, status=201 if request.method == "POST" else 200)

    app = web.Application()
    app.router.add_route("*", "/api/v1/namespaces/{ns}/secrets", handle)
    app.router.add_route("*", "/api/v1/namespaces/{ns}/secrets/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    session = aiohttp.ClientSession()
    try:
        yield KubeSecrets(lambda: (f"http://127.0.0.1:{port}", session)), seen
    finally:
        await session.close()
        await runner.cleanup()


async def test_get_reads_metadata_only_and_404_is_none(server: tuple[KubeSecrets, list[dict[str, Any]]]) -> None:
    store, seen = server
    meta = await store.get("team-a", "orders-rocketmq")
    assert meta is not None
    assert (meta.uid, meta.resource_version, meta.owner_uids) == ("s-1", "42", ("cr-1",))
    assert "c2VjcmV0" not in repr(meta)
    assert await store.get("team-a", "missing") is None
    assert seen[0]["path"] == "/api/v1/namespaces/team-a/secrets/orders-rocketmq"


async def test_writes_are_conditional_and_name_their_field_manager(
    server: tuple[KubeSecrets, list[dict[str, Any]]],
) -> None:
    store, seen = server
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orders-rocketmq"}, "data": {}}
    await store.create("team-a", body)
    await store.replace("team-a", "orders-rocketmq", body, resource_version="42")
    await store.delete("team-a", "orders-rocketmq", uid="s-1")
    await store.delete("team-a", "missing", uid="s-2")  # gone already: done
    create, replace, delete, _gone = seen
    assert (create["method"], create["path"]) == ("POST", "/api/v1/namespaces/team-a/secrets")
    assert create["query"] == {"fieldManager": "rocketmq-operator"}
    assert replace["method"] == "PUT"
    assert json.loads(replace["body"])["metadata"]["resourceVersion"] == "42"
    assert delete["method"] == "DELETE"
    assert json.loads(delete["body"])["preconditions"] == {"uid": "s-1"}


async def test_a_refusal_carries_the_status_and_the_servers_message(
    server: tuple[KubeSecrets, list[dict[str, Any]]],
) -> None:
    store, _ = server
    with pytest.raises(SecretApiError) as refused:
        await store.get("team-a", "forbidden")
    assert refused.value.forbidden
    assert "cannot get resource" in str(refused.value)


async def test_before_login_and_without_an_answer_it_fails_softly() -> None:
    with pytest.raises(SecretApiError, match="not logged in"):
        await KubeSecrets(lambda: None).get("team-a", "x")
    async with aiohttp.ClientSession() as session:
        store = KubeSecrets(lambda: ("http://127.0.0.1:9", session), timeout=2.0)
        with pytest.raises(SecretApiError) as failed:
            await store.get("team-a", "x")
    assert failed.value.status == 0


async def test_read_key_takes_one_key_into_a_secret_str(server: tuple[KubeSecrets, list[dict[str, Any]]]) -> None:
    store, seen = server
    found = await store.read_key("team-a", "orders-rocketmq", "PASSWORD")
    assert found is not None and found.value is not None
    assert found.value.get_secret_value() == "secret"
    assert (found.meta.uid, found.meta.resource_version) == ("s-1", "42")
    assert "secret" not in repr(found).replace("SecretStr", "").replace("SecretKey", "")
    lacking = await store.read_key("team-a", "orders-rocketmq", "OTHER")
    assert lacking is not None and lacking.value is None
    assert await store.read_key("team-a", "missing", "PASSWORD") is None
    assert [call["method"] for call in seen] == ["GET", "GET", "GET"]


async def test_read_keys_takes_the_keys_asked_for_trimmed_and_nothing_else(
    server: tuple[KubeSecrets, list[dict[str, Any]]],
) -> None:
    store, _seen = server
    found = await store.read_keys("team-a", "orders-rocketmq", ["accessKey", "secretKey", "broken", "absent"])
    assert found is not None
    assert {k: v.get_secret_value() for k, v in found.values.items()} == {"accessKey": "AK-1", "secretKey": "SK-1"}
    assert "PASSWORD" not in found.values, "a key not asked for is never read"
    assert await store.read_keys("team-a", "missing", ["accessKey"]) is None
    # A user's key is the user's: read_key keeps it as stored.
    kept = await store.read_key("team-a", "orders-rocketmq", "accessKey")
    assert kept is not None and kept.value is not None and kept.value.get_secret_value() == " AK-1\n"


async def test_hold_and_release_patch_only_the_finalizer(server: tuple[KubeSecrets, list[dict[str, Any]]]) -> None:
    store, seen = server
    await store.hold("team-a", "creds", "dms.rocketmq-operator.io/account-credentials")
    await store.release("team-a", "creds", "dms.rocketmq-operator.io/account-credentials")
    await store.release("team-a", "missing", "dms.rocketmq-operator.io/account-credentials")  # gone: released
    held, released, _gone = seen
    assert (held["method"], held["path"], held["type"]) == (
        "PATCH",
        "/api/v1/namespaces/team-a/secrets/creds",
        "application/strategic-merge-patch+json",
    )
    assert json.loads(held["body"]) == {"metadata": {"finalizers": ["dms.rocketmq-operator.io/account-credentials"]}}
    assert json.loads(released["body"]) == {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["dms.rocketmq-operator.io/account-credentials"]}
    }
    with pytest.raises(SecretApiError) as refused:
        await store.hold("forbidden", "creds", "dms.rocketmq-operator.io/account-credentials")
    assert refused.value.forbidden
