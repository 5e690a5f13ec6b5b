"""The chart lints clean and renders what each combination of values asks for."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from rocketmq_operator.core.account_resource import ClusterRocketMQAccount

from .kit import ACCOUNT_PLURALS, CHART, CR_PLURALS, Helm, container, find, kinds, plain_env

FULLNAME = "rmq-rocketmq-operator"


def test_helm_lint_is_clean_with_defaults_and_with_everything_turned_on(helm: Helm) -> None:
    for values in ({}, EVERYTHING):
        args = ["lint", "--strict", str(CHART)]
        if values:
            args += ["--values", str(helm.values_file(values))]
        result = helm.run(*args)
        output = result.stdout + result.stderr
        assert "[WARNING]" not in output and "[ERROR]" not in output, output
        assert "0 chart(s) failed" in output


def test_defaults_render_one_cluster_wide_replica_with_recreate_and_no_peering(helm: Helm) -> None:
    docs = helm.template()
    assert kinds(docs) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Job",
        # The release namespace's: ClusterRocketMQAccounts' Secrets (get by name).
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    deployment = find(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    args = container(deployment)["args"]
    assert args[0] == "run"
    assert not [a for a in args if a.startswith(("--peering", "--priority", "--namespace"))]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == FULLNAME
    assert container(deployment)["image"] == "rocketmq-operator:0.1.0"


def test_both_probes_ask_kopfs_liveness_endpoint(helm: Helm) -> None:
    operator = container(find(helm.template({"probes": {"port": 18080}}), "Deployment"))
    assert "--liveness=http://0.0.0.0:18080/healthz" in operator["args"]
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert ports["health"] == 18080
    for probe in ("livenessProbe", "readinessProbe"):
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_every_pod_runs_restricted(helm: Helm, kind: str) -> None:
    workload = find(helm.template(), kind)
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        security = c["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}


def test_more_than_one_replica_turns_on_peering_with_its_object_and_rbac(helm: Helm) -> None:
    docs = helm.template({"replicaCount": 3})
    args = container(find(docs, "Deployment"))["args"]
    assert f"--peering={FULLNAME}" in args
    assert "--priority=random" in args, "equal Kopf priorities would pause every replica"
    assert "--peering-lifetime=60" in args, "Kopf's own default, said where an operator can change it"
    assert find(docs, "ClusterKopfPeering")["metadata"]["name"] == FULLNAME
    kopf_rules = [r for r in find(docs, "ClusterRole")["rules"] if r["apiGroups"] == ["kopf.dev"]]
    assert kopf_rules == [
        {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": ["list", "watch"]},
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["clusterkopfpeerings"],
            "resourceNames": [FULLNAME],
            "verbs": ["patch"],
        },
    ]


def test_peering_can_be_asked_for_with_one_replica_under_another_name(helm: Helm) -> None:
    docs = helm.template({"peering": {"enabled": True, "name": "rocketmq-ha", "lifetimeSeconds": 15}})
    args = container(find(docs, "Deployment"))["args"]
    assert "--peering=rocketmq-ha" in args
    assert "--peering-lifetime=15" in args, "a shorter wait before a standby takes over from a killed replica"
    assert find(docs, "ClusterKopfPeering")["metadata"]["name"] == "rocketmq-ha"


def test_listed_namespaces_get_a_role_each_and_the_cluster_role_keeps_only_cluster_scoped_reads(helm: Helm) -> None:
    docs = helm.template({"watchNamespaces": ["team-a", "team-b"], "replicaCount": 2})
    args = container(find(docs, "Deployment"))["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]
    cluster_rules = find(docs, "ClusterRole")["rules"]
    assert {(r["apiGroups"][0], r["resources"][0]) for r in cluster_rules} == {
        ("", "namespaces"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        # Cluster-scoped: Kopf watches them cluster-wide whatever namespaces it serves.
        ("dms.rocketmq-operator.io", "clusterrocketmqaccounts"),
        ("dms.rocketmq-operator.io", "clusterrocketmqaccounts/status"),
    }
    roles = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == FULLNAME]
    bindings = [d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == FULLNAME]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for role in roles:
        resources = {res for rule in role["rules"] for res in rule["resources"]}
        assert resources == {
            *CR_PLURALS,
            *(f"{plural}/status" for plural in CR_PLURALS),
            "rocketmqaccounts",
            "rocketmqaccounts/status",
            "events",
            "secrets",
            "kopfpeerings",
        }
    peerings = [d for d in docs if d["kind"] == "KopfPeering"]
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert not [d for d in docs if d["kind"] == "ClusterKopfPeering"]
    guard = container(find(docs, "Job"))
    assert {"name": "WATCH_NAMESPACES", "value": "team-a,team-b"} in guard["env"]


SECRET_RULE = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update", "delete"]}


@pytest.mark.parametrize("values", [{}, {"watchNamespaces": ["team-a"]}], ids=["cluster-role", "role"])
def test_connection_secrets_get_one_rule_without_list_or_watch_and_none_when_turned_off(
    helm: Helm, values: dict[str, Any]
) -> None:
    kind = "Role" if values else "ClusterRole"
    on = helm.template(values)
    assert [r for r in find(on, kind, FULLNAME)["rules"] if "secrets" in r["resources"]] == [SECRET_RULE]
    assert {"name": "DMS_CONNECTION_SECRETS", "value": "true"} in container(find(on, "Deployment"))["env"]
    off = helm.template({**values, "settings": {"connectionSecrets": False}})
    for doc in off:
        if doc["kind"] in ("Role", "ClusterRole") and doc["metadata"]["name"] == FULLNAME:
            assert not [r for r in doc["rules"] if "secrets" in r["resources"]]
    # The cluster accounts' rule is not this switch's: it stays (get, and patch for the Secret's finalizer).
    assert _secret_rules(off, CLUSTER_ACCOUNTS) == [ACCOUNT_SECRET_RULE]
    assert {"name": "DMS_CONNECTION_SECRETS", "value": "false"} in container(find(off, "Deployment"))["env"]


CLUSTER_ACCOUNTS = f"{FULLNAME}-cluster-accounts"
ACCOUNT_SECRET_RULE = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "patch"]}


def _secret_rules(docs: list[dict[str, Any]], name: str, kind: str = "Role") -> list[dict[str, Any]]:
    return [r for r in find(docs, kind, name)["rules"] if "secrets" in r["resources"]]


def _env(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(e for e in container(find(docs, "Deployment"))["env"] if e["name"] == name)


def test_by_default_only_the_release_namespace_has_a_get_secrets_rule_for_accounts(helm: Helm) -> None:
    docs = helm.template({"settings": {"connectionSecrets": False}})
    # No Secret rule in the served namespaces: RocketMQAccounts are off, and the operator says so.
    assert not [r for r in find(docs, "ClusterRole")["rules"] if "secrets" in r["resources"]]
    assert _env(docs, "DMS_NAMESPACED_ACCOUNTS") == {"name": "DMS_NAMESPACED_ACCOUNTS", "value": "false"}
    # ClusterRocketMQAccounts' Secrets: get, in the release namespace, where the operator looks for them.
    role = find(docs, "Role", CLUSTER_ACCOUNTS)
    assert role["metadata"]["namespace"] == "rmq-system"
    assert role["rules"] == [ACCOUNT_SECRET_RULE], "no Events rule: the ClusterRole has it without watchNamespaces"
    binding = find(docs, "RoleBinding", CLUSTER_ACCOUNTS)
    assert binding["metadata"]["namespace"] == "rmq-system"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": CLUSTER_ACCOUNTS}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": "rmq-system"}]
    assert _env(docs, "DMS_OPERATOR_NAMESPACE") == {
        "name": "DMS_OPERATOR_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    }


def test_cluster_secret_names_restrict_the_release_namespace_rule_to_those_names(helm: Helm) -> None:
    docs = helm.template({"accounts": {"clusterSecretNames": ["team-a-dms", "team-b-dms"]}})
    assert _secret_rules(docs, CLUSTER_ACCOUNTS) == [
        {**ACCOUNT_SECRET_RULE, "resourceNames": ["team-a-dms", "team-b-dms"]}
    ]


@pytest.mark.parametrize("connection_secrets", [True, False], ids=["with-connection-secrets", "alone"])
def test_namespaced_accounts_get_their_own_get_secrets_rule_cluster_wide(helm: Helm, connection_secrets: bool) -> None:
    docs = helm.template({"accounts": {"namespaced": True}, "settings": {"connectionSecrets": connection_secrets}})
    rules = _secret_rules(docs, FULLNAME, "ClusterRole")
    # Its own rule, so that connection Secrets off leaves it, and it never widens theirs.
    assert rules == ([ACCOUNT_SECRET_RULE, SECRET_RULE] if connection_secrets else [ACCOUNT_SECRET_RULE])
    assert _env(docs, "DMS_NAMESPACED_ACCOUNTS") == {"name": "DMS_NAMESPACED_ACCOUNTS", "value": "true"}
    assert _secret_rules(docs, CLUSTER_ACCOUNTS) == [ACCOUNT_SECRET_RULE]


def test_namespaced_accounts_with_listed_namespaces_get_secrets_in_those_only(helm: Helm) -> None:
    docs = helm.template(
        {
            "watchNamespaces": ["team-a", "team-b"],
            "accounts": {"namespaced": True},
            "settings": {"connectionSecrets": False},
        }
    )
    assert not [r for r in find(docs, "ClusterRole")["rules"] if "secrets" in r["resources"]]
    roles = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == FULLNAME]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert [r for r in role["rules"] if "secrets" in r["resources"]] == [ACCOUNT_SECRET_RULE]
    # Kopf posts the Events of cluster-scoped objects in its own namespace, which may not be a listed one.
    assert find(docs, "Role", CLUSTER_ACCOUNTS)["rules"] == [
        ACCOUNT_SECRET_RULE,
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]


def test_the_release_namespace_may_also_be_a_listed_one(helm: Helm) -> None:
    docs = helm.template({"watchNamespaces": ["rmq-system"]})
    in_release = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Role")
    assert in_release == [FULLNAME, CLUSTER_ACCOUNTS]


DEFAULT_ACCOUNT: dict[str, Any] = {
    "create": True,
    "region": "cn-north-4",
    "projectId": "0a1b2c",
    "secretName": "dms-default",
    "keys": {"accessKey": "ak", "secretKey": "sk"},
    "caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "rateLimit": {"rps": 0.5, "burst": 3},
    "clusterId": "prod-eu",
    "allowedNamespaces": ["payments", "orders"],
}
ACCOUNT_CRD = CHART / "crds" / "clusterrocketmqaccounts.dms.rocketmq-operator.io.yaml"


def test_no_account_object_unless_asked_for(helm: Helm) -> None:
    assert "ClusterRocketMQAccount" not in kinds(helm.template())


def test_the_default_cluster_account_is_a_valid_object_with_every_value(helm: Helm) -> None:
    docs = helm.template({"accounts": {"defaultClusterAccount": DEFAULT_ACCOUNT}})
    account = find(docs, "ClusterRocketMQAccount", FULLNAME)
    assert account["apiVersion"] == "dms.rocketmq-operator.io/v1alpha1"
    assert "namespace" not in account["metadata"], "cluster-scoped"
    assert account["spec"] == {
        "region": "cn-north-4",
        "projectId": "0a1b2c",
        "credentials": {
            "secretName": "dms-default",
            "keys": {"accessKey": "ak", "secretKey": "sk", "securityToken": "securityToken", "authToken": "authToken"},
        },
        "caBundle": DEFAULT_ACCOUNT["caBundle"],
        "rateLimit": {"rps": 0.5, "burst": 3},
        "clusterId": "prod-eu",
        "allowedNamespaces": ["payments", "orders"],
    }
    # The model the CRD is generated from refuses unknown fields and bad values; the CRD's CEL rule
    # (exactly one of endpoint and region) is not in the model, so it is asked here.
    parsed = ClusterRocketMQAccount.model_validate(account)
    assert parsed.spec.url == "https://dms.cn-north-4.myhuaweicloud.com"
    crd = yaml.safe_load(ACCOUNT_CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(account["spec"]) <= set(schema["properties"])
    assert set(schema["required"]) <= set(account["spec"])
    assert crd["spec"]["scope"] == "Cluster" and crd["spec"]["names"]["kind"] == account["kind"]


def test_a_minimal_default_account_leaves_the_operators_defaults_to_it(helm: Helm) -> None:
    values = {
        "name": "shared",
        "endpoint": "https://dms.internal.example:8443",
        "projectId": "p1",
        "secretName": "dms-shared",
        "create": True,
    }
    account = find(helm.template({"accounts": {"defaultClusterAccount": values}}), "ClusterRocketMQAccount", "shared")
    # No allowedNamespaces: every namespace may opt in (an empty list would allow none).
    assert set(account["spec"]) == {"endpoint", "projectId", "credentials"}
    assert ClusterRocketMQAccount.model_validate(account).spec.url == "https://dms.internal.example:8443"


def test_the_default_accounts_secret_joins_a_restricted_rule_and_leaves_an_open_one_open(helm: Helm) -> None:
    restricted = helm.template(
        {"accounts": {"defaultClusterAccount": DEFAULT_ACCOUNT, "clusterSecretNames": ["team-b-dms", "dms-default"]}}
    )
    assert _secret_rules(restricted, CLUSTER_ACCOUNTS) == [
        {**ACCOUNT_SECRET_RULE, "resourceNames": ["team-b-dms", "dms-default"]}
    ]
    added = helm.template({"accounts": {"defaultClusterAccount": DEFAULT_ACCOUNT, "clusterSecretNames": ["team-b"]}})
    assert _secret_rules(added, CLUSTER_ACCOUNTS) == [
        {**ACCOUNT_SECRET_RULE, "resourceNames": ["team-b", "dms-default"]}
    ]
    open_rule = helm.template({"accounts": {"defaultClusterAccount": DEFAULT_ACCOUNT}})
    assert _secret_rules(open_rule, CLUSTER_ACCOUNTS) == [ACCOUNT_SECRET_RULE]


def _verbs(role: dict[str, Any], resource: str) -> set[str]:
    return {
        verb
        for rule in role["rules"]
        if rule["apiGroups"] == ["dms.rocketmq-operator.io"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize("values", [{}, {"watchNamespaces": ["team-a"]}], ids=["cluster-role", "role"])
def test_topics_groups_users_and_accounts_get_exactly_what_instances_get(helm: Helm, values: dict[str, Any]) -> None:
    docs = helm.template(values)
    role = find(docs, "Role", FULLNAME) if values else find(docs, "ClusterRole")
    cluster_role = find(docs, "ClusterRole")
    # Kopf serves every kind the same way: watch, finalizer and progress patches, status patches.
    # An account's finalizer is held while instances use it: patch, as for the others (never update).
    for plural in (*CR_PLURALS, "rocketmqaccounts"):
        assert _verbs(role, plural) == {"list", "watch", "patch"}, plural
        assert _verbs(role, f"{plural}/status") == {"patch"}, plural
    # Cluster-scoped, so always in the ClusterRole, with or without watchNamespaces.
    assert _verbs(cluster_role, "clusterrocketmqaccounts") == {"list", "watch", "patch"}
    assert _verbs(cluster_role, "clusterrocketmqaccounts/status") == {"patch"}
    granted = {res for rule in (*role["rules"], *cluster_role["rules"]) for res in rule["resources"]}
    assert set(ACCOUNT_PLURALS) <= granted


def _credential_refs(docs: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    refs = {}
    for entry in container(find(docs, "Deployment"))["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["optional"] is True, "AK/SK or a token: any one key may be absent"
            refs[entry["name"]] = (ref["name"], ref["key"])
    return refs


def test_credentials_come_from_an_existing_secret_with_its_own_key_names(helm: Helm) -> None:
    docs = helm.template(
        {"credentials": {"existingSecret": "dms-creds", "keys": {"accessKey": "ak", "secretKey": "sk"}}}
    )
    assert "Secret" not in kinds(docs)
    assert _credential_refs(docs) == {
        "DMS_ACCESS_KEY": ("dms-creds", "ak"),
        "DMS_SECRET_KEY": ("dms-creds", "sk"),
        "DMS_SECURITY_TOKEN": ("dms-creds", "securityToken"),
        "DMS_AUTH_TOKEN": ("dms-creds", "authToken"),
    }
    assert not [k for k in plain_env(find(docs, "Deployment")) if k.endswith(("_KEY", "_TOKEN"))]


def test_a_created_secret_holds_only_the_given_credentials_and_restarts_the_pod_when_they_change(helm: Helm) -> None:
    first = helm.template({"credentials": {"create": True, "accessKey": "AK1", "secretKey": "SK1"}})
    secret = find(first, "Secret", f"{FULLNAME}-credentials")
    assert secret["stringData"] == {"accessKey": "AK1", "secretKey": "SK1"}
    assert {name for name, _ in _credential_refs(first).values()} == {f"{FULLNAME}-credentials"}
    second = helm.template({"credentials": {"create": True, "accessKey": "AK1", "secretKey": "SK2"}})

    def checksum(docs: list[dict[str, Any]]) -> str:
        annotations: dict[str, str] = find(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return annotations["checksum/credentials"]

    assert checksum(first) != checksum(second)
    token = helm.template({"credentials": {"create": True, "authToken": "T"}})
    assert find(token, "Secret")["stringData"] == {"authToken": "T"}


def test_metrics_service_and_optional_service_monitor(helm: Helm) -> None:
    docs = helm.template({"metrics": {"port": 19090, "serviceMonitor": {"enabled": True, "labels": {"release": "p"}}}})
    service = find(docs, "Service", f"{FULLNAME}-metrics")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    deployment = find(docs, "Deployment")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert "--metrics-port=19090" in container(deployment)["args"]
    monitor = find(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "p"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert "Service" not in kinds(helm.template({"metrics": {"service": {"enabled": False}}}))
    assert "ServiceMonitor" not in kinds(helm.template())


EVERYTHING: dict[str, Any] = {
    "replicaCount": 2,
    "image": {"repository": "registry.example/rocketmq-operator", "tag": "1.2.3", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "pull"}],
    "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}, "limits": {"memory": "300Mi"}},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
            }
        }
    },
    "priorityClassName": "system-cluster-critical",
    "podAnnotations": {"team": "platform"},
    "podLabels": {"cost-center": "42"},
    "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
    "extraVolumes": [{"name": "ca", "configMap": {"name": "private-ca"}}],
    "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/dms-ca", "readOnly": True}],
    "settings": {"caFile": "/etc/dms-ca/ca.pem", "region": "cn-north-4", "projectId": "p1"},
    "credentials": {"existingSecret": "dms"},
    "metrics": {"serviceMonitor": {"enabled": True}},
    "verbose": True,
    "logFormat": "plain",
    "accounts": {
        "namespaced": True,
        "clusterSecretNames": ["dms-team-a"],
        "defaultClusterAccount": {"create": True, "region": "cn-north-4", "projectId": "p1", "secretName": "dms"},
    },
}


def test_scheduling_resources_and_extras_reach_the_pod(helm: Helm) -> None:
    docs = helm.template(EVERYTHING)
    deployment = find(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    operator = container(deployment)
    assert operator["image"] == "registry.example/rocketmq-operator:1.2.3"
    assert operator["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "pull"}]
    assert operator["resources"] == EVERYTHING["resources"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert pod[key] == EVERYTHING[key], key
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"team": "platform"}
    assert deployment["spec"]["template"]["metadata"]["labels"]["cost-center"] == "42"
    assert {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in operator["env"]
    assert {"name": "ca", "configMap": {"name": "private-ca"}} in pod["volumes"]
    assert {"name": "ca", "mountPath": "/etc/dms-ca", "readOnly": True} in operator["volumeMounts"]
    assert plain_env(deployment)["DMS_CA_FILE"] == "/etc/dms-ca/ca.pem"
    assert "--verbose" in operator["args"] and "--log-format=plain" in operator["args"]
    # The hook pod lands where the operator may run, and pulls the same image the same way.
    guard = find(docs, "Job")["spec"]["template"]["spec"]
    assert container(find(docs, "Job"))["image"] == operator["image"]
    for key in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets"):
        assert guard[key] == pod[key], key


def test_service_account_and_rbac_can_be_brought_by_the_user(helm: Helm) -> None:
    docs = helm.template({"serviceAccount": {"create": False, "name": "mine"}, "rbac": {"create": False}})
    assert not {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} & set(kinds(docs))
    assert find(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    assert find(docs, "Job")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"


def test_names_follow_fullname_override(helm: Helm) -> None:
    docs = helm.template({"fullnameOverride": "mq-op", "replicaCount": 2})
    assert {d["metadata"]["name"] for d in docs if d["kind"] in ("Deployment", "ClusterRole", "ServiceAccount")} == {
        "mq-op"
    }
    assert find(docs, "ClusterKopfPeering")["metadata"]["name"] == "mq-op"


def test_the_uninstall_guard_is_a_pre_delete_hook_that_no_operator_selector_picks_up(helm: Helm) -> None:
    docs = helm.template()
    job, script = find(docs, "Job"), find(docs, "ConfigMap")
    for hook in (job, script):
        assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    assert int(script["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    ), "the script must exist before the Job that mounts it"
    assert script["data"]["uninstall_guard.py"] == (CHART / "files" / "uninstall_guard.py").read_text().rstrip("\n")
    assert job["spec"]["backoffLimit"] == 0
    deployment = find(docs, "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= labels.items(), "the operator's ReplicaSet would adopt the hook's pod"
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == FULLNAME
    assert "ConfigMap" not in kinds(helm.template({"uninstallGuard": {"enabled": False}}))


def test_the_packaged_chart_ships_the_crds_the_health_check_and_the_hook_script(helm: Helm, tmp_path: Path) -> None:
    helm.run("package", str(CHART), "--destination", str(tmp_path))
    [package] = list(tmp_path.glob("rocketmq-operator-*.tgz"))
    with tarfile.open(package) as archive:
        names = set(archive.getnames())
    for shipped in (
        "crds/rocketmqinstances.dms.rocketmq-operator.io.yaml",
        "crds/rocketmqtopics.dms.rocketmq-operator.io.yaml",
        "crds/rocketmqconsumergroups.dms.rocketmq-operator.io.yaml",
        "crds/rocketmqusers.dms.rocketmq-operator.io.yaml",
        "crds/rocketmqaccounts.dms.rocketmq-operator.io.yaml",
        "crds/clusterrocketmqaccounts.dms.rocketmq-operator.io.yaml",
        "crds/kopf-peering.yaml",
        "health/rocketmqinstance.lua",
        "files/uninstall_guard.py",
        "values.schema.json",
        "README.md",
    ):
        assert f"rocketmq-operator/{shipped}" in names, shipped
    assert not [n for n in names if "__pycache__" in n]
