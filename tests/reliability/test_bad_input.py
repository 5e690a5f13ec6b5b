"""Bad input from every side: invalid CRs, wrong credentials, broken settings, odd cloud answers."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from devstack.simulator_process import console_script
from e2e.support import Cluster, Recorder, Stack, condition, create_many, create_ready, wait_for
from e2e.test_validation import IMMUTABLE_EDITS, INVALID_CREATES
from instance_spec import SPEC

from . import kit
from .conftest import SECRETS_USED, Evidence, StackFactory

# ---- invalid CRs: the API server refuses them, naming the field ----------------------------------

# The 20 of tests/e2e/test_validation.py, plus names and values the cloud would refuse that it lacks.
MORE_INVALID_CREATES: list[tuple[str, dict[str, Any], str]] = [
    ("name longer than the cloud allows", {**SPEC, "name": "n" * 65}, "spec.name"),
    ("name with a space", {**SPEC, "name": "orders prod"}, "spec.name"),
    ("deletion policy in lower case", {**SPEC, "deletionPolicy": "delete"}, "spec.deletionPolicy"),
    ("more brokers than the cloud allows", {**SPEC, "brokerNum": 11}, "spec.brokerNum"),
    ("storage above the maximum", {**SPEC, "storageSpace": 60001}, "spec.storageSpace"),
    ("tag key too long", {**SPEC, "tags": {"k" * 129: "v"}}, "spec.tags"),
]
MORE_IMMUTABLE_EDITS: list[tuple[str, dict[str, Any], str]] = [
    ("subnet", {"subnetId": "subnet-other"}, "spec.subnetId is immutable"),
    ("ipv6 added later", {"ipv6Enable": True}, "spec.ipv6Enable is immutable"),
]


def _refusal(call: Any) -> str:
    """The API server's refusal of ``call`` (AssertionError if it was accepted, or refused otherwise)."""
    try:
        call()
    except ApiException as exc:
        status, body = exc.status, str(exc.body)
    else:
        raise AssertionError("accepted")
    if status not in (400, 422):
        raise AssertionError(f"refused with HTTP {status}")
    return body


@pytest.mark.case(
    "invalid-crs-refused",
    area="Bad input",
    injected=f"{len(INVALID_CREATES) + len(MORE_INVALID_CREATES)} invalid CRs: schema (types, ranges, unknown "
    "fields), CEL rules, unknown policy values, names the cloud would refuse (the table of "
    "tests/e2e/test_validation.py plus 6 more)",
    checked="each is refused by the API server (400/422) with the offending field named in the message",
)
def test_invalid_crs_are_refused_naming_the_field(rel_cluster: Cluster, evidence: Evidence) -> None:
    ns = rel_cluster.namespace("rel-validation")
    table = INVALID_CREATES + MORE_INVALID_CREATES
    wrong = []
    for case, spec, field in table:
        try:
            body = _refusal(lambda spec=spec: rel_cluster.create(ns, "invalid", spec))
        except AssertionError as exc:
            wrong.append(f"{case}: {exc}")
            continue
        if field not in body:
            wrong.append(f"{case}: {field} not named in {body[:200]}")
    assert not wrong, wrong
    assert not rel_cluster.list(ns)
    evidence(f"{len(table)} of {len(table)} refused, each naming its field")


@pytest.mark.case(
    "immutable-edits-refused",
    area="Bad input",
    injected=f"{len(IMMUTABLE_EDITS) + len(MORE_IMMUTABLE_EDITS)} edits of fields the cloud cannot change "
    "(engine, VPC, subnet, zones, disk type, SSL and IPv6 added later, shrinking storage or brokers, "
    "adopting later)",
    checked="each edit is refused with the CEL message naming the field; the stored spec is unchanged",
)
def test_edits_the_cloud_cannot_apply_are_refused(rel_cluster: Cluster, evidence: Evidence) -> None:
    ns = rel_cluster.namespace("rel-validation")
    rel_cluster.create(ns, "fixed", {**SPEC, "brokerNum": 2})
    before = rel_cluster.get(ns, "fixed")
    table = IMMUTABLE_EDITS + MORE_IMMUTABLE_EDITS
    wrong = []
    for case, change, message in table:
        try:
            body = _refusal(lambda change=change: rel_cluster.patch(ns, "fixed", {"spec": change}))
        except AssertionError as exc:
            wrong.append(f"{case}: {exc}")
            continue
        if message not in body:
            wrong.append(f"{case}: {message!r} not in {body[:200]}")
    assert not wrong, wrong
    assert (rel_cluster.get(ns, "fixed") or {})["spec"] == (before or {})["spec"]
    evidence(f"{len(table)} of {len(table)} refused with the field's CEL message; spec unchanged")


