"""End-to-end fixtures: the operator and the simulator as processes, against the real API server."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from devstack import OperatorProcess, SimulatorProcess
from devstack.__main__ import install_crd
from kube_testenv import ControlPlane

from .support import Cluster, Stack

StackFactory = Callable[..., Stack]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"


@pytest.fixture(scope="session")
def crd_installed(control_plane: ControlPlane) -> None:
    install_crd(control_plane)


@pytest.fixture(scope="session")
def cluster(control_plane: ControlPlane, kube_api_client: client.ApiClient, crd_installed: None) -> Cluster:
    return Cluster(control_plane, kube_api_client)


FAST_SETTINGS = {
    "DMS_POLL_INTERVAL_SECONDS": "1",
    "DMS_VERIFY_INTERVAL_SECONDS": "0.5",
    "DMS_BATCH_WINDOW_SECONDS": "1",
    "DMS_SWEEP_INTERVAL_SECONDS": "2",
    "DMS_DELETE_CONFIRM_WAIT_SECONDS": "5",
    "DMS_CLUSTER_ID": "e2e-cluster",
    "DMS_RATE_LIMIT_RPS": "200",
    "DMS_RATE_LIMIT_BURST": "200",
}
FAST_SIMULATOR = ["--create-seconds", "1", "--delete-seconds", "1", "--quota", "100000"]


@pytest.fixture(scope="module")
def stack_factory(
    request: pytest.FixtureRequest, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackFactory]:
    """Starts simulator + operator pairs scoped to this module's namespaces; stops them all at the end."""
    module = re.sub(r"[^a-z0-9]+", "-", request.module.__name__.rsplit(".", 1)[-1].lower()).strip("-")
    module = module.removeprefix("test-")[:20].strip("-")
    started: list[Stack] = []
    # Kept after the run (gitignored), so a failure in CI can be read afterwards.
    logs = ARTIFACTS / module
    logs.mkdir(parents=True, exist_ok=True)

    def factory(
        *,
        settings: dict[str, str] | None = None,
        simulator_args: list[str] | None = None,
        share_simulator_with: Stack | None = None,
    ) -> Stack:
        index = len(started)
        prefix = f"e2e-{module}{index}"
        if share_simulator_with is not None:
            simulator = share_simulator_with.simulator
        else:
            simulator = SimulatorProcess(
                log_path=logs / f"simulator-{index}.log", extra_args=simulator_args or FAST_SIMULATOR
            )
            simulator.start()
        merged = {**simulator.operator_env(), **FAST_SETTINGS, **(settings or {})}
        operator = OperatorProcess(
            kubeconfig=cluster.control_plane.kubeconfig_path,
            settings=merged,
            log_path=logs / f"operator-{index}.log",
            namespaces=[f"{prefix}-*"],
        )
        stack = Stack(cluster, simulator, operator, prefix, merged)
        started.append(stack)
        operator.start()
        return stack

    yield factory
    for stack in reversed(started):
        stack.operator.stop()
    for stack in started:
        stack.simulator.stop()


@pytest.fixture(scope="module")
def stack(stack_factory: StackFactory) -> Stack:
    return stack_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure, attach the tails of the operator's and the simulator's logs to the report."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, Stack):
            for name, log in (("operator", value.operator.log_path), ("simulator", value.simulator.process.log_path)):
                tail = (
                    "\n".join(Path(log).read_text(errors="replace").splitlines()[-120:]) if Path(log).exists() else ""
                )
                report.sections.append((f"{name} log ({log})", tail))
