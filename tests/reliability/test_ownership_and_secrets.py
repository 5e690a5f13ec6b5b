"""What the operator does not own it never touches; what is secret it never shows; TLS is verified."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devstack.simulator_process import DEFAULT_SECRET_KEY
from e2e.support import GROUP, PLURAL, VERSION, Cluster, Recorder, Stack, condition, create_many, wait_for
from instance_spec import SPEC
from kube_testenv import ControlPlane

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
        if line.startswith('rocketmq_operator_sweeps_total{mode="owned"}'):
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
    crs = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    found["RocketMQInstances"] = "\n".join(str(cr) for cr in crs)
    found["pytest output"] = OUTPUT.read_text(errors="replace") if OUTPUT.exists() else ""
    return found


@pytest.mark.scan_last
@pytest.mark.case(
    "secrets-never-exposed",
    area="Ownership and secrets",
    injected="runs last in the session: every secret key, IAM token and security token handed to any "
    "operator of the session (the suite's random ones and the e2e default), and the signature of an "
    "AK/SK Authorization header (64 hex digits)",
    checked="none appears in any operator or simulator log, the control plane's logs, any Event, any "
    "RocketMQInstance (statuses, conditions, error messages) or the captured output of every test",
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
        f"{len(logs)} log files, {texts['events'].count(chr(10)) + 1} events, every CR, {size / 1e6:.1f} MB: 0 hits"
    )
