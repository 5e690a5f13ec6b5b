"""The guard the kopf workarounds (``wiring.peering``, ``wiring.namespaces``) run before patching.

Each workaround relies on kopf internals; if the installed kopf is not the release it was checked
against, or an internal it touches changed shape, the operator fails loudly at start-up with a
message naming the kopf version, what changed, and what that breaks.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Callable, Collection
from typing import Any, NoReturn


def kopf_version() -> str:
    return importlib.metadata.version("kopf")


class KopfGuard:
    """Checks for one workaround on one installed kopf ``version``; ``breaks`` says what a failure stops."""

    def __init__(self, version: str, breaks: str) -> None:
        self.version = version
        self.breaks = breaks

    def release(self, written_for: str, workaround: str, module: str) -> None:
        """Fail unless ``version`` is a ``written_for`` (major.minor) release."""
        if ".".join(self.version.split(".")[:2]) != written_for:
            raise RuntimeError(
                f"kopf {self.version} is installed, but {workaround} was written for kopf {written_for}.x; "
                f"re-check {module} against it, then update WRITTEN_FOR and the kopf pin in pyproject.toml"
            )

    def parameters(self, function: Callable[..., Any], name: str, needed: Collection[str]) -> None:
        """Fail unless ``function`` (named ``name`` in the message) still takes every ``needed`` argument."""
        missing = set(needed) - set(inspect.signature(function).parameters)
        if missing:
            self.fail(f"{name} takes no {', '.join(sorted(missing))} any more")

    def fail(self, change: str) -> NoReturn:
        raise RuntimeError(f"kopf {self.version}: {change}; {self.breaks}")
