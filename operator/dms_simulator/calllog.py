"""A log of every DMS API call the simulator served, for tests to assert on the cloud's side.

End-to-end tests must prove things like "N deletes produced exactly one batch call" or "the operator
never called create twice"; only the server can see that. A record is appended when a request
arrives (so a test can see a create the cloud accepted while its response is still held back) and
completed when the answer goes out. Admin calls (``/_sim/``) are not logged.
"""

from __future__ import annotations

import collections
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class CallRecord:
    seq: int
    time: float
    method: str
    path: str
    query: str
    operation: str
    """One of ``faults.OPERATIONS``, or ``unknown`` for a path no route matched."""
    request_id: str
    project_id: str | None = None
    access_key: str | None = None
    """The access key the request claimed (or ``token:<prefix>``), even when authentication failed."""
    principal: str | None = None
    """The same once the signature or token was verified, else ``None``: what a test asserts on to
    know which account really made a call (a claimed key proves nothing)."""
    status: int | None = None
    """HTTP status sent; ``None`` while in flight or when the connection was dropped."""
    error_code: str | None = None
    instance_ids: list[str] = field(default_factory=list)
    all_failure: str | None = None
    force_delete: bool | None = None
    names: list[str] = field(default_factory=list)
    """Topic or group names a call acted on: the path name, a batch's names, a create's name."""
    fault: str | None = None
    """The injected fault that shaped this answer: latency, error, drop, malformed, hold."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class CallLog:
    def __init__(self, capacity: int = 100_000) -> None:
        self._records: collections.deque[CallRecord] = collections.deque(maxlen=capacity)
        self._seq = 0

    def start(self, *, time: float, method: str, path: str, query: str, operation: str, request_id: str) -> CallRecord:
        self._seq += 1
        record = CallRecord(
            seq=self._seq,
            time=time,
            method=method,
            path=path,
            query=query,
            operation=operation,
            request_id=request_id,
        )
        self._records.append(record)
        return record

    def since(self, seq: int) -> list[CallRecord]:
        return [record for record in self._records if record.seq > seq]

    @property
    def last_seq(self) -> int:
        return self._seq

    def clear(self) -> None:
        # Sequence numbers keep growing so a poller holding an old ``next`` never re-reads a record.
        self._records.clear()
