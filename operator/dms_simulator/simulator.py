"""One fake cloud: the state, the rules and the knobs that every HTTP layer shares.

The aiohttp application, the admin API and in-process tests all reach the same ``Simulator``; keeping
it a plain object (no HTTP in it) lets a test build one around a ``ManualClock`` and inspect it
directly, while the server only ever talks to it through this interface.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any, Final

from aiohttp import web

from dms_simulator.auth import Account, Authenticator, TokenGrant
from dms_simulator.calllog import CallLog
from dms_simulator.children import Children
from dms_simulator.clock import Clock, SystemClock
from dms_simulator.config import SimulatorConfig
from dms_simulator.faults import Faults
from dms_simulator.ratelimit import RateLimiter
from dms_simulator.store import Store
from dms_simulator.users import Users


class Simulator:
    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        accounts: Iterable[Account] = (),
        tokens: Iterable[TokenGrant] = (),
        clock: Clock | None = None,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.clock: Clock = clock or SystemClock()
        self.auth = Authenticator(accounts, tokens)
        self._store_rng = random.Random()
        self._fault_rng = random.Random()
        self._reseed()
        self.store = Store(self.config, self.clock, self._store_rng)
        self.children = Children(self.store, self.config, self.clock)
        self.users = Users(self.children, self.config, self.clock)
        self.faults = Faults(self._fault_rng)
        self.limiter = RateLimiter(self.clock)
        self.calls = CallLog()
        self._apply_config()

    def update_config(self, partial: Mapping[str, Any]) -> None:
        self.config.update(partial)
        if "seed" in partial:
            self._reseed()
        self._apply_config()

    def put_account(self, account: Account) -> bool:
        """Add or replace an account (``True``: replaced); it starts with a full bucket, as a new one."""
        replaced = self.auth.put_account(account)
        self.limiter.forget(account.access_key)
        return replaced

    def remove_account(self, access_key: str) -> bool:
        removed = self.auth.remove_account(access_key)
        self.limiter.forget(access_key)
        return removed

    def reset(self) -> None:
        """Forget instances, recycle bin, policies, faults, call log and throttling; keep the config
        and the accounts as they are now (like the config, they say who may call, not what exists)."""
        self.store.reset()
        self.faults.clear()
        self.calls.clear()
        self.limiter.reset()
        self._reseed()

    def _reseed(self) -> None:
        seed = self.config.seed
        # Two streams, so turning on a fault rate does not change which creates fail.
        self._store_rng.seed(seed)
        self._fault_rng.seed(None if seed is None else seed + 1)

    def _apply_config(self) -> None:
        self.limiter.configure(self.config.rate_limit_rps, self.config.effective_burst)


SIMULATOR_KEY: Final = web.AppKey("dms_simulator", Simulator)
