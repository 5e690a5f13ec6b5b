"""helm uninstall is refused while RocketMQInstances (or their topics and consumer groups) still need the
operator, and goes through once they are gone.

No kubelet runs here, so the pre-delete hook's Job would never start a pod and helm would wait until its
timeout. The test plays the kubelet and the Job controller instead: it runs the Job's container exactly as
rendered (same command, env, ServiceAccount, the hook ConfigMap's script at its mount path) and writes the
outcome into the Job's status, which is what helm watches.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack import SimulatorProcess
from e2e.support import wait_for
from instance_spec import SPEC
from kube_testenv import ControlPlane, ManagedProcess

from .kit import (
    FINALIZER,
    GROUP,
    VERSION,
    Helm,
    container,
    report_job_outcome,
    rocketmq_instance,
    service_account_kubeconfig,
)
from .release import Release, fast_values

pytestmark = [pytest.mark.controlplane, pytest.mark.e2e]


@pytest.fixture
def release(cluster_helm: Helm, control_plane: ControlPlane, simulator: SimulatorProcess) -> Iterator[Release]:
    """A release of its own per test: the main scenario uninstalls it."""
    installed = Release.install(cluster_helm, control_plane, fast_values(simulator), "guard")
    try:
        yield installed
    finally:
        installed.uninstall_without_hooks()


@pytest.fixture
def as_operator(release: Release, tmp_path: Path) -> Path:
    return release.kubeconfig_as_operator(tmp_path / "operator.kubeconfig")


@pytest.fixture
def operator(release: Release, as_operator: Path, artifacts: Path) -> Iterator[ManagedProcess]:
    process = release.start_operator(as_operator, artifacts / "operator.log")
    try:
        yield process
    finally:
        process.stop()


@dataclass
class HookRun:
    exit_code: int
    output: str


def run_guard(
    release: Release,
    job: dict[str, Any],
    kubeconfig: Path,
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    config_maps: dict[str, dict[str, Any]] | None = None,
) -> HookRun:
    """The hook Job's container as a process, as the Job's ServiceAccount (the kubelet's part)."""
    pod = job["spec"]["template"]["spec"]
    spec = container(job)
    if env:
        spec = {
            **spec,
            "env": [e for e in spec["env"] if e["name"] not in env] + [{"name": k, "value": v} for k, v in env.items()],
        }
    runner = release.runner(kubeconfig, f"{job['metadata']['name']}-pod")
    mounts = runner.mount_config_maps(pod, spec, workdir / "volumes", config_maps)
    log = workdir / "guard.log"
    log.unlink(missing_ok=True)
    process = runner.process(spec, log_path=log, mounts=mounts)
    process.start()
    deadline = time.monotonic() + 60
    while (code := process.poll()) is None:
        assert time.monotonic() < deadline, "the guard did not finish within 60 s"
        time.sleep(0.1)
    return HookRun(code, log.read_text())


def uninstall_playing_kubelet(
    release: Release, kubeconfig: Path, workdir: Path
) -> tuple[subprocess.CompletedProcess[str], HookRun]:
    """``helm uninstall`` with the hook Job run by the test; returns helm's result and the hook's."""
    control_plane = release.control_plane
    job_name = f"{release.fullname}-uninstall-guard"
    before = control_plane.kubectl("get", "job", job_name, "-n", release.namespace, "-o", "json", check=False)
    old_uid = json.loads(before.stdout)["metadata"]["uid"] if before.returncode == 0 else None
    helm = subprocess.Popen(
        [str(release.helm.binary), "uninstall", release.name, "-n", release.namespace, "--timeout", "120s"],
        env={
            "PATH": "/usr/bin:/bin",
            "KUBECONFIG": str(control_plane.kubeconfig_path),
            "HELM_CACHE_HOME": str(release.helm.home / "cache"),
            "HELM_CONFIG_HOME": str(release.helm.home / "config"),
            "HELM_DATA_HOME": str(release.helm.home / "data"),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def created_job() -> dict[str, Any] | None:
            found = control_plane.kubectl("get", "job", job_name, "-n", release.namespace, "-o", "json", check=False)
            if found.returncode != 0:
                return None
            job: dict[str, Any] = json.loads(found.stdout)
            return job if job["metadata"]["uid"] != old_uid else None

        job = wait_for(created_job, timeout=60, what="helm to create the pre-delete hook's Job")
        hook = run_guard(release, job, kubeconfig, workdir)
        report_job_outcome(control_plane, release.namespace, job_name, succeeded=hook.exit_code == 0)
        stdout, stderr = helm.communicate(timeout=120)
    finally:
        if helm.poll() is None:
            helm.kill()
            helm.communicate()
    return subprocess.CompletedProcess(helm.args, helm.returncode, stdout, stderr), hook


def _exists(control_plane: ControlPlane, *what: str) -> bool:
    return control_plane.kubectl("get", *what, check=False).returncode == 0


def test_uninstall_is_refused_while_a_cr_needs_the_operator_and_goes_through_once_it_is_gone(
    release: Release,
    operator: ManagedProcess,
    as_operator: Path,
    control_plane: ControlPlane,
    simulator: SimulatorProcess,
    tmp_path: Path,
) -> None:
    namespace = f"guarded-{secrets.token_hex(3)}"
    control_plane.kubectl("create", "namespace", namespace)
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=rocketmq_instance("keeper", SPEC))

    def ready() -> dict[str, Any] | None:
        cr: dict[str, Any] = json.loads(
            control_plane.kubectl("get", "rmqi", "keeper", "-n", namespace, "-o", "json").stdout
        )
        conditions = cr.get("status", {}).get("conditions", [])
        return cr if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else None

    instance_id = wait_for(ready, timeout=60, what="keeper Ready")["status"]["instanceId"]

    # 1. Refused: the hook names the CR, helm stops before deleting anything.
    helm, hook = uninstall_playing_kubelet(release, as_operator, tmp_path)
    assert hook.exit_code == 1
    assert f"{namespace}/keeper: instance {instance_id}" in hook.output
    assert "kubectl delete rocketmqinstances" in hook.output and "--no-hooks" in hook.output
    assert helm.returncode != 0
    assert "uninstall-guard failed" in helm.stderr
    fullname = release.fullname
    for kind in ("deployment", "serviceaccount", "service"):
        assert _exists(
            control_plane, kind, f"{fullname}" if kind != "service" else f"{fullname}-metrics", "-n", release.namespace
        )
    assert _exists(control_plane, "clusterrole", fullname) and _exists(control_plane, "clusterrolebinding", fullname)
    cr = json.loads(control_plane.kubectl("get", "rmqi", "keeper", "-n", namespace, "-o", "json").stdout)
    assert FINALIZER in cr["metadata"]["finalizers"]
    assert (simulator.admin.instance(instance_id) or {}).get("status") == "RUNNING"
    # The refused release is left "uninstalling"; a rollback makes it upgradeable again (README).
    status = json.loads(release.helm.run("status", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "uninstalling"
    release.helm.run("rollback", release.name, str(status["version"]), "-n", release.namespace)
    status = json.loads(release.helm.run("status", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"

    # 2. The operator, still running, deletes the CR and its instance; then the uninstall goes through.
    control_plane.kubectl("delete", "rmqi", "keeper", "-n", namespace, "--timeout=90s")
    assert simulator.admin.instance(instance_id) is None
    helm, hook = uninstall_playing_kubelet(release, as_operator, tmp_path)
    assert hook.exit_code == 0, hook.output
    assert "uninstall may proceed" in hook.output
    assert helm.returncode == 0, helm.stderr
    assert release.helm.run("status", release.name, "-n", release.namespace, check=False).returncode != 0
    assert not _exists(control_plane, "deployment", fullname, "-n", release.namespace)
    assert not _exists(control_plane, "clusterrole", fullname)
    assert not _exists(control_plane, "job", f"{fullname}-uninstall-guard", "-n", release.namespace), "hook-succeeded"
    # Helm never deletes what it installed from crds/: CRs elsewhere, and their data, survive an uninstall.
    assert _exists(control_plane, "crd", "rocketmqinstances.dms.rocketmq-operator.io")
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false")


def _hooks(release: Release) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The hook Job and its ConfigMap as Helm would create them at uninstall time."""
    hooks = release.hooks()
    job = next(h for h in hooks if h["kind"] == "Job")
    return job, {h["metadata"]["name"]: h for h in hooks if h["kind"] == "ConfigMap"}


def test_the_guard_lets_an_uninstall_through_when_no_cr_exists_in_the_served_namespaces(
    release: Release, as_operator: Path, control_plane: ControlPlane, tmp_path: Path
) -> None:
    empty = f"guard-empty-{secrets.token_hex(3)}"
    control_plane.kubectl("create", "namespace", empty)
    job, config_maps = _hooks(release)
    hook = run_guard(release, job, as_operator, tmp_path, env={"WATCH_NAMESPACES": empty}, config_maps=config_maps)
    assert hook.exit_code == 0, hook.output
    counts = "0 RocketMQInstance(s), 0 RocketMQTopic(s), 0 RocketMQConsumerGroup(s), 0 RocketMQUser(s)"
    assert f"{counts} found" in hook.output
    control_plane.kubectl("delete", "namespace", empty, "--wait=false")


def _child(kind: str, name: str) -> str:
    return json.dumps(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            # The operator's finalizer put on by hand: no operator runs here to add or release it.
            "metadata": {"name": name, "finalizers": [FINALIZER]},
            "spec": {"instanceRef": {"name": "keeper"}, "name": f"{name}-in-cloud"},
        }
    )


def test_the_guard_refuses_while_a_topic_or_a_consumer_group_carries_the_finalizer(
    release: Release, as_operator: Path, control_plane: ControlPlane, tmp_path: Path
) -> None:
    # They have cloud objects of their own (in their instance's) that only the operator deletes.
    namespace = f"guard-children-{secrets.token_hex(3)}"
    control_plane.kubectl("create", "namespace", namespace)
    control_plane.kubectl("create", "-n", namespace, "-f", "-", input=_child("RocketMQTopic", "orders"))
    control_plane.kubectl("create", "-n", namespace, "-f", "-", input=_child("RocketMQConsumerGroup", "billing"))
    job, config_maps = _hooks(release)
    guard_env = {"WATCH_NAMESPACES": namespace}
    try:
        hook = run_guard(release, job, as_operator, tmp_path, env=guard_env, config_maps=config_maps)
        assert hook.exit_code == 1, hook.output
        assert "1 RocketMQTopic(s), 1 RocketMQConsumerGroup(s) still need the operator" in hook.output
        assert f"RocketMQTopic {namespace}/orders: orders-in-cloud in RocketMQInstance keeper" in hook.output
        assert f"RocketMQConsumerGroup {namespace}/billing: billing-in-cloud in RocketMQInstance keeper" in hook.output
        assert "kubectl delete rocketmqtopics --all" in hook.output
        assert "kubectl delete rocketmqconsumergroups --all" in hook.output
        assert "kubectl delete rocketmqinstances" not in hook.output, "no instance blocks"

        # A topic without the finalizer (never served, or released) does not need the operator.
        for resource in ("rocketmqtopic/orders", "rocketmqconsumergroup/billing"):
            control_plane.kubectl(
                "patch", "-n", namespace, resource, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
            )
        hook = run_guard(release, job, as_operator, tmp_path, env=guard_env, config_maps=config_maps)
        assert hook.exit_code == 0, hook.output
        counts = "0 RocketMQInstance(s), 1 RocketMQTopic(s), 1 RocketMQConsumerGroup(s), 0 RocketMQUser(s)"
        assert f"{counts} found" in hook.output
    finally:
        for resource in ("rocketmqtopics", "rocketmqconsumergroups"):
            for name in control_plane.kubectl("get", resource, "-n", namespace, "-o", "name").stdout.split():
                control_plane.kubectl(
                    "patch", "-n", namespace, name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
                )
        control_plane.kubectl("delete", "namespace", namespace, "--wait=false")


def test_the_guard_refuses_when_it_cannot_tell(release: Release, control_plane: ControlPlane, tmp_path: Path) -> None:
    # An identity without the operator's rights cannot list the CRs: unknown is treated as "in use".
    control_plane.kubectl("create", "serviceaccount", "nobody", "-n", release.namespace)
    nobody = service_account_kubeconfig(control_plane, release.namespace, "nobody", tmp_path / "nobody.kubeconfig")
    job, config_maps = _hooks(release)
    hook = run_guard(release, job, nobody, tmp_path, config_maps=config_maps)
    assert hook.exit_code == 1
    assert "could not list RocketMQInstances (403" in hook.output
