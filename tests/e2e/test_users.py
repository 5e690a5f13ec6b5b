"""RocketMQUser on the real API server: keys from a Secret (referenced, or generated into one the
operator owns), rotation by an update of the same user, deletion, and no key outside Secrets; the
connection Secret (spec.connectionSecret) with the user's keys and its instance's endpoints."""

from __future__ import annotations

import base64
import json
from typing import Any

from kubernetes import client

from instance_spec import SPEC

from .support import GROUP, VERSION, Stack, is_true, wait_for
from .test_connection_secret import decoded, expected_from_show, read_secret

USERS = "rocketmqusers"
KEY1, KEY2 = "First-Key_0001", "Second-Key_0002"
SPECIALS = set("`~!@#$%^&*()-_=+\\|[{}];:'\",<.>/?")


def rocketmq_user(name: str, access_key: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RocketMQUser",
        "metadata": {"name": name},
        "spec": {"instanceRef": {"name": "acl"}, "accessKey": access_key, **spec},
    }


def secret(name: str, key: str) -> client.V1Secret:
    return client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data={"secretKey": key})


def get_user(stack: Stack, ns: str, name: str) -> dict[str, Any] | None:
    items = stack.cluster.custom.list_namespaced_custom_object(GROUP, VERSION, ns, USERS)["items"]
    return next((i for i in items if i["metadata"]["name"] == name), None)


def sim_user(stack: Stack, instance_id: str, access_key: str) -> dict[str, Any] | None:
    return next((u for u in stack.sim.children(instance_id)["users"] if u["access_key"] == access_key), None)


def meets_the_cloud_rule(key: str, access_key: str) -> bool:
    classes = (
        any(c.islower() for c in key),
        any(c.isupper() for c in key),
        any(c.isdigit() for c in key),
        any(c in SPECIALS for c in key),
    )
    allowed = all(c.isascii() and (c.isalnum() or c in SPECIALS) for c in key)
    return 8 <= len(key) <= 32 and allowed and sum(classes) >= 3 and key not in (access_key, access_key[::-1])


def test_users_get_rotate_and_lose_their_keys_only_through_secrets(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "acl", {**SPEC, "enableAcl": True})
    instance_id = stack.cluster.wait_ready(ns, "acl", timeout=120)["status"]["instanceId"]
    core = stack.cluster.core

    # A referenced key: the simulator has the user with exactly that key.
    core.create_namespaced_secret(ns, secret("app-creds", KEY1))
    stack.cluster.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        USERS,
        rocketmq_user("app", "app-user1", secretKeyRef={"name": "app-creds"}, defaultTopicPerm="PUB|SUB"),
    )
    wait_for(lambda: is_true(get_user(stack, ns, "app"), "Ready"), timeout=60, what="user app Ready")
    assert stack.sim.check_key(instance_id, "app-user1", KEY1)
    first = sim_user(stack, instance_id, "app-user1")
    assert first is not None and first["default_topic_perm"] == "PUB|SUB"

    # Rotation: a new value in the Secret reaches the cloud as an update of the same user.
    core.patch_namespaced_secret("app-creds", ns, {"stringData": {"secretKey": KEY2}})
    wait_for(lambda: stack.sim.check_key(instance_id, "app-user1", KEY2), timeout=20, what="key rotated", interval=0.5)
    rotated = sim_user(stack, instance_id, "app-user1")
    assert rotated is not None and rotated["key_version"] == first["key_version"] + 1
    assert rotated["created"] == first["created"]
    ops = [c["operation"] for c in stack.sim.calls() if "app-user1" in c.get("names", [])]
    assert ops.count("user_create") == 1 and "user_delete" not in ops and "user_update" in ops

    # A generated key: an owned Secret whose key meets the cloud's rule, and the user holds it.
    stack.cluster.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, USERS, rocketmq_user("gen", "gen-user1", generateSecretKey={"secretName": "gen-creds"})
    )
    wait_for(lambda: is_true(get_user(stack, ns, "gen"), "Ready"), timeout=60, what="user gen Ready")
    generated = core.read_namespaced_secret("gen-creds", ns)
    [owner] = generated.metadata.owner_references
    assert (owner.kind, owner.name, owner.controller) == ("RocketMQUser", "gen", True)
    key3 = base64.b64decode(generated.data["secretKey"]).decode()
    assert meets_the_cloud_rule(key3, "gen-user1") and len(key3) == 32
    assert stack.sim.check_key(instance_id, "gen-user1", key3)

    # No key anywhere outside Secrets: the CRs (spec, status), their Events, the operator's log.
    shown = json.dumps([get_user(stack, ns, "app"), get_user(stack, ns, "gen"), stack.cluster.events(ns)], default=str)
    log = stack.operator.log_path.read_text(errors="replace")
    assert "user-reconcile" in log, "the log of the operator that served these users"
    for key in (KEY1, KEY2, key3):
        assert key not in shown and key not in log

    # Deleting the CRs deletes the users, one call each.
    stack.cluster.kubectl("delete", "rmqu", "app", "gen", "-n", ns, "--wait=false")
    wait_for(
        lambda: get_user(stack, ns, "app") is None and get_user(stack, ns, "gen") is None,
        timeout=60,
        what="users released",
    )
    assert stack.sim.children(instance_id)["users"] == []
    deletes = [c for c in stack.sim.calls() if c["operation"] == "user_delete"]
    assert sorted(n for c in deletes for n in c["names"]) == ["app-user1", "gen-user1"]
    log = stack.operator.log_path.read_text(errors="replace")
    for key in (KEY1, KEY2, key3):
        assert key not in log

    # Leave nothing behind that needs the operator once it stops (the instance carries a finalizer).
    stack.cluster.delete(ns, "acl")
    stack.cluster.wait_gone(ns, ["acl"], timeout=60)


