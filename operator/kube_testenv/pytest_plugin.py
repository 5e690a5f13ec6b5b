"""pytest fixtures for tests against a real control plane: one per test session (and per xdist worker).

Load with ``pytest_plugins = ["kube_testenv.pytest_plugin"]`` in the top-level conftest.

* ``control_plane`` (session): a started :class:`~kube_testenv.ControlPlane`, stopped at session end;
  an existing cluster with ``USE_EXISTING_CLUSTER=true``.
* ``kubeconfig`` (session): its kubeconfig path.
* ``kube_api_client`` (session): a ``kubernetes.client.ApiClient`` for it.
* ``unique_namespace`` (function): a fresh namespace, deleted afterwards without waiting.

The binaries are located (and built, if needed) right after collection instead of in the first test's
setup: a cold build takes many minutes, and pytest-timeout would count them against that test.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .binaries import ASSETS_ENV, Binaries, locate_binaries, selected_k8s
from .controlplane import ControlPlane
from .existing import use_existing_cluster

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

FIXTURE = "control_plane"
_binaries_key = pytest.StashKey[Binaries | BaseException]()
_log_dir_key = pytest.StashKey[Path]()


def _uses_control_plane(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return FIXTURE in names or "control_plane_binaries" in names


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if use_existing_cluster() or not any(_uses_control_plane(i) for i in session.items):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def announce(line: str) -> None:
        # Only a build is worth a line; KUBEBUILDER_ASSETS is a plain lookup.
        if reporter is not None and not os.environ.get(ASSETS_ENV):
            reporter.write_line(f"kube_testenv: {line}")

    build_dir = Path(tempfile.mkdtemp(prefix="kube-testenv-build-"))
    log = build_dir / "build-controlplane.log"
    began = time.monotonic()
    binaries: Binaries | BaseException
    try:
        announce(
            f"locating/building the Kubernetes {selected_k8s()} control-plane binaries"
            f" (a cold build takes many minutes); log {log}"
        )
        binaries = found = locate_binaries(build_log=log)
    except Exception as error:  # reported by the fixture, so tests without it still run
        binaries = error
        announce(f"no binaries after {time.monotonic() - began:.1f}s: {error}")
    else:
        shutil.rmtree(build_dir, ignore_errors=True)
        announce(f"binaries in {found.folder} ({time.monotonic() - began:.1f}s)")
    config.stash[_binaries_key] = binaries


@pytest.fixture(scope="session")
def control_plane_binaries(request: pytest.FixtureRequest) -> Binaries:
    """The etcd/kube-apiserver/kube-controller-manager/helm folder (built if needed)."""
    binaries = request.config.stash.get(_binaries_key, None)
    if isinstance(binaries, BaseException):
        raise binaries
    if binaries is None:
        binaries = locate_binaries()
        request.config.stash[_binaries_key] = binaries
    return binaries


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running control plane (or the existing cluster), shared by the whole session."""
    binaries = None
    if not use_existing_cluster():
        binaries = request.getfixturevalue("control_plane_binaries")
    log_dir = tmp_path_factory.mktemp("controlplane-logs")
    cp = ControlPlane(binaries=binaries, log_dir=log_dir)
    if not cp.use_existing:
        request.config.stash[_log_dir_key] = log_dir
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    """Path of an admin kubeconfig for :func:`control_plane`."""
    return control_plane.kubeconfig_path


@pytest.fixture(scope="session")
def kube_api_client(control_plane: ControlPlane) -> Iterator[ApiClient]:
    """A ``kubernetes.client.ApiClient`` (admin) for :func:`control_plane`."""
    client = control_plane.api_client()
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def unique_namespace(request: pytest.FixtureRequest, kube_api_client: ApiClient) -> Iterator[str]:
    """Create a namespace named after the test plus a random suffix; delete it afterwards.

    Teardown does not wait for the deletion to finish: isolation comes from the unique name, and waiting
    would add the namespace controller's seconds to every test.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-") or "test"
    name = f"{stem}-{secrets.token_hex(3)}"
    core = client.CoreV1Api(kube_api_client)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"kube-testenv/test-namespace": "true"}))
    )
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    log_dir = item.config.stash.get(_log_dir_key, None)
    if report.failed and log_dir is not None and _uses_control_plane(item):
        report.sections.append(("kube_testenv", f"control-plane logs: {log_dir}"))
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    log_dir = config.stash.get(_log_dir_key, None)
    if log_dir is not None and exitstatus != 0:
        terminalreporter.write_line(f"kube_testenv: control-plane logs in {log_dir}")
