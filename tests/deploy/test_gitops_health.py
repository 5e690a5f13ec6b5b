"""Argo CD's Lua check and kstatus give the expected health for each state a RocketMQInstance goes through.

The states are produced live: the operator and the simulated cloud as processes (devstack), the CRs on
the real API server, each driven into its state the way a user or the cloud would. The same objects
are then read by the chart's Lua check (in a real Lua 5.1) and by kstatus (sigs.k8s.io/cli-utils,
built from tools/kstatus) fed with ``kubectl get -o json``. ``CAPTURE_CR_STATES=1`` also writes them to
tests/deploy/fixtures/cr-states.json, which the fixture-based tests below read.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import OperatorProcess, SimulatorProcess
from devstack.__main__ import install_crd
from e2e.support import condition, wait_for
from instance_spec import SPEC
from kube_testenv import ControlPlane

from .health import LUA_CHECK, argo_health, build_kstatus, doc_blocks, doc_table, flux_health_check_exprs, kstatus
from .kit import FINALIZER, ROOT, rocketmq_instance

FIXTURES = Path(__file__).parent / "fixtures" / "cr-states.json"
# Short intervals so that each state is reached in seconds.
FAST_SETTINGS = {
    "DMS_POLL_INTERVAL_SECONDS": "1",
    "DMS_VERIFY_INTERVAL_SECONDS": "0.5",
    "DMS_BATCH_WINDOW_SECONDS": "1",
    "DMS_SWEEP_INTERVAL_SECONDS": "2",
    "DMS_DELETE_CONFIRM_WAIT_SECONDS": "5",
    "DMS_CLUSTER_ID": "health-tests",
}
PAUSED = "rocketmq-operator.io/paused"

# state -> (Argo CD health, kstatus, Flux with the docs' healthCheckExprs). kstatus has no "suspended": it
# reads a paused CR by its Ready condition (cli-utils v0.37 falls back to Ready when neither Reconciling
# nor Stalled is True). Flux's CEL checks see the generation a deletion bumps as not yet observed.
EXPECTED = {
    "ready": ("Healthy", "Current", "Current"),
    "creating": ("Progressing", "InProgress", "InProgress"),
    "create-failed": ("Degraded", "Failed", "Failed"),
    "stalled": ("Degraded", "Failed", "Failed"),
    "paused": ("Suspended", "InProgress", "InProgress"),
    "paused-ready": ("Suspended", "Current", "Current"),
    "deleting": ("Progressing", "Terminating", "InProgress"),
    "delete-failed": ("Degraded", "Terminating", "InProgress"),
}


@pytest.fixture(scope="session")
def kstatus_binary() -> Path:
    """tools/kstatus, built on first use and cached under ~/.cache/rocketmq-operator (about a minute cold)."""
    return build_kstatus()


@pytest.fixture(scope="module")
def flux_exprs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The healthCheckExprs docs/gitops-health.md shows, as the kstatus tool's -flux-exprs input."""
    path = tmp_path_factory.mktemp("flux") / "exprs.json"
    path.write_text(json.dumps(flux_health_check_exprs()))
    return path


