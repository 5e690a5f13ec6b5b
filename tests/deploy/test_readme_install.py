"""README's "Install on a real cluster" works as written: its commands against the chart and the real API server."""

from __future__ import annotations

import json
import re
import secrets
import shlex
from typing import Any

import pytest
import yaml

from devstack.__main__ import install_crd
from kube_testenv import ControlPlane

from .kit import FINALIZER, ROOT, Helm, container, find, plain_env

# What a newcomer would have exported; shaped like the real thing so the chart's schema judges them.
SAMPLE_ENV = {
    "HUAWEI_AK": "HPUAEXAMPLEAK0000001",
    "HUAWEI_SK": "ExampleSecretKey0123456789abcdefghijKLMN",
    "HUAWEI_TOKEN": "MIIexampletoken",
    "HUAWEI_PROJECT_ID": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
}


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Install on a real cluster")
    end = text.index("\n## ", start + 3)
    return text[start:end]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", _section(), flags=re.M | re.S)


def _commands() -> list[list[str]]:
    """Every shell command of the section, continuation lines joined, variables filled in, comments dropped."""
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            for name, value in SAMPLE_ENV.items():
                line = line.replace(f'"${name}"', value).replace(f"${name}", value)
            commands.append(shlex.split(line))
    return commands


def _helm_install() -> list[str]:
    [install] = [c for c in _commands() if c[:2] == ["helm", "install"]]
    return install


def _rendered(helm: Helm) -> list[dict[str, Any]]:
    args = _helm_install()
    return [d for d in yaml.safe_load_all(helm.run("template", *args[2:]).stdout) if d]


def test_the_documented_install_renders_and_wires_the_documented_secret(helm: Helm) -> None:
    docs = _rendered(helm)
    deployment = find(docs, "Deployment")
    assert deployment["metadata"]["name"] == "rocketmq-operator"
    assert container(deployment)["image"] == "registry.example.com/platform/rocketmq-operator:0.1.0"
    env = plain_env(deployment)
    assert env["DMS_REGION"] == "cn-north-4"
    assert env["DMS_PROJECT_ID"] == SAMPLE_ENV["HUAWEI_PROJECT_ID"]
    # The Secret the README creates, with the keys it creates, is the one the chart reads.
    [create] = [c for c in _commands() if c[:2] == ["kubectl", "-n"] and "secret" in c]
    secret_name = create[create.index("generic") + 1]
    literal_keys = {a.split("=", 2)[1] for a in create if a.startswith("--from-literal=")}
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container(deployment)["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert {r["name"] for r in refs.values()} == {secret_name}
    assert refs["DMS_ACCESS_KEY"]["key"] in literal_keys and refs["DMS_SECRET_KEY"]["key"] in literal_keys
    token_line = next(line for line in _blocks("bash")[1].splitlines() if "authToken" in line)
    assert refs["DMS_AUTH_TOKEN"]["key"] in token_line


def test_the_names_the_readme_uses_are_the_ones_the_chart_creates(helm: Helm) -> None:
    docs = _rendered(helm)
    section = _section()
    names = re.findall(r"(?:deployment|job)/([a-z0-9-]+)", section)
    assert names, "the README's install section names no deployment/ or job/"
    for name in names:
        assert name in {d["metadata"]["name"] for d in docs if d["kind"] in ("Deployment", "Job")}, name
    chart_crds = {
        d["metadata"]["name"]
        for path in (ROOT / "deploy/helm/rocketmq-operator/crds").iterdir()
        for d in yaml.safe_load_all(path.read_text())
    }
    mentioned = set(re.findall(r"kubectl delete crd ([a-z.-]+)", section)) | set(
        re.findall(r"`([a-z]+\.kopf\.dev)`", section)
    )
    assert mentioned == chart_crds
    set_values = re.findall(r"`([a-zA-Z]+(?:\.[a-zA-Z]+)+)=", section)
    assert set_values, "the README's install section sets no chart value (`a.b=...`)"
    for value in set_values:
        top, *rest = value.split(".")
        values = yaml.safe_load((ROOT / "deploy/helm/rocketmq-operator/values.yaml").read_text())
        node = values[top]
        for key in rest:
            node = node[key]


@pytest.mark.controlplane
def test_the_readmes_instance_is_accepted_by_the_api_server(control_plane: ControlPlane) -> None:
    install_crd(control_plane)
    [manifest] = [b for b in _blocks("yaml") if "kind: RocketMQInstance" in b]
    instance = yaml.safe_load(manifest)
    namespace = f"readme-{secrets.token_hex(3)}"
    control_plane.kubectl("create", "namespace", namespace)
    instance["metadata"]["namespace"] = namespace
    result = control_plane.kubectl(
        "create", "--dry-run=server", "--validate=strict", "-f", "-", input=json.dumps(instance), check=False
    )
    assert result.returncode == 0, result.stderr
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.mark.controlplane
def test_the_emergency_finalizer_patch_releases_a_stuck_cr(control_plane: ControlPlane) -> None:
    install_crd(control_plane)
    namespace = f"readme-{secrets.token_hex(3)}"
    control_plane.kubectl("create", "namespace", namespace)
    [manifest] = [b for b in _blocks("yaml") if "kind: RocketMQInstance" in b]
    instance = yaml.safe_load(manifest)
    instance["metadata"].update({"namespace": namespace, "finalizers": [FINALIZER]})
    control_plane.kubectl("create", "-f", "-", input=json.dumps(instance))
    name = instance["metadata"]["name"]
    # No operator serves this namespace: the delete hangs on the finalizer, as it would without one.
    control_plane.kubectl("delete", "rmqi", name, "-n", namespace, "--wait=false")
    stuck = json.loads(control_plane.kubectl("get", "rmqi", name, "-n", namespace, "-o", "json").stdout)
    assert stuck["metadata"]["deletionTimestamp"]
    [patch] = [c for c in _commands() if "patch" in c and "finalizers" in " ".join(c)]
    patch = [a.replace("payments", namespace) if a == "payments" else a for a in patch]
    control_plane.kubectl(*patch[1:])
    gone = control_plane.kubectl("get", "rmqi", name, "-n", namespace, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false")
