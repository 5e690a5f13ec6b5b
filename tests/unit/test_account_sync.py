"""One pass over an account (wiring.account_handlers.AccountSync): Secret → runtime → verification → status.

Real code paths throughout: the real ``Accounts`` registry builds each account's ``DmsClient`` through
its own factory (the starter calls it, as the wiring's does), and the runtime it starts is a real
``Runtime`` whose cloud is a ``FakeCloud``, so every verification call is counted there. Only the
Secret store is a fake, implementing the ``SecretStore`` port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr

from rocketmq_operator.adapters import dms_client
from rocketmq_operator.core import accounts
from rocketmq_operator.core.account_resource import AnyAccount, ClusterRocketMQAccount, RocketMQAccount
from rocketmq_operator.core.accounts import AccountKey
from rocketmq_operator.core.connection import SecretMeta
from rocketmq_operator.core.settings import OperatorSettings
from rocketmq_operator.ports import errors
from rocketmq_operator.ports.secrets import SecretApiError, SecretKey, SecretKeys
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.wiring.account_handlers import AccountSync
from rocketmq_operator.wiring.accounts import Accounts, AccountSource
from rocketmq_operator.wiring.runtime import Runtime

from .builders import make_settings
from .fake_cloud import FakeCloud

AK, SK = "AK-OF-TEAM-A-0001", "SK-OF-TEAM-A-very-secret"
TEAM = accounts.namespaced("team-a", "team-account")
SHARED = accounts.cluster("shared")


@dataclass
class FakeSecrets:
    """The SecretStore port over a dict: (namespace, name) -> (uid, resourceVersion, data)."""

    secrets: dict[tuple[str, str], tuple[str, str, dict[str, str]]] = field(default_factory=dict)
    reads: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    refuse: SecretApiError | None = None
    finalizers: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def put(self, namespace: str, name: str, data: dict[str, str], *, uid: str = "s-1", version: str = "1") -> None:
        self.secrets[(namespace, name)] = (uid, version, data)

    def _meta(self, namespace: str, name: str) -> SecretMeta | None:
        found = self.secrets.get((namespace, name))
        if found is None:
            return None
        uid, version, _ = found
        return SecretMeta.from_metadata(
            {
                "name": name,
                "uid": uid,
                "resourceVersion": version,
                "finalizers": list(self.finalizers.get((namespace, name), [])),
            }
        )

    async def hold(self, namespace: str, name: str, finalizer: str) -> None:
        found = self.secrets.get((namespace, name))
        if found is None:
            return
        held = self.finalizers.setdefault((namespace, name), [])
        if finalizer not in held:
            held.append(finalizer)
            uid, version, data = found
            # As the API server does: any change of the object is a new resourceVersion.
            self.secrets[(namespace, name)] = (uid, f"{version}+held", data)

    async def release(self, namespace: str, name: str, finalizer: str) -> None:
        held = self.finalizers.get((namespace, name), [])
        if finalizer in held:
            held.remove(finalizer)

    async def get(self, namespace: str, name: str) -> SecretMeta | None:
        return self._meta(namespace, name)

    async def read_key(self, namespace: str, name: str, key: str) -> SecretKey | None:
        meta = self._meta(namespace, name)
        if meta is None:
            return None
        value = self.secrets[(namespace, name)][2].get(key)
        return SecretKey(meta, SecretStr(value) if value is not None else None)

    async def read_keys(self, namespace: str, name: str, keys: Sequence[str]) -> SecretKeys | None:
        self.reads.append((namespace, name, tuple(keys)))
        if self.refuse is not None:
            raise self.refuse
        meta = self._meta(namespace, name)
        if meta is None:
            return None
        data = self.secrets[(namespace, name)][2]
        return SecretKeys(meta, {key: SecretStr(data[key]) for key in keys if key in data})

    async def create(self, namespace: str, body: Mapping[str, Any]) -> None:
        raise AssertionError("an account's pass never writes a Secret")

    async def replace(self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str) -> None:
        raise AssertionError("an account's pass never writes a Secret")

    async def delete(self, namespace: str, name: str, *, uid: str) -> None:
        raise AssertionError("an account's pass never deletes a Secret")


@dataclass
class World:
    settings: OperatorSettings
    secrets: FakeSecrets
    registry: Accounts
    clouds: dict[AccountKey, FakeCloud]
    """The cloud each account's runtime speaks to, by account; set before its first pass."""
    started: list[AccountKey]
    clients: list[dms_client.DmsClient]
    """The clients ``Accounts`` made for the accounts (through the starter's factory)."""

    def cloud(self, key: AccountKey) -> FakeCloud:
        return self.clouds.setdefault(key, FakeCloud())

    async def run(
        self, account: AnyAccount, key: AccountKey, namespace: str, users: Sequence[str] = ()
    ) -> tuple[dict[str, Any], list[tuple[str, str, str]], AnyAccount]:
        """One pass; the returned account has the status patch applied, as the API server would."""
        sync = AccountSync(self.registry, self.secrets, self.settings)
        patch, events = await sync.run(account, key, namespace, list(users))
        body = account.model_dump(mode="json", by_alias=True, exclude_none=True)
        body["status"] = {**body.get("status", {}), **patch}
        return patch, events, type(account).from_body(body)

    def verifications(self, key: AccountKey) -> int:
        return len(self.cloud(key).calls_of("list_instances"))


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = make_settings(DMS_OPERATOR_NAMESPACE="rocketmq-system")
    clouds: dict[AccountKey, FakeCloud] = {}
    started: list[AccountKey] = []
    clients: list[dms_client.DmsClient] = []
    default = Runtime.assemble(
        settings, client=FakeCloud(), metrics=Metrics(), cluster_id=lambda: "c-1", known_ids=lambda: ()
    )

    async def start(key: AccountKey, source: AccountSource, make: Callable[[Metrics], dms_client.DmsClient]) -> Runtime:
        metrics = Metrics()
        clients.append(make(metrics))
        started.append(key)
        cloud = clouds.setdefault(key, FakeCloud())
        return Runtime.assemble(
            source.settings(settings), client=cloud, metrics=metrics, cluster_id=lambda: "c-1", known_ids=lambda: ()
        )

    registry = Accounts(settings, default=default, start=start)
    try:
        yield World(settings, FakeSecrets(), registry, clouds, started, clients)
    finally:
        await registry.aclose()
        for client in clients:
            await client.aclose()