def test_a_connection_secret_holds_the_users_keys_and_its_instances_endpoints(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "acl", {**SPEC, "enableAcl": True})
    instance_id = stack.cluster.wait_ready(ns, "acl", timeout=120)["status"]["instanceId"]
    core = stack.cluster.core
    core.create_namespaced_secret(ns, secret("app-creds", KEY1))
    created = stack.cluster.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        USERS,
        rocketmq_user("app", "app-user1", secretKeyRef={"name": "app-creds"}, connectionSecret={"name": "app-mq"}),
    )

    def connection_data(name: str, key: str) -> dict[str, str] | None:
        found = read_secret(stack, ns, name)
        show = stack.sim_instance(instance_id)
        if found is None or show is None:
            return None
        data = decoded(found)
        wanted = {**expected_from_show(show), "ROCKETMQ_ACCESS_KEY": "app-user1", "ROCKETMQ_SECRET_KEY": key}
        return data if data == wanted else None

    # Written once the user exists: its keys as the simulator holds them, the endpoints as it shows them.
    data = wait_for(lambda: connection_data("app-mq", KEY1), timeout=60, what="connection Secret app-mq", interval=0.5)
    assert stack.sim.check_key(instance_id, "app-user1", data["ROCKETMQ_SECRET_KEY"])
    assert {"ROCKETMQ_NAMESRV_ADDR", "ROCKETMQ_ACL_ENABLED", "ROCKETMQ_INSTANCE_ID"} <= set(data)
    assert data["ROCKETMQ_ACL_ENABLED"] == "true"
    written = read_secret(stack, ns, "app-mq")
    assert written is not None
    [owner] = written.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "RocketMQUser",
        "app",
        created["metadata"]["uid"],
        True,
    )
    assert written.metadata.labels == {
        "app.kubernetes.io/managed-by": "rocketmq-operator",
        "dms.rocketmq-operator.io/instance": "acl",
        "dms.rocketmq-operator.io/user": "app",
    }
    wait_for(lambda: is_true(get_user(stack, ns, "app"), "Ready"), timeout=30, what="user app Ready")
    assert get_user(stack, ns, "app")["status"]["connectionSecret"]["name"] == "app-mq"  # type: ignore[index]

    # A rotation of the source Secret reaches the cloud, then the connection Secret.
    core.patch_namespaced_secret("app-creds", ns, {"stringData": {"secretKey": KEY2}})
    wait_for(lambda: connection_data("app-mq", KEY2), timeout=30, what="connection Secret rotated", interval=0.5)
    assert stack.sim.check_key(instance_id, "app-user1", KEY2)

    # A rename writes the new Secret and removes the old one.
    stack.cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, USERS, "app", {"spec": {"connectionSecret": {"name": "app-mq-2"}}}
    )
    wait_for(lambda: connection_data("app-mq-2", KEY2), timeout=30, what="renamed connection Secret", interval=0.5)
    wait_for(lambda: read_secret(stack, ns, "app-mq") is None, timeout=30, what="old connection Secret removed")

    # No key outside Secrets: not in the CR, its Events or the operator's log.
    shown = json.dumps([get_user(stack, ns, "app"), stack.cluster.events(ns)], default=str)
    log = stack.operator.log_path.read_text(errors="replace")
    for key in (KEY1, KEY2):
        assert key not in shown and key not in log

    # Deleting the CR: the user goes, and the garbage collector takes the connection Secret.
    stack.cluster.kubectl("delete", "rmqu", "app", "-n", ns, "--wait=false")
    wait_for(lambda: get_user(stack, ns, "app") is None, timeout=60, what="user released")
    wait_for(lambda: read_secret(stack, ns, "app-mq-2") is None, timeout=60, what="connection Secret collected")
    assert read_secret(stack, ns, "app-creds") is not None
    stack.cluster.delete(ns, "acl")
    stack.cluster.wait_gone(ns, ["acl"], timeout=60)
