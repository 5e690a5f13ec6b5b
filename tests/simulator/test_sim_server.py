"""The in-process ways to run the simulator: an async context manager on the test's loop, and a
background thread for synchronous callers."""

from __future__ import annotations

import ssl

import httpx
import pytest
import sim_kit

from dms_simulator import ManualClock, Simulator, SimulatorConfig, SimulatorServer, ThreadedSimulator


async def test_the_async_server_listens_on_a_free_port_and_exposes_its_state() -> None:
    async with SimulatorServer(sim_kit.fast_config(), accounts=sim_kit.ACCOUNTS) as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.ca_pem is None
        async with httpx.AsyncClient() as http:
            api = sim_kit.Api(http, server.url)
            instance_id = await api.create("rmq-in-process")
        assert [i.instance_id for i in server.sim.store.all()] == [instance_id]
        with pytest.raises(RuntimeError, match="does not serve TLS"):
            server.write_ca("/nonexistent/ca.pem")
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(server.url + "/_sim/health")


async def test_the_async_server_serves_tls_with_its_own_ca() -> None:
    async with SimulatorServer(use_tls=True, tokens=sim_kit.TOKENS) as server:
        assert server.url.startswith("https://") and server.ca_pem is not None
        context = ssl.create_default_context(cadata=server.ca_pem.decode())
        async with httpx.AsyncClient(verify=context) as http:
            assert (await http.get(server.url + "/_sim/health")).json() == {"ok": True}


def test_the_threaded_server_runs_functions_on_its_own_thread() -> None:
    clock = ManualClock()
    with ThreadedSimulator(sim_kit.fast_config(create_seconds=10), accounts=sim_kit.ACCOUNTS, clock=clock) as sim:
        seeded = httpx.post(
            sim.url + "/_sim/instances", json={"project_id": sim_kit.PID, "instances": [{"status": "CREATING"}]}
        ).json()["instances"]
        assert sim.run(lambda s: [i.status for i in s.store.all()]) == ["CREATING"]
        assert sim.run(lambda s: s.config.create_seconds) == 10
        assert seeded[0]["status"] == "CREATING"
    with pytest.raises(RuntimeError, match="not running"):
        sim.run(lambda s: None)


def test_a_simulator_object_can_be_driven_without_http() -> None:
    clock = ManualClock()
    simulator = Simulator(SimulatorConfig(create_seconds=5), clock=clock)
    instance = simulator.store.seed(sim_kit.PID, {"status": "CREATING", "transition": True})
    clock.advance(5)
    assert simulator.store.get(sim_kit.PID, instance.instance_id).status == "RUNNING"
    simulator.update_config({"rate_limit_rps": 1.0})
    assert simulator.limiter.acquire("k") is None
    assert simulator.limiter.acquire("k") == pytest.approx(1.0)
    simulator.reset()
    assert simulator.store.all() == []
    assert simulator.config.rate_limit_rps == 1.0


def test_invalid_constructor_config_is_refused() -> None:
    with pytest.raises(ValueError, match="create_fail_share"):
        SimulatorConfig(create_fail_share=2.0)
