"""The in-memory cloud stands in for the DMS client wherever the services take one.

Why a test: the unit tests are not type-checked, so a member added to a port and not to the fake
would fail only in the one test that happens to call it, with an AttributeError far from here.
"""

from __future__ import annotations

from rocketmq_operator.ports import protocol

from .fake_cloud import FakeCloud


def test_the_fake_is_every_port_the_runtime_gives_the_services() -> None:
    assert isinstance(FakeCloud(), protocol.OperatorClient)
