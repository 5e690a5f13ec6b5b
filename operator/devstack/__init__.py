"""The local default stack: a real control plane, the simulated cloud and the operator, as processes.

Why processes: this is how a user runs the product, and how the end-to-end tests must see it. The
operator and the simulator are started from their console scripts, never imported, so a test that
passes here proves the shipped commands work (import-linter forbids importing either package).
"""

from .operator_process import OperatorProcess
from .simulator_process import SimulatorAdmin, SimulatorProcess

EXAMPLES = ("examples/rocketmq-instance.yaml", "examples/topics-and-groups.yaml", "examples/users.yaml")
"""What ``make run`` applies, in order (instances, then their topics, groups and users); the e2e tests
apply the same files and wait for them all to become Ready."""

__all__ = ["EXAMPLES", "OperatorProcess", "SimulatorAdmin", "SimulatorProcess"]
