"""helm install into the real API server; its ServiceAccount is enough for the operator, and no more.

The operator runs as a local process with the Deployment's own arguments and environment (kubelet-style
resolution of the chart's Secret) and a token of the chart's ServiceAccount from ``kubectl create token``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import SimulatorProcess
from e2e.support import wait_for
from instance_spec import SPEC
from kube_testenv import ControlPlane, ManagedProcess

from .kit import ACCOUNT_PLURALS, CR_PLURALS, GROUP, Helm, can_i, find, forbidden_lines, rocketmq_instance
from .release import Release, fast_values

pytestmark = [pytest.mark.controlplane, pytest.mark.e2e]


@pytest.fixture(scope="module")
def release(cluster_helm: Helm, control_plane: ControlPlane, simulator: SimulatorProcess) -> Iterator[Release]:
    installed = Release.install(cluster_helm, control_plane, fast_values(simulator), "rbac")
    try:
        yield installed
    finally:
        installed.uninstall_without_hooks()


@pytest.fixture(scope="module")
def as_operator(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return release.kubeconfig_as_operator(tmp_path_factory.mktemp("sa") / "operator.kubeconfig")


@pytest.fixture(scope="module")
def operator(release: Release, as_operator: Path, artifacts: Path) -> Iterator[ManagedProcess]:
    process = release.start_operator(as_operator, artifacts / "operator.log")
    try:
        yield process
    finally:
        process.stop()


# On 1.30 as well: helm checks the chart's kubeVersion (>=1.30.0-0) against the real server.
@pytest.mark.k8s_oldest
def test_helm_install_creates_the_crds_and_the_release(release: Release, control_plane: ControlPlane) -> None:
    status = json.loads(release.helm.run("status", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    for crd in (
        *CRS,
        *ACCOUNT_CRDS,
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    ):
        control_plane.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    kinds = {d["kind"] for d in release.manifest()}
    assert kinds == {
        "ServiceAccount",
        "Secret",
        "ClusterRole",
        "ClusterRoleBinding",
        # In the release namespace: the Secrets of ClusterRocketMQAccounts.
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    }


def test_restricted_pod_security_admits_every_pod_the_chart_would_start(
    release: Release, control_plane: ControlPlane
) -> None:
    # Pods are what Pod Security admission judges; a server-side dry run asks the real admission chain.
    templates = [release.deployment(), find(release.hooks(), "Job")]
    for workload in templates:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"psa-{secrets.token_hex(3)}", "namespace": release.namespace},
            "spec": workload["spec"]["template"]["spec"],
        }
        result = control_plane.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
        assert result.returncode == 0, f"{workload['kind']}: {result.stderr}"
        assert "would violate PodSecurity" not in result.stderr
    # The namespace really enforces it: the same pod with a capability added is refused.
    pod["spec"] = json.loads(json.dumps(pod["spec"]))
    pod["spec"]["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    refused = control_plane.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
    assert refused.returncode != 0 and "PodSecurity" in refused.stderr


@pytest.mark.k8s_oldest
def test_operator_as_the_charts_service_account_creates_and_batch_deletes(
    operator: ManagedProcess, control_plane: ControlPlane, simulator: SimulatorProcess
) -> None:
    namespace = f"rbac-e2e-{secrets.token_hex(3)}"
    control_plane.kubectl("create", "namespace", namespace)
    names = ["orders", "audit", "billing"]
    for name in names:
        # One asks for a connection Secret: the Secret rule is enough to write it.
        spec = {**SPEC, "connectionSecret": {"name": "orders-rocketmq"}} if name == "orders" else SPEC
        control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=rocketmq_instance(name, spec))

    def all_ready() -> dict[str, str] | None:
        items = json.loads(control_plane.kubectl("get", "rmqi", "-n", namespace, "-o", "json").stdout)["items"]
        ready = {
            i["metadata"]["name"]: i["status"]["instanceId"]
            for i in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in i.get("status", {}).get("conditions", []))
        }
        return ready if len(ready) == len(names) else None

    ids = wait_for(all_ready, timeout=90, what="three CRs Ready as the chart's ServiceAccount", interval=0.5)
    events = json.loads(control_plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    assert {e["involvedObject"]["name"] for e in events} >= set(names), "Events on the CRs need events/create"
    written = json.loads(
        control_plane.kubectl("get", "secret", "orders-rocketmq", "-n", namespace, "-o", "json").stdout
    )
    assert written["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "rocketmq-operator"
    assert "ROCKETMQ_NAMESRV_ADDR" in written["data"], "the connection Secret needs secrets get/create"

    since = simulator.admin.calls()[-1]["seq"]
    control_plane.kubectl("delete", "rmqi", "--all", "-n", namespace, "--wait=false")
    wait_for(
        lambda: not json.loads(control_plane.kubectl("get", "rmqi", "-n", namespace, "-o", "json").stdout)["items"],
        timeout=90,
        what="the finalizers to be released",
        interval=0.5,
    )
    batches = [c for c in simulator.admin.calls(since) if c["operation"] == "batch_action"]
    assert len(batches) == 1, [c["instance_ids"] for c in batches]
    assert sorted(batches[0]["instance_ids"]) == sorted(ids.values())
    assert not [i for i in simulator.admin.instances() if i["instance_id"] in ids.values()], "leaked instances"
    assert forbidden_lines(operator.log_path.read_text()) == []
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false")


# The operator's CRs: instances, topics and consumer groups, each served by Kopf the same way.
CRS = [f"{plural}.{GROUP}" for plural in CR_PLURALS]
ACCOUNT_CRDS = [f"{plural}.{GROUP}" for plural in ACCOUNT_PLURALS]
NAMESPACED_ACCOUNTS, CLUSTER_ACCOUNTS = ACCOUNT_CRDS

# Everything the operator does, and nothing else: (verb, resource, scope...).
ALLOWED = [
    *[
        rule
        for cr in CRS
        for rule in (
            ("list", cr, "--all-namespaces"),
            ("watch", cr, "--all-namespaces"),
            ("patch", cr, "-n", "default"),
            ("patch", cr, "--subresource=status", "-n", "default"),
        )
    ],
    # Accounts, served like the CRs: a finalizer while instances use one, handler progress, status.
    ("list", NAMESPACED_ACCOUNTS, "--all-namespaces"),
    ("watch", NAMESPACED_ACCOUNTS, "--all-namespaces"),
    ("patch", NAMESPACED_ACCOUNTS, "-n", "default"),
    ("patch", NAMESPACED_ACCOUNTS, "--subresource=status", "-n", "default"),
    ("list", CLUSTER_ACCOUNTS),
    ("watch", CLUSTER_ACCOUNTS),
    ("patch", CLUSTER_ACCOUNTS),
    ("patch", CLUSTER_ACCOUNTS, "--subresource=status"),
    # ClusterRocketMQAccounts' credentials: get by name, in the operator's namespace, and patch (the
    # finalizer that keeps the Secret readable until the account's instances are deleted).
    ("get", "secrets", "-n", "{own}"),
    ("patch", "secrets", "-n", "{own}"),
    ("create", "events", "-n", "default"),
    # Connection Secrets (settings.connectionSecrets, on by default): is it ours and current (get),
    # write it (create; update only one it owns), remove the old one after a rename (delete).
    ("get", "secrets", "-n", "default"),
    ("create", "secrets", "-n", "default"),
    ("update", "secrets", "-n", "default"),
    ("delete", "secrets", "-n", "default"),
    ("list", "namespaces"),
    ("watch", "namespaces"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
]
DENIED = [
    # Secrets: never listed or watched (it looks only at the names CRs give), never patched outside its
    # own namespace unless namespaced accounts are on, never deleted in bulk.
    ("list", "secrets", "--all-namespaces"),
    ("list", "secrets", "-n", "default"),
    ("watch", "secrets", "-n", "kube-system"),
    ("list", "secrets", "-n", "{own}"),
    ("patch", "secrets", "-n", "default"),
    ("deletecollection", "secrets", "-n", "default"),
    # Its CRs: it never creates, replaces or deletes them; users and GitOps do.
    *[
        rule
        for cr in CRS
        for rule in (
            ("create", cr, "-n", "default"),
            ("update", cr, "-n", "default"),
            ("delete", cr, "-n", "default"),
            ("deletecollection", cr, "-n", "default"),
            ("update", cr, "--subresource=status", "-n", "default"),
        )
    ],
    # Accounts are the users' (or the chart's): never created, replaced or deleted by the operator.
    *[
        rule
        for account, scope in ((NAMESPACED_ACCOUNTS, ("-n", "default")), (CLUSTER_ACCOUNTS, ()))
        for rule in (
            ("create", account, *scope),
            ("update", account, *scope),
            ("delete", account, *scope),
            ("update", account, "--subresource=status", *scope),
        )
    ],
    # Objects it has no business with.
    ("patch", "namespaces"),
    ("delete", "namespaces"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "pods", "-n", "{own}"),
    ("create", "deployments.apps", "-n", "{own}"),
    ("patch", "deployments.apps", "-n", "{own}"),
    ("get", "configmaps", "-n", "{own}"),
    ("create", "serviceaccounts/token", "-n", "{own}"),
    ("delete", "events", "-n", "default"),
    ("patch", "events", "-n", "default"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io", "-n", "{own}"),
    ("impersonate", "serviceaccounts", "-n", "{own}"),
    ("patch", "clusterkopfpeerings.kopf.dev"),
    ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
]


def _scope(scope: tuple[str, ...], release: Release) -> list[str]:
    return [s.replace("{own}", release.namespace) for s in scope]


@pytest.mark.parametrize(("verb", "resource", "scope"), [(v, r, s) for v, r, *s in ALLOWED])
def test_service_account_may_do_what_the_operator_needs(
    release: Release, as_operator: Path, control_plane: ControlPlane, verb: str, resource: str, scope: list[str]
) -> None:
    assert can_i(control_plane, as_operator, verb, resource, *_scope(tuple(scope), release))


@pytest.mark.parametrize(("verb", "resource", "scope"), [(v, r, s) for v, r, *s in DENIED])
def test_service_account_cannot_list_secrets_or_write_what_it_has_no_business_with(
    release: Release, as_operator: Path, control_plane: ControlPlane, verb: str, resource: str, scope: list[str]
) -> None:
    assert not can_i(control_plane, as_operator, verb, resource, *_scope(tuple(scope), release))


@pytest.fixture(scope="module")
def release_without_connection_secrets(
    cluster_helm: Helm, control_plane: ControlPlane, simulator: SimulatorProcess
) -> Iterator[Release]:
    values = fast_values(simulator)
    values["settings"]["connectionSecrets"] = False
    # Cluster accounts' Secrets narrowed to one name, which is not the chart's credentials Secret.
    values["accounts"] = {"clusterSecretNames": ["dms-team-a"]}
    installed = Release.install(cluster_helm, control_plane, values, "nosec")
    try:
        yield installed
    finally:
        installed.uninstall_without_hooks()


def test_the_credentials_secret_is_readable_by_name_only_while_connection_secrets_are_on(
    release: Release,
    as_operator: Path,
    release_without_connection_secrets: Release,
    control_plane: ControlPlane,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The documented trade-off (README, "Connecting an app"): RBAC cannot narrow `get` to the names CRs
    # choose, so with connection Secrets on, a Secret in a served namespace is readable by name...
    secret = f"{release.fullname}-credentials"
    control_plane.kubectl("get", "secret", secret, "-n", release.namespace)  # it exists (admin)
    by_name = control_plane.kubectl(
        f"--kubeconfig={as_operator}", "get", "secret", secret, "-n", release.namespace, check=False
    )
    assert by_name.returncode == 0
    # ... never by listing; and with them off, no Secret of a served namespace is within reach at all,
    # and in its own namespace only those clusterSecretNames lists.
    listed = control_plane.kubectl(
        f"--kubeconfig={as_operator}", "get", "secrets", "-n", release.namespace, check=False
    )
    assert listed.returncode != 0 and "Forbidden" in listed.stderr
    off = release_without_connection_secrets
    as_off = off.kubeconfig_as_operator(tmp_path_factory.mktemp("nosec") / "operator.kubeconfig")
    own = f"{off.fullname}-credentials"
    denied = control_plane.kubectl(f"--kubeconfig={as_off}", "get", "secret", own, "-n", off.namespace, check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
    for verb in ("get", "create", "update", "delete", "list", "watch", "patch"):
        assert not can_i(control_plane, as_off, verb, "secrets", "-n", "default"), verb
        assert not can_i(control_plane, as_off, verb, "secrets", "-n", off.namespace), verb
    assert can_i(control_plane, as_off, "get", "secrets/dms-team-a", "-n", off.namespace)
    assert not can_i(control_plane, as_off, "get", "secrets/dms-team-a", "-n", "default")
    # The rest of its rules are the same.
    assert can_i(control_plane, as_off, "patch", f"rocketmqinstances.{GROUP}", "--subresource=status", "-n", "default")


@pytest.fixture(scope="module")
def release_with_accounts(
    cluster_helm: Helm, control_plane: ControlPlane, simulator: SimulatorProcess
) -> Iterator[Release]:
    values = fast_values(simulator)
    values["settings"]["connectionSecrets"] = False
    values["accounts"] = {
        "namespaced": True,
        "defaultClusterAccount": {
            "create": True,
            "region": "cn-north-4",
            "projectId": simulator.project_id,
            "secretName": "dms-shared",
            "rateLimit": {"rps": 5, "burst": 10},
            "allowedNamespaces": ["payments"],
        },
    }
    installed = Release.install(cluster_helm, control_plane, values, "acct")
    try:
        yield installed
    finally:
        installed.uninstall_without_hooks()


def test_namespaced_accounts_get_secrets_by_name_apart_from_connection_secrets(
    release_with_accounts: Release, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> None:
    release = release_with_accounts
    as_operator = release.kubeconfig_as_operator(tmp_path_factory.mktemp("acct") / "operator.kubeconfig")
    # accounts.namespaced: get (and patch, for the finalizer that holds an account's Secret) in every
    # served namespace, with connection Secrets off; nothing more.
    assert can_i(control_plane, as_operator, "get", "secrets", "-n", "default")
    assert can_i(control_plane, as_operator, "patch", "secrets", "-n", "default")
    for verb in ("create", "update", "delete", "list", "watch"):
        assert not can_i(control_plane, as_operator, verb, "secrets", "-n", "default"), verb
    env = {e["name"]: e for e in release.deployment()["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DMS_NAMESPACED_ACCOUNTS"]["value"] == "true"
    assert release.runner(as_operator, "operator-0").environment({"env": [env["DMS_OPERATOR_NAMESPACE"]]}) == {
        "DMS_OPERATOR_NAMESPACE": release.namespace
    }


def test_the_charts_cluster_account_is_accepted_by_the_api_server(
    release_with_accounts: Release, control_plane: ControlPlane
) -> None:
    # The CRD's schema and CEL rules are the API server's to apply: the object got through them.
    [account] = [d for d in release_with_accounts.manifest() if d["kind"] == "ClusterRocketMQAccount"]
    stored = json.loads(
        control_plane.kubectl("get", CLUSTER_ACCOUNTS, account["metadata"]["name"], "-o", "json").stdout
    )
    assert stored["spec"]["region"] == "cn-north-4"
    assert stored["spec"]["credentials"]["keys"]["accessKey"] == "accessKey"
    assert stored["spec"]["allowedNamespaces"] == ["payments"]
    # Immutable identity: an upgrade that moves the account is refused, not applied.
    moved = control_plane.kubectl(
        "patch", CLUSTER_ACCOUNTS, account["metadata"]["name"], "--type=merge",
        "-p", json.dumps({"spec": {"region": "cn-south-1"}}), check=False,
    )  # fmt: skip
    assert moved.returncode != 0 and "immutable" in moved.stderr
