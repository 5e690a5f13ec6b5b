"""Fixtures for the simulator's tests: a server on the real clock, one on a manual clock, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import sim_kit

from dms_simulator import ManualClock, SimulatorServer, ThreadedSimulator


@pytest.fixture
async def server() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(sim_kit.fast_config(), accounts=sim_kit.ACCOUNTS, tokens=sim_kit.TOKENS) as srv:
        yield srv


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def manual_server(clock: ManualClock) -> AsyncIterator[SimulatorServer]:
    """Timings of whole seconds on a clock that only moves when a test advances it."""
    config = sim_kit.fast_config(create_seconds=10, delete_seconds=5, extend_seconds=20, restart_seconds=3)
    async with SimulatorServer(config, accounts=sim_kit.ACCOUNTS, tokens=sim_kit.TOKENS, clock=clock) as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


@pytest.fixture
def api(server: SimulatorServer, http: httpx.AsyncClient) -> sim_kit.Api:
    return sim_kit.Api(http, server.url)


@pytest.fixture
def manual_api(manual_server: SimulatorServer, http: httpx.AsyncClient) -> sim_kit.Api:
    return sim_kit.Api(http, manual_server.url)


@pytest.fixture(scope="module")
def module_clock() -> ManualClock:
    """One manual clock for a module's threaded simulator: it moves only when a test advances it."""
    return ManualClock()


@pytest.fixture(scope="module")
def simulator(module_clock: ManualClock) -> Iterator[ThreadedSimulator]:
    """A simulator in a thread on ``module_clock``, for Huawei's (synchronous) SDK to call."""
    with ThreadedSimulator(accounts=sim_kit.ACCOUNTS, clock=module_clock) as sim:
        yield sim
