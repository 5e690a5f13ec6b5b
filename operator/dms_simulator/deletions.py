"""A record of every deletion the cloud accepted and when (in simulated time) it ended.

The list API stops showing an instance as soon as its deletion starts, so nothing a client sees tells
a test *when* the cloud actually finished. Tests that must prove "no finalizer came off before the
cloud was done" compare their own timeline with this one (``GET /_sim/deletions``). An entry is
opened when a deletion is accepted and closed by the store when the DELETING time is up, with the
time the transition was due (not the time someone happened to look: status settles lazily).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Outcome = Literal["gone", "binned", "failed"]


@dataclass
class Deletion:
    instance_id: str
    project_id: str
    name: str
    accepted_at: float
    forced: bool
    ended_at: float | None = None
    """``None`` while the instance is still DELETING."""
    outcome: Outcome | None = None
    status_after: str | None = None
    """What show answers once it ended: ``RECYCLE`` when binned, the failure status, ``None`` = 404."""

    def end(self, at: float, outcome: Outcome, status_after: str | None) -> None:
        self.ended_at = at
        self.outcome = outcome
        self.status_after = status_after

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class DeletionLog:
    def __init__(self) -> None:
        self._entries: list[Deletion] = []

    def accept(self, *, instance_id: str, project_id: str, name: str, forced: bool, at: float) -> Deletion:
        entry = Deletion(instance_id=instance_id, project_id=project_id, name=name, accepted_at=at, forced=forced)
        self._entries.append(entry)
        return entry

    def entries(self) -> list[Deletion]:
        # Stable: deletions accepted at the same instant keep the order they were accepted in.
        return sorted(self._entries, key=lambda entry: entry.accepted_at)

    def latest(self, instance_id: str) -> Deletion | None:
        return next((entry for entry in reversed(self._entries) if entry.instance_id == instance_id), None)

    def clear(self) -> None:
        self._entries.clear()