def account_body(name: str, *, namespace: str | None, secret: str = "creds", **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "generation": 3}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "metadata": metadata,
        "spec": {"endpoint": "https://dms.team.test", "projectId": "p-team", "credentials": {"secretName": secret}}
        | spec,
    }


def team_account(**spec: Any) -> RocketMQAccount:
    return RocketMQAccount.from_body(account_body("team-account", namespace="team-a", **spec))


def shared_account(**spec: Any) -> ClusterRocketMQAccount:
    return ClusterRocketMQAccount.from_body(account_body("shared", namespace=None, **spec))


def conditions(status: Mapping[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


class TestASecretThatIsNotThere:
    async def test_stalls_the_account_and_makes_no_runtime(self, world: World) -> None:
        patch, events, _ = await world.run(team_account(), TEAM, "team-a")

        found = conditions(patch)
        assert found["Ready"][:2] == ("False", "SecretNotFound")
        assert found["Stalled"][0] == "True"
        assert found["Reconciling"][0] == "False"
        assert found["Ready"][2] == "Secret team-a/creds not found"
        assert events == [("Warning", "SecretNotFound", "Secret team-a/creds not found")]
        assert world.registry.get(TEAM) is None
        assert world.started == []
        assert "credentialsVersion" not in patch

    async def test_an_unreadable_one_says_so_and_stalls_only_when_forbidden(self, world: World) -> None:
        world.secrets.refuse = SecretApiError("secrets is forbidden", status=403)

        patch, _, _ = await world.run(team_account(), TEAM, "team-a")

        found = conditions(patch)
        assert found["Ready"][1] == "SecretUnreadable"
        assert (found["Stalled"][0], found["Reconciling"][0]) == ("True", "False")
        assert world.registry.get(TEAM) is None


class TestCredentialsThatWork:
    async def test_make_a_runtime_verified_once_and_ready(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK}, uid="s-9", version="17")

        patch, events, _ = await world.run(team_account(), TEAM, "team-a", users=["team-a/b", "team-a/a"])

        assert world.started == [TEAM]
        assert world.registry.get(TEAM) is not None
        assert world.verifications(TEAM) == 1
        assert [c.limit for c in world.cloud(TEAM).calls_of("list_instances")] == [1]
        found = conditions(patch)
        assert found["Ready"][:2] == ("True", "Verified")
        assert "accepted by project p-team at https://dms.team.test" in found["Ready"][2]
        assert (found["Stalled"][0], found["Reconciling"][0]) == ("False", "False")
        assert patch["credentialsVersion"] == "s-9/17"
        assert patch["credentialsType"] == "AK/SK"
        assert (patch["inUse"], patch["usedBy"]) == (2, ["team-a/a", "team-a/b"])
        assert patch["endpoint"] == "https://dms.team.test"
        assert patch["observedGeneration"] == 3
        assert "verifiedAt" in patch
        assert [(kind, reason) for kind, reason, _ in events] == [("Normal", "Verified")]

    async def test_read_only_the_keys_the_spec_names_in_the_accounts_namespace(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"AK": AK, "SK": SK})
        keys = {"accessKey": "AK", "secretKey": "SK", "securityToken": "STS", "authToken": "TOKEN"}

        patch, _, _ = await world.run(team_account(credentials={"secretName": "creds", "keys": keys}), TEAM, "team-a")

        assert world.secrets.reads == [("team-a", "creds", ("AK", "SK", "STS", "TOKEN"))]
        assert conditions(patch)["Ready"][1] == "Verified"

    async def test_a_cluster_accounts_secret_is_read_where_the_wiring_says(self, world: World) -> None:
        world.secrets.put("rocketmq-system", "creds", {"authToken": "a-token"})

        patch, _, _ = await world.run(shared_account(), SHARED, "rocketmq-system")

        assert world.secrets.reads[0][:2] == ("rocketmq-system", "creds")
        assert patch["credentialsType"] == "token"
        assert conditions(patch)["Ready"][1] == "Verified"

    async def test_the_same_secret_version_is_not_verified_again(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK}, version="17")
        _, _, account = await world.run(team_account(), TEAM, "team-a")

        patch, events, _ = await world.run(account, TEAM, "team-a")

        assert world.verifications(TEAM) == 1
        assert world.started == [TEAM]
        assert events == []
        assert "conditions" not in patch, "unchanged conditions are not written again"
        assert "verifiedAt" not in patch

    async def test_a_changed_secret_version_is_verified_again_on_the_same_runtime(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK}, version="17")
        _, _, account = await world.run(team_account(), TEAM, "team-a")
        runtime = world.registry.get(TEAM)
        world.secrets.put("team-a", "creds", {"accessKey": "AK-NEW", "secretKey": "SK-NEW"}, version="18")

        patch, _, _ = await world.run(account, TEAM, "team-a")

        assert world.verifications(TEAM) == 2
        assert world.registry.get(TEAM) is runtime
        assert world.started == [TEAM]
        assert patch["credentialsVersion"] == "s-1/18"

    async def test_usage_is_reported_even_when_nothing_else_changed(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK})
        _, _, account = await world.run(team_account(), TEAM, "team-a")

        patch, _, _ = await world.run(account, TEAM, "team-a", users=["team-a/x"])

        assert (patch["inUse"], patch["usedBy"]) == (1, ["team-a/x"])


