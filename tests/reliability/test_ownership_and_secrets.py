"""What the operator does not own it never touches; what is secret it never shows; TLS is verified."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devstack.simulator_process import DEFAULT_SECRET_KEY
from e2e.support import (
    GROUP,
    PLURAL,
    VERSION,
    Cluster,
    Recorder,
    Stack,
    condition,
    create_many,
    is_true,
    wait_for,
)
from instance_spec import SPEC
from kube_testenv import ControlPlane
from rocketmq_operator.core import user_resource as ur

from . import kit, report
from .conftest import SECRETS_USED, Evidence, StackFactory
from .pytest_output import OUTPUT

# ---- ownership ----------------------------------------------------------------------------------

SWEEP_SECONDS = 40.0
LOOKALIKE_NAMESPACE = "<the namespace of the test's own CRs>"
FOREIGN: list[dict[str, Any]] = [
    {"name": "foreign-untagged-failed", "status": "CREATEFAILED"},
    {
        "name": "foreign-other-cluster-failed",
        "status": "CREATEFAILED",
        "tags": [{"key": "rocketmq-operator.cluster", "value": "another-cluster"}],
    },
    {
        "name": "foreign-lookalike-failed",
        "status": "CREATEFAILED",
        "tags": [
            # Our namespace's name (filled in at seed time), another cluster's id.
            {"key": "rocketmq-operator.cluster", "value": "rel-elsewhere"},
            {"key": "rocketmq-operator.namespace", "value": LOOKALIKE_NAMESPACE},
        ],
    },
    {"name": "foreign-running", "status": "RUNNING"},
    {"name": "foreign-error", "status": "ERROR"},
]


def _sweeps(stack: Stack) -> float:
    for line in stack.operator.metrics().splitlines():
        if line.startswith('rocketmq_operator_sweeps_total{account="default",mode="owned"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.case(
    "foreign-instances-untouched",
    area="Ownership and secrets",
    injected=f"{len(FOREIGN)} instances nobody here owns (3 CREATEFAILED: untagged, another cluster's tags, a "
    "look-alike namespace tag; 1 RUNNING; 1 ERROR) in the operator's project, for "
    f"{SWEEP_SECONDS:g} s of sweeps every 0.5 s with the project-wide sweep off, while the operator's "
    "own failed creations are swept",
    checked="the operator's own failed instances are swept (batch calls, CR says so); no call of any kind "
    "names a foreign instance, no all_failure call is made, every foreign instance is unchanged",
)
@pytest.mark.timeout(300)
def test_foreign_instances_are_never_touched_across_many_sweeps(stacks: StackFactory, evidence: Evidence) -> None:
    token = f"rel-security-token-{secrets.token_hex(12)}"
    stack = stacks(
        settings={
            "DMS_SWEEP_INTERVAL_SECONDS": "0.5",
            "DMS_SWEEP_PROJECT_WIDE": "false",
            "DMS_SECURITY_TOKEN": token,  # temporary credentials: every request carries it
        }
    )
    ns = stack.namespace()
    lookalike = [
        {**f, "tags": [{**t, "value": ns if t["value"] == LOOKALIKE_NAMESPACE else t["value"]} for t in f["tags"]]}
        if "tags" in f
        else f
        for f in FOREIGN
    ]
    seeded = stack.sim.seed(stack.simulator.project_id, lookalike)
    foreign = {s["instance_id"]: s for s in seeded}
    since = kit.last_seq(stack)
    stack.sim.config(create_fail_names=["ours-fails-00", "ours-fails-01"])
    for i in range(2):
        stack.cluster.create(ns, f"ours-{i}", {**SPEC, "name": f"ours-fails-{i:02d}"})
    create_many(stack, ns, 2, prefix="fine")
    sweeps_before = _sweeps(stack)
    began = time.monotonic()

    def swept() -> bool:
        for i in range(2):
            deletion = ((stack.cluster.get(ns, f"ours-{i}") or {}).get("status") or {}).get("deletion") or {}
            if deletion.get("trigger") != "SweepCreateFailed":
                return False
        return True

    wait_for(swept, timeout=60, what="the operator's own failed instances swept")
    time.sleep(max(0.0, SWEEP_SECONDS - (time.monotonic() - began)))
    sweeps = _sweeps(stack) - sweeps_before
    assert sweeps >= SWEEP_SECONDS, f"only {sweeps:.0f} sweeps ran"
    calls = stack.sim.calls(since)
    touched = [(c["operation"], c["method"]) for c in calls if set(c["instance_ids"]) & set(foreign)]
    assert not touched, touched
    assert not [c for c in calls if c.get("all_failure")], "no project-wide sweep may run"
    for instance_id, before in foreign.items():
        now = stack.sim_instance(instance_id)
        assert now is not None, f"{before['name']} was deleted"
        assert (now["status"], now["tags"]) == (before["status"], before["tags"]), before["name"]
    ours = [c for c in stack.batch_calls(since) if c["status"] == 200]
    assert ours, "the operator's own failed instances were never deleted"
    stack.sim.config(create_fail_names=[])
    stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
    stack.cluster.wait_gone(ns, [f"ours-{i}" for i in range(2)] + ["fine-000", "fine-001"], timeout=120)
    assert all(stack.sim_instance(i) is not None for i in foreign), "deleting our CRs touched no foreign instance"
    evidence(f"{sweeps:.0f} sweeps in {SWEEP_SECONDS:g} s; {len(ours)} batch calls deleted the 2 own failed instances")
    evidence(f"0 of {len(calls)} calls named a foreign instance; 0 all_failure calls; 5 foreign instances unchanged")


# ---- TLS ----------------------------------------------------------------------------------------


@pytest.mark.case(
    "tls-verified-by-default",
    area="Ownership and secrets",
    injected="the cloud endpoint serves HTTPS with a certificate from a private CA; the operator first "
    "without DMS_CA_FILE (defaults), then with it; IAM token credentials",
    checked="by default nothing reaches the cloud (TLS handshake refused, empty call log) and the CR is "
    "Stalled with reason TLSVerificationFailed: 'TLS certificate verification failed ... pass its "
    "certificate as ca_file'; with DMS_CA_FILE the same CR becomes Ready and is deleted cleanly",
)
def test_tls_is_verified_by_default_and_a_private_ca_is_trusted_when_given(
    stacks: StackFactory, tmp_path: Path, evidence: Evidence
) -> None:
    ca_file = tmp_path / "sim-ca.pem"
    token = f"rel-iam-token-{secrets.token_hex(16)}"
    SECRETS_USED.add(token)
    stack = stacks(simulator_args=["--token", token], ca_file=ca_file, start_operator=False)
    assert stack.simulator.url.startswith("https://")
    token_auth = {"DMS_AUTH_TOKEN": token}
    stacks.replace_operator(stack, token_auth, drop=("DMS_ACCESS_KEY", "DMS_SECRET_KEY"))
    ns = stack.namespace()
    since = kit.last_seq(stack)
    stack.cluster.create(ns, "tls", SPEC)

    def refused() -> str | None:
        stalled = condition(stack.cluster.get(ns, "tls"), "Stalled") or {}
        message = str(stalled.get("message", ""))
        return message if (stalled.get("status"), stalled.get("reason")) == ("True", "TLSVerificationFailed") else None

    message = wait_for(refused, timeout=60, what="the CR to say the certificate was refused")
    assert "certificate verification failed" in message and "ca_file" in message, message
    assert not stack.sim.calls(since), "nothing may reach a server whose certificate is not trusted"
    assert "certificate verification failed" in stack.operator.log()

    stacks.replace_operator(stack, {"DMS_CA_FILE": str(ca_file)})
    cr = stack.cluster.wait_ready(ns, "tls", timeout=90)
    with Recorder(stack.cluster, ns) as recorder:
        stack.cluster.delete(ns, "tls")
        stack.cluster.wait_gone(ns, ["tls"], timeout=60)
        kit.assert_clean_teardown(stack, recorder, ns, {"tls": cr["status"]["instanceId"]})
    evidence(f"default: 0 calls reached the cloud; Ready message {message[:160]!r}")
    evidence("with DMS_CA_FILE: Ready, then deleted cleanly")


# ---- secrets ------------------------------------------------------------------------------------

USERS, TOPICS, GROUPS = "rocketmqusers", "rocketmqtopics", "rocketmqconsumergroups"


def _user_key() -> str:
    """A fresh random key the cloud accepts: 24 characters, all four character classes."""
    key = f"Rk-{secrets.token_hex(10)}Z"
    assert ur.key_problem(key, "any-user") is None
    SECRETS_USED.add(key)
    return key


def _user(name: str, access_key: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RocketMQUser",
        "metadata": {"name": name},
        "spec": {"instanceRef": {"name": "acl"}, "accessKey": access_key, **spec},
    }


def _users(stack: Stack, ns: str) -> dict[str, dict[str, Any]]:
    found = stack.cluster.custom.list_namespaced_custom_object(GROUP, VERSION, ns, USERS)["items"]
    return {i["metadata"]["name"]: i for i in found}


def _secret_data(stack: Stack, ns: str, name: str) -> dict[str, str] | None:
    try:
        found = stack.cluster.core.read_namespaced_secret(name, ns)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {k: base64.b64decode(v).decode() for k, v in (found.data or {}).items()}


@pytest.mark.case(
    "user-keys-stay-in-secrets",
    area="Ownership and secrets",
    injected="an ACL instance with 4 RocketMQUsers: one whose key comes from a Secret holding a fresh random "
    "key, then rotated by replacing the Secret's value with another; one with a generated key and a "
    "connection Secret; one whose Secret holds a random key the cloud refuses (two character classes); one "
    "whose Secret lacks the key",
    checked="the cloud holds exactly the referenced, rotated and generated keys (the connection Secret "
    "carries the generated one); the refused user is Stalled with the cloud's message naming the user, the "
    "other Reconciling, SecretKeyUnavailable; no key in any RocketMQUser's spec or status nor any Event of "
    "the namespace; deleting them removes every user from the cloud, their Secrets and every CR (all keys "
    "join the final scan)",
)
@pytest.mark.timeout(300)
def test_acl_user_keys_stay_in_secrets_through_rotation_generation_and_refusals(
    stack: Stack, evidence: Evidence
) -> None:
    ns = stack.namespace()
    core, custom = stack.cluster.core, stack.cluster.custom
    stack.cluster.create(ns, "acl", {**SPEC, "enableAcl": True})
    instance_id = stack.cluster.wait_ready(ns, "acl", timeout=120)["status"]["instanceId"]
    first, second = _user_key(), _user_key()
    refused = secrets.token_hex(10)  # lowercase and digits only: the cloud wants three classes
    assert ur.key_problem(refused, "weak-user1") is not None
    SECRETS_USED.add(refused)

    def secret(name: str, data: dict[str, str]) -> None:
        core.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data))

    secret("ref-creds", {"secretKey": first})
    secret("weak-creds", {"secretKey": refused})
    secret("nokey-creds", {"otherKey": "not the key"})
    for body in (
        _user("ref", "ref-user1", secretKeyRef={"name": "ref-creds"}),
        _user("gen", "gen-user1", generateSecretKey={"secretName": "gen-creds"}, connectionSecret={"name": "gen-mq"}),
        _user("weak", "weak-user1", secretKeyRef={"name": "weak-creds"}),
        _user("nokey", "nokey-user1", secretKeyRef={"name": "nokey-creds"}),
    ):
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, USERS, body)

    def holds(access_key: str, key: str) -> bool:
        return stack.sim.check_key(instance_id, access_key, key)

    # The referenced key, then its rotation: the same user, the new key.
    wait_for(lambda: is_true(_users(stack, ns).get("ref"), "Ready"), timeout=60, what="user ref Ready")
    assert holds("ref-user1", first)
    core.patch_namespaced_secret("ref-creds", ns, {"stringData": {"secretKey": second}})
    wait_for(lambda: holds("ref-user1", second), timeout=30, what="the rotated key in the cloud", interval=0.5)
    assert not holds("ref-user1", first)

    # The generated key: the same in its Secret, the connection Secret and the cloud.
    def generated() -> tuple[str, str] | None:
        key = (_secret_data(stack, ns, "gen-creds") or {}).get("secretKey")
        carried = (_secret_data(stack, ns, "gen-mq") or {}).get("ROCKETMQ_SECRET_KEY")
        return (key, carried) if key and carried else None

    key, carried = wait_for(generated, timeout=60, what="generated key and connection Secret", interval=0.5)
    SECRETS_USED.update({key, carried})
    assert key == carried and ur.key_problem(key, "gen-user1") is None
    assert holds("gen-user1", key)

    # The refusals: the cloud's (naming the user), and a Secret without the key.
    def state(name: str, kind: str) -> tuple[str, str, str] | None:
        found = condition(_users(stack, ns).get(name), kind) or {}
        if found.get("status") != "True":
            return None
        return str(found.get("reason")), str(found.get("message")), kind

    weak = wait_for(lambda: state("weak", "Stalled"), timeout=60, what="user weak Stalled")
    assert "weak-user1" in weak[1], weak
    nokey = wait_for(
        lambda: (s := state("nokey", "Reconciling")) and s[0] == "SecretKeyUnavailable" and s,
        timeout=60,
        what="user nokey waiting for its key",
    )
    assert "nokey-creds" in nokey[1], nokey
    users = {u["access_key"] for u in stack.sim.children(instance_id)["users"]}
    assert users == {"ref-user1", "gen-user1"}, users
    wait_for(
        lambda: {"SecretKeyRotated", "SecretKeyGenerated"} <= {e["reason"] for e in stack.cluster.events(ns)},
        timeout=30,
        what="the rotation's and the generation's Events",
    )

    # No key in the CRs (spec and status) or any Event of the namespace.
    keys = (first, second, key, refused)
    crs = _users(stack, ns)
    events = stack.cluster.events(ns)
    shown = json.dumps([[cr.get("spec"), cr.get("status")] for cr in crs.values()] + [events], default=str)
    assert all(k not in shown for k in keys), "a key appears in a RocketMQUser or an Event"

    # Teardown: users gone from the cloud, their owned Secrets collected, no CR left.
    with Recorder(stack.cluster, ns) as recorder:
        stack.cluster.kubectl("delete", "rmqu", "--all", "-n", ns, "--wait=false")
        wait_for(lambda: not _users(stack, ns), timeout=60, what="every RocketMQUser released")
        assert stack.sim.children(instance_id)["users"] == []
        wait_for(
            lambda: _secret_data(stack, ns, "gen-creds") is None and _secret_data(stack, ns, "gen-mq") is None,
            timeout=60,
            what="the generated and the connection Secret collected",
        )
        # One call per user; the two never created get one too (their creation was pending when the key
        # was not to be had, so the operator makes sure), answered "no such user".
        delete_calls = kit.calls_of(stack, "user_delete")
        deletes = sorted(n for c in delete_calls for n in c["names"])
        answers = ", ".join(f"{n} {c.get('status')}" for c in delete_calls for n in c["names"])
        assert {"gen-user1", "ref-user1"} <= set(deletes) <= {"gen-user1", "ref-user1", "weak-user1", "nokey-user1"}
        assert len(deletes) == len(set(deletes)), deletes
        stack.cluster.delete(ns, "acl")
        stack.cluster.wait_gone(ns, ["acl"], timeout=60)
        kit.assert_clean_teardown(stack, recorder, ns, {"acl": instance_id})
    for plural in (USERS, TOPICS, GROUPS):
        assert not custom.list_namespaced_custom_object(GROUP, VERSION, ns, plural)["items"], plural
    evidence(
        "referenced key held, rotated in place (old key refused by the cloud), generated key = its connection "
        "Secret's = the cloud's"
    )
    evidence(f"refused: weak {weak[0]} {weak[1][:120]!r}; nokey {nokey[0]} {nokey[1][:80]!r}")
    evidence(
        f"4 keys absent from {len(crs)} RocketMQUsers (spec, status) and {len(events)} Events; user_delete "
        f"answers: {answers}; cloud users 0, CRs 0"
    )


ACCOUNTS, CLUSTER_ACCOUNTS = "rocketmqaccounts", "clusterrocketmqaccounts"

# A real AK/SK Authorization header always ends in a 64-hex-digit signature (tests of the simulator's
# parser name malformed headers such as "SDK-HMAC-SHA256 Access=AK, Signature=abc" in their ids).
AUTHORIZATION = re.compile(r"Signature=[0-9a-fA-F]{64}(?![0-9a-fA-F])")


def _texts(control_plane: ControlPlane, api: client.ApiClient) -> dict[str, str]:
    """Everything the run produced that a person or a tool can read, by where it came from."""
    found: dict[str, str] = {}
    for path in sorted(report.ROOT.joinpath("test-artifacts").rglob("*")):
        if path.is_file():
            found[str(path.relative_to(report.ROOT))] = path.read_text(errors="replace")
    if control_plane.log_dir is not None:
        for path in sorted(Path(control_plane.log_dir).glob("*.log")):
            found[f"control plane: {path.name}"] = path.read_text(errors="replace")
    core = client.CoreV1Api(api)
    events = core.list_event_for_all_namespaces().items
    found["events"] = "\n".join(f"{e.reason} {e.message}" for e in events)
    custom = client.CustomObjectsApi(api)
    for plural, kind in (
        (PLURAL, "RocketMQInstances"),
        (USERS, "RocketMQUsers"),
        (TOPICS, "RocketMQTopics"),
        (GROUPS, "RocketMQConsumerGroups"),
        (ACCOUNTS, "RocketMQAccounts"),
        (CLUSTER_ACCOUNTS, "ClusterRocketMQAccounts"),
    ):
        crs = custom.list_cluster_custom_object(GROUP, VERSION, plural)["items"]
        found[kind] = "\n".join(str(cr) for cr in crs)
    found["pytest output"] = OUTPUT.read_text(errors="replace") if OUTPUT.exists() else ""
    return found


@pytest.mark.scan_last
@pytest.mark.case(
    "secrets-never-exposed",
    area="Ownership and secrets",
    injected="runs last in the session: every secret key, IAM token and security token handed to any "
    "operator of the session (the suite's random ones and the e2e default), every ACL user key of the "
    "session (referenced, rotated, generated, refused), every account key of the session (the right ones "
    "and the refused ones of a RocketMQAccount and a ClusterRocketMQAccount), and the signature of an AK/SK "
    "Authorization header (64 hex digits)",
    checked="none appears in any operator or simulator log, the control plane's logs, any Event, any "
    "RocketMQInstance, RocketMQUser, RocketMQTopic, RocketMQConsumerGroup, RocketMQAccount or "
    "ClusterRocketMQAccount left in the cluster (specs, statuses, conditions, error messages) or the "
    "captured output of every test",
)
def test_no_secret_appears_in_anything_the_run_produced(
    rel_cluster: Cluster, control_plane: ControlPlane, kube_api_client: client.ApiClient, evidence: Evidence
) -> None:
    wanted = {s for s in SECRETS_USED | {DEFAULT_SECRET_KEY} if len(s) >= 12}
    assert len(wanted) >= 3, "the suite should have used several secrets by now"
    texts = _texts(control_plane, kube_api_client)
    leaks = []
    for where, text in texts.items():
        for secret in wanted:
            if secret in text:
                leaks.append(f"{where}: a secret of {len(secret)} characters ({secret[:4]}...)")
        if AUTHORIZATION.search(text):
            leaks.append(f"{where}: an Authorization header")
    assert not leaks, leaks
    logs = [w for w in texts if w.endswith(".log")]
    size = sum(len(t) for t in texts.values())
    evidence(f"{len(wanted)} secrets and the Authorization header shape searched in {len(texts)} sources")
    evidence(
        f"{len(logs)} log files, {texts['events'].count(chr(10)) + 1} events, every CR of the six kinds "
        f"({texts['RocketMQAccounts'].count(chr(10)) + bool(texts['RocketMQAccounts'])} RocketMQAccounts, "
        f"{texts['ClusterRocketMQAccounts'].count(chr(10)) + bool(texts['ClusterRocketMQAccounts'])} "
        "ClusterRocketMQAccounts), "
        f"{size / 1e6:.1f} MB: 0 hits"
    )
