"""Fixtures of the deploy tests: helm (built with the control plane), and a simulator per module."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import SimulatorProcess
from kube_testenv import Binaries, ControlPlane

from .kit import Helm

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "deploy"


@pytest.fixture(scope="session")
def helm(control_plane_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm for rendering and linting; needs no API server."""
    return Helm(control_plane_binaries.helm, tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="session")
def cluster_helm(helm: Helm, control_plane: ControlPlane) -> Helm:
    """helm talking to the real API server."""
    return Helm(helm.binary, helm.home, control_plane.kubeconfig_path)


@pytest.fixture(scope="module")
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Logs kept after the run (gitignored), so a CI failure can be read afterwards."""
    module = re.sub(r"[^a-z0-9]+", "-", request.module.__name__.rsplit(".", 1)[-1].lower()).strip("-")
    folder = ARTIFACTS / module
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def simulator(artifacts: Path) -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(
        log_path=artifacts / "simulator.log",
        extra_args=["--create-seconds", "1", "--delete-seconds", "1", "--quota", "1000"],
    )
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