# ---- bad credentials: Stalled AuthFailed, and the calls stop ------------------------------------


def _auth_case(variant: str, **kwargs: str) -> Any:
    return pytest.param(
        variant,
        marks=pytest.mark.case(
            f"bad-credentials-{variant}",
            area="Bad input",
            injected=kwargs["injected"],
            checked="every CR (2 existing and Ready, 1 new) shows Stalled=True reason AuthFailed with the "
            "cloud's message; after the first refusals no call reaches the cloud for the rest of 25 s "
            "(call log); no secret in the message",
        ),
        id=variant,
    )


@pytest.mark.parametrize(
    "variant",
    [
        _auth_case(
            "wrong-secret-key",
            injected="the operator restarted with a wrong DMS_SECRET_KEY (signatures refused: 401 APIGW.0301)",
        ),
        _auth_case(
            "unknown-token",
            injected="the operator restarted with an unknown DMS_AUTH_TOKEN instead of AK/SK (401 DMS.10240101)",
        ),
    ],
)
def test_bad_credentials_stall_every_cr_and_stop_the_calls(
    stacks: StackFactory, variant: str, evidence: Evidence
) -> None:
    stack = stacks()
    good = dict(stack.settings)
    ns = stack.namespace()
    ids = create_ready(stack, ns, 2)
    since = kit.last_seq(stack)
    if variant == "wrong-secret-key":
        bad = {"DMS_SECRET_KEY": f"wrong-{stack.settings['DMS_SECRET_KEY'][::-1]}"}
        stacks.replace_operator(stack, bad)
    else:
        bad = {"DMS_AUTH_TOKEN": f"rel-token-{os.urandom(12).hex()}"}
        stacks.replace_operator(stack, bad, drop=("DMS_ACCESS_KEY", "DMS_SECRET_KEY"))
    stack.cluster.create(ns, "new", SPEC)
    names = [*ids, "new"]

    def all_stalled() -> bool:
        for name in names:
            stalled = condition(stack.cluster.get(ns, name), "Stalled") or {}
            if (stalled.get("status"), stalled.get("reason")) != ("True", "AuthFailed"):
                return False
        return True

    wait_for(all_stalled, timeout=60, what="every CR Stalled with AuthFailed")
    stalled_at = time.time()
    calls = stack.sim.calls(since)
    assert calls and all(c["status"] == 401 for c in calls), [(c["operation"], c["status"]) for c in calls]
    first = calls[0]["time"]
    time.sleep(max(0.0, first + 25 - time.time()))
    later = [c for c in stack.sim.calls(since) if c["time"] > stalled_at]
    assert not later, f"calls kept coming after every CR stalled: {[(c['operation'], c['time']) for c in later]}"
    message = (condition(stack.cluster.get(ns, "new"), "Ready") or {}).get("message", "")
    assert "401" in message
    for secret in SECRETS_USED | set(bad.values()):
        assert secret not in message
    stacks.replace_operator(stack, good, drop=("DMS_AUTH_TOKEN",))  # good credentials again, to clean up
    with Recorder(stack.cluster, ns) as recorder:
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        stack.cluster.wait_gone(ns, names, timeout=120)
        kit.assert_clean_teardown(stack, recorder, ns, ids)
    evidence(f"{len(calls)} call(s) refused 401, then 0 calls in the next {first + 25 - stalled_at:.0f} s")
    evidence(f"Ready message: {message[:150]!r}")


# ---- settings that stop start-up ------------------------------------------------------------------


