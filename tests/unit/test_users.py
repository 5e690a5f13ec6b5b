"""RocketMQUser, as the user reconciler handles it: on the fake cloud and a fake Secret store, in
virtual time. Keys come from Secrets, rotate by update, and show up nowhere else."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from rocketmq_operator.core import cloud
from rocketmq_operator.core import user_resource as ur
from rocketmq_operator.core.child_mapping import Parent
from rocketmq_operator.core.vocabulary import Presence
from rocketmq_operator.ports import errors
from rocketmq_operator.services.child_observing import ChildObserver
from rocketmq_operator.services.children import Timing
from rocketmq_operator.services.observing import Observation
from rocketmq_operator.services.users import UserReconciler, UserStep

from .fake_cloud import EPOCH, FakeCloud, loop_clock, virtual_time
from .test_connection_secret import FakeStore

IID = "i-0000"
NS = "ns"
KEY1, KEY2 = "First-Key-0001", "Second-Key-0002"


def wall() -> float:
    return EPOCH + loop_clock()


class World:
    def __init__(self, *, secrets: bool = True) -> None:
        self.cloud = FakeCloud()
        self.cloud.add(cloud.InstanceView(instance_id=IID, name="rmq", status=cloud.RUNNING, engine_version="5.x"))
        self.store = FakeStore()
        self.absent: set[str] = set()
        self.observer = ChildObserver(self.cloud, interval=10.0, clock=wall)
        self.users = UserReconciler(
            client=self.cloud,
            observer=self.observer,
            secrets=self.store if secrets else None,
            instances=self._lookup,
            timing=Timing(poll_interval=10.0, verify_interval=1.0),
            clock=wall,
        )

    def _lookup(self, instance_id: str) -> Observation:
        if instance_id in self.absent:
            return Observation(Presence.ABSENT, None, wall())
        view = self.cloud.instances.get(instance_id)
        return Observation(Presence.PRESENT if view else Presence.UNKNOWN, view, wall())

    def put_secret(self, name: str, data: dict[str, str]) -> None:
        found = self.store.secrets.get((NS, name))
        version = str(int(found["metadata"]["resourceVersion"]) + 1) if found else "1"
        self.store.secrets[(NS, name)] = {
            "metadata": {"name": name, "uid": f"s-{name}", "resourceVersion": version},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }

    def key(self, name: str = "app-user") -> str:
        return self.cloud.user_keys[(IID, name)]

    async def until_settled(
        self, cr: ur.RocketMQUser, parent_: Parent | None = None, *, passes: int = 6
    ) -> tuple[ur.RocketMQUser, list[UserStep]]:
        steps = []
        for _ in range(passes):
            step = await self.reconcile(cr, parent_ or parent())
            steps.append(step)
            cr = after(cr, step)
            if step.requeue_after is None:
                break
        return cr, steps

    async def reconcile(self, cr: ur.RocketMQUser, parent_: Parent | None) -> UserStep:
        """One pass, a second after the last (as handlers run: a change of ours is then listed)."""
        await asyncio.sleep(1.0)
        return await self.users.reconcile(cr, parent_)

    async def aclose(self) -> None:
        await self.observer.aclose()


def parent(*, deleting: bool = False, deletes: bool = True) -> Parent:
    return Parent("ns/mq", IID, cloud.RUNNING, "5.x", deleting=deleting, deletes_instance=deletes)


def user(*, status: dict[str, Any] | None = None, deleting: bool = False, **spec: Any) -> ur.RocketMQUser:
    metadata: dict[str, Any] = {"name": "app", "namespace": NS, "uid": "uid-app", "generation": 1}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    base = {"instanceRef": {"name": "mq"}, "accessKey": "app-user"}
    if "generateSecretKey" not in spec:
        base["secretKeyRef"] = {"name": "creds"}
    return ur.RocketMQUser.from_body({"metadata": metadata, "spec": {**base, **spec}, "status": status or {}})


def after(cr: ur.RocketMQUser, step: UserStep) -> ur.RocketMQUser:
    body = cr.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["status"] = {k: v for k, v in {**body.get("status", {}), **step.patch}.items() if v is not None}
    return ur.RocketMQUser.from_body(body)


def ready(step: UserStep) -> tuple[str, str, str]:
    (condition,) = [c for c in step.status.conditions or [] if c.type == "Ready"]
    return condition.status, condition.reason, condition.message


def stalled(step: UserStep) -> bool:
    return any(c.type == "Stalled" and c.status == "True" for c in step.status.conditions or [])


def no_key_in(steps: list[UserStep], *keys: str) -> None:
    shown = json.dumps([{"patch": s.patch, "events": [e.message for e in s.events]} for s in steps], default=str)
    for key in keys:
        assert key not in shown


class TestReferencedKey:
    @virtual_time
    async def test_created_with_the_key_of_the_secret_and_the_version_recorded(self) -> None:
        w = World()
        w.put_secret("creds", {"secretKey": KEY1})
        cr, steps = await w.until_settled(user(defaultTopicPerm="PUB"))
        assert ready(steps[-1])[:2] == ("True", "Created")
        assert w.key() == KEY1
        assert cr.status.secret_key_version == "s-creds/1" and cr.status.owned
        assert w.cloud.users[IID]["app-user"].default_topic_perm == "PUB"
        assert [c.operation for c in w.cloud.calls if c.operation != "list_users"] == ["create_user"]
        no_key_in(steps, KEY1)
        await w.aclose()

    @virtual_time
    async def test_a_changed_secret_rotates_the_key_of_the_same_user(self) -> None:
        w = World()
        w.put_secret("creds", {"secretKey": KEY1})
        cr, _ = await w.until_settled(user())
        step = await w.reconcile(cr, parent())
        assert w.store.calls[-1] == ("get", "creds"), "an unchanged Secret: metadata only"
        w.put_secret("creds", {"secretKey": KEY2})
        cr, steps = await w.until_settled(after(cr, step))
        assert w.key() == KEY2 and cr.status.secret_key_version == "s-creds/2"
        assert [c.operation for c in w.cloud.calls if c.operation != "list_users"] == ["create_user", "update_user"]
        assert any(e.reason == "SecretKeyRotated" for s in steps for e in s.events)
        assert [c.status for c in cr.status.conditions or [] if c.type == "Ready"] == ["True"]
        no_key_in(steps, KEY1, KEY2)
        await w.aclose()

    @virtual_time
    async def test_a_missing_secret_or_key_waits_naming_them(self) -> None:
        w = World()
        step = await w.reconcile(after(user(), await w.reconcile(user(), parent())), parent())
        assert ready(step)[1] == "SecretKeyUnavailable" and "ns/creds does not exist" in ready(step)[2]
        w.put_secret("creds", {"other": KEY1})
        step = await w.reconcile(after(user(), await w.reconcile(user(), parent())), parent())
        assert "has no key 'secretKey'" in ready(step)[2] and not stalled(step)
        assert "create_user" not in [c.operation for c in w.cloud.calls]
        await w.aclose()

    @virtual_time
    async def test_a_key_the_cloud_refuses_stalls_with_its_message(self) -> None:
        w = World()
        w.put_secret("creds", {"secretKey": KEY1})
        refusal = errors.InvalidRequest("Invalid parameter 'secret_key': must be 8 to 32 characters", status=400)
        w.cloud.call_errors["create_user"] = [refusal]
        _, steps = await w.until_settled(user())
        assert stalled(steps[-1]) and "must be 8 to 32" in ready(steps[-1])[2]
        no_key_in(steps, KEY1)
        await w.aclose()

    @virtual_time
    async def test_without_access_to_secrets_it_stalls_without_a_call(self) -> None:
        w = World(secrets=False)
        _, steps = await w.until_settled(user())
        assert stalled(steps[-1]) and ready(steps[-1])[1] == "SecretKeyUnavailable"
        assert "create_user" not in [c.operation for c in w.cloud.calls]
        await w.aclose()

    @virtual_time
    async def test_permission_changes_are_updates(self) -> None:
        w = World()
        w.put_secret("creds", {"secretKey": KEY1})
        cr, _ = await w.until_settled(user())
        changed = user(status=cr.status.to_wire(), admin=True, groupPerms=[{"name": "billing", "perm": "SUB"}])
        cr, _ = await w.until_settled(changed)
        view = w.cloud.users[IID]["app-user"]
        assert view.admin and [(p.name, p.perm) for p in view.group_perms] == [("billing", "SUB")]
        assert w.key() == KEY1 and cr.status.admin is True
        await w.aclose()

    @virtual_time
    async def test_an_existing_user_is_refused_unless_adopted_and_adopting_sets_the_key(self) -> None:
        w = World()
        w.put_secret("creds", {"secretKey": KEY2})
        w.cloud.users[IID] = {
            "app-user": cloud.UserView(access_key="app-user", default_topic_perm="DENY", default_group_perm="DENY")
        }
        w.cloud.user_keys[(IID, "app-user")] = KEY1
        _, steps = await w.until_settled(user())
        assert stalled(steps[-1]) and ready(steps[-1])[1] == "AlreadyExists"
        cr, _ = await w.until_settled(user(adopt=True))
        assert w.key() == KEY2 and cr.status.adopted and cr.status.secret_key_version == "s-creds/1"
        await w.aclose()


class TestGeneratedKey:
    @virtual_time
    async def test_the_operator_generates_an_owned_secret_and_creates_the_user_with_its_key(self) -> None:
        w = World()
        cr, steps = await w.until_settled(user(generateSecretKey={"secretName": "gen"}))
        stored = w.store.secrets[(NS, "gen")]
        assert stored["metadata"]["ownerReferences"][0]["uid"] == "uid-app"
        key = base64.b64decode(stored["data"]["secretKey"]).decode()
        assert ur.key_problem(key, "app-user") is None and len(key) == 32
        assert w.key() == key and ready(steps[-1])[0] == "True"
        assert any(e.reason == "SecretKeyGenerated" for s in steps for e in s.events)
        no_key_in(steps, key)
        # Later passes keep the key: the Secret did not change.
        await w.reconcile(cr, parent())
        assert w.key() == key and "update_user" not in [c.operation for c in w.cloud.calls]
        await w.aclose()

    @virtual_time
    async def test_a_secret_of_that_name_not_ours_is_left_alone(self) -> None:
        w = World()
        w.put_secret("gen", {"secretKey": KEY1})
        _, steps = await w.until_settled(user(generateSecretKey={"secretName": "gen"}))
        assert stalled(steps[-1]) and ready(steps[-1])[1] == "SecretConflict"
        assert "create_user" not in [c.operation for c in w.cloud.calls]
        await w.aclose()


class TestDeleting:
    async def _created(self, w: World) -> ur.RocketMQUser:
        w.put_secret("creds", {"secretKey": KEY1})
        cr, _ = await w.until_settled(user())
        return ur.RocketMQUser.from_body(
            {
                **cr.model_dump(mode="json", by_alias=True, exclude_none=True),
                "metadata": {**cr.metadata.model_dump(by_alias=True), "deletionTimestamp": "2026-12-01T00:00:00Z"},
            }
        )

    @virtual_time
    async def test_one_delete_call_then_released(self) -> None:
        w = World()
        cr = await self._created(w)
        step = await w.users.finalize(cr, parent())
        assert step.released and "app-user" not in w.cloud.users[IID]
        assert [c.operation for c in w.cloud.calls].count("delete_user") == 1
        await w.aclose()

    @virtual_time
    async def test_a_user_already_gone_is_released(self) -> None:
        w = World()
        cr = await self._created(w)
        del w.cloud.users[IID]["app-user"]
        step = await w.users.finalize(cr, parent())
        assert step.released
        await w.aclose()

    @virtual_time
    async def test_with_its_instance_no_call_until_the_instance_is_proven_gone(self) -> None:
        w = World()
        cr = await self._created(w)
        step = await w.users.finalize(cr, parent(deleting=True))
        assert not step.released and ready(step)[1] == "DeletingWithInstance"
        w.absent.add(IID)
        step = await w.users.finalize(after(cr, step), None)
        assert step.released
        assert "delete_user" not in [c.operation for c in w.cloud.calls]
        await w.aclose()

    @virtual_time
    async def test_orphan_makes_no_call(self) -> None:
        w = World()
        cr = await self._created(w)
        orphan = ur.RocketMQUser.from_body(
            {
                **cr.model_dump(mode="json", by_alias=True, exclude_none=True),
                "spec": {**cr.spec.to_wire(), "deletionPolicy": "Orphan"},
            }
        )
        step = await w.users.finalize(orphan, parent())
        assert step.released and "app-user" in w.cloud.users[IID]
        await w.aclose()
