"""Serve the simulator over real HTTP(S): in-process for async tests, in a thread for sync code.

Tests want a real socket (the point is to exercise real clients, signers and the official SDK), but
not a subprocess for every test. ``SimulatorServer`` is an async context manager on the caller's
loop; ``ThreadedSimulator`` runs the same server on its own loop in a background thread, for
synchronous callers such as Huawei's SDK (which would otherwise block the loop serving it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from aiohttp import web
from aiohttp.log import access_logger

from dms_simulator import tls
from dms_simulator.app import build_app
from dms_simulator.auth import Account, TokenGrant
from dms_simulator.clock import Clock
from dms_simulator.config import SimulatorConfig
from dms_simulator.simulator import Simulator

T = TypeVar("T")


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class SimulatorServer:
    """``async with SimulatorServer(config, accounts=[...]) as server: server.url, server.sim``."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        accounts: Iterable[Account] = (),
        tokens: Iterable[TokenGrant] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        use_tls: bool = False,
        tls_hosts: Iterable[str] = (),
        clock: Clock | None = None,
        access_log: bool = False,
    ) -> None:
        self.sim = Simulator(config, accounts=accounts, tokens=tokens, clock=clock)
        self.host = host
        self.port = port
        self.tls: tls.TlsMaterial | None = tls.generate([host, *tls_hosts]) if use_tls else None
        self._access_log = access_log
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{_url_host(self.host)}:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        return self.tls.ca_pem if self.tls is not None else None

    def write_ca(self, path: str | Path) -> None:
        if self.tls is None:
            raise RuntimeError("this simulator does not serve TLS")
        Path(path).write_bytes(self.tls.ca_pem)

    async def start(self) -> None:
        app = build_app(self.sim)
        # A held-back response must not stall shutdown for its whole hold time.
        runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=access_logger if self._access_log else None)
        await runner.setup()
        context = self.tls.server_context() if self.tls is not None else None
        site = web.TCPSite(runner, self.host, self.port, ssl_context=context)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


class ThreadedSimulator:
    """``with ThreadedSimulator(config, accounts=[...]) as server: server.url`` for synchronous code.

    Reach the state through the admin API or ``server.run(fn)`` (runs ``fn(sim)`` on the server's
    own thread), never by touching ``server.sim`` from the test thread while requests are served.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        accounts: Iterable[Account] = (),
        tokens: Iterable[TokenGrant] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        use_tls: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.server = SimulatorServer(
            config, accounts=accounts, tokens=tokens, host=host, port=port, use_tls=use_tls, clock=clock
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def sim(self) -> Simulator:
        return self.server.sim

    def start(self, timeout: float = 30.0) -> None:
        loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            # Let transports that are already closing (e.g. a refused TLS handshake) finish closing.
            loop.run_until_complete(asyncio.sleep(0.05))
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="dms-simulator", daemon=True)
        self._thread.start()
        started.result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._loop = None
            self._thread = None

    def run(self, fn: Callable[[Simulator], T], timeout: float = 30.0) -> T:
        """Run ``fn(sim)`` on the server's thread and return its result."""
        if self._loop is None:
            raise RuntimeError("the simulator is not running")

        async def call() -> T:
            return fn(self.server.sim)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    def __enter__(self) -> ThreadedSimulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
