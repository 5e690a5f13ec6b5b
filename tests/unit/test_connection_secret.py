"""The connection Secret: its keys from the cloud's view (a table), ownership, and when it is written."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr

from instance_spec import SPEC
from rocketmq_operator.core import connection
from rocketmq_operator.core.connection import SecretMeta
from rocketmq_operator.core.resource import RocketMQInstance
from rocketmq_operator.core.status import StepResult
from rocketmq_operator.core.vocabulary import Reason
from rocketmq_operator.ports.secrets import SecretApiError, SecretKey
from rocketmq_operator.services.connection_secrets import ConnectionSecrets
from rocketmq_operator.services.tracking import CrMemory

from .builders import cr, view

UID = "5f1c4c1e-0000-4000-8000-000000000001"
V5_ENDPOINTS = {
    "namesrv_address": "192.168.0.10:8100,192.168.0.11:8100",
    "namesrv_domain_name": "namesrv.i-1.example:8100",
    "broker_address": "192.168.1.10:10100",
    "grpc_address": "192.168.0.10:8081",
    "grpc_domain_name": "grpc.i-1.example:8081",
}
PUBLIC = {
    "enable_publicip": True,
    "public_namesrv_address": "100.64.0.1:8200",
    "public_namesrv_domain_name": "public-namesrv.i-1.example:8200",
    "public_broker_address": "100.64.0.1:10101",
    "public_grpc_address": "100.64.0.1:8082",
    "public_grpc_domain_name": "public-grpc.i-1.example:8082",
}


# (case, spec changes, view fields, expected data)
TABLE: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, str]]] = [
    (
        "5.x: name server, broker and gRPC; TLS mode and ACL as the cloud says",
        {},
        {**V5_ENDPOINTS, "tls_mode": "SSL", "enable_acl": True},
        {
            "ROCKETMQ_NAMESRV_ADDR": "192.168.0.10:8100,192.168.0.11:8100",
            "ROCKETMQ_NAMESRV_DOMAIN": "namesrv.i-1.example:8100",
            "ROCKETMQ_BROKER_ADDR": "192.168.1.10:10100",
            "ROCKETMQ_GRPC_ADDR": "192.168.0.10:8081",
            "ROCKETMQ_GRPC_DOMAIN": "grpc.i-1.example:8081",
            "ROCKETMQ_TLS_MODE": "SSL",
            "ROCKETMQ_ACL_ENABLED": "true",
            "ROCKETMQ_ENGINE_VERSION": "5.x",
            "ROCKETMQ_INSTANCE_ID": "i-1",
        },
    ),
    (
        "4.8.0: no gRPC keys at all (not empty ones); TLS from ssl_enable when the cloud has no tls_mode",
        {"engineVersion": "4.8.0", "productId": "c6.4u8g.cluster"},
        {
            "engine_version": "4.8.0",
            "namesrv_address": "192.168.0.10:8100",
            "broker_address": "192.168.1.10:10100",
            "ssl_enable": False,
        },
        {
            "ROCKETMQ_NAMESRV_ADDR": "192.168.0.10:8100",
            "ROCKETMQ_BROKER_ADDR": "192.168.1.10:10100",
            "ROCKETMQ_TLS_MODE": "PLAINTEXT",
            "ROCKETMQ_ACL_ENABLED": "false",
            "ROCKETMQ_ENGINE_VERSION": "4.8.0",
            "ROCKETMQ_INSTANCE_ID": "i-1",
        },
    ),
    (
        "public access on: the public addresses too",
        {"enablePublicip": True, "publicipId": "eip-1"},
        {**V5_ENDPOINTS, **PUBLIC, "tls_mode": "PLAINTEXT"},
        {
            "ROCKETMQ_NAMESRV_ADDR": "192.168.0.10:8100,192.168.0.11:8100",
            "ROCKETMQ_NAMESRV_DOMAIN": "namesrv.i-1.example:8100",
            "ROCKETMQ_BROKER_ADDR": "192.168.1.10:10100",
            "ROCKETMQ_GRPC_ADDR": "192.168.0.10:8081",
            "ROCKETMQ_GRPC_DOMAIN": "grpc.i-1.example:8081",
            "ROCKETMQ_PUBLIC_NAMESRV_ADDR": "100.64.0.1:8200",
            "ROCKETMQ_PUBLIC_NAMESRV_DOMAIN": "public-namesrv.i-1.example:8200",
            "ROCKETMQ_PUBLIC_BROKER_ADDR": "100.64.0.1:10101",
            "ROCKETMQ_PUBLIC_GRPC_ADDR": "100.64.0.1:8082",
            "ROCKETMQ_PUBLIC_GRPC_DOMAIN": "public-grpc.i-1.example:8082",
            "ROCKETMQ_TLS_MODE": "PLAINTEXT",
            "ROCKETMQ_ACL_ENABLED": "false",
            "ROCKETMQ_ENGINE_VERSION": "5.x",
            "ROCKETMQ_INSTANCE_ID": "i-1",
        },
    ),
    (
        "public access off: public addresses the cloud still echoes are left out",
        {},
        {**V5_ENDPOINTS, **PUBLIC, "enable_publicip": False},
        {
            "ROCKETMQ_NAMESRV_ADDR": "192.168.0.10:8100,192.168.0.11:8100",
            "ROCKETMQ_NAMESRV_DOMAIN": "namesrv.i-1.example:8100",
            "ROCKETMQ_BROKER_ADDR": "192.168.1.10:10100",
            "ROCKETMQ_GRPC_ADDR": "192.168.0.10:8081",
            "ROCKETMQ_GRPC_DOMAIN": "grpc.i-1.example:8081",
            "ROCKETMQ_ACL_ENABLED": "false",
            "ROCKETMQ_ENGINE_VERSION": "5.x",
            "ROCKETMQ_INSTANCE_ID": "i-1",
        },
    ),
    (
        "the spec fills in what the cloud leaves out (TLS mode, ACL, engine version)",
        {"tlsMode": "PERMISSIVE", "enableAcl": True},
        {"namesrv_address": "192.168.0.10:8100", "enable_acl": None, "engine_version": None},
        {
            "ROCKETMQ_NAMESRV_ADDR": "192.168.0.10:8100",
            "ROCKETMQ_BROKER_ADDR": "192.168.0.11:10100",
            "ROCKETMQ_TLS_MODE": "PERMISSIVE",
            "ROCKETMQ_ACL_ENABLED": "true",
            "ROCKETMQ_ENGINE_VERSION": "5.x",
            "ROCKETMQ_INSTANCE_ID": "i-1",
        },
    ),
]


@pytest.mark.parametrize(("spec", "fields", "expected"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_secret_data_is_what_the_cloud_reports_under_app_friendly_keys(
    spec: dict[str, Any], fields: dict[str, Any], expected: dict[str, str]
) -> None:
    assert connection.secret_data(cr(spec={**SPEC, **spec}), view(**fields)) == expected


def test_every_key_is_a_valid_environment_variable_name_and_none_is_a_raw_attribute_name() -> None:
    for key in connection.KEYS:
        assert re.fullmatch(r"ROCKETMQ_[A-Z][A-Z0-9_]*", key), key
    assert len(set(connection.KEYS)) == len(connection.KEYS)


def test_the_hash_ignores_order_and_sees_any_change() -> None:
    a = {"A": "1", "B": "2"}
    assert connection.data_hash(a) == connection.data_hash({"B": "2", "A": "1"})
    assert connection.data_hash(a) != connection.data_hash({"A": "1", "B": "3"})
    assert connection.data_hash(a).startswith("sha256:")


def test_the_body_is_labelled_owned_by_the_cr_as_controller_and_base64_encoded() -> None:
    resource = cr()
    body = connection.secret_body(resource, "orders-rocketmq", {"ROCKETMQ_INSTANCE_ID": "i-1"})
    metadata = body["metadata"]
    assert metadata["name"] == "orders-rocketmq"
    assert metadata["namespace"] == "team-a"
    assert metadata["labels"] == {
        "app.kubernetes.io/managed-by": "rocketmq-operator",
        "dms.rocketmq-operator.io/instance": "orders",
    }
    assert metadata["ownerReferences"] == [
        {
            "apiVersion": "dms.rocketmq-operator.io/v1alpha1",
            "kind": "RocketMQInstance",
            "name": "orders",
            "uid": UID,
            "controller": True,
        }
    ]
    assert metadata["annotations"] == {
        "dms.rocketmq-operator.io/data-hash": connection.data_hash({"ROCKETMQ_INSTANCE_ID": "i-1"})
    }
    assert body["type"] == "Opaque"
    assert base64.b64decode(body["data"]["ROCKETMQ_INSTANCE_ID"]) == b"i-1"


def test_a_long_cr_name_becomes_a_valid_label_value() -> None:
    value = connection.label_value("a" * 62 + "-" + "b" * 100)
    assert len(value) <= 63
    assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value)
    assert connection.label_value("orders") == "orders"


def meta(*, owners: tuple[str, ...] = (UID,), managed: str | None = "rocketmq-operator", **extra: Any) -> SecretMeta:
    labels = {"app.kubernetes.io/managed-by": managed} if managed else {}
    return SecretMeta(
        name="orders-rocketmq",
        uid=extra.get("uid", "s-1"),
        resource_version=extra.get("rv", "7"),
        labels=labels,
        annotations=extra.get("annotations", {}),
        owner_uids=owners,
    )


@pytest.mark.parametrize(
    ("secret", "ours"),
    [
        (meta(), True),
        (meta(owners=("someone-else",)), False),
        (meta(owners=()), False),
        (meta(managed=None), False),
        (meta(managed="helm"), False),
        (meta(owners=("someone-else", UID)), True),
    ],
    ids=["ours", "another-owner", "no-owner", "no-label", "other-manager", "co-owned-with-our-label"],
)
def test_a_secret_is_ours_only_with_our_owner_reference_and_our_label(secret: SecretMeta, ours: bool) -> None:
    assert connection.owned_by(cr(), secret) is ours


# --- the service -----------------------------------------------------------------------------------


@dataclass
class FakeStore:
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail: SecretApiError | None = None
    next_uid: int = 0

    def put_foreign(self, namespace: str, name: str) -> None:
        self.secrets[(namespace, name)] = {"metadata": {"name": name, "uid": "foreign", "resourceVersion": "1"}}

    def _check(self, call: str, name: str) -> None:
        self.calls.append((call, name))
        if self.fail is not None:
            raise self.fail

    async def get(self, namespace: str, name: str) -> SecretMeta | None:
        self._check("get", name)
        found = self.secrets.get((namespace, name))
        return SecretMeta.from_metadata(found["metadata"]) if found else None

    async def read_key(self, namespace: str, name: str, key: str) -> SecretKey | None:
        self._check("read_key", name)
        found = self.secrets.get((namespace, name))
        if found is None:
            return None
        raw = (found.get("data") or {}).get(key)
        value = SecretStr(base64.b64decode(raw).decode()) if raw is not None else None
        return SecretKey(meta=SecretMeta.from_metadata(found["metadata"]), value=value)

    async def create(self, namespace: str, body: Mapping[str, Any]) -> None:
        name = body["metadata"]["name"]
        self._check("create", name)
        assert (namespace, name) not in self.secrets
        self.next_uid += 1
        stored = {**body, "metadata": {**body["metadata"], "uid": f"u-{self.next_uid}", "resourceVersion": "1"}}
        self.secrets[(namespace, name)] = stored

    async def replace(self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str) -> None:
        self._check("replace", name)
        old = self.secrets[(namespace, name)]["metadata"]
        assert old["resourceVersion"] == resource_version
        version = str(int(resource_version) + 1)
        self.secrets[(namespace, name)] = {
            **body,
            "metadata": {**body["metadata"], "uid": old["uid"], "resourceVersion": version},
        }

    async def delete(self, namespace: str, name: str, *, uid: str) -> None:
        self._check("delete", name)
        assert self.secrets[(namespace, name)]["metadata"]["uid"] == uid
        del self.secrets[(namespace, name)]

    def data(self, name: str, namespace: str = "team-a") -> dict[str, str]:
        raw = self.secrets[(namespace, name)]["data"]
        return {k: base64.b64decode(v).decode() for k, v in raw.items()}


def wanting(name: str | None = "orders-rocketmq", **status: Any) -> RocketMQInstance:
    spec = {**SPEC, "connectionSecret": {"name": name}} if name else SPEC
    return cr(spec=spec, status={"instanceId": "i-1", **status})


def after(resource: RocketMQInstance, step: StepResult) -> RocketMQInstance:
    """The CR once the step's status patch is applied."""
    status = {**resource.status.to_wire()}
    for key, value in step.patch.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    return RocketMQInstance.model_validate(
        {"metadata": resource.metadata.model_dump(by_alias=True), "spec": resource.spec.to_wire(), "status": status}
    )