def _get(control_plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(control_plane.kubectl("get", "rmqi", name, "-n", namespace, "-o", "json").stdout)
    return found


def _reason(obj: dict[str, Any] | None) -> str | None:
    ready = condition(obj, "Ready")
    return ready.get("reason") if ready else None


@pytest.fixture(scope="module")
def live_states(
    control_plane: ControlPlane, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, dict[str, Any]]]:
    """One CR in each state, as the API server returns it."""
    install_crd(control_plane)
    simulator = SimulatorProcess(
        log_path=artifacts / "simulator.log", extra_args=["--create-seconds", "1", "--delete-seconds", "1"]
    )
    simulator.start()
    namespace = f"health-{os.getpid()}"
    operator = OperatorProcess(
        kubeconfig=control_plane.kubeconfig_path,
        settings={**simulator.operator_env(), **FAST_SETTINGS},
        log_path=artifacts / "operator.log",
        namespaces=[namespace],
    )
    control_plane.kubectl("create", "namespace", namespace)
    sim = simulator.admin
    try:
        operator.start()

        def apply(name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> None:
            control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=rocketmq_instance(name, spec, annotations))

        def wait_state(name: str, what: str, check: Any) -> dict[str, Any]:
            return wait_for(
                lambda: obj if check(obj := _get(control_plane, namespace, name)) else None,
                timeout=60,
                what=f"{name}: {what}",
                interval=0.25,
            )

        sim.config(create_fail_names=["failing-mq"])
        for name in ("ready", "paused-ready", "deleting", "delete-failed"):
            apply(name, {**SPEC, "name": f"{name}-mq"})
        apply("create-failed", {**SPEC, "name": "failing-mq"})
        apply("stalled", {"instanceId": "00000000-0000-0000-0000-00000000dead"})
        apply("paused", {**SPEC, "name": "paused-mq"}, {PAUSED: "true"})
        ids = {
            name: wait_state(name, "Ready", lambda o: (condition(o, "Ready") or {}).get("status") == "True")["status"][
                "instanceId"
            ]
            for name in ("ready", "paused-ready", "deleting", "delete-failed")
        }
        control_plane.kubectl("annotate", "rmqi", "paused-ready", "-n", namespace, f"{PAUSED}=true")

        # Creation that takes a long time in the cloud: the instance exists and is CREATING.
        sim.config(create_seconds=3600)
        apply("creating", {**SPEC, "name": "creating-mq"})
        # Deletion the cloud accepted and is still working on; and one the cloud refused.
        sim.config(delete_seconds=3600)
        sim.faults(failed_ids=[ids["delete-failed"]])
        control_plane.kubectl("delete", "rmqi", "deleting", "delete-failed", "-n", namespace, "--wait=false")

        states = {
            "ready": wait_state("ready", "Available", lambda o: _reason(o) == "Available"),
            "creating": wait_state(
                "creating",
                "CREATING in the cloud",
                lambda o: o.get("status", {}).get("cloudStatus") == "CREATING" and _reason(o) == "Creating",
            ),
            "create-failed": wait_state("create-failed", "CreateFailed", lambda o: _reason(o) == "CreateFailed"),
            "stalled": wait_state(
                "stalled", "Stalled", lambda o: (condition(o, "Stalled") or {}).get("status") == "True"
            ),
            "paused": wait_state("paused", "Paused", lambda o: _reason(o) == "Paused"),
            "paused-ready": wait_state("paused-ready", "Paused", lambda o: _reason(o) == "Paused"),
            "deleting": wait_state(
                "deleting",
                "accepted deletion",
                lambda o: (o.get("status", {}).get("deletion") or {}).get("result") == "Accepted",
            ),
            "delete-failed": wait_state("delete-failed", "DeleteFailed", lambda o: _reason(o) == "DeleteFailed"),
        }
        for obj in states.values():
            obj["metadata"].pop("managedFields", None)
        if os.environ.get("CAPTURE_CR_STATES"):
            FIXTURES.parent.mkdir(exist_ok=True)
            FIXTURES.write_text(json.dumps(states, indent=2, sort_keys=True) + "\n")
        yield states
    finally:
        operator.stop()
        simulator.stop()
        # The cloud was told to take an hour: release what is left by hand (test data only).
        for item in json.loads(control_plane.kubectl("get", "rmqi", "-n", namespace, "-o", "json").stdout)["items"]:
            control_plane.kubectl(
                "patch", "rmqi", item["metadata"]["name"], "-n", namespace, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}', check=False,
            )  # fmt: skip
        control_plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.mark.controlplane
@pytest.mark.e2e
@pytest.mark.parametrize("state", list(EXPECTED))
def test_live_state_reads_as_expected_by_argo_cd_and_kstatus(
    live_states: dict[str, dict[str, Any]],
    kstatus_binary: Path,
    flux_exprs: Path,
    control_plane: ControlPlane,
    state: str,
) -> None:
    argo, expected_kstatus, expected_flux = EXPECTED[state]
    obj = live_states[state]
    health = argo_health(obj)
    assert health["status"] == argo, health
    assert health["message"]
    # kstatus reads the object as `kubectl get -o json` prints it from the API server, right now.
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    live = control_plane.kubectl("get", "rmqi", name, "-n", namespace, "-o", "json").stdout
    result = kstatus(kstatus_binary, [json.loads(live)], flux_exprs)[name]
    assert result["status"] == expected_kstatus
    assert result.get("flux") == expected_flux, result


@pytest.mark.controlplane
@pytest.mark.e2e
def test_states_carry_what_the_checks_rely_on(live_states: dict[str, dict[str, Any]]) -> None:
    for state, obj in live_states.items():
        if not obj["metadata"].get("deletionTimestamp"):
            # (Setting deletionTimestamp bumps a CR's generation; the operator's deletion path records it
            # in the conditions only, which no health reader minds: deletion is checked first.)
            assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"], state
        types = {c["type"] for c in obj["status"]["conditions"]}
        assert types == {"Ready", "Reconciling", "Stalled"}, state
        for c in obj["status"]["conditions"]:
            assert c["observedGeneration"] == obj["metadata"]["generation"], (state, c)
    for state in ("deleting", "delete-failed"):
        assert live_states[state]["metadata"]["deletionTimestamp"]
        assert FINALIZER in live_states[state]["metadata"]["finalizers"]


def _fixtures() -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = json.loads(FIXTURES.read_text())
    return states


def test_captured_states_cover_every_expected_state() -> None:
    assert set(_fixtures()) == set(EXPECTED)


@pytest.mark.parametrize("state", list(EXPECTED))
def test_captured_state_reads_as_expected_by_argo_cd(state: str) -> None:
    assert argo_health(_fixtures()[state])["status"] == EXPECTED[state][0]


