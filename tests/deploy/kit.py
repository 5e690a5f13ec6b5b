"""Helpers for the deploy tests: the chart through the real helm, and a pod's container run as a process.

No kubelet runs in the local control plane, so nothing the chart creates ever runs as a Pod. Where a
test needs the operator (or the uninstall hook) running, ``PodRunner`` plays the kubelet for one
container of a rendered pod template: the same argv, the environment resolved the way the kubelet
resolves it (plain values, ``secretKeyRef`` from the real Secret, ``fieldRef``), and the identity of the
pod's ServiceAccount through a token from ``kubectl create token``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from kube_testenv import ControlPlane, ManagedProcess, ProcessError

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "rocketmq-operator"
GROUP, VERSION, PLURAL = "dms.rocketmq-operator.io", "v1alpha1", "rocketmqinstances"
FINALIZER = f"{GROUP}/finalizer"
CR_PLURALS = ("rocketmqinstances", "rocketmqtopics", "rocketmqconsumergroups", "rocketmqusers")
"""Every kind the operator serves; RBAC, the uninstall guard and the chart's CRDs cover each one."""
ACCOUNT_PLURALS = ("rocketmqaccounts", "clusterrocketmqaccounts")
"""The account kinds (namespaced, cluster-scoped): served like the CRs, but no cloud object of their own."""


class Helm:
    """The helm binary built from its Go module, with its own config/cache folders (never the user's)."""

    def __init__(self, binary: Path, home: Path, kubeconfig: Path | None = None) -> None:
        self.binary = binary
        self.home = home
        self.kubeconfig = kubeconfig

    def run(self, *args: str, check: bool = True, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        result = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}")
        return result

    def values_file(self, values: Mapping[str, Any]) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / f"values-{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump(dict(values)))
        return path

    def template(
        self, values: Mapping[str, Any] | None = None, *, release: str = "rmq", namespace: str = "rmq-system"
    ) -> list[dict[str, Any]]:
        args = ["template", release, str(CHART), "--namespace", namespace]
        if values:
            args += ["--values", str(self.values_file(values))]
        return [d for d in yaml.safe_load_all(self.run(*args).stdout) if d]

    def template_error(self, values: Mapping[str, Any]) -> str:
        result = self.run("template", "rmq", str(CHART), "--values", str(self.values_file(values)), check=False)
        assert result.returncode != 0, f"helm accepted {values!r}"
        return result.stderr