def service(store: FakeStore | None = None, *, enabled: bool = True) -> tuple[ConnectionSecrets, FakeStore, CrMemory]:
    store = store or FakeStore()
    memory = CrMemory()
    return ConnectionSecrets(store, enabled=enabled, memory=memory), store, memory


class TestWriting:
    async def test_creates_the_secret_records_it_and_a_quiet_pass_then_makes_no_call(self) -> None:
        secrets, store, _ = service()
        resource = wanting()
        step = StepResult()
        assert await secrets.sync(resource, view(), step) is None
        assert store.calls == [("get", "orders-rocketmq"), ("create", "orders-rocketmq")]
        assert store.data("orders-rocketmq") == connection.secret_data(resource, view())
        digest = connection.data_hash(connection.secret_data(resource, view()))
        assert step.patch == {"connectionSecret": {"name": "orders-rocketmq", "dataHash": digest}}
        assert [e.reason for e in step.events] == [Reason.CONNECTION_SECRET_WRITTEN]

        store.calls.clear()
        quiet = StepResult()
        assert await secrets.sync(after(resource, step), view(), quiet) is None
        assert store.calls == []
        assert quiet.patch == {}
        assert quiet.events == []

    async def test_a_change_in_the_cloud_replaces_the_data(self) -> None:
        secrets, store, _ = service()
        resource = wanting()
        first = StepResult()
        await secrets.sync(resource, view(), first)
        resized = view(broker_address="192.168.0.11:10100,192.168.0.12:10100")
        store.calls.clear()
        step = StepResult()
        await secrets.sync(after(resource, first), resized, step)
        assert store.calls == [("get", "orders-rocketmq"), ("replace", "orders-rocketmq")]
        assert store.data("orders-rocketmq")["ROCKETMQ_BROKER_ADDR"] == "192.168.0.11:10100,192.168.0.12:10100"
        assert step.patch["connectionSecret"]["dataHash"] != first.patch["connectionSecret"]["dataHash"]

    async def test_after_a_restart_one_look_per_cr_heals_a_secret_deleted_by_hand(self) -> None:
        secrets, store, _ = service()
        resource = wanting()
        first = StepResult()
        await secrets.sync(resource, view(), first)
        written = after(resource, first)
        store.secrets.clear()  # deleted by hand
        restarted, store2, _ = service(store)
        store2.calls.clear()
        await restarted.sync(written, view(), StepResult())
        assert store2.calls == [("get", "orders-rocketmq"), ("create", "orders-rocketmq")]
        store2.calls.clear()
        await restarted.sync(written, view(), StepResult())  # a current Secret: that one look, then none
        assert store2.calls == []

    async def test_nothing_is_written_before_the_cloud_reports_endpoints(self) -> None:
        secrets, store, _ = service()
        step = StepResult()
        assert await secrets.sync(wanting(), view(status="CREATING", namesrv_address=""), step) is None
        assert await secrets.sync(wanting(), None, step) is None
        assert store.calls == []
        assert step.patch == {}


