"""A RocketMQUser's connection Secret (``spec.connectionSecret``): written once the cloud holds the key,
current when the key rotates or the endpoints change, moved on rename, removed with the field, never
over a Secret not its own, and its key read from the source Secret only when a write is due."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from instance_spec import SPEC
from rocketmq_operator.core import cloud, connection
from rocketmq_operator.core import user_resource as ur
from rocketmq_operator.core.child_mapping import Parent
from rocketmq_operator.core.connection import SpecDefaults
from rocketmq_operator.core.resource import DeletionPolicy, RocketMQInstance
from rocketmq_operator.services.children import Timing
from rocketmq_operator.services.users import UserReconciler
from rocketmq_operator.wiring.child_handlers import instance_facts

from .fake_cloud import virtual_time
from .test_users import IID, KEY1, KEY2, NS, World, after, no_key_in, parent, ready, stalled, user, wall

ENDPOINTS = {"namesrv_address": "10.0.0.1:8100", "grpc_address": "10.0.0.1:8080", "broker_address": "10.0.0.2:10911"}


def with_endpoints(w: World, **fields: Any) -> None:
    w.cloud.instances[IID] = w.cloud.instances[IID].model_copy(update={**ENDPOINTS, **fields})


def data(w: World, name: str = "app-conn") -> dict[str, str]:
    raw = w.store.secrets[(NS, name)]["data"]
    return {k: base64.b64decode(v).decode() for k, v in raw.items()}


def conn_user(name: str | None = "app-conn", **spec: Any) -> ur.RocketMQUser:
    return user(**({"connectionSecret": {"name": name}} if name else {}), **spec)


def acl_parent() -> Parent:
    base = parent()
    return Parent(
        base.ref,
        base.instance_id,
        base.cloud_status,
        base.engine_version,
        deleting=False,
        deletes_instance=True,
        spec_defaults=SpecDefaults(enable_acl=True, tls_mode="SSL"),
    )


def writes(w: World) -> list[tuple[str, str]]:
    return [c for c in w.store.calls if c[0] in ("create", "replace", "delete", "read_key")]


async def created(w: World, cr: ur.RocketMQUser | None = None) -> ur.RocketMQUser:
    with_endpoints(w)
    w.put_secret("creds", {"secretKey": KEY1})
    settled, steps = await w.until_settled(cr or conn_user(), acl_parent())
    assert ready(steps[-1])[0] == "True", ready(steps[-1])
    no_key_in(steps, KEY1)
    return settled


class TestWritten:
    @virtual_time
    async def test_the_secret_has_the_keys_and_the_instances_endpoint_keys(self) -> None:
        w = World()
        cr = await created(w)
        view = w.cloud.instances[IID]
        instance_keys = connection.view_data(view, SpecDefaults(enable_acl=True, tls_mode="SSL"))
        assert data(w) == {**instance_keys, "ROCKETMQ_ACCESS_KEY": "app-user", "ROCKETMQ_SECRET_KEY": KEY1}
        assert data(w)["ROCKETMQ_NAMESRV_ADDR"] == "10.0.0.1:8100" and data(w)["ROCKETMQ_ACL_ENABLED"] == "true"
        meta = w.store.secrets[(NS, "app-conn")]["metadata"]
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "dms.rocketmq-operator.io/v1alpha1",
                "kind": "RocketMQUser",
                "name": "app",
                "uid": "uid-app",
                "controller": True,
            }
        ]
        assert meta["labels"] == {
            "app.kubernetes.io/managed-by": "rocketmq-operator",
            "dms.rocketmq-operator.io/instance": "mq",
            "dms.rocketmq-operator.io/user": "app",
        }
        assert cr.status.connection_secret is not None and cr.status.connection_secret.name == "app-conn"
        assert meta["annotations"]["dms.rocketmq-operator.io/data-hash"] == cr.status.connection_secret.data_hash
        # Written with the key the create sent: the key was read once, for the create.
        assert writes(w) == [("read_key", "creds"), ("create", "app-conn")]
        await w.aclose()

    @virtual_time
    async def test_the_data_hash_covers_the_key_version_never_the_key(self) -> None:
        endpoints = {"ROCKETMQ_NAMESRV_ADDR": "a:1"}
        first = ur.connection_digest(endpoints, "app-user", "s-creds/1")
        assert first == ur.connection_digest(endpoints, "app-user", "s-creds/1")
        assert first != ur.connection_digest(endpoints, "app-user", "s-creds/2")
        assert first != ur.connection_digest({"ROCKETMQ_NAMESRV_ADDR": "a:2"}, "app-user", "s-creds/1")
        with_key = connection.data_hash({**endpoints, "ROCKETMQ_ACCESS_KEY": "app-user", "ROCKETMQ_SECRET_KEY": KEY1})
        assert first != with_key

    @virtual_time
    async def test_later_passes_read_no_key_and_write_nothing(self) -> None:
        w = World()
        cr = await created(w)
        before = len(writes(w))
        for _ in range(3):
            cr = after(cr, await w.reconcile(cr, acl_parent()))
        assert writes(w)[before:] == []
        await w.aclose()

    @virtual_time
    async def test_not_before_the_instance_reports_endpoints(self) -> None:
        w = World()
        w.put_secret("creds", {"secretKey": KEY1})
        cr, steps = await w.until_settled(conn_user(), acl_parent())
        assert ready(steps[-1])[0] == "True" and (NS, "app-conn") not in w.store.secrets
        assert cr.status.connection_secret is None
        with_endpoints(w)
        step = await w.reconcile(cr, acl_parent())
        assert data(w)["ROCKETMQ_SECRET_KEY"] == KEY1 and writes(w)[-2] == ("read_key", "creds")
        no_key_in([step], KEY1)
        await w.aclose()

    @virtual_time
    async def test_with_a_generated_key(self) -> None:
        w = World()
        with_endpoints(w)
        _, steps = await w.until_settled(
            conn_user(generateSecretKey={"secretName": "gen"}, secretKeyRef=None), acl_parent()
        )
        assert ready(steps[-1])[0] == "True"
        assert data(w)["ROCKETMQ_SECRET_KEY"] == w.key() == data(w, "gen")["secretKey"]
        no_key_in(steps, w.key())
        await w.aclose()


class TestKeptCurrent:
    @virtual_time
    async def test_a_rotated_key_is_written_with_the_key_sent(self) -> None:
        w = World()
        cr = await created(w)
        w.put_secret("creds", {"secretKey": KEY2})
        before = len(writes(w))
        cr, steps = await w.until_settled(cr, acl_parent())
        assert w.key() == KEY2 == data(w)["ROCKETMQ_SECRET_KEY"]
        assert writes(w)[before:] == [("read_key", "creds"), ("replace", "app-conn")]
        assert cr.status.connection_secret is not None
        assert cr.status.connection_secret.data_hash == ur.connection_digest(
            connection.view_data(w.cloud.instances[IID], SpecDefaults(enable_acl=True, tls_mode="SSL")),
            "app-user",
            "s-creds/2",
        )
        no_key_in(steps, KEY1, KEY2)
        await w.aclose()

    @virtual_time
    async def test_changed_endpoints_read_the_key_again_once(self) -> None:
        w = World()
        cr = await created(w)
        with_endpoints(w, namesrv_address="10.9.9.9:8100")
        before = len(writes(w))
        cr, steps = await w.until_settled(cr, acl_parent())
        cr = after(cr, await w.reconcile(cr, acl_parent()))
        assert data(w)["ROCKETMQ_NAMESRV_ADDR"] == "10.9.9.9:8100" and data(w)["ROCKETMQ_SECRET_KEY"] == KEY1
        assert writes(w)[before:] == [("read_key", "creds"), ("replace", "app-conn")]
        assert "update_user" not in [c.operation for c in w.cloud.calls]
        no_key_in(steps, KEY1)
        await w.aclose()

    @virtual_time
    async def test_a_secret_deleted_by_hand_comes_back_after_a_restart(self) -> None:
        w = World()
        cr = await created(w)
        del w.store.secrets[(NS, "app-conn")]
        w.users = UserReconciler(  # a new operator process: it looks once at each CR's Secret
            client=w.cloud,
            observer=w.observer,
            secrets=w.store,
            instances=w._lookup,
            timing=Timing(poll_interval=10.0, verify_interval=1.0),
            clock=wall,
        )
        step = await w.reconcile(cr, acl_parent())
        assert data(w)["ROCKETMQ_SECRET_KEY"] == KEY1 and w.key() == KEY1
        no_key_in([step], KEY1)
        await w.aclose()

    @virtual_time
    async def test_a_source_changed_since_the_cloud_was_given_its_key_is_not_written(self) -> None:
        w = World()
        cr = await created(w)
        with_endpoints(w, namesrv_address="10.9.9.9:8100")
        # Changed between the metadata look and the read: the key is not the cloud's, so not written.
        real_get = w.store.get

        async def stale_get(namespace: str, name: str) -> Any:
            found = await real_get(namespace, name)
            if name == "creds":
                w.put_secret("creds", {"secretKey": KEY2})
            return found

        w.store.get = stale_get  # type: ignore[method-assign]
        await w.reconcile(cr, acl_parent())
        assert data(w)["ROCKETMQ_SECRET_KEY"] == KEY1 and data(w)["ROCKETMQ_NAMESRV_ADDR"] == "10.0.0.1:8100"
        await w.aclose()


class TestMovedAndRemoved:
    @virtual_time
    async def test_renaming_writes_the_new_and_removes_the_old(self) -> None:
        w = World()
        cr = await created(w)
        renamed = conn_user("app-conn-2", status=cr.status.to_wire())
        cr, steps = await w.until_settled(renamed, acl_parent())
        assert (NS, "app-conn") not in w.store.secrets and data(w, "app-conn-2")["ROCKETMQ_SECRET_KEY"] == KEY1
        assert cr.status.connection_secret is not None and cr.status.connection_secret.name == "app-conn-2"
        assert {e.reason for s in steps for e in s.events} >= {"ConnectionSecretWritten", "ConnectionSecretDeleted"}
        no_key_in(steps, KEY1)
        await w.aclose()

    @virtual_time
    async def test_removing_the_field_removes_the_secret(self) -> None:
        w = World()
        cr = await created(w)
        cr, _ = await w.until_settled(conn_user(None, status=cr.status.to_wire()), acl_parent())
        assert (NS, "app-conn") not in w.store.secrets and cr.status.connection_secret is None
        assert (NS, "creds") in w.store.secrets
        await w.aclose()

    @virtual_time
    async def test_a_secret_not_its_own_is_never_overwritten(self) -> None:
        w = World()
        w.store.put_foreign(NS, "app-conn")
        with_endpoints(w)
        w.put_secret("creds", {"secretKey": KEY1})
        cr, steps = await w.until_settled(conn_user(), acl_parent())
        status, reason, message = ready(steps[-1])
        assert (status, reason) == ("False", "SecretConflict") and stalled(steps[-1])
        assert "Secret app-conn" in message and "RocketMQUser" in message
        assert w.store.secrets[(NS, "app-conn")]["metadata"]["uid"] == "foreign"
        assert "data" not in w.store.secrets[(NS, "app-conn")]
        # The user itself was made: only its Secret is in the way. The Warning is not repeated.
        assert w.key() == KEY1
        step = await w.reconcile(cr, acl_parent())
        assert step.status.conditions is None, "still SecretConflict: the conditions are unchanged"
        assert not [e for e in step.events if e.reason == "SecretConflict"]
        no_key_in([*steps, step], KEY1)
        await w.aclose()


def test_the_spec_field_takes_a_secret_name() -> None:
    assert conn_user().spec.connection_secret is not None
    assert conn_user().spec.connection_secret.name == "app-conn"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="connectionSecret"):
        conn_user("Not_A_Name")


def test_a_users_parent_carries_the_instance_specs_fallbacks() -> None:
    spec = {"enableAcl": True, "tlsMode": "SSL", "engineVersion": "5.x", "enablePublicip": False}
    facts = instance_facts("ns", "mq", spec, {"instanceId": IID}, {})
    found = facts.parent(namespace_terminating=False, namespace_policy=None, default=DeletionPolicy.DELETE)
    assert found.spec_defaults == SpecDefaults(
        enable_publicip=False, tls_mode="SSL", enable_acl=True, engine_version="5.x"
    )
    # The user's Secret then has the keys the instance's own connection Secret has.
    view = cloud.InstanceView(instance_id=IID, name="rmq", status=cloud.RUNNING, namesrv_address="a:1")
    instance = RocketMQInstance.model_validate(
        {"metadata": {"name": "mq", "namespace": "ns", "uid": "u"}, "spec": {**SPEC, **spec}}
    )
    assert connection.view_data(view, found.spec_defaults) == connection.secret_data(instance, view)
    bare = instance_facts("ns", "mq", {}, {}, {}).parent(
        namespace_terminating=False, namespace_policy=None, default=DeletionPolicy.DELETE
    )
    assert bare.spec_defaults == SpecDefaults()