def test_captured_states_read_as_expected_by_kstatus_and_flux(kstatus_binary: Path, flux_exprs: Path) -> None:
    states = _fixtures()
    results = kstatus(kstatus_binary, states.values(), flux_exprs)
    for state, obj in states.items():
        row = results[obj["metadata"]["name"]]
        assert (row["status"], row.get("flux")) == EXPECTED[state][1:], state


def _newer_spec(obj: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    changed["metadata"]["generation"] += 1
    return changed


def test_a_spec_change_the_operator_has_not_seen_yet_is_in_progress(kstatus_binary: Path, flux_exprs: Path) -> None:
    ready = _newer_spec(_fixtures()["ready"])
    health = argo_health(ready)
    assert health["status"] == "Progressing"
    assert f"generation {ready['metadata']['generation']}" in health["message"]
    row = kstatus(kstatus_binary, [ready], flux_exprs)[ready["metadata"]["name"]]
    assert (row["status"], row.get("flux")) == ("InProgress", "InProgress")


def test_a_cr_the_operator_has_not_seen_yet(kstatus_binary: Path, flux_exprs: Path) -> None:
    # No status at all: Argo CD waits; kstatus cannot tell it from a finished object; Flux's CEL errs.
    fresh = copy.deepcopy(_fixtures()["ready"])
    del fresh["status"]
    assert argo_health(fresh)["status"] == "Progressing"
    row = kstatus(kstatus_binary, [fresh], flux_exprs)[fresh["metadata"]["name"]]
    assert row["status"] == "Current"
    assert "no such attribute" in row["fluxError"]


def test_the_docs_table_says_what_the_tests_measure() -> None:
    rows = doc_table()
    for (state, expected), row in zip(EXPECTED.items(), rows, strict=False):
        assert tuple(row[2:5]) == expected, (state, row)
    spec_change, no_status = rows[len(EXPECTED)], rows[len(EXPECTED) + 1]
    assert spec_change[2:5] == ["Progressing", "InProgress", "InProgress"]
    assert no_status[2:5] == ["Progressing", "Current", "error, retried"]


def test_the_docs_argocd_cm_carries_the_charts_lua_check_verbatim() -> None:
    [config_map] = [yaml.safe_load(b) for b in doc_blocks("yaml") if "argocd-cm" in b]
    key = "resource.customizations.health.dms.rocketmq-operator.io_RocketMQInstance"
    assert config_map["data"][key] == LUA_CHECK.read_text()


def test_a_cr_without_status_is_progressing_and_a_pause_value_is_read_as_the_operator_reads_it() -> None:
    bare = {
        "apiVersion": "dms.rocketmq-operator.io/v1alpha1",
        "kind": "RocketMQInstance",
        "metadata": {"name": "x", "generation": 1},
    }
    assert argo_health(bare)["status"] == "Progressing"
    for value, expected in (("TRUE", "Suspended"), ("false", "Healthy"), ("yes", "Healthy")):
        ready = copy.deepcopy(_fixtures()["ready"])
        ready["metadata"].setdefault("annotations", {})[PAUSED] = value
        assert argo_health(ready)["status"] == expected, value


def test_instance_error_in_the_cloud_is_degraded_not_progressing(kstatus_binary: Path) -> None:
    # Ready False, not reconciling, not stalled: the cloud reports ERROR and the operator waits for it.
    ready = copy.deepcopy(_fixtures()["ready"])
    for c in ready["status"]["conditions"]:
        c.update({"reason": "InstanceError", "message": "the cloud reports instance x as ERROR"})
        c["status"] = "False"
    health = argo_health(ready)
    assert health == {"status": "Degraded", "message": "InstanceError: the cloud reports instance x as ERROR"}
    # kstatus knows only "not Ready yet" here.
    assert kstatus(kstatus_binary, [ready])[ready["metadata"]["name"]]["status"] == "InProgress"


@pytest.mark.controlplane
def test_the_documented_patch_installs_the_check_and_keeps_argocd_cms_other_keys(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    [command] = [b for b in doc_blocks("bash") if "argocd-cm" in b]
    namespace = f"argocd-{os.getpid()}"
    control_plane.kubectl("create", "namespace", namespace)
    control_plane.kubectl(
        "create", "configmap", "argocd-cm", "-n", namespace, "--from-literal=url=https://argocd.example"
    )
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "KUBECONFIG": str(control_plane.kubeconfig_path),
        "HOME": str(tmp_path),
    }
    script = command.replace("-n argocd ", f"-n {namespace} ")
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env, check=True, capture_output=True)
    data = json.loads(control_plane.kubectl("get", "configmap", "argocd-cm", "-n", namespace, "-o", "json").stdout)[
        "data"
    ]
    assert data["url"] == "https://argocd.example"
    assert data["resource.customizations.health.dms.rocketmq-operator.io_RocketMQInstance"] == LUA_CHECK.read_text()
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false")