def find(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"{len(matches)} {kind} named {name!r}: {[d['metadata']['name'] for d in matches]}"
    return matches[0]


def kinds(docs: Iterable[dict[str, Any]]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def container(workload: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    containers: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    return containers[0] if name is None else next(c for c in containers if c["name"] == name)


def plain_env(workload: Mapping[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(workload).get("env", []) if "value" in e}


def manifest(helm: Helm, release: str, namespace: str) -> list[dict[str, Any]]:
    """What the release installed (helm get manifest), as objects."""
    text = helm.run("get", "manifest", release, "--namespace", namespace).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def service_account_kubeconfig(control_plane: ControlPlane, namespace: str, name: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, with a token from the TokenRequest API."""
    token = control_plane.kubectl("create", "token", name, "-n", namespace, "--duration=1h").stdout.strip()
    return control_plane.token_kubeconfig(token, path)


def can_i(control_plane: ControlPlane, kubeconfig: Path, verb: str, resource: str, *scope: str) -> bool:
    """``kubectl auth can-i`` as the identity of ``kubeconfig`` (exits 1 on "no")."""
    result = control_plane.kubectl(f"--kubeconfig={kubeconfig}", "auth", "can-i", verb, resource, *scope, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {verb} {resource} {scope}: {result.stderr}"
    return answer == "yes"


class PodRunner:
    """Runs one container of a rendered pod template as a local process, resolving env like a kubelet."""

    def __init__(self, control_plane: ControlPlane, namespace: str, kubeconfig: Path, pod_name: str) -> None:
        self.control_plane = control_plane
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.pod_name = pod_name

    def _secret(self, name: str) -> dict[str, str] | None:
        result = self.control_plane.kubectl("get", "secret", name, "-n", self.namespace, "-o", "json", check=False)
        if result.returncode != 0:
            return None
        data: dict[str, str] = json.loads(result.stdout).get("data") or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    def environment(self, spec: Mapping[str, Any]) -> dict[str, str]:
        resolved: dict[str, str] = {}
        for entry in spec.get("env", []):
            name = entry["name"]
            if "valueFrom" not in entry:
                # The API server drops an empty value; the kubelet still sets the variable, empty.
                resolved[name] = str(entry.get("value", ""))
                continue
            source = entry["valueFrom"]
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                secret = self._secret(ref["name"])
                if secret is None or ref["key"] not in secret:
                    # The kubelet refuses to start a container with a missing non-optional key.
                    assert ref.get("optional"), f"{name}: secret {ref['name']}/{ref['key']} missing"
                    continue
                resolved[name] = secret[ref["key"]]
            elif "fieldRef" in source:
                path = source["fieldRef"]["fieldPath"]
                resolved[name] = {"metadata.name": self.pod_name, "metadata.namespace": self.namespace}[path]
            else:
                raise AssertionError(f"{name}: unsupported valueFrom {source}")
        return resolved

    def mount_config_maps(
        self,
        pod: Mapping[str, Any],
        spec: Mapping[str, Any],
        root: Path,
        given: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, str]:
        """Write the ConfigMap volumes the container mounts under ``root``; returns mountPath -> local folder.

        ConfigMaps come from the cluster, or from ``given`` (name -> manifest) for ones not created yet.
        """
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounted: dict[str, str] = {}
        for mount in spec.get("volumeMounts", []):
            source = volumes[mount["name"]].get("configMap")
            if source is None:
                continue
            if given is not None and source["name"] in given:
                config_map = given[source["name"]]
            else:
                found = self.control_plane.kubectl(
                    "get", "configmap", source["name"], "-n", self.namespace, "-o", "json"
                )
                config_map = json.loads(found.stdout)
            folder = root / mount["name"]
            folder.mkdir(parents=True, exist_ok=True)
            for key, text in (config_map.get("data") or {}).items():
                (folder / key).write_text(text)
            mounted[mount["mountPath"]] = str(folder)
        return mounted

    def process(
        self,
        spec: Mapping[str, Any],
        *,
        log_path: Path,
        bin_dir: Path | None = None,
        mounts: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        """The container as a process; its executable is looked up in ``bin_dir`` (default: this venv's).

        The image's PATH starts with its virtualenv, so a bare ``rocketmq-operator`` or ``python`` there is
        the virtualenv's; here that is ``bin_dir``. Paths under a mounted volume point at its local copy.
        """
        argv = [*spec.get("command", ["rocketmq-operator"]), *spec.get("args", [])]
        folder = bin_dir or Path(sys.executable).parent
        argv[0] = str(folder / argv[0])
        for mount_path, local in (mounts or {}).items():
            argv = [a.replace(mount_path, local, 1) if a.startswith(mount_path) else a for a in argv]
        base = {k: v for k, v in os.environ.items() if not k.startswith("DMS_") and k != "KUBECONFIG"}
        env = {**base, **self.environment(spec), "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        return ManagedProcess(spec.get("name", "container"), argv, log_path=log_path, env=env)


def report_job_outcome(control_plane: ControlPlane, namespace: str, name: str, *, succeeded: bool) -> None:
    """What the Job controller would write once the pod ended: the terminal conditions Helm waits for."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def cond(kind: str, reason: str) -> dict[str, str]:
        return {"type": kind, "status": "True", "reason": reason, "message": reason, "lastTransitionTime": now}

    if succeeded:
        status = {
            "startTime": now,
            "completionTime": now,
            "succeeded": 1,
            "conditions": [cond("SuccessCriteriaMet", "CompletionsReached"), cond("Complete", "CompletionsReached")],
        }
    else:
        status = {
            "startTime": now,
            "failed": 1,
            "conditions": [cond("FailureTarget", "BackoffLimitExceeded"), cond("Failed", "BackoffLimitExceeded")],
        }
    control_plane.kubectl(
        "patch",
        "job",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def wait_live(process: ManagedProcess, url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise ProcessError(f"{process.name} exited with {code}:\n{process.log_tail(60)}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise ProcessError(f"{process.name} not live at {url} within {timeout}s:\n{process.log_tail(60)}")


def forbidden_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "forbidden" in line.lower() or "APIForbiddenError" in line]


def rocketmq_instance(name: str, spec: Mapping[str, Any], annotations: Mapping[str, str] | None = None) -> str:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RocketMQInstance",
        "metadata": {"name": name, "annotations": dict(annotations or {})},
        "spec": dict(spec),
    }
    return json.dumps(body)


def args_value(args: Sequence[str], flag: str) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith(f"{flag}="))