class TestTheSecretIsHeld:
    """A namespace teardown deletes the Secret at once; held, it stays readable for a restarted operator."""

    async def test_by_the_accounts_finalizer_after_the_first_read(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK}, version="17")
        await world.run(team_account(), TEAM, "team-a")
        assert world.secrets.finalizers[("team-a", "creds")] == [accounts.CREDENTIALS_FINALIZER]

    async def test_and_the_new_version_holding_it_makes_is_not_a_new_credential(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK}, version="17")
        _, _, account = await world.run(team_account(), TEAM, "team-a")

        patch, events, _ = await world.run(account, TEAM, "team-a")

        assert patch["credentialsVersion"] == "s-1/17+held"
        assert world.verifications(TEAM) == 1, "same keys: nothing to verify again"
        assert events == []


class TestARenamedSecret:
    async def test_is_let_go_and_the_new_one_held(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK})
        world.secrets.put("team-a", "creds-2", {"accessKey": AK, "secretKey": SK})
        patch, _, account = await world.run(team_account(), TEAM, "team-a")
        assert patch["credentialsSecret"] == "team-a/creds"

        renamed = RocketMQAccount.from_body(
            account_body("team-account", namespace="team-a", secret="creds-2") | {"status": account.status.to_wire()}
        )
        patch, _, _ = await world.run(renamed, TEAM, "team-a")

        assert patch["credentialsSecret"] == "team-a/creds-2"
        assert world.secrets.finalizers[("team-a", "creds")] == [], "the old Secret can be deleted again"
        assert world.secrets.finalizers[("team-a", "creds-2")] == [accounts.CREDENTIALS_FINALIZER]

    async def test_another_account_still_naming_it_keeps_it_held(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK})
        world.secrets.put("team-a", "creds-2", {"accessKey": AK, "secretKey": SK})
        _, _, account = await world.run(team_account(), TEAM, "team-a")
        renamed = RocketMQAccount.from_body(
            account_body("team-account", namespace="team-a", secret="creds-2") | {"status": account.status.to_wire()}
        )
        sync = AccountSync(
            world.registry, world.secrets, world.settings, shared=lambda secret: secret == ("team-a", "creds")
        )
        await sync.run(renamed, TEAM, "team-a", [])
        assert world.secrets.finalizers[("team-a", "creds")] == [accounts.CREDENTIALS_FINALIZER]