class TestOwnership:
    async def test_a_secret_it_does_not_own_is_never_overwritten_and_the_cr_stalls_naming_it(self) -> None:
        secrets, store, _ = service()
        store.put_foreign("team-a", "orders-rocketmq")
        step = StepResult()
        verdict = await secrets.sync(wanting(), view(), step)
        assert verdict is not None
        assert verdict.stalled and not verdict.ready
        assert verdict.reason == Reason.SECRET_CONFLICT
        assert "orders-rocketmq" in verdict.message
        assert store.calls == [("get", "orders-rocketmq")]
        assert store.secrets[("team-a", "orders-rocketmq")]["metadata"]["uid"] == "foreign"
        assert step.patch == {}
        assert [e.reason for e in step.events] == [Reason.SECRET_CONFLICT]

    async def test_renaming_writes_the_new_one_and_deletes_the_old_one(self) -> None:
        secrets, store, _ = service()
        resource = wanting("old-name")
        first = StepResult()
        await secrets.sync(resource, view(), first)
        renamed = after(resource, first).model_copy(update={"spec": wanting("new-name").spec})
        store.calls.clear()
        step = StepResult()
        await secrets.sync(renamed, view(), step)
        assert store.calls == [("get", "new-name"), ("create", "new-name"), ("get", "old-name"), ("delete", "old-name")]
        assert set(store.secrets) == {("team-a", "new-name")}
        assert step.patch["connectionSecret"]["name"] == "new-name"

    async def test_an_old_name_now_held_by_someone_else_is_left_alone(self) -> None:
        secrets, store, _ = service()
        resource = wanting("old-name")
        first = StepResult()
        await secrets.sync(resource, view(), first)
        store.put_foreign("team-a", "old-name")  # replaced by someone else meanwhile
        renamed = after(resource, first).model_copy(update={"spec": wanting("new-name").spec})
        await secrets.sync(renamed, view(), StepResult())
        assert ("team-a", "old-name") in store.secrets
        assert ("delete", "old-name") not in store.calls

    async def test_removing_spec_connection_secret_deletes_ours_and_clears_the_status(self) -> None:
        secrets, store, _ = service()
        resource = wanting()
        first = StepResult()
        await secrets.sync(resource, view(), first)
        dropped = after(resource, first).model_copy(update={"spec": wanting(None).spec})
        step = StepResult()
        await secrets.sync(dropped, view(), step)
        assert store.secrets == {}
        assert step.patch == {"connectionSecret": None}


