"""Cloud account keys stay in their Secrets: a RocketMQAccount and a ClusterRocketMQAccount, each with its
own project and key, through a refused rotation and back (the keys join the final scan of
``test_ownership_and_secrets``).

A module of its own: every operator of a module runs until the module ends, and every operator serves
ClusterRocketMQAccounts cluster-wide, reading their Secrets from its own namespace. Here the only operator
alive is the one with DMS_OPERATOR_NAMESPACE set to where the cluster account's Secret is.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from e2e.support import GROUP, VERSION, Recorder, condition, is_true, wait_for
from instance_spec import SPEC

from . import kit
from .conftest import SECRETS_USED, Evidence, StackFactory

ACCOUNTS, CLUSTER_ACCOUNTS = "rocketmqaccounts", "clusterrocketmqaccounts"


def _account_key(role: str) -> str:
    key = f"rel-{role}-sk-{secrets.token_hex(12)}"
    SECRETS_USED.add(key)
    return key


def _ready_reason_stalled(obj: dict[str, Any] | None) -> tuple[str, str, str]:
    """Ready's status and reason, and Stalled's status ("-" where absent)."""
    ready, stalled = condition(obj, "Ready") or {}, condition(obj, "Stalled") or {}
    return str(ready.get("status", "-")), str(ready.get("reason", "-")), str(stalled.get("status", "-"))


@pytest.mark.case(
    "account-keys-stay-in-secrets",
    area="Ownership and secrets",
    injected="two cloud accounts with fresh random secret keys in two projects, added to the cloud at run time: "
    "a RocketMQAccount whose Secret is in its namespace and a ClusterRocketMQAccount whose Secret is in the "
    "operator's namespace (DMS_OPERATOR_NAMESPACE), an instance created through each; then each Secret's key "
    "replaced with another random key the cloud refuses, then put back",
    checked="each account Verified against its own project and each instance created there by its account's "
    "access key; with the wrong keys both accounts are not Ready and both instances Stalled, all four "
    "with reason AuthFailed; with the right ones back all four Ready again, nothing Stalled, without a "
    "restart; no key (right or wrong) in either account's spec or status, either instance, or any Event "
    "of the two namespaces, at any of those moments; the instances are deleted from their projects and "
    "released only after, then the unused ClusterRocketMQAccount deleted while the RocketMQAccount stays "
    "for the final scan (all four keys join it)",
)
@pytest.mark.timeout(360)
def test_account_keys_stay_in_secrets_through_a_refused_rotation_and_back(
    stacks: StackFactory, evidence: Evidence
) -> None:
    operator_ns = stacks.cluster.namespace("rel-accounts-operator")
    stack = stacks(settings={"DMS_OPERATOR_NAMESPACE": operator_ns})
    ns = stack.namespace()
    core, custom = stack.cluster.core, stack.cluster.custom
    cluster_account = f"{stack.prefix}-team-b"
    # kind, account name, where its Secret is, access key, project (the keys are in `right` and `wrong`)
    teams = {
        "a": ("RocketMQAccount", "team-a", ns, f"AKRELA{secrets.token_hex(7).upper()}", "rel-project-a"),
        "b": (
            "ClusterRocketMQAccount",
            cluster_account,
            operator_ns,
            f"AKRELB{secrets.token_hex(7).upper()}",
            "rel-project-b",
        ),
    }
    right = {team: _account_key(f"team-{team}") for team in teams}
    wrong = {team: _account_key(f"team-{team}-wrong") for team in teams}
    keys = [*right.values(), *wrong.values()]
    for team, (_, _, _, access_key, project) in teams.items():
        stack.sim.put_account(access_key, right[team], [project])

    def put_secret(team: str, key: str) -> None:
        _, _, secret_ns, access_key, _ = teams[team]
        data = {"accessKey": access_key, "secretKey": key}
        name = f"team-{team}-creds"
        try:
            core.replace_namespaced_secret(
                name, secret_ns, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
            )
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            core.create_namespaced_secret(
                secret_ns, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
            )

    def account(team: str) -> dict[str, Any] | None:
        kind, name, _, _, _ = teams[team]
        try:
            if kind == "RocketMQAccount":
                found = custom.get_namespaced_custom_object(GROUP, VERSION, ns, ACCOUNTS, name)
            else:
                found = custom.get_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNTS, name)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        assert isinstance(found, dict)
        return found

    for team, (kind, name, _, _, project) in teams.items():
        put_secret(team, right[team])
        spec: dict[str, Any] = {
            "endpoint": stack.simulator.url,
            "projectId": project,
            "credentials": {"secretName": f"team-{team}-creds"},
        }
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
        if kind == "RocketMQAccount":
            custom.create_namespaced_custom_object(GROUP, VERSION, ns, ACCOUNTS, body)
        else:
            custom.create_cluster_custom_object(
                GROUP, VERSION, CLUSTER_ACCOUNTS, {**body, "spec": {**spec, "allowedNamespaces": [ns]}}
            )

    def everything() -> str:
        """Both accounts (spec and status), both instances, every Event of both namespaces, as text."""
        shown = [account(team) for team in teams] + [stack.cluster.get(ns, f"via-{team}") for team in teams]
        events = [*stack.cluster.events(ns), *stack.cluster.events(operator_ns)]
        return json.dumps([[o.get("spec"), o.get("status")] for o in shown if o] + [events], default=str)

    def states() -> dict[str, tuple[str, str, str]]:
        """Ready's status and reason, and Stalled's status, of both accounts and both instances."""
        found = {f"account {team}": _ready_reason_stalled(account(team)) for team in teams}
        found.update({f"via-{team}": _ready_reason_stalled(stack.cluster.get(ns, f"via-{team}")) for team in teams})
        return found

    def wait_all(wanted: Callable[[str, tuple[str, str, str]], bool], what: str) -> None:
        try:
            wait_for(lambda: all(wanted(k, v) for k, v in states().items()), timeout=90, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; now {states()}") from None

    def wait_accounts_ready(what: str) -> None:
        wait_for(lambda: all(is_true(account(team), "Ready") for team in teams), timeout=60, what=what)

    wait_accounts_ready("both accounts Ready")
    verified = {team: str((condition(account(team), "Ready") or {}).get("message")) for team in teams}
    for team, (_, _, _, _, project) in teams.items():
        assert _ready_reason_stalled(account(team))[1] == "Verified" and project in verified[team], verified
    since = kit.last_seq(stack)
    for team, (kind, name, _, _, _) in teams.items():
        stack.cluster.create(ns, f"via-{team}", {**SPEC, "accountRef": {"kind": kind, "name": name}})
    ids = {
        f"via-{team}": stack.cluster.wait_ready(ns, f"via-{team}", timeout=120)["status"]["instanceId"]
        for team in teams
    }
    creates = [c for c in kit.calls_of(stack, "create", since) if c.get("status") == 200]
    made = {(c["project_id"], c["principal"]) for c in creates}
    assert made == {(project, access_key) for _, _, _, access_key, project in teams.values()}, made
    for team, (_, _, _, _, project) in teams.items():
        assert ids[f"via-{team}"] in {i["instance_id"] for i in stack.sim.instances(project)}
    ready_texts = everything()
    assert not [k for k in keys if k in ready_texts], "a key appears in an account, an instance or an Event"

    # The refused rotation: the Secrets hold keys the cloud does not know.
    for team in teams:
        put_secret(team, wrong[team])
    # An account whose key is refused is not Ready; an instance keeps Ready as it was (it is probably fine,
    # only unseen), and both say AuthFailed and Stalled (a refused key does not heal by itself).
    wait_all(
        lambda who, state: state == ("False" if who.startswith("account") else "True", "AuthFailed", "True"),
        "both accounts and both instances AuthFailed and Stalled",
    )
    when_refused = states()
    refused = {team: str((condition(account(team), "Ready") or {}).get("message")) for team in teams}
    assert all(f"team-{team}-creds" in message for team, message in refused.items()), refused
    refused_texts = everything()
    assert "AuthFailed" in refused_texts
    assert not [k for k in keys if k in refused_texts], "a key appears while the cloud refuses it"

    # And back: the right keys, picked up without a restart.
    pid = stack.operator.process.pid
    for team in teams:
        put_secret(team, right[team])
    wait_all(
        lambda who, state: state[0] == "True" and state[1] != "AuthFailed" and state[2] != "True",
        "both accounts and both instances Ready again, nothing Stalled",
    )
    recovered = states()
    assert stack.operator.process.poll() is None and stack.operator.process.pid == pid
    back_texts = everything()
    assert not [k for k in keys if k in back_texts], "a key appears after the rotation back"
    events = [*stack.cluster.events(ns), *stack.cluster.events(operator_ns)]

    # Teardown of the instances, each from its own project. The RocketMQAccount stays for the final scan
    # (no operator serves its namespace after this module); the ClusterRocketMQAccount goes, or every later
    # module's operator would take it up and find no Secret in its own namespace.
    with Recorder(stack.cluster, ns) as recorder:
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        stack.cluster.wait_gone(ns, list(ids), timeout=90)
        for team, (_, _, _, _, project) in teams.items():
            left = [i for i in stack.sim.instances(project) if i["instance_id"] == ids[f"via-{team}"]]
            assert not left, f"instance of via-{team} still in {project}: {left}"
        early = kit.early_releases(stack, recorder, ids)
        assert not early, f"released before the cloud deleted the instance: {early}"
    custom.delete_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNTS, cluster_account)
    wait_for(lambda: account("b") is None, timeout=60, what="the unused ClusterRocketMQAccount deleted")
    assert account("a") is not None
    evidence(
        "created in "
        + ", ".join(f"{p} by {ak[:6]}..." for _, _, _, ak, p in teams.values())
        + "; wrong keys: 2 accounts and 2 instances AuthFailed, right keys back: all Ready, same operator process"
    )
    evidence(
        "Ready/reason/Stalled with wrong keys: "
        + ", ".join(f"{who} {'/'.join(state)}" for who, state in when_refused.items())
        + "; after: "
        + ", ".join(f"{who} {'/'.join(state)}" for who, state in recovered.items())
    )
    evidence(f"refused account message: {refused['b'][:160]!r}")
    evidence(
        f"4 keys absent from 2 accounts and 2 instances (spec, status) at 3 moments and from {len(events)} Events "
        f"({', '.join(sorted({str(e['reason']) for e in events}))}); "
        "instances deleted from both projects, none released early"
    )