class TestCredentialsTheCloudRefuses:
    async def test_stall_the_account_with_auth_failed_and_no_secret_value(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK, "securityToken": "STS-VALUE"})
        world.cloud(TEAM).call_errors["list_instances"] = [
            errors.AuthFailed("the signature does not match", status=401, code="APIGW.0301")
        ]

        patch, events, _ = await world.run(team_account(), TEAM, "team-a")

        found = conditions(patch)
        assert found["Ready"][:2] == ("False", "AuthFailed")
        assert found["Stalled"][0] == "True"
        assert (
            "the cloud refused the credentials of Secret team-a/creds (AK/SK with security token)"
            in (found["Ready"][2])
        )
        assert [(kind, reason) for kind, reason, _ in events] == [("Warning", "AuthFailed")]
        written = repr(patch) + repr(events)
        for value in (AK, SK, "STS-VALUE"):
            assert value not in written
        assert "verifiedAt" not in patch

    async def test_are_tried_again_on_the_next_pass_and_recover(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK})
        world.cloud(TEAM).call_errors["list_instances"] = [errors.AuthFailed("refused", status=401)]
        _, _, account = await world.run(team_account(), TEAM, "team-a")

        patch, events, _ = await world.run(account, TEAM, "team-a")

        assert world.verifications(TEAM) == 2
        assert conditions(patch)["Ready"][:2] == ("True", "Verified")
        assert [(kind, reason) for kind, reason, _ in events] == [("Normal", "Verified")]

    async def test_a_secret_without_credentials_is_refused_before_any_runtime(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK})

        patch, _, _ = await world.run(team_account(), TEAM, "team-a")

        assert conditions(patch)["Ready"][1] == "CredentialsIncomplete"
        assert AK not in repr(patch)
        assert world.started == []