class TestWhenItCannot:
    async def test_with_connection_secrets_off_a_cr_asking_for_one_stalls_saying_so(self) -> None:
        secrets, store, _ = service(enabled=False)
        verdict = await secrets.sync(wanting(), view(), StepResult())
        assert verdict is not None and verdict.stalled
        assert verdict.reason == Reason.CONNECTION_SECRETS_DISABLED
        assert "DMS_CONNECTION_SECRETS" in verdict.message
        assert store.calls == []
        assert await secrets.sync(wanting(None), view(), StepResult()) is None

    async def test_forbidden_stalls_and_a_transient_failure_retries_on_the_next_pass(self) -> None:
        secrets, store, _ = service()
        store.fail = SecretApiError("GET secret team-a/orders-rocketmq: 403 forbidden", status=403)
        verdict = await secrets.sync(wanting(), view(), StepResult())
        assert verdict is not None and verdict.stalled
        assert verdict.reason == Reason.CONNECTION_SECRET_FAILED

        store.fail = SecretApiError("connection refused")
        step = StepResult()
        assert await secrets.sync(wanting(), view(), step) is None
        assert step.patch == {}  # nothing recorded: the next pass writes
        assert [e.reason for e in step.events] == [Reason.CONNECTION_SECRET_FAILED]
        store.fail = None
        await secrets.sync(wanting(), view(), StepResult())
        assert ("team-a", "orders-rocketmq") in store.secrets

    async def test_a_forgotten_cr_is_looked_at_again(self) -> None:
        secrets, store, memory = service()
        resource = wanting()
        first = StepResult()
        await secrets.sync(resource, view(), first)
        memory.forget(resource.metadata.uid)
        store.calls.clear()
        await secrets.sync(after(resource, first), view(), StepResult())
        assert store.calls == [("get", "orders-rocketmq")]


