"""spec.connectionSecret on the real API server: the Secret an app reads with envFrom.

Its values are checked against the simulator's own show answer (mapped here by hand, not with the
operator's code), and followed through a resize and a move to public access; a rename removes the old
Secret, the garbage collector (kube-controller-manager) removes it with the CR, and a Secret the
operator does not own is never touched.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from instance_spec import SPEC

from .support import Stack, condition, wait_for

# The app-facing key <- the field of the cloud's show answer.
SHOW_FIELDS = {
    "ROCKETMQ_NAMESRV_ADDR": "namesrv_address",
    "ROCKETMQ_NAMESRV_DOMAIN": "namesrv_domain_name",
    "ROCKETMQ_BROKER_ADDR": "broker_address",
    "ROCKETMQ_GRPC_ADDR": "grpc_address",
    "ROCKETMQ_GRPC_DOMAIN": "grpc_domain_name",
    "ROCKETMQ_PUBLIC_NAMESRV_ADDR": "public_namesrv_address",
    "ROCKETMQ_PUBLIC_NAMESRV_DOMAIN": "public_namesrv_domain_name",
    "ROCKETMQ_PUBLIC_BROKER_ADDR": "public_broker_address",
    "ROCKETMQ_PUBLIC_GRPC_ADDR": "public_grpc_address",
    "ROCKETMQ_PUBLIC_GRPC_DOMAIN": "public_grpc_domain_name",
    "ROCKETMQ_TLS_MODE": "tls_mode",
    "ROCKETMQ_ENGINE_VERSION": "engine_version",
    "ROCKETMQ_INSTANCE_ID": "instance_id",
}


def expected_from_show(show: dict[str, Any]) -> dict[str, str]:
    data = {key: str(show[field]) for key, field in SHOW_FIELDS.items() if show.get(field)}
    data["ROCKETMQ_ACL_ENABLED"] = "true" if show.get("enable_acl") else "false"
    return data


def read_secret(stack: Stack, namespace: str, name: str) -> client.V1Secret | None:
    try:
        secret: client.V1Secret = stack.cluster.core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return secret


def decoded(secret: client.V1Secret) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}


def secret_matching_show(stack: Stack, namespace: str, name: str, instance_id: str) -> dict[str, str]:
    """Waits until the Secret holds exactly what the simulator's show answers now."""

    def matches() -> dict[str, str] | None:
        secret = read_secret(stack, namespace, name)
        show = stack.sim_instance(instance_id)
        if secret is None or show is None:
            return None
        data = decoded(secret)
        return data if data == expected_from_show(show) else None

    return wait_for(matches, timeout=60, what=f"Secret {namespace}/{name} equal to the simulator's show", interval=0.5)


def with_secret(name: str, **spec: Any) -> dict[str, Any]:
    return {**SPEC, **spec, "connectionSecret": {"name": name}}


def test_the_secret_equals_what_the_cloud_shows_and_follows_a_resize_and_public_access(stack: Stack) -> None:
    ns = stack.namespace()
    created = stack.cluster.create(ns, "orders", with_secret("orders-rocketmq"))
    cr = stack.cluster.wait_ready(ns, "orders")
    instance_id = cr["status"]["instanceId"]

    first = secret_matching_show(stack, ns, "orders-rocketmq", instance_id)
    assert {"ROCKETMQ_NAMESRV_ADDR", "ROCKETMQ_BROKER_ADDR", "ROCKETMQ_GRPC_ADDR", "ROCKETMQ_TLS_MODE"} <= set(first)
    assert not [k for k in first if "PUBLIC" in k]
    secret = read_secret(stack, ns, "orders-rocketmq")
    assert secret is not None
    assert secret.type == "Opaque"
    assert secret.metadata.labels == {
        "app.kubernetes.io/managed-by": "rocketmq-operator",
        "dms.rocketmq-operator.io/instance": "orders",
    }
    [owner] = secret.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "RocketMQInstance",
        "orders",
        created["metadata"]["uid"],
        True,
    )
    status = stack.cluster.get(ns, "orders")["status"]  # type: ignore[index]
    assert status["connectionSecret"]["name"] == "orders-rocketmq"

    # A resize that adds a broker changes the broker addresses the cloud shows. (On 5.x the cloud takes
    # a broker change only with the product id, in one horizontal resize.)
    stack.cluster.patch(ns, "orders", {"spec": {"productId": "rocketmq.b2.large.8", "brokerNum": 2}})
    resized = wait_for(
        lambda: (
            d
            if (d := secret_matching_show(stack, ns, "orders-rocketmq", instance_id))["ROCKETMQ_BROKER_ADDR"]
            != first["ROCKETMQ_BROKER_ADDR"]
            else None
        ),
        timeout=90,
        what="the Secret to follow the resize",
        interval=1.0,
    )
    assert len(resized["ROCKETMQ_BROKER_ADDR"].split(",")) > len(first["ROCKETMQ_BROKER_ADDR"].split(","))

    # Public access on: the public addresses appear, as the cloud shows them.
    stack.cluster.patch(ns, "orders", {"spec": {"enablePublicip": True, "publicipId": "eip-0001"}})
    public = wait_for(
        lambda: (
            d
            if "ROCKETMQ_PUBLIC_NAMESRV_ADDR" in (d := secret_matching_show(stack, ns, "orders-rocketmq", instance_id))
            else None
        ),
        timeout=90,
        what="the Secret to show the public addresses",
        interval=1.0,
    )
    assert public["ROCKETMQ_PUBLIC_GRPC_ADDR"]

    # Nothing of the Secret's data, and no key, outside the Secret: not in the CR, not in Events.
    body = json.dumps(stack.cluster.get(ns, "orders"))
    events = json.dumps(stack.cluster.events(ns, "orders"))
    for value in (public["ROCKETMQ_PUBLIC_NAMESRV_ADDR"], stack.settings["DMS_SECRET_KEY"]):
        assert value not in events
    assert stack.settings["DMS_SECRET_KEY"] not in body
    assert stack.settings["DMS_SECRET_KEY"] not in stack.operator.log_path.read_text()