class TestASecretRemovedLater:
    async def test_keeps_the_runtime_and_says_the_credentials_read_before_are_still_used(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK})
        _, _, account = await world.run(team_account(), TEAM, "team-a")
        runtime = world.registry.get(TEAM)
        del world.secrets.secrets[("team-a", "creds")]

        patch, events, _ = await world.run(account, TEAM, "team-a")

        assert world.registry.get(TEAM) is runtime
        found = conditions(patch)
        assert found["Ready"][:2] == ("False", "SecretNotFound")
        assert (found["Reconciling"][0], found["Stalled"][0]) == ("True", "False")
        assert "the credentials read before it went are still used" in found["Ready"][2]
        assert [(kind, reason) for kind, reason, _ in events] == [("Warning", "SecretNotFound")]
        assert world.verifications(TEAM) == 1


class TestNamespacedAccountsDisabled:
    async def test_refuse_a_rocketmq_account_without_reading_its_secret(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK})
        sync = AccountSync(world.registry, world.secrets, make_settings(DMS_NAMESPACED_ACCOUNTS="false"))

        patch, events = await sync.run(team_account(), TEAM, "team-a", [])

        found = conditions(patch)
        assert found["Ready"][:2] == ("False", "NamespacedAccountsDisabled")
        assert found["Stalled"][0] == "True"
        assert "use a ClusterRocketMQAccount" in found["Ready"][2]
        assert world.secrets.reads == []
        assert world.started == []
        assert [(kind, reason) for kind, reason, _ in events] == [("Warning", "NamespacedAccountsDisabled")]

    async def test_still_serve_cluster_accounts(self, world: World) -> None:
        world.secrets.put("rocketmq-system", "creds", {"accessKey": AK, "secretKey": SK})
        sync = AccountSync(world.registry, world.secrets, make_settings(DMS_NAMESPACED_ACCOUNTS="false"))

        patch, _ = await sync.run(shared_account(), SHARED, "rocketmq-system", [])

        assert conditions(patch)["Ready"][1] == "Verified"
        assert world.started == [SHARED]


class TestACaBundleThatHoldsNoCertificate:
    async def test_stalls_the_account_before_any_runtime_is_made(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK})

        patch, _, _ = await world.run(team_account(caBundle="not a certificate"), TEAM, "team-a")

        found = conditions(patch)
        assert found["Ready"][:2] == ("False", "InvalidCABundle")
        assert found["Stalled"][0] == "True"
        assert found["Ready"][2].startswith("spec.caBundle: ")
        assert world.registry.get(TEAM) is None
        assert world.verifications(TEAM) == 0

    async def test_given_later_keeps_the_runtime_and_its_last_good_trust(self, world: World) -> None:
        world.secrets.put("team-a", "creds", {"accessKey": AK, "secretKey": SK})
        _, _, account = await world.run(team_account(), TEAM, "team-a")
        runtime = world.registry.get(TEAM)
        body = account.model_dump(mode="json", by_alias=True, exclude_none=True)
        body["spec"]["caBundle"] = "not a certificate"

        patch, _, _ = await world.run(RocketMQAccount.from_body(body), TEAM, "team-a")

        assert conditions(patch)["Ready"][1] == "InvalidCABundle"
        assert world.registry.get(TEAM) is runtime
        source = world.registry.source(TEAM)
        assert source is not None and source.ca_bundle is None
        assert world.verifications(TEAM) == 1