class TestInTheReconcilersPass:
    async def _pass(self, store: FakeStore, resource: RocketMQInstance) -> StepResult:
        from rocketmq_operator.services.metrics import Metrics
        from rocketmq_operator.services.observing import Observer
        from rocketmq_operator.services.reconciling import Reconciler

        from .builders import make_settings
        from .fake_cloud import FakeCloud

        fake = FakeCloud()
        fake.add(view("i-1"))
        metrics = Metrics()
        memory = CrMemory()
        observer = Observer(fake, interval=10, min_gap=1.0, metrics=metrics)
        reconciler = Reconciler(
            client=fake,
            observer=observer,
            settings=make_settings(),
            cluster_id=lambda: "cluster-1",
            metrics=metrics,
            memory=memory,
            secrets=ConnectionSecrets(store, enabled=True, memory=memory),
        )
        await observer.start()
        try:
            await observer.snapshot_after(0, timeout=5)
            return await reconciler.reconcile(resource)
        finally:
            await observer.aclose()

    async def test_a_ready_instance_gets_its_secret_and_the_status_records_it(self) -> None:
        store = FakeStore()
        step = await self._pass(store, wanting())
        assert store.data("orders-rocketmq")["ROCKETMQ_NAMESRV_ADDR"] == "192.168.0.10:8100"
        assert step.patch["connectionSecret"]["name"] == "orders-rocketmq"
        ready = next(c for c in step.patch["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"

    async def test_a_conflict_says_stalled_with_the_reason_and_writes_nothing(self) -> None:
        store = FakeStore()
        store.put_foreign("team-a", "orders-rocketmq")
        step = await self._pass(store, wanting())
        by_type = {c["type"]: c for c in step.patch["conditions"]}
        assert by_type["Stalled"]["status"] == "True"
        assert by_type["Stalled"]["reason"] == "SecretConflict"
        assert by_type["Ready"]["status"] == "False"
        assert "connectionSecret" not in step.patch
        assert step.patch["cloudStatus"] == "RUNNING"  # the cloud's view is still mirrored
