"""The control plane is the pinned Kubernetes release, built from the pinned Go modules.

The apiserver reports the release it was stamped with (the build's ldflags), and the Go build info
embedded in each binary names the exact modules it was compiled from: k8s.io/kubernetes v1.36.3 with
each staging module (k8s.io/api, client-go, ...) replaced by its v0.36.3 release, etcd's server module
v3.6.16 and helm v3.22.0. With ``KUBE_TESTENV_K8S=1.30`` (make test-k8s-oldest) the same holds for
v1.30.14 and v0.30.14, etcd and helm unchanged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client

from kube_testenv import PINNED_K8S, Binaries, BinariesError, ControlPlane, selected_k8s, use_existing_cluster
from kube_testenv.binaries import BUILD_SCRIPT, K8S_ENV

pytestmark = [pytest.mark.controlplane, pytest.mark.k8s_oldest]

K8S_MINOR = selected_k8s()
K8S_VERSION = PINNED_K8S[K8S_MINOR]
STAGING_VERSION = K8S_VERSION.replace("v1.", "v0.", 1)
ETCD_VERSION = "v3.6.16"
HELM_VERSION = "v3.22.0"
# k8s.io modules that live in their own repositories, not in kubernetes' staging/ folder: never replaced.
NOT_STAGING = {"k8s.io/klog/v2", "k8s.io/kube-openapi", "k8s.io/utils", "k8s.io/gengo/v2"}

local_build_only = pytest.mark.skipif(
    use_existing_cluster(), reason="USE_EXISTING_CLUSTER: the cluster is not the one built here"
)


@dataclass
class BuildInfo:
    """The parts of ``go version -m`` the tests need."""

    path: str = ""
    main: tuple[str, str] = ("", "")
    deps: dict[str, str] = field(default_factory=dict)
    """module -> version actually compiled in (the replacement's, if replaced)"""
    replaced: set[str] = field(default_factory=set)


def test_the_build_script_pins_the_releases_kube_testenv_expects() -> None:
    """Each minor in the script's table builds the release PINNED_K8S names, from a module that requires it."""
    table = re.findall(r"^\s*(\d+\.\d+)\) K8S_VERSION=(v\S+) k8s_module=(\S+) ;;$", BUILD_SCRIPT.read_text(), re.M)
    assert {minor: version for minor, version, _ in table} == PINNED_K8S
    for _, version, module in table:
        go_mod = (BUILD_SCRIPT.parent / module / "go.mod").read_text()
        assert re.search(rf"^(require )?\s*k8s\.io/kubernetes {re.escape(version)}( //|$)", go_mod, re.M), module
        staging = version.replace("v1.", "v0.", 1)
        assert f"replace k8s.io/apiserver => k8s.io/apiserver {staging}" in go_mod, module


def test_an_unpinned_minor_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(K8S_ENV, "1.29")
    with pytest.raises(BinariesError, match=r"KUBE_TESTENV_K8S=1\.29.*known: 1\.36, 1\.30"):
        selected_k8s()
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "1.29"], capture_output=True, text=True, check=False)
    assert (out.returncode, out.stdout) == (2, "")
    assert "no pinned Kubernetes 1.29" in out.stderr


def go_binary() -> str:
    found = shutil.which("go") or "/usr/local/go/bin/go"
    assert os.access(found, os.X_OK), "the Go toolchain (which built the binaries) is needed to read build info"
    return found


def build_info(binary: Path) -> BuildInfo:
    out = subprocess.run([go_binary(), "version", "-m", str(binary)], capture_output=True, text=True, check=True)
    info = BuildInfo()
    last_dep = ""
    for line in out.stdout.splitlines()[1:]:
        parts = line.split("\t")[1:]
        kind = parts[0]
        if kind == "path":
            info.path = parts[1]
        elif kind == "mod":
            info.main = (parts[1], parts[2])
        elif kind == "dep":
            last_dep = parts[1]
            info.deps[last_dep] = parts[2]
        elif kind == "=>":
            # A replacement applies to the dep line just above it.
            assert parts[1] == last_dep, f"{last_dep} replaced by another module {parts[1]}"
            info.deps[last_dep] = parts[2]
            info.replaced.add(last_dep)
    return info


@local_build_only
def test_apiserver_reports_the_pinned_release_to_kubectl(control_plane: ControlPlane) -> None:
    version = json.loads(control_plane.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"] == K8S_VERSION
    assert (version["major"], version["minor"]) == tuple(K8S_MINOR.split("."))


@local_build_only
def test_apiserver_reports_the_pinned_release_to_the_python_client(kube_api_client: client.ApiClient) -> None:
    version = client.VersionApi(kube_api_client).get_code()
    assert version.git_version == K8S_VERSION
    assert version.git_tree_state == "clean"


@local_build_only
@pytest.mark.parametrize("name", ["kube_apiserver", "kube_controller_manager"])
def test_kubernetes_binaries_are_built_from_the_pinned_modules(control_plane_binaries: Binaries, name: str) -> None:
    info = build_info(getattr(control_plane_binaries, name))
    assert info.path == f"k8s.io/kubernetes/cmd/{name.replace('_', '-')}"
    assert info.main == ("k8s.io/kubernetes", K8S_VERSION)
    staging = {m for m in info.deps if m.startswith("k8s.io/") and m not in NOT_STAGING}
    assert {"k8s.io/api", "k8s.io/apimachinery", "k8s.io/apiserver", "k8s.io/client-go"} <= staging
    wrong = {m: info.deps[m] for m in staging if m not in info.replaced or info.deps[m] != STAGING_VERSION}
    assert wrong == {}, f"staging modules not replaced by {STAGING_VERSION}"


@local_build_only
def test_etcd_is_built_from_the_pinned_server_module(control_plane_binaries: Binaries) -> None:
    info = build_info(control_plane_binaries.etcd)
    assert info.deps["go.etcd.io/etcd/server/v3"] == ETCD_VERSION
    # The wrapper module runs etcd's own main (etcdmain), nothing of ours.
    assert info.deps["go.etcd.io/etcd/api/v3"] == ETCD_VERSION


@local_build_only
def test_helm_is_built_from_the_pinned_module(control_plane_binaries: Binaries) -> None:
    info = build_info(control_plane_binaries.helm)
    assert info.path == "helm.sh/helm/v3/cmd/helm"
    assert info.main == ("helm.sh/helm/v3", HELM_VERSION)
    out = subprocess.run(
        [str(control_plane_binaries.helm), "version", "--short"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith(HELM_VERSION)


@local_build_only
def test_helm_renders_charts_for_the_pinned_kubernetes_minor(control_plane_binaries: Binaries, tmp_path: Path) -> None:
    """helm's default KubeVersion comes from ldflags that Go ignores silently when a symbol is misnamed."""
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "version.yaml").write_text("kube: {{ .Capabilities.KubeVersion.Version }}\n")
    out = subprocess.run(
        [str(control_plane_binaries.helm), "template", "probe", str(chart)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"kube: v{K8S_MINOR}.0" in out.stdout
