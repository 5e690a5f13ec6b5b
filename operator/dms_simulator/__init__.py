"""A fake Huawei Cloud DMS for RocketMQ: a real HTTP server that speaks the management API.

It exists so the operator can be tested against something that behaves like the cloud (AK/SK
signatures, Huawei's errors, an instance state machine, throttling, faults) without a cloud account;
its fidelity is proven by driving it with Huawei's own SDK. It never imports the operator: the two
must be able to disagree. Start it with ``SimulatorServer`` (async), ``ThreadedSimulator`` (sync) or
the ``dms-simulator`` command; see docs/simulator.md.
"""

from dms_simulator.auth import Account, TokenGrant
from dms_simulator.clock import ManualClock, SystemClock
from dms_simulator.config import SimulatorConfig
from dms_simulator.server import SimulatorServer, ThreadedSimulator
from dms_simulator.simulator import Simulator

__all__ = [
    "Account",
    "ManualClock",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "SystemClock",
    "ThreadedSimulator",
    "TokenGrant",
]
