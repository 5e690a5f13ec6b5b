"""RocketMQUser: the model and its CRD (no key anywhere in spec or status), the requests a spec makes,
the key generator against the cloud's rule, and the Secret the operator owns."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from rocketmq_operator.core import cloud, crdgen
from rocketmq_operator.core import user_resource as ur

KEY = "Str0ng-Key_value"


def user(**spec: Any) -> ur.RocketMQUser:
    body = {
        "metadata": {"name": "app", "namespace": "ns", "uid": "u-1", "generation": 1},
        "spec": {"instanceRef": {"name": "mq"}, "accessKey": "app-user", "secretKeyRef": {"name": "creds"}, **spec},
    }
    return ur.RocketMQUser.from_body(body)


def _walk(node: Any) -> list[str]:
    if isinstance(node, dict):
        return list(node) + [x for v in node.values() for x in _walk(v)]
    if isinstance(node, list):
        return [x for v in node for x in _walk(v)]
    return []


def test_no_field_of_spec_or_status_can_hold_a_key() -> None:
    crd = crdgen.crd(crdgen.USER)
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    names = {n.lower() for n in _walk(root["spec"]["properties"]) + _walk(root["status"]["properties"])}
    assert "secretkey" not in names and "password" not in names
    assert "secretKeyVersion" in root["status"]["properties"]


def test_the_crd_requires_exactly_one_key_source_and_keeps_the_access_key() -> None:
    spec = crdgen.crd(crdgen.USER)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert "has(self.secretKeyRef) != has(self.generateSecretKey)" in rules
    assert spec["properties"]["accessKey"]["pattern"] == ur.ACCESS_KEY_PATTERN
    assert spec["properties"]["accessKey"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    assert spec["properties"]["defaultTopicPerm"]["enum"] == ["PUB", "SUB", "PUB|SUB", "DENY"]
    assert set(spec["required"]) == {"instanceRef", "accessKey"}


def test_defaults_and_the_secret_reference() -> None:
    cr = user()
    assert (cr.cloud_name, cr.spec.secret_name, cr.spec.secret_key_name) == ("app-user", "creds", "secretKey")
    assert (cr.spec.admin, cr.spec.default_topic_perm, cr.spec.default_group_perm) == (False, "DENY", "DENY")
    generated = user(secretKeyRef=None, generateSecretKey={"secretName": "gen"})
    assert (generated.spec.secret_name, generated.spec.secret_key_name) == ("gen", "secretKey")
    with pytest.raises(ValidationError):
        user(accessKey="1bad")


def test_create_sends_every_field_and_update_only_what_differs() -> None:
    cr = user(admin=True, topicPerms=[{"name": "orders", "perm": "PUB"}], whiteRemoteAddress="10.*")
    request = ur.create_request(cr.spec, SecretStr(KEY))
    assert request.to_wire() == {
        "access_key": "app-user",
        "secret_key": KEY,
        "admin": True,
        "white_remote_address": "10.*",
        "default_topic_perm": "DENY",
        "default_group_perm": "DENY",
        "topic_perms": [{"name": "orders", "perm": "PUB"}],
        "group_perms": [],
    }
    assert KEY not in repr(request)
    view = cloud.UserView.model_validate(
        json.loads(json.dumps({k: v for k, v in request.to_wire().items() if k != "secret_key"}))
    )
    assert ur.update_request(cr.spec, view, None) is None
    rotated = ur.update_request(cr.spec, view, SecretStr("An0ther-Key"))
    assert rotated is not None and rotated.to_wire() == {"secret_key": "An0ther-Key"}
    changed = user(admin=False, groupPerms=[{"name": "billing", "perm": "SUB"}], whiteRemoteAddress="10.*")
    update = ur.update_request(changed.spec, view, None)
    assert update is not None
    assert update.to_wire() == {"admin": False, "topic_perms": [], "group_perms": [{"name": "billing", "perm": "SUB"}]}


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("Ab1-", "8 to 32"),
        ("abcdefgh", "three"),
        ("Abcdefg1 ", "only letters"),
        ("app-user-2X", None),
        ("1resU-ppa", "access key"),
        ("app-User1", "access key"),
    ],
)
def test_key_problem_follows_the_cloud_and_never_repeats_the_key(key: str, problem: str | None) -> None:
    found = ur.key_problem(key, "app-User1")
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and key not in found


def test_generated_keys_meet_the_cloud_rule_and_differ() -> None:
    keys = {ur.generate_key("app-user").get_secret_value() for _ in range(300)}
    assert len(keys) == 300
    for key in keys:
        assert len(key) == 32 and ur.key_problem(key, "app-user") is None
        assert sum((any(c.islower() for c in key), any(c.isupper() for c in key), any(c.isdigit() for c in key))) == 3
    assert "**" in repr(ur.generate_key("app-user"))


def test_the_generated_secret_is_owned_by_the_user() -> None:
    cr = user(secretKeyRef=None, generateSecretKey={"secretName": "gen"})
    body = ur.generated_secret_body(cr, SecretStr(KEY))
    assert body["metadata"]["name"] == "gen" and body["metadata"]["namespace"] == "ns"
    [owner] = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("RocketMQUser", "u-1", True)
    assert body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "rocketmq-operator"
    assert base64.b64decode(body["data"]["secretKey"]).decode() == KEY
