"""A chart release on the real API server, and its operator run as the release's ServiceAccount."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devstack import SimulatorProcess
from kube_testenv import ControlPlane, ManagedProcess, free_ports

from .kit import CHART, Helm, PodRunner, args_value, container, find, manifest, service_account_kubeconfig, wait_live


def fast_values(simulator: SimulatorProcess) -> dict[str, Any]:
    """Values that point the operator at the simulator, with short intervals and credentials in a chart Secret."""
    probe_port, metrics_port = free_ports(2)
    return {
        "settings": {
            "endpoint": simulator.url,
            "projectId": simulator.project_id,
            "pollIntervalSeconds": 1.0,
            "verifyIntervalSeconds": 0.5,
            "batchWindowSeconds": 1.0,
            "sweepIntervalSeconds": 2.0,
            "deleteConfirmWaitSeconds": 5.0,
            "rateLimitRps": 200.0,
            "rateLimitBurst": 200,
        },
        "credentials": {"create": True, "accessKey": simulator.access_key, "secretKey": simulator.secret_key},
        # Every replica here shares the host's network, unlike pods: free ports instead of 8080/9090.
        "probes": {"port": probe_port},
        "metrics": {"port": metrics_port},
        "verbose": True,
        "logFormat": "plain",
    }


@dataclass
class Release:
    helm: Helm
    control_plane: ControlPlane
    name: str
    namespace: str

    @classmethod
    def install(cls, helm: Helm, control_plane: ControlPlane, values: Mapping[str, Any], prefix: str) -> Release:
        """``helm install`` into a fresh namespace that enforces the restricted Pod Security Standard."""
        suffix = secrets.token_hex(3)
        release = cls(helm, control_plane, f"{prefix}-{suffix}", f"{prefix}-system-{suffix}")
        control_plane.kubectl("create", "namespace", release.namespace)
        control_plane.kubectl(
            "label",
            "namespace",
            release.namespace,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        )
        # No --wait: without a kubelet the Deployment never becomes available.
        helm.run(
            "install", release.name, str(CHART), "--namespace", release.namespace,
            "--values", str(helm.values_file(values)),
        )  # fmt: skip
        return release

    @property
    def fullname(self) -> str:
        return f"{self.name}-rocketmq-operator"

    def manifest(self) -> list[dict[str, Any]]:
        return manifest(self.helm, self.name, self.namespace)

    def hooks(self) -> list[dict[str, Any]]:
        text = self.helm.run("get", "hooks", self.name, "--namespace", self.namespace).stdout
        return [d for d in yaml.safe_load_all(text) if d]

    def deployment(self) -> dict[str, Any]:
        return find(self.manifest(), "Deployment")

    def service_account(self) -> str:
        name: str = self.deployment()["spec"]["template"]["spec"]["serviceAccountName"]
        return name

    def kubeconfig_as_operator(self, path: Path) -> Path:
        return service_account_kubeconfig(self.control_plane, self.namespace, self.service_account(), path)

    def runner(self, kubeconfig: Path, pod_name: str) -> PodRunner:
        return PodRunner(self.control_plane, self.namespace, kubeconfig, pod_name)

    def start_operator(
        self, kubeconfig: Path, log_path: Path, *, pod_name: str = "operator-0", ports: tuple[int, int] | None = None
    ) -> ManagedProcess:
        """The Deployment's container as a process, as the release's ServiceAccount; returns once live.

        ``ports`` (liveness, metrics) only moves the two listening ports, for a second replica on the same
        host: pods each have their own network namespace, local processes do not.
        """
        spec = container(self.deployment())
        if ports is not None:
            spec = json.loads(json.dumps(spec))
            moved = {
                "--liveness": f"--liveness=http://0.0.0.0:{ports[0]}/healthz",
                "--metrics-port": f"--metrics-port={ports[1]}",
            }
            spec["args"] = [moved.get(a.split("=", 1)[0], a) for a in spec["args"]]
        log_path.unlink(missing_ok=True)  # ManagedProcess appends; an earlier run's lines would mislead
        process = self.runner(kubeconfig, pod_name).process(spec, log_path=log_path)
        process.start()
        url = args_value(spec["args"], "--liveness").replace("0.0.0.0", "127.0.0.1")
        wait_live(process, url)
        return process

    def uninstall_without_hooks(self) -> None:
        """Test teardown: the hook's Job would never run here (no kubelet)."""
        self.helm.run("uninstall", self.name, "--namespace", self.namespace, "--no-hooks", check=False)
        self.control_plane.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)
