"""Which account a resource uses, whether it may, and what an account's Secret holds (core.accounts)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from rocketmq_operator.core import accounts
from rocketmq_operator.core.account_resource import USED_BY_SHOWN, CredentialKeys
from rocketmq_operator.core.accounts import AccountFacts, AccountKey, AkSk, Refusal, Token
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.resource import AccountKind, AccountRef

NOW = "2026-12-01T00:00:00Z"
TEAM = accounts.namespaced("team-a", "team-account")
SHARED = accounts.cluster("shared")
NAMESPACED_REF = AccountRef(kind=AccountKind.NAMESPACED, name="team-account")
CLUSTER_REF = AccountRef(kind=AccountKind.CLUSTER, name="shared")


def choose(
    *,
    recorded: str | None = None,
    ref: AccountRef | None = None,
    footprint: bool = False,
    annotation: str | None = None,
) -> AccountKey | Refusal:
    return accounts.choose(namespace="team-a", recorded=recorded, ref=ref, footprint=footprint, annotation=annotation)


class TestWhichAccountAnInstanceUses:
    @pytest.mark.parametrize(
        ("situation", "expected"),
        [
            pytest.param({}, accounts.DEFAULT, id="nothing said: the default"),
            pytest.param({"ref": NAMESPACED_REF}, TEAM, id="a RocketMQAccount ref: of the CR's own namespace"),
            pytest.param({"ref": CLUSTER_REF}, SHARED, id="a ClusterRocketMQAccount ref"),
            pytest.param({"annotation": "shared"}, SHARED, id="a fresh CR: the namespace annotation"),
            pytest.param({"ref": CLUSTER_REF, "annotation": "other"}, SHARED, id="the ref wins over the annotation"),
            pytest.param(
                {"recorded": "RocketMQAccount/team-account", "ref": CLUSTER_REF, "annotation": "other"},
                TEAM,
                id="the record wins over a changed ref and annotation",
            ),
            pytest.param(
                {"recorded": "ClusterRocketMQAccount/shared", "annotation": "other"},
                SHARED,
                id="the record wins over an annotation edited later",
            ),
            pytest.param(
                {"recorded": "default", "ref": NAMESPACED_REF}, accounts.DEFAULT, id="a recorded default stays"
            ),
            pytest.param(
                {"footprint": True, "annotation": "shared"},
                accounts.DEFAULT,
                id="a footprint without a record stays on the default, annotation or not",
            ),
            pytest.param({"footprint": True, "ref": NAMESPACED_REF}, TEAM, id="a footprint with a ref: the ref"),
        ],
    )
    def test_follows_the_precedence_record_ref_footprint_annotation_default(
        self, situation: dict[str, Any], expected: AccountKey
    ) -> None:
        assert choose(**situation) == expected

    @pytest.mark.parametrize("recorded", ["Nonsense/x", "RocketMQAccount/", "RocketMQAccount", "something"])
    def test_an_unreadable_record_is_refused_not_guessed(self, recorded: str) -> None:
        chosen = choose(recorded=recorded, ref=CLUSTER_REF, annotation="shared")

        assert isinstance(chosen, Refusal)
        assert chosen.reason == "AccountUnreadable"
        assert repr(recorded) in chosen.message


class TestWhetherAResourceMayUseAnAccount:
    def test_the_default_is_always_permitted(self) -> None:
        assert accounts.permitted(accounts.DEFAULT, None, "anywhere") is None

    def test_a_missing_namespaced_account_names_its_namespace_and_what_may_be_used(self) -> None:
        refusal = accounts.permitted(TEAM, None, "team-a")

        assert refusal is not None
        assert refusal.reason == "AccountNotFound"
        assert "RocketMQAccount team-account not found in namespace team-a" in refusal.message
        assert "a RocketMQAccount of its own namespace" in refusal.message
        assert "or a ClusterRocketMQAccount" in refusal.message

    def test_a_missing_cluster_account_is_not_found_in_the_cluster(self) -> None:
        refusal = accounts.permitted(SHARED, None, "team-a")

        assert refusal == Refusal("AccountNotFound", "ClusterRocketMQAccount shared not found in the cluster")

    @pytest.mark.parametrize(
        ("allowed", "namespace", "allowed_in"),
        [
            pytest.param(None, "team-a", True, id="unset: every namespace"),
            pytest.param(("team-a", "team-b"), "team-b", True, id="a listed namespace"),
            pytest.param(("team-a",), "team-c", False, id="another namespace"),
            pytest.param((), "team-a", False, id="an empty list: none"),
        ],
    )
    def test_a_cluster_account_enforces_its_allowed_namespaces(
        self, allowed: tuple[str, ...] | None, namespace: str, allowed_in: bool
    ) -> None:
        refusal = accounts.permitted(SHARED, AccountFacts(SHARED, allowed), namespace)

        if allowed_in:
            assert refusal is None
        else:
            assert refusal is not None
            assert refusal.reason == "AccountNotPermitted"
            assert f"does not allow namespace {namespace}" in refusal.message
            assert "spec.allowedNamespaces" in refusal.message

    def test_an_existing_namespaced_account_is_permitted(self) -> None:
        assert accounts.permitted(TEAM, AccountFacts(TEAM), "team-a") is None


def secret(**values: str) -> dict[str, SecretStr]:
    return {key: SecretStr(value) for key, value in values.items()}


KEYS = CredentialKeys()
VALUES = ("AK-VALUE-123", "SK-VALUE-456", "STS-VALUE-789", "TOKEN-VALUE-000")


class TestWhatAnAccountsSecretHolds:
    def test_ak_sk(self) -> None:
        found = accounts.credentials_from("ns/creds", secret(accessKey="ak1", secretKey="sk1"), KEYS)

        assert isinstance(found, AkSk)
        assert (found.access_key.get_secret_value(), found.secret_key.get_secret_value()) == ("ak1", "sk1")
        assert found.security_token is None
        assert found.description == "AK/SK"

    def test_ak_sk_with_a_security_token(self) -> None:
        values = secret(accessKey="ak1", secretKey="sk1", securityToken="sts", authToken="tok")
        found = accounts.credentials_from("ns/creds", values, KEYS)

        assert isinstance(found, AkSk)
        assert found.security_token is not None and found.security_token.get_secret_value() == "sts"
        assert found.description == "AK/SK with security token"

    def test_a_token_alone(self) -> None:
        found = accounts.credentials_from("ns/creds", secret(authToken="tok"), KEYS)

        assert isinstance(found, Token)
        assert found.token.get_secret_value() == "tok"
        assert found.description == "token"

    def test_ak_sk_win_over_a_token(self) -> None:
        found = accounts.credentials_from("ns/creds", secret(accessKey="a", secretKey="s", authToken="t"), KEYS)

        assert isinstance(found, AkSk)

    @pytest.mark.parametrize(
        ("values", "have", "missing"),
        [
            pytest.param({"accessKey": "a"}, "accessKey", "secretKey", id="an access key alone"),
            pytest.param({"secretKey": "s", "authToken": "t"}, "secretKey", "accessKey", id="no token fallback"),
        ],
    )
    def test_one_half_of_a_pair_is_incomplete_and_names_both_keys(
        self, values: dict[str, str], have: str, missing: str
    ) -> None:
        found = accounts.credentials_from("ns/creds", secret(**values), KEYS)

        assert found == Refusal("CredentialsIncomplete", f"Secret ns/creds has {have!r} but no {missing!r}")

    def test_nothing_is_missing_and_names_the_keys_looked_for(self) -> None:
        found = accounts.credentials_from("ns/creds", secret(unrelated="x"), KEYS)

        assert isinstance(found, Refusal)
        assert found.reason == "CredentialsMissing"
        for key in ("'accessKey'", "'secretKey'", "'authToken'", "spec.credentials.keys", "ns/creds"):
            assert key in found.message

    def test_empty_values_count_as_absent(self) -> None:
        assert accounts.credentials_from("s", secret(accessKey="", secretKey="", authToken="t"), KEYS) == Token(
            SecretStr("t")
        )
        empty_sk = accounts.credentials_from("s", secret(accessKey="a", secretKey=""), KEYS)
        assert isinstance(empty_sk, Refusal) and empty_sk.reason == "CredentialsIncomplete"
        nothing = accounts.credentials_from("s", secret(accessKey="", secretKey="", authToken=""), KEYS)
        assert isinstance(nothing, Refusal) and nothing.reason == "CredentialsMissing"

    def test_an_empty_security_token_is_no_security_token(self) -> None:
        found = accounts.credentials_from("s", secret(accessKey="a", secretKey="s", securityToken=""), KEYS)

        assert isinstance(found, AkSk) and found.security_token is None

    def test_custom_key_names_are_read_and_the_default_names_ignored(self) -> None:
        keys = CredentialKeys(access_key="AK", secret_key="SK", security_token="STS", auth_token="TOKEN")
        found = accounts.credentials_from("s", secret(AK="a", SK="s", STS="t"), keys)
        assert isinstance(found, AkSk) and found.description == "AK/SK with security token"

        default_names = accounts.credentials_from("s", secret(accessKey="a", secretKey="s"), keys)
        assert isinstance(default_names, Refusal) and "'AK'" in default_names.message
        assert accounts.key_names(keys) == ("AK", "SK", "STS", "TOKEN")

    @pytest.mark.parametrize(
        "values",
        [
            {"accessKey": VALUES[0]},
            {"secretKey": VALUES[1], "securityToken": VALUES[2]},
            {"securityToken": VALUES[2]},
            {"other": VALUES[3]},
            {"accessKey": VALUES[0], "secretKey": "", "authToken": VALUES[3]},
        ],
    )
    def test_no_message_ever_holds_a_value(self, values: dict[str, str]) -> None:
        found = accounts.credentials_from("ns/creds", secret(**values), KEYS)

        assert isinstance(found, Refusal)
        for value in VALUES:
            assert value not in found.message

    def test_credentials_do_not_show_their_values(self) -> None:
        found = accounts.credentials_from("s", secret(accessKey=VALUES[0], secretKey=VALUES[1]), KEYS)

        assert VALUES[0] not in repr(found) and VALUES[1] not in repr(found)

    def test_the_secret_version_is_uid_slash_resource_version(self) -> None:
        assert accounts.secret_version("uid-1", "42") == "uid-1/42"


class TestWhoUsesAnAccount:
    def test_usage_is_sorted_deduplicated_and_counted_whole(self) -> None:
        found = accounts.usage(["b/x", "a/y", "b/x", "a/a"])

        assert (found.in_use, found.used_by) == (3, ["a/a", "a/y", "b/x"])

    def test_usage_shows_at_most_a_few_but_counts_them_all(self) -> None:
        users = [f"ns/i-{n:03d}" for n in range(USED_BY_SHOWN + 5)]
        found = accounts.usage(reversed(users))

        assert found.in_use == USED_BY_SHOWN + 5
        assert found.used_by == users[:USED_BY_SHOWN]

    def test_the_in_use_message_names_them_and_how_many_more(self) -> None:
        found = accounts.usage([f"ns/i-{n:03d}" for n in range(USED_BY_SHOWN + 3)])
        message = accounts.in_use_message("ClusterRocketMQAccount", "shared", found)

        assert message.startswith(f"ClusterRocketMQAccount shared is in use by {USED_BY_SHOWN + 3} RocketMQInstance(s)")
        assert "ns/i-000, ns/i-001" in message
        assert f"ns/i-{USED_BY_SHOWN - 1:03d} and 3 more;" in message
        assert f"ns/i-{USED_BY_SHOWN:03d}" not in message
        assert message.endswith("it is deleted once they are gone")

    def test_the_in_use_message_says_no_more_when_all_are_shown(self) -> None:
        message = accounts.in_use_message("RocketMQAccount", "a", accounts.usage(["ns/one", "ns/two"]))

        assert "by 2 RocketMQInstance(s): ns/one, ns/two;" in message
        assert "more" not in message


class TestARefusedResource:
    REFUSAL = Refusal("AccountNotFound", "ClusterRocketMQAccount shared not found in the cluster")

    def test_is_stalled_with_the_refusals_reason_and_generation(self) -> None:
        patch = accounts.refused(None, 7, self.REFUSAL, now=NOW)

        assert patch is not None
        assert patch["observedGeneration"] == 7
        by_type = {c["type"]: c for c in patch["conditions"]}
        assert {t: c["status"] for t, c in by_type.items()} == {
            "Ready": "False",
            "Reconciling": "False",
            "Stalled": "True",
        }
        assert {c["reason"] for c in by_type.values()} == {"AccountNotFound"}
        assert by_type["Stalled"]["message"] == self.REFUSAL.message
        assert {c["observedGeneration"] for c in by_type.values()} == {7}

    def test_without_a_generation_writes_none(self) -> None:
        patch = accounts.refused(None, None, self.REFUSAL, now=NOW)

        assert patch is not None and "observedGeneration" not in patch

    def test_writes_nothing_when_the_conditions_already_say_it(self) -> None:
        current = Verdict(ready=False, reason=self.REFUSAL.reason, message=self.REFUSAL.message, stalled=True)

        assert accounts.refused(current.conditions(generation=7, now="earlier"), 7, self.REFUSAL, now=NOW) is None

    def test_writes_when_the_reason_changed(self) -> None:
        current = Verdict(ready=True, reason="Ready", message="fine").conditions(generation=7, now="earlier")

        patch = accounts.refused(current, 7, self.REFUSAL, now=NOW)

        assert patch is not None
        assert {c["reason"] for c in patch["conditions"]} == {"AccountNotFound"}


class TestTheAccountOfAnInstanceBody:
    @pytest.mark.parametrize(
        ("spec", "status", "expected"),
        [
            pytest.param({}, {}, None, id="neither: decided on its first pass"),
            pytest.param({}, {"account": "default"}, accounts.DEFAULT, id="recorded default"),
            pytest.param(
                {"accountRef": {"kind": "ClusterRocketMQAccount", "name": "shared"}},
                {"account": "RocketMQAccount/team-account"},
                TEAM,
                id="the record wins over the ref",
            ),
            pytest.param({"accountRef": {"kind": "RocketMQAccount", "name": "team-account"}}, {}, TEAM, id="the ref"),
            pytest.param({"accountRef": {"kind": "Nonsense", "name": "x"}}, {}, None, id="an invalid ref"),
            pytest.param({"accountRef": "shared"}, {}, None, id="a ref that is no object"),
            pytest.param({}, {"account": "Nonsense/x"}, None, id="an unreadable record"),
            pytest.param({}, {"account": ""}, None, id="an empty record"),
        ],
    )
    def test_is_the_record_else_the_ref(
        self, spec: dict[str, Any], status: dict[str, Any], expected: AccountKey | None
    ) -> None:
        assert accounts.instance_key("team-a", spec, status) == expected


class TestAnAccountKey:
    @pytest.mark.parametrize(
        ("key", "as_str", "as_recorded"),
        [
            (accounts.DEFAULT, "default", "default"),
            (TEAM, "RocketMQAccount/team-a/team-account", "RocketMQAccount/team-account"),
            (SHARED, "ClusterRocketMQAccount/shared", "ClusterRocketMQAccount/shared"),
        ],
    )
    def test_reads_as_the_metrics_label_and_is_recorded_without_its_namespace(
        self, key: AccountKey, as_str: str, as_recorded: str
    ) -> None:
        assert (str(key), key.recorded()) == (as_str, as_recorded)

    @pytest.mark.parametrize("key", [accounts.DEFAULT, TEAM, SHARED])
    def test_what_is_recorded_reads_back_as_the_same_key(self, key: AccountKey) -> None:
        assert accounts.from_recorded("team-a", key.recorded()) == key

    def test_only_the_default_is_default(self) -> None:
        assert accounts.DEFAULT.is_default
        assert not TEAM.is_default and not SHARED.is_default

    def test_a_recorded_namespaced_account_is_of_the_resources_own_namespace(self) -> None:
        assert accounts.from_recorded("team-b", "RocketMQAccount/x") == accounts.namespaced("team-b", "x")
