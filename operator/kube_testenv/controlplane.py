"""A real, throwaway Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

This is what controller-runtime's envtest does for Go, done for Python: the operator's tests talk to the
same API server a cluster runs (admission, OpenAPI and CEL validation, RBAC, finalizers, garbage
collection), never to a mock of it. There are no kubelet and no scheduler, so Pods never run.

Choices that differ from envtest, and why:

* kube-controller-manager runs (namespace, garbage-collector, serviceaccount, serviceaccount-token and
  root-CA publisher controllers), so namespace deletion completes, ownerReferences cascade, and every
  namespace gets its ``default`` ServiceAccount and ``kube-root-ca.crt``, as in a real cluster.
* Because of that, the ServiceAccount admission plugin stays enabled (envtest disables it only because
  nothing would create ``default`` ServiceAccounts). Pods are then defaulted and checked as in a real
  cluster (serviceAccountName, projected token volume; a missing ServiceAccount is rejected). TokenRequest
  (``kubectl create token``) needs only the signing key and issuer flags, not the plugin.
* ``--endpoint-reconciler-type=none``: the apiserver would publish 127.0.0.1 as the ``kubernetes``
  Service's endpoint, which validation rejects as loopback, logging an error every few seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from . import readiness
from .binaries import Binaries, locate_binaries
from .certs import Certificates, generate_certificates
from .existing import existing_kubeconfig, use_existing_cluster
from .kubeconfig import current_server_url, read_kubeconfig, render_kubeconfig, with_token, write_kubeconfig
from .kubectl import run_kubectl
from .processes import ManagedProcess, ProcessError, free_ports, wait_for

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
DEFAULT_CONTROLLERS: tuple[str, ...] = (
    "namespace-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
)
DEFAULT_START_TIMEOUT_SECONDS = 90.0
# A free port can be taken by someone else before the server binds it; a new set of ports fixes that.
_PORT_ATTEMPTS = 3


class ControlPlaneError(RuntimeError):
    """The control plane could not be started (the message carries the failing process's log tail)."""


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager, or an existing cluster.

    Use as a context manager or call :meth:`start` / :meth:`stop`. After start, :attr:`kubeconfig_path`
    is an admin (``system:masters``) kubeconfig, :meth:`kubectl` runs the venv's kubectl with it and
    :meth:`api_client` builds a ``kubernetes`` client for it.

    With ``USE_EXISTING_CLUSTER=true`` (or ``use_existing_cluster=True``) nothing is built or started:
    the kubeconfig from ``KUBECONFIG`` is used as it is.
    """

    def __init__(
        self,
        *,
        binaries: Binaries | None = None,
        workdir: Path | None = None,
        log_dir: Path | None = None,
        kubeconfig_out: Path | None = None,
        controllers: Sequence[str] = DEFAULT_CONTROLLERS,
        apiserver_args: Sequence[str] = (),
        controller_manager_args: Sequence[str] = (),
        start_timeout: float = DEFAULT_START_TIMEOUT_SECONDS,
        use_existing: bool | None = None,
    ) -> None:
        """
        :param binaries: where etcd, kube-apiserver and kube-controller-manager are; default:
            ``KUBEBUILDER_ASSETS`` or the build script.
        :param workdir: certificates, etcd data and the kubeconfig; default: a fresh temp dir, removed on
            stop (kept when start fails, for the logs).
        :param log_dir: the processes' logs; default ``<workdir>/logs``. Pass a folder outside ``workdir``
            to keep logs after stop.
        :param kubeconfig_out: also write the kubeconfig here (a stable path for humans); removed on stop.
        :param controllers: kube-controller-manager's ``--controllers``.
        :param apiserver_args: extra flags appended to kube-apiserver's (later flags win).
        :param controller_manager_args: extra flags appended to kube-controller-manager's.
        :param use_existing: ``None`` reads ``USE_EXISTING_CLUSTER``.
        """
        self._binaries = binaries
        self._workdir_arg = workdir
        self._log_dir_arg = log_dir
        self._kubeconfig_out = kubeconfig_out
        self.controllers = tuple(controllers)
        self.apiserver_args = tuple(apiserver_args)
        self.controller_manager_args = tuple(controller_manager_args)
        self.start_timeout = start_timeout
        self.use_existing = use_existing_cluster() if use_existing is None else use_existing

        self._workdir: Path | None = None
        self._owns_workdir = False
        self._log_dir: Path | None = None
        self._kubeconfig: Path | None = None
        self._server_url: str | None = None
        self._certs: Certificates | None = None
        self._etcd: ManagedProcess | None = None
        self._apiserver: ManagedProcess | None = None
        self._controller_manager: ManagedProcess | None = None
        self.startup_seconds: float | None = None
        """Seconds from :meth:`start` to ready, binaries lookup included."""
        self.startup_phases: dict[str, float] = {}
        """Seconds each component took from spawn to ready (the last attempt's), for slow-start reports."""

    # -- public state -------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._kubeconfig is not None

    @property
    def kubeconfig_path(self) -> Path:
        if self._kubeconfig is None:
            raise RuntimeError("control plane not started")
        return self._kubeconfig

    @property
    def server_url(self) -> str:
        if self._server_url is None:
            raise RuntimeError("control plane not started")
        return self._server_url

    @property
    def workdir(self) -> Path | None:
        return self._workdir

    @property
    def log_dir(self) -> Path | None:
        """Where the processes' logs are (None for an existing cluster)."""
        return self._log_dir

    @property
    def certificates(self) -> Certificates | None:
        return self._certs

    @property
    def processes(self) -> list[ManagedProcess]:
        """The running children, in start order (empty for an existing cluster)."""
        return [p for p in (self._etcd, self._apiserver, self._controller_manager) if p is not None]

    def environ(self) -> dict[str, str]:
        """This process's environment plus ``KUBECONFIG``: for clients started as subprocesses."""
        return dict(os.environ, KUBECONFIG=str(self.kubeconfig_path))

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the venv's kubectl with this control plane's kubeconfig; raises KubectlError if ``check``."""
        cache_dir = None if self.use_existing or self._workdir is None else self._workdir / "kubectl-cache"
        return run_kubectl(self.kubeconfig_path, *args, input=input, check=check, timeout=timeout, cache_dir=cache_dir)

    def token_kubeconfig(self, token: str, path: Path) -> Path:
        """Write a kubeconfig for this cluster that authenticates with ``token`` (e.g. a ServiceAccount's)."""
        return write_kubeconfig(path, with_token(read_kubeconfig(self.kubeconfig_path), token))

    def api_client(self) -> ApiClient:
        """A new ``kubernetes`` client (admin) for this control plane; the caller closes it."""
        # Imported here: the CLI and the process plumbing never need the (slow to import) client.
        from kubernetes import client, config

        configuration = client.Configuration()
        # The loader handles whatever an existing cluster's kubeconfig uses (tokens, exec plugins).
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig_path), client_configuration=configuration
        )
        return client.ApiClient(configuration)

    def check_alive(self) -> None:
        """Raise if a child has exited since start (for long-running callers such as the CLI)."""
        for process in self.processes:
            code = process.poll()
            if code is not None:
                raise ControlPlaneError(
                    f"{process.name} exited with code {code}; log {process.log_path}:\n{process.log_tail()}"
                )

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        if self.started:
            raise RuntimeError("control plane already started")
        began = time.monotonic()
        if self.use_existing:
            self._start_existing()
        else:
            self._start_local()
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop every child (controller-manager first, etcd last) and remove what start created."""
        self._stop_processes()
        if not self.use_existing and self._kubeconfig_out is not None and self._kubeconfig == self._kubeconfig_out:
            # A stale kubeconfig pointing at a dead port only misleads whoever finds it later.
            self._kubeconfig_out.unlink(missing_ok=True)
        if self._owns_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self._kubeconfig = None
        self._server_url = None

    def restart_apiserver(self, *, down_seconds: float = 0.0) -> None:
        """Stop kube-apiserver (SIGTERM, as a rollout would) and start it again, same port and flags.

        For tests of clients that must survive an API server restart: their watch streams are cut
        and their requests refused while it is down. etcd keeps running, so every object survives,
        and the URL and kubeconfig stay valid. ``down_seconds``: how long it stays down.
        """
        if self.use_existing:
            raise ControlPlaneError("cannot restart the API server of an existing cluster")
        apiserver, certs, server_url = self._apiserver, self._certs, self._server_url
        if apiserver is None or certs is None or server_url is None or self._etcd is None:
            raise RuntimeError("control plane not started")
        apiserver.stop()
        time.sleep(down_seconds)
        restarted = ManagedProcess(
            apiserver.name, apiserver.argv, log_path=apiserver.log_path, env=apiserver.env, cwd=apiserver.cwd
        )
        self._apiserver = restarted
        restarted.start()
        self._wait_apiserver_ready(server_url, certs, [self._etcd, restarted], " after a restart")

    # -- internals --------------------------------------------------------------------------------

    def _wait_apiserver_ready(
        self, server_url: str, certs: Certificates, watched: Sequence[ManagedProcess], when: str = ""
    ) -> None:
        """Wait for kube-apiserver's /readyz, failing early if a ``watched`` process exits."""
        verify_ca = readiness.tls_context(certs.ca_cert)
        wait_for(
            f"kube-apiserver {server_url}/readyz{when}",
            lambda: readiness.apiserver_ready(server_url, verify_ca),
            timeout=self.start_timeout,
            watched=watched,
        )

    def _prepare_workdir(self) -> Path:
        if self._workdir_arg is not None:
            self._workdir = self._workdir_arg
            self._workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="kube-testenv-"))
            self._owns_workdir = True
        return self._workdir

    def _start_existing(self) -> None:
        workdir = self._prepare_workdir()
        self._kubeconfig = existing_kubeconfig(workdir)
        self._server_url = current_server_url(self._kubeconfig)

    def _start_local(self) -> None:
        workdir = self._prepare_workdir()
        self._log_dir = self._log_dir_arg or workdir / "logs"
        self._log_dir.mkdir(parents=True, exist_ok=True)
        try:
            binaries = self._binaries or locate_binaries(build_log=self._log_dir / "build-controlplane.log")
            self._certs = generate_certificates(workdir / "pki")
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                try:
                    self._start_processes(binaries, workdir, self._certs, self._log_dir)
                    return
                except ProcessError as error:
                    self._stop_processes()
                    if attempt == _PORT_ATTEMPTS or "address already in use" not in str(error):
                        raise
        except BaseException as error:
            self._stop_processes()
            if self._owns_workdir and not self._log_dir.is_relative_to(workdir):
                shutil.rmtree(workdir, ignore_errors=True)
            # Otherwise the workdir stays: its logs are the only explanation of what went wrong.
            self._owns_workdir = False
            self._workdir = None
            if isinstance(error, Exception) and not isinstance(error, ControlPlaneError):
                raise ControlPlaneError(f"control plane did not start (logs in {self._log_dir}): {error}") from error
            raise

    def _stop_processes(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self._etcd = self._apiserver = self._controller_manager = None

    def _start_processes(self, binaries: Binaries, workdir: Path, certs: Certificates, log_dir: Path) -> None:
        etcd_client_port, etcd_peer_port, apiserver_port = free_ports(3)
        etcd_url = f"http://127.0.0.1:{etcd_client_port}"
        peer_url = f"http://127.0.0.1:{etcd_peer_port}"
        server_url = f"https://127.0.0.1:{apiserver_port}"
        etcd_data = workdir / "etcd"
        # A previous attempt's member data would carry its peer URL and refuse the new one.
        shutil.rmtree(etcd_data, ignore_errors=True)

        self._etcd = ManagedProcess(
            "etcd",
            [
                str(binaries.etcd),
                "--name=kube-testenv",
                f"--data-dir={etcd_data}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=kube-testenv={peer_url}",
                "--initial-cluster-state=new",
                # Throwaway data: durability buys nothing and fsync is most of etcd's latency.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            log_path=log_dir / "etcd.log",
        )
        phase = time.monotonic()
        self._etcd.start()
        wait_for(
            f"etcd {etcd_url}/health",
            lambda: readiness.etcd_healthy(etcd_url),
            timeout=self.start_timeout,
            watched=[self._etcd],
        )
        self.startup_phases["etcd"] = time.monotonic() - phase
        phase = time.monotonic()

        self._apiserver = ManagedProcess(
            "kube-apiserver",
            [
                str(binaries.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={apiserver_port}",
                # Without it the apiserver looks for a non-loopback interface and, lacking a default
                # route, refuses to start.
                "--advertise-address=127.0.0.1",
                f"--cert-dir={workdir / 'apiserver-certs'}",
                f"--tls-cert-file={certs.serving_cert}",
                f"--tls-private-key-file={certs.serving_key}",
                f"--client-ca-file={certs.ca_cert}",
                f"--service-account-issuer={server_url}",
                f"--service-account-key-file={certs.service_account_public_key}",
                f"--service-account-signing-key-file={certs.service_account_key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--endpoint-reconciler-type=none",
                *self.apiserver_args,
            ],
            log_path=log_dir / "kube-apiserver.log",
        )
        self._apiserver.start()
        self._wait_apiserver_ready(server_url, certs, [self._etcd, self._apiserver])

        admin_config = render_kubeconfig(
            server_url=server_url,
            ca_pem=certs.ca_pem(),
            client_cert_pem=certs.admin_cert_pem(),
            client_key_pem=certs.admin_key_pem(),
        )
        kubeconfig = write_kubeconfig(workdir / "kubeconfig", admin_config)

        self._controller_manager = ManagedProcess(
            "kube-controller-manager",
            [
                str(binaries.kube_controller_manager),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                # No port: nothing scrapes it, and readiness is observed through its effects instead.
                "--secure-port=0",
                f"--controllers={','.join(self.controllers)}",
                f"--service-account-private-key-file={certs.service_account_key}",
                f"--root-ca-file={certs.ca_cert}",
                *self.controller_manager_args,
            ],
            log_path=log_dir / "kube-controller-manager.log",
        )
        self.startup_phases["kube-apiserver"] = time.monotonic() - phase
        phase = time.monotonic()
        self._controller_manager.start()
        if "serviceaccount-controller" in self.controllers:
            admin = readiness.tls_context(certs.ca_cert, certs.admin_cert, certs.admin_key)
            wait_for(
                "kube-controller-manager to create ServiceAccount default/default",
                lambda: readiness.resource_exists(
                    server_url, "/api/v1/namespaces/default/serviceaccounts/default", admin
                ),
                timeout=self.start_timeout,
                watched=self.processes,
            )

        self.startup_phases["kube-controller-manager"] = time.monotonic() - phase
        if self._kubeconfig_out is not None:
            kubeconfig = write_kubeconfig(self._kubeconfig_out, admin_config)
        self._server_url = server_url
        self._kubeconfig = kubeconfig
