"""Every operator setting is a chart value with the code's default, and bad values are refused by name."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from rocketmq_operator.core.settings import OperatorSettings, SettingsError, env_name, from_env

from .kit import CHART, Helm, find, plain_env

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
# Secrets never go through `settings` (they would land in the release history and the pod spec in clear).
CREDENTIALS = {
    "access_key": "accessKey",
    "secret_key": "secretKey",
    "security_token": "securityToken",
    "auth_token": "authToken",
}
# Settings the chart derives instead of taking as `settings` values: each goes with an RBAC rule.
DERIVED = {
    # The release namespace (fieldRef), where the Role for ClusterRocketMQAccounts' Secrets is.
    "operator_namespace": "DMS_OPERATOR_NAMESPACE",
    # accounts.namespaced, default false unlike the operator: it grants get on Secrets in every served namespace.
    "namespaced_accounts": "DMS_NAMESPACED_ACCOUNTS",
}
NOT_VALUES = CREDENTIALS.keys() | DERIVED.keys()


def camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def test_every_operator_setting_is_a_value_or_a_credential() -> None:
    fields = set(OperatorSettings.model_fields)
    assert {camel(f) for f in fields - NOT_VALUES} == set(VALUES["settings"]), (
        "chart settings and OperatorSettings differ: add the new setting to values.yaml and values.schema.json"
    )
    assert set(CREDENTIALS.values()) <= set(VALUES["credentials"]["keys"])
    assert set(SCHEMA["properties"]["settings"]["properties"]) == set(VALUES["settings"])


@pytest.mark.parametrize("field", sorted(set(OperatorSettings.model_fields) - NOT_VALUES))
def test_each_chart_default_is_the_code_default(field: str) -> None:
    info = OperatorSettings.model_fields[field]
    chart_value = VALUES["settings"][camel(field)]
    if info.is_required():
        # Required by the operator, so no default: the chart leaves it empty (NOTES.txt warns).
        assert chart_value == ""
        return
    default = info.default
    if default is None:
        assert chart_value == "", "unset in the code: unset (empty, not passed) in the chart"
    elif hasattr(default, "value"):  # enums: the chart holds the value the environment variable would
        assert chart_value == default.value
    else:
        assert chart_value == default
        assert type(chart_value) is type(default), f"{field}: {chart_value!r} vs {default!r}"


@pytest.mark.parametrize("field", sorted(set(OperatorSettings.model_fields) - NOT_VALUES))
def test_each_schema_bound_is_the_code_bound(field: str) -> None:
    code = OperatorSettings.model_json_schema()["properties"][field]
    chart = SCHEMA["properties"]["settings"]["properties"][camel(field)]
    for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "maxLength"):
        assert chart.get(bound) == code.get(bound), f"{field}: {bound}"
    ref = code.get("$ref")
    if ref:
        enum = OperatorSettings.model_json_schema()["$defs"][ref.rsplit("/", 1)[-1]]["enum"]
        assert {str(v).lower() for v in chart["enum"]} == {str(v).lower() for v in enum}
    if code.get("pattern"):
        # The chart's pattern also allows empty (the default renders); otherwise the same rule.
        assert chart["pattern"].replace("{0,", "{1,") == code["pattern"]


def test_rendered_environment_is_accepted_by_the_operator_and_equals_its_defaults(helm: Helm) -> None:
    env = plain_env(find(helm.template({"settings": {"projectId": "p1", "region": "cn-north-4"}}), "Deployment"))
    dms = {k: v for k, v in env.items() if k.startswith("DMS_")}
    parsed = from_env({**dms, "DMS_AUTH_TOKEN": "t"})
    # The chart's one deliberate difference: RocketMQAccounts off (accounts.namespaced, least privilege).
    baseline = from_env(
        {"DMS_PROJECT_ID": "p1", "DMS_REGION": "cn-north-4", "DMS_AUTH_TOKEN": "t", "DMS_NAMESPACED_ACCOUNTS": "false"}
    )
    assert parsed == baseline
    assert set(dms) == {env_name(f) for f in OperatorSettings.model_fields} - {env_name(f) for f in CREDENTIALS} - {
        "DMS_ENDPOINT",
        "DMS_CA_FILE",
        "DMS_CLUSTER_ID",
        "DMS_OPERATOR_NAMESPACE",  # from the pod's namespace (fieldRef), not a plain value
    }, "empty values are not passed; everything else is"


@pytest.mark.parametrize("namespaced", [True, False])
def test_derived_settings_reach_the_operator_as_it_reads_them(helm: Helm, namespaced: bool) -> None:
    deployment = find(helm.template({"accounts": {"namespaced": namespaced}}, namespace="mq-ops"), "Deployment")
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert set(DERIVED.values()) <= set(env)
    assert env["DMS_OPERATOR_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # What the kubelet would resolve it to, in the release namespace.
    environ = {"DMS_OPERATOR_NAMESPACE": "mq-ops", "DMS_NAMESPACED_ACCOUNTS": env["DMS_NAMESPACED_ACCOUNTS"]["value"]}
    settings = from_env({**environ, "DMS_PROJECT_ID": "p", "DMS_REGION": "cn-north-4", "DMS_AUTH_TOKEN": "t"})
    assert settings.operator_namespace == "mq-ops"
    assert settings.namespaced_accounts is namespaced


def test_rendered_environment_carries_every_changed_value(helm: Helm) -> None:
    changed = {
        "endpoint": "https://dms.example:8443",
        "projectId": "p1",
        "batchMaxSize": 1000,
        "batchWindowSeconds": 0.25,
        "pollIntervalSeconds": 86400,
        "rateLimitBurst": 10000,
        "rateLimitRps": 0.5,
        "sweepProjectWide": "report",
        "defaultDeletionPolicy": "Orphan",
        "clusterId": "prod-eu",
        "maxRetries": 0,
        "deleteConfirmWaitSeconds": 0,
        "observeStrategy": "show",
    }
    env = plain_env(find(helm.template({"settings": changed}), "Deployment"))
    settings = from_env({**{k: v for k, v in env.items() if k.startswith("DMS_")}, "DMS_AUTH_TOKEN": "t"})
    dumped = settings.model_dump(mode="json")
    for key, value in changed.items():
        field = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
        if isinstance(value, int | float):
            assert float(dumped[field]) == float(value), key
        else:
            assert str(dumped[field]).lower() == str(value).lower(), key


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"settings": {"batchMaxSize": 0}}, "/settings/batchMaxSize"),
    ({"settings": {"batchMaxSize": 1001}}, "/settings/batchMaxSize"),
    ({"settings": {"pollIntervalSeconds": 0}}, "/settings/pollIntervalSeconds"),
    ({"settings": {"deleteConfirmWaitSeconds": 601}}, "/settings/deleteConfirmWaitSeconds"),
    ({"settings": {"defaultDeletionPolicy": "Retain"}}, "/settings/defaultDeletionPolicy"),
    ({"settings": {"sweepProjectWide": "yes"}}, "/settings/sweepProjectWide"),
    ({"settings": {"endpoint": "dms.example.com"}}, "/settings/endpoint"),
    ({"settings": {"projectId": "has space"}}, "/settings/projectId"),
    ({"settings": {"maxRetries": "4"}}, "/settings/maxRetries"),
    ({"settings": {"pollIntervalSecs": 5}}, "'pollIntervalSecs'"),
    ({"replicaCount": -1}, "/replicaCount"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
    ({"probes": {"port": 70000}}, "/probes/port"),
    ({"logFormat": "xml"}, "/logFormat"),
    ({"credentials": {"create": True}}, "/credentials"),
    ({"credentials": {"create": True, "accessKey": "AK"}}, "/credentials/secretKey"),
    ({"credentials": {"create": True, "existingSecret": "x", "authToken": "t"}}, "/credentials/existingSecret"),
    ({"extraEnv": [{"name": "DMS_BATCH_MAX_SIZE", "value": "5"}]}, "/extraEnv/0/name"),
    ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "/metrics/serviceMonitor/interval"),
    ({"uninstallGuard": {"enable": False}}, "'enable'"),
    ({"accounts": {"namespaced": "yes"}}, "/accounts/namespaced"),
    ({"accounts": {"clusterSecretNames": ["Team_A"]}}, "/accounts/clusterSecretNames/0"),
    ({"accounts": {"clusterSecretName": ["a"]}}, "'clusterSecretName'"),
    (
        {"accounts": {"defaultClusterAccount": {"create": True, "region": "cn-north-4", "projectId": "p"}}},
        "/accounts/defaultClusterAccount/secretName",
    ),
    (
        {"accounts": {"defaultClusterAccount": {"create": True, "region": "cn-north-4", "secretName": "s"}}},
        "/accounts/defaultClusterAccount/projectId",
    ),
    ({"accounts": {"defaultClusterAccount": {"region": "North"}}}, "/accounts/defaultClusterAccount/region"),
    ({"accounts": {"defaultClusterAccount": {"rateLimit": {"rps": 5}}}}, "/accounts/defaultClusterAccount/rateLimit"),
    (
        {"accounts": {"defaultClusterAccount": {"allowedNamespaces": ["Team_A"]}}},
        "/accounts/defaultClusterAccount/allowedNamespaces/0",
    ),
]


@pytest.mark.parametrize(("values", "named"), BAD_VALUES, ids=[n for _, n in BAD_VALUES])
def test_bad_values_are_refused_naming_the_field(helm: Helm, values: dict[str, Any], named: str) -> None:
    error = helm.template_error(values)
    assert "don't meet the specifications of the schema" in error
    assert named in error, error


def test_good_values_of_every_kind_are_accepted(helm: Helm) -> None:
    helm.template(
        {
            "settings": {"sweepProjectWide": True, "endpoint": "http://127.0.0.1:8443", "projectId": "0a1b_c-d"},
            "credentials": {"create": True, "accessKey": "AK", "secretKey": "SK", "securityToken": "ST"},
            "watchNamespaces": ["team-a"],
            "metrics": {"serviceMonitor": {"enabled": True, "interval": "15s", "scrapeTimeout": "10s"}},
        }
    )


@pytest.mark.parametrize(
    "where", [{}, {"endpoint": "https://dms.example", "region": "cn-north-4"}], ids=["neither", "both"]
)
def test_the_default_account_needs_exactly_one_of_endpoint_and_region(helm: Helm, where: dict[str, str]) -> None:
    # The CRD's CEL rule would refuse it at install; the chart says so before anything is applied.
    account = {"create": True, "projectId": "p", "secretName": "s", **where}
    error = helm.template_error({"accounts": {"defaultClusterAccount": account}})
    assert "accounts.defaultClusterAccount" in error and "endpoint" in error and "region" in error, error


CONTRADICTIONS: list[tuple[dict[str, Any], list[str]]] = [
    (
        {"settings": {"batchWindowSeconds": 10.0, "batchMaxWaitSeconds": 5.0}},
        ["settings.batchMaxWaitSeconds", "settings.batchWindowSeconds"],
    ),
    (
        {"settings": {"caFile": "/etc/dms-ca/ca.pem", "insecureSkipTlsVerify": True}},
        ["settings.caFile", "settings.insecureSkipTlsVerify"],
    ),
]


@pytest.mark.parametrize(("values", "named"), CONTRADICTIONS, ids=["batch-wait", "tls"])
def test_values_that_contradict_each_other_are_refused_naming_both(
    helm: Helm, values: dict[str, Any], named: list[str]
) -> None:
    error = helm.template_error(values)
    for field in named:
        assert field in error, error
    # The operator refuses the same combination at start-up: the chart only says so before a crash loop.
    environ = {env_name(re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower()): str(v) for k, v in values["settings"].items()}
    # The message names both variables, in whichever order.
    with pytest.raises(SettingsError, match="".join(f"(?=.*{re.escape(name)})" for name in environ)):
        from_env({**environ, "DMS_PROJECT_ID": "p", "DMS_REGION": "cn-north-4", "DMS_AUTH_TOKEN": "t"})
