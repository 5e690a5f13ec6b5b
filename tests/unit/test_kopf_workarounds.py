"""Each workaround of kopf internals was written for one kopf minor release, and the package pins kopf to it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from rocketmq_operator.wiring import lean_watch, namespaces, peering, toggles

WORKAROUNDS = [lean_watch, namespaces, peering, toggles]


@pytest.mark.parametrize("workaround", WORKAROUNDS, ids=lambda module: module.__name__.rsplit(".", 1)[-1])
def test_the_installed_kopf_is_the_one_it_was_written_for(workaround: ModuleType) -> None:
    workaround.check_kopf()
    assert workaround.kopf_version().startswith(f"{workaround.WRITTEN_FOR}.")


@pytest.mark.parametrize("workaround", WORKAROUNDS, ids=lambda module: module.__name__.rsplit(".", 1)[-1])
def test_the_package_pins_kopf_to_that_minor_release(workaround: ModuleType) -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    (pin,) = [dep for dep in pyproject["project"]["dependencies"] if dep.startswith("kopf")]
    major, minor = workaround.WRITTEN_FOR.split(".")
    assert pin.startswith(f"kopf>={major}.{minor}") and pin.endswith(f",<{major}.{int(minor) + 1}"), pin
