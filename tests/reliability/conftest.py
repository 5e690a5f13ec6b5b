"""The fault suite's fixtures: stacks (simulator + operator as processes) and the result table.

Stacks are built as in ``tests/e2e`` (same ``Cluster`` and ``Stack`` helpers, same fast settings)
with three differences: logs go to ``test-artifacts/reliability/<module>/``; every simulator
account gets a fresh random secret key (registered in ``SECRETS_USED`` for the final scan); and a
stack can carry settings, simulator flags or operator flags of its own.

The ``case`` marker and the ``evidence`` fixture feed ``report.py``; ``pytest_sessionfinish``
writes the rows under ``test-artifacts/reliability/`` (never ``docs/``: ``make reliability-doc``
renders the tracked document from them).
"""

from __future__ import annotations

import datetime
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from devstack import OperatorProcess, SimulatorProcess
from devstack.__main__ import install_crd
from e2e.conftest import FAST_SETTINGS, FAST_SIMULATOR
from e2e.support import Cluster, Stack
from kube_testenv import ControlPlane

from . import report

HERE = Path(__file__).resolve().parent
ARTIFACTS = report.ROOT / "test-artifacts" / "reliability"

SECRETS_USED: set[str] = set()
"""Every secret key and token handed to an operator of this session (read by the secrets scan)."""

Evidence = Callable[[str], None]


class StackFactory:
    """Starts simulator + operator pairs serving ``rel-<module><n>-*`` namespaces; stops them at the end."""

    def __init__(self, cluster: Cluster, module: str) -> None:
        self.cluster = cluster
        self.module = module
        self.logs = ARTIFACTS / module
        self.logs.mkdir(parents=True, exist_ok=True)
        self.started: list[Stack] = []

    def __call__(
        self,
        *,
        settings: dict[str, str] | None = None,
        simulator_args: list[str] | None = None,
        share_simulator_with: Stack | None = None,
        start_operator: bool = True,
        ca_file: Path | None = None,
    ) -> Stack:
        index = len(self.started)
        prefix = f"rel-{self.module}{index}"
        if share_simulator_with is not None:
            simulator = share_simulator_with.simulator
        else:
            secret_key = f"rel-sk-{secrets.token_hex(16)}"
            SECRETS_USED.add(secret_key)
            simulator = SimulatorProcess(
                log_path=self.logs / f"simulator-{index}.log",
                secret_key=secret_key,
                extra_args=[*FAST_SIMULATOR, *(simulator_args or [])],
                ca_file=ca_file,
            )
            simulator.start()
        merged = {**simulator.operator_env(), **FAST_SETTINGS, **(settings or {})}
        operator = self._operator(prefix, merged, f"operator-{index}.log")
        stack = Stack(self.cluster, simulator, operator, prefix, merged)
        self.started.append(stack)
        if start_operator:
            operator.start()
        return stack

    def replace_operator(self, stack: Stack, settings: dict[str, str], *, drop: tuple[str, ...] = ()) -> None:
        """Stop the stack's operator; start another on the same namespaces with changed settings."""
        stack.operator.stop()
        merged = {k: v for k, v in {**stack.settings, **settings}.items() if k not in drop}
        replaced = len([s for s in self.started if s.prefix == stack.prefix])
        log_name = f"operator-{stack.prefix.removeprefix(f'rel-{self.module}')}-{replaced}.log"
        operator = self._operator(stack.prefix, merged, log_name)
        stack.operator, stack.settings = operator, merged
        self.started.append(stack)  # stopped again at the end (stopping twice is harmless)
        operator.start()

    def _operator(self, prefix: str, settings: dict[str, str], log_name: str) -> OperatorProcess:
        """An operator on ``<prefix>-*`` namespaces; its secrets are registered for the leak scan."""
        SECRETS_USED.update(v for k, v in settings.items() if k.endswith(("_SECRET_KEY", "_TOKEN")) and v)
        return OperatorProcess(
            kubeconfig=self.cluster.control_plane.kubeconfig_path,
            settings=settings,
            log_path=self.logs / log_name,
            namespaces=[f"{prefix}-*"],
        )

    def close(self) -> None:
        for stack in reversed(self.started):
            stack.operator.stop()
        for simulator in {id(stack.simulator): stack.simulator for stack in self.started}.values():
            simulator.stop()


@pytest.fixture(scope="session")
def rel_cluster(control_plane: ControlPlane, kube_api_client: client.ApiClient) -> Cluster:
    install_crd(control_plane)
    return Cluster(control_plane, kube_api_client)


@pytest.fixture(scope="module")
def stacks(request: pytest.FixtureRequest, rel_cluster: Cluster) -> Iterator[StackFactory]:
    module = re.sub(r"[^a-z0-9]+", "-", request.module.__name__.rsplit(".", 1)[-1].lower()).strip("-")
    factory = StackFactory(rel_cluster, module.removeprefix("test-")[:16].strip("-"))
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def stack(stacks: StackFactory) -> Stack:
    """The module's default stack (fast settings, fast simulator)."""
    return stacks()


# ---- the result table ---------------------------------------------------------------------------

_rows = pytest.StashKey[dict[str, report.Row]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "case(id, area, injected, checked): a row of docs/reliability.md proven by this test",
    )
    config.addinivalue_line("markers", "scan_last: run after every other test of the session")
    config.stash[_rows] = {}


def _in_suite(item: pytest.Item) -> bool:
    return Path(str(item.path)).resolve().is_relative_to(HERE)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # The secrets scan reads what the whole session produced, so it goes last, whatever ran before.
    last = [item for item in items if item.get_closest_marker("scan_last")]
    items[:] = [item for item in items if not item.get_closest_marker("scan_last")] + last
    rows = config.stash[_rows]
    for item in items:
        row = report.declared(item) if _in_suite(item) else None
        if row is not None:
            if any(other.case == row.case for other in rows.values()):
                raise pytest.UsageError(f"case id {row.case!r} is declared twice ({item.nodeid})")
            rows[item.nodeid] = row


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """Adds one measured fact to this case's "observed" column."""
    row = request.config.stash[_rows].get(request.node.nodeid)
    if row is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `evidence` but declares no case marker")

    def add(fact: str) -> None:
        row.observed.append(fact)

    return add


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    result: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    row = item.config.stash[_rows].get(item.nodeid)
    if row is not None:
        if result.when == "call" or (result.when == "setup" and not result.passed):
            row.outcome = "failed" if result.failed else result.outcome
            row.seconds += result.duration
        elif result.when == "setup":
            row.seconds += result.duration
        elif result.when == "teardown" and result.failed:
            row.outcome = "error in teardown"
    if result.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Stack):
                for name, log in (
                    ("operator", value.operator.log_path),
                    ("simulator", value.simulator.process.log_path),
                ):
                    text = Path(log).read_text(errors="replace") if Path(log).exists() else ""
                    result.sections.append((f"{name} log ({log})", "\n".join(text.splitlines()[-120:])))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    rows = list(session.config.stash[_rows].values())
    if not rows:
        return
    # Complete means every case the suite declares ran, whatever else was selected or left out.
    ran = {row.case for row in rows if row.outcome != "not run"}
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report.write_results(report.Run(when=when, rows=rows, complete=ran == report.declared_in_suite().keys()))