def _start(env: dict[str, str], kubeconfig: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DMS_")}
    return subprocess.run(
        [console_script("rocketmq-operator"), "run", "--namespace", "rel-never-*"],
        env={**clean, "KUBECONFIG": kubeconfig, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


BASE = {"DMS_ENDPOINT": "http://127.0.0.1:9", "DMS_PROJECT_ID": "p-1"}
SECRET = "rel-sk-must-never-be-echoed-0123456789"
MISSING_CREDENTIALS: list[tuple[str, dict[str, str], list[str]]] = [
    ("no credentials at all", BASE, ["DMS_ACCESS_KEY", "DMS_SECRET_KEY", "DMS_AUTH_TOKEN"]),
    ("access key without its secret", {**BASE, "DMS_ACCESS_KEY": "AK1"}, ["DMS_SECRET_KEY"]),
    ("secret without its access key", {**BASE, "DMS_SECRET_KEY": SECRET}, ["DMS_ACCESS_KEY"]),
    ("no project", {"DMS_ENDPOINT": BASE["DMS_ENDPOINT"], "DMS_AUTH_TOKEN": SECRET}, ["DMS_PROJECT_ID"]),
    ("neither endpoint nor region", {"DMS_PROJECT_ID": "p-1", "DMS_AUTH_TOKEN": SECRET}, ["DMS_ENDPOINT"]),
]
GOOD = {**BASE, "DMS_ACCESS_KEY": "AK1", "DMS_SECRET_KEY": SECRET}
MALFORMED: list[tuple[str, dict[str, str], list[str]]] = [
    ("batch size not a number", {**GOOD, "DMS_BATCH_MAX_SIZE": "lots"}, ["DMS_BATCH_MAX_SIZE"]),
    ("negative poll interval", {**GOOD, "DMS_POLL_INTERVAL_SECONDS": "-5"}, ["DMS_POLL_INTERVAL_SECONDS"]),
    ("unknown sweep mode", {**GOOD, "DMS_SWEEP_PROJECT_WIDE": "maybe"}, ["DMS_SWEEP_PROJECT_WIDE"]),
    ("endpoint not http(s)", {**GOOD, "DMS_ENDPOINT": "ftp://dms.example"}, ["DMS_ENDPOINT"]),
    ("unknown deletion policy", {**GOOD, "DMS_DEFAULT_DELETION_POLICY": "Retain"}, ["DMS_DEFAULT_DELETION_POLICY"]),
    ("a typo in a name", {**GOOD, "DMS_BATCH_SIZE": "10"}, ["DMS_BATCH_SIZE", "DMS_BATCH_MAX_SIZE"]),
    ("TLS switch not a boolean", {**GOOD, "DMS_INSECURE_SKIP_TLS_VERIFY": "perhaps"}, ["DMS_INSECURE_SKIP_TLS_VERIFY"]),
    ("CA file that does not exist", {**GOOD, "DMS_CA_FILE": "/nonexistent/ca.pem"}, ["DMS_CA_FILE"]),
    (
        "CA file and TLS off together",
        {**GOOD, "DMS_CA_FILE": "/etc/hostname", "DMS_INSECURE_SKIP_TLS_VERIFY": "true"},
        ["DMS_CA_FILE", "DMS_INSECURE_SKIP_TLS_VERIFY"],
    ),
]


def _refused_at_startup(
    table: list[tuple[str, dict[str, str], list[str]]], kubeconfig: str, evidence: Evidence
) -> None:
    SECRETS_USED.add(SECRET)
    wrong = []
    for case, env, named in table:
        began = time.monotonic()
        result = _start(env, kubeconfig)
        seconds = time.monotonic() - began
        if result.returncode != 2:
            wrong.append(f"{case}: exit {result.returncode}, stderr {result.stderr[-300:]!r}")
        missing = [name for name in named if name not in result.stderr]
        if missing:
            wrong.append(f"{case}: {missing} not named in {result.stderr[-300:]!r}")
        if SECRET in result.stderr + result.stdout:
            wrong.append(f"{case}: the secret was echoed")
        if seconds > 30:
            wrong.append(f"{case}: took {seconds:.0f} s to refuse")
    assert not wrong, wrong
    example = _start(table[0][1], kubeconfig).stderr.strip().splitlines()[-1]
    evidence(f"{len(table)} of {len(table)} refused with exit 2 naming the variable, e.g. {example[:150]!r}")


@pytest.mark.case(
    "startup-missing-credentials",
    area="Bad input",
    injected=f"{len(MISSING_CREDENTIALS)} start-ups with credentials or required settings missing from the "
    "environment (what the pod sees when the credentials Secret lacks them)",
    checked="the operator exits 2 before serving anything, with a message naming the missing variable; the "
    "secret that was given is never echoed",
)
def test_missing_credentials_stop_startup(rel_cluster: Cluster, evidence: Evidence) -> None:
    _refused_at_startup(MISSING_CREDENTIALS, str(rel_cluster.control_plane.kubeconfig_path), evidence)


@pytest.mark.case(
    "startup-malformed-setting",
    area="Bad input",
    injected=f"{len(MALFORMED)} start-ups each with one malformed or contradictory setting, or a misspelt DMS_ name",
    checked="the operator exits 2 with a message naming the variable (and the right name for a typo); the "
    "secret key is never echoed",
)
def test_malformed_settings_stop_startup(rel_cluster: Cluster, evidence: Evidence) -> None:
    _refused_at_startup(MALFORMED, str(rel_cluster.control_plane.kubeconfig_path), evidence)


# ---- odd but valid cloud answers ----------------------------------------------------------------

QUIRKS: dict[str, Any] = {
    "x_new_top_level_field": {"nested": [1, {"deeper": None}]},  # a field the API adds tomorrow
    "x_another_new_field": "surprise",
    "total_storage_space": "300",  # a number as a string
    "used_storage_space": "12",
    "enable_log_collection": "false",  # a boolean as a string
    "public_broker_address": None,
}


@pytest.mark.case(
    "cloud-response-quirks",
    area="Bad input",
    injected="instances whose show and list answers carry unknown fields (nested objects), numbers and "
    "booleans as strings, nulls and created_at as a string; CRs adopt them among ordinary ones",
    checked="the CRs become Ready with the string numbers read as numbers (status.storageSpace 300 from "
    '"300"); no answer is refused as malformed; the operator never restarts; all deleted cleanly',
)
def test_unknown_fields_and_type_quirks_in_cloud_answers(stack: Stack, evidence: Evidence) -> None:
    seeded = stack.sim.seed(stack.simulator.project_id, [{"name": f"quirky-{i}", **QUIRKS} for i in range(3)])
    ids = {f"q-{i}": s["instance_id"] for i, s in enumerate(seeded)}
    ns = stack.namespace()
    for name, instance_id in ids.items():
        stack.cluster.create(ns, name, {"instanceId": instance_id, "deletionPolicy": "Delete"})
    normal = create_many(stack, ns, 2, prefix="plain")
    for name in [*ids, *normal]:
        cr = stack.cluster.wait_ready(ns, name, timeout=60)
        assert cr["status"]["storageSpace"] == 300, name
    shown = stack.sim_instance(ids["q-0"]) or {}
    assert shown["total_storage_space"] == "300" and "x_new_top_level_field" in shown, "the quirks were served"
    assert stack.operator.process.is_running() and stack.operator.restarts == 0
    assert "MalformedResponse" not in stack.operator.log() and "unreadable response" not in stack.operator.log()
    all_ids = {**ids, **{n: (stack.cluster.get(ns, n) or {})["status"]["instanceId"] for n in normal}}
    with Recorder(stack.cluster, ns) as recorder:
        stack.cluster.kubectl("delete", "rmqi", "--all", "-n", ns, "--wait=false")
        stack.cluster.wait_gone(ns, all_ids, timeout=120)
        kit.assert_clean_teardown(stack, recorder, ns, all_ids)
    evidence('3 quirky instances adopted and Ready (storageSpace 300 read from "300"), beside 2 ordinary CRs')
    evidence("no answer refused as malformed; all 5 deleted cleanly")
