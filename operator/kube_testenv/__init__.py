"""A real local Kubernetes control plane for tests and local runs (envtest, for Python).

Typical use::

    from kube_testenv import ControlPlane

    with ControlPlane() as cp:
        cp.kubectl("get", "namespaces")
        client = cp.api_client()

Building blocks (binaries, certificates, kubeconfig, supervised processes) are exported too, for tools
that assemble their own stack (e.g. control plane + simulator + operator).
"""

from .binaries import (
    PINNED_K8S,
    Binaries,
    BinariesError,
    build_binaries,
    kubectl_path,
    locate_binaries,
    selected_k8s,
)
from .certs import Certificates, generate_certificates
from .controlplane import DEFAULT_CONTROLLERS, ControlPlane, ControlPlaneError
from .existing import existing_kubeconfig, use_existing_cluster
from .kubeconfig import current_server_url, read_kubeconfig, render_kubeconfig, with_token, write_kubeconfig
from .kubectl import KubectlError, run_kubectl
from .processes import ManagedProcess, ProcessError, free_ports, live_processes, stop_all, wait_for

__all__ = [
    "DEFAULT_CONTROLLERS",
    "PINNED_K8S",
    "Binaries",
    "BinariesError",
    "Certificates",
    "ControlPlane",
    "ControlPlaneError",
    "KubectlError",
    "ManagedProcess",
    "ProcessError",
    "build_binaries",
    "current_server_url",
    "existing_kubeconfig",
    "free_ports",
    "generate_certificates",
    "kubectl_path",
    "live_processes",
    "locate_binaries",
    "read_kubeconfig",
    "render_kubeconfig",
    "run_kubectl",
    "selected_k8s",
    "stop_all",
    "use_existing_cluster",
    "wait_for",
    "with_token",
    "write_kubeconfig",
]