def test_renaming_removes_the_old_secret_and_deleting_the_cr_garbage_collects_the_new_one(stack: Stack) -> None:
    ns = stack.namespace()
    stack.cluster.create(ns, "billing", with_secret("billing-old", deletionPolicy="Orphan"))
    instance_id = stack.cluster.wait_ready(ns, "billing")["status"]["instanceId"]
    secret_matching_show(stack, ns, "billing-old", instance_id)

    stack.cluster.patch(ns, "billing", {"spec": {"connectionSecret": {"name": "billing-new"}}})
    secret_matching_show(stack, ns, "billing-new", instance_id)
    wait_for(lambda: read_secret(stack, ns, "billing-old") is None, timeout=30, what="the old Secret deleted")
    wait_for(
        lambda: (
            (stack.cluster.get(ns, "billing") or {}).get("status", {}).get("connectionSecret", {}).get("name")
            == "billing-new"
        ),
        timeout=30,
        what="status.connectionSecret to name the new Secret",
    )

    # Orphan keeps the cloud instance, not the Secret: it is the CR's, and goes with it.
    stack.cluster.delete(ns, "billing")
    stack.cluster.wait_gone(ns, ["billing"], timeout=60)
    wait_for(
        lambda: read_secret(stack, ns, "billing-new") is None,
        timeout=60,
        what="the garbage collector to delete the Secret with its CR",
    )
    assert stack.sim_instance(instance_id) is not None, "Orphan leaves the cloud instance"


def test_a_secret_it_does_not_own_is_never_overwritten_and_the_cr_stalls_naming_it(stack: Stack) -> None:
    ns = stack.namespace()
    theirs = client.V1Secret(
        metadata=client.V1ObjectMeta(name="shared-name", labels={"team": "payments"}),
        string_data={"password": "not-the-operators"},
    )
    stack.cluster.core.create_namespaced_secret(ns, theirs)
    stack.cluster.create(ns, "audit", with_secret("shared-name"))

    def stalled() -> dict[str, Any] | None:
        found = condition(stack.cluster.get(ns, "audit"), "Stalled")
        return found if found and found["status"] == "True" and found["reason"] == "SecretConflict" else None

    stall = wait_for(stalled, timeout=60, what="Stalled with reason SecretConflict")
    assert "shared-name" in stall["message"]
    kept = read_secret(stack, ns, "shared-name")
    assert kept is not None
    assert decoded(kept) == {"password": "not-the-operators"}
    assert kept.metadata.labels == {"team": "payments"}
    assert not kept.metadata.owner_references
    warnings = [e for e in stack.cluster.events(ns, "audit") if e["reason"] == "SecretConflict"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"
    assert "not-the-operators" not in json.dumps(stack.cluster.get(ns, "audit"))

    # Once the name is free, the operator writes its own Secret there and the CR becomes Ready.
    stack.cluster.core.delete_namespaced_secret("shared-name", ns)
    cr = stack.cluster.wait_ready(ns, "audit", timeout=60)
    secret_matching_show(stack, ns, "shared-name", cr["status"]["instanceId"])


def test_the_example_app_reads_the_secret_its_instance_writes(stack: Stack) -> None:
    ns = stack.namespace()
    example = Path(__file__).resolve().parents[2] / "examples" / "app-using-connection-secret.yaml"
    stack.cluster.kubectl("apply", "-n", ns, "-f", str(example))
    deployment = json.loads(stack.cluster.kubectl("get", "deployment", "order-service", "-n", ns, "-o", "json"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    [source] = container["envFrom"]
    name = source["secretRef"]["name"]
    instance_id = stack.cluster.wait_ready(ns, "orders")["status"]["instanceId"]
    data = secret_matching_show(stack, ns, name, instance_id)
    # Every key is a variable envFrom passes on, and the single mapped one names a key that is there.
    assert all(re.fullmatch(r"[A-Z_][A-Z0-9_]*", key) for key in data)
    [mapped] = container["env"]
    assert mapped["valueFrom"]["secretKeyRef"]["name"] == name
    assert mapped["valueFrom"]["secretKeyRef"]["key"] in data
