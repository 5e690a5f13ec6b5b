"""Every account's metrics in one exposition, each series labelled with its account (services.metrics)."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from rocketmq_operator.services.metrics import Metrics, registry_by_account

CALLS = "rocketmq_operator_cloud_api_calls"


def exposition(accounts: list[tuple[str, Metrics]]) -> dict[str, list[Sample]]:
    """The served text, parsed back: samples by family name (each family must appear once)."""
    text = generate_latest(registry_by_account(lambda: accounts)).decode()
    families: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"{family.name} exposed twice"
        families[family.name] = list(family.samples)
    return families


def two_accounts() -> tuple[Metrics, Metrics]:
    default, team = Metrics(), Metrics()
    default.record(operation="list", outcome="ok", seconds=0.1)
    default.record(operation="list", outcome="ok", seconds=0.1)
    team.record(operation="list", outcome="ok", seconds=0.2)
    team.record(operation="create", outcome="AuthFailed", seconds=0.3)
    default.queue_depth.set(4)
    team.queue_depth.set(7)
    return default, team


class TestMetricsByAccount:
    def test_each_metric_is_one_family_holding_every_accounts_series(self) -> None:
        default, team = two_accounts()
        families = exposition([("default", default), ("ClusterRocketMQAccount/shared", team)])

        calls = {
            (s.labels["account"], s.labels["operation"], s.labels["outcome"]): s.value
            for s in families[CALLS]
            if s.name == f"{CALLS}_total"
        }
        assert calls == {
            ("default", "list", "ok"): 2.0,
            ("ClusterRocketMQAccount/shared", "list", "ok"): 1.0,
            ("ClusterRocketMQAccount/shared", "create", "AuthFailed"): 1.0,
        }
        depth = {s.labels["account"]: s.value for s in families["rocketmq_operator_delete_queue_depth"]}
        assert depth == {"default": 4.0, "ClusterRocketMQAccount/shared": 7.0}

    def test_every_sample_carries_its_account(self) -> None:
        default, team = two_accounts()
        families = exposition([("default", default), ("RocketMQAccount/team-a/mine", team)])

        unlabelled = [s.name for samples in families.values() for s in samples if "account" not in s.labels]
        assert unlabelled == []
        accounts = {s.labels["account"] for samples in families.values() for s in samples}
        assert accounts == {"default", "RocketMQAccount/team-a/mine"}

    def test_histograms_keep_their_buckets_per_account(self) -> None:
        default, team = two_accounts()
        families = exposition([("default", default), ("other", team)])

        counts = {
            (s.labels["account"], s.labels["operation"]): s.value
            for s in families["rocketmq_operator_cloud_api_call_seconds"]
            if s.name.endswith("_count")
        }
        assert counts == {("default", "list"): 2.0, ("other", "list"): 1.0, ("other", "create"): 1.0}

    def test_an_account_that_goes_takes_its_series_with_it(self) -> None:
        default, team = two_accounts()
        accounts = [("default", default), ("ClusterRocketMQAccount/shared", team)]
        registry = registry_by_account(lambda: accounts)
        assert b'account="ClusterRocketMQAccount/shared"' in generate_latest(registry)

        accounts.pop()
        text = generate_latest(registry).decode()

        assert 'account="ClusterRocketMQAccount/shared"' not in text
        assert 'account="default"' in text

    def test_an_account_added_later_shows_up_without_a_new_registry(self) -> None:
        default, team = two_accounts()
        accounts = [("default", default)]
        registry = registry_by_account(lambda: accounts)
        assert b'account="late"' not in generate_latest(registry)

        accounts.append(("late", team))

        assert b'account="late"' in generate_latest(registry)
