"""The port through which everything above the adapters talks to the cloud.

Contract (crossplane's ExternalClient, adapted to a batch API):
- every method either returns the documented result or raises a ``ports.errors.CloudError``;
- reads never mutate;
- deleting is idempotent: an instance that is already gone is reported as not found, which
  callers count as done, and deleting an instance that is already DELETING is harmless;
- ``delete_many`` sends exactly one batch action call for the ids it is given; splitting into
  batches and routing results is the batcher's job, not the client's;
- a ``success`` batch result means *accepted*, not gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rocketmq_operator.core import cloud


@dataclass(frozen=True)
class Account:
    """Which cloud account a client speaks for; the batcher and observer are keyed by it."""

    endpoint: str
    project_id: str

    def __str__(self) -> str:
        return f"{self.project_id}@{self.endpoint}"


class CallRecorder(Protocol):
    """Receives one record per cloud call (for metrics); must not raise or block."""

    def record(self, *, operation: str, outcome: str, seconds: float) -> None: ...


class ExternalClient(Protocol):
    """An async client for one account of DMS for RocketMQ."""

    @property
    def account(self) -> Account: ...

    def throttling(self) -> str | None:
        """A sentence while the cloud is throttling this account (calls are being slowed), else None."""
        ...

    async def create_instance(self, request: cloud.CreateInstanceRequest) -> str:
        """Create an instance; return its id. Raises NameConflict if the name is taken."""
        ...

    async def show_instance(self, instance_id: str) -> cloud.InstanceView: ...

    async def list_instances(self, query: cloud.ListQuery) -> cloud.ListInstancesResponse:
        """One page of the instance list."""
        ...

    async def update_instance(self, instance_id: str, request: cloud.UpdateInstanceRequest) -> None: ...

    async def delete_instance(self, instance_id: str) -> None: ...

    async def delete_many(
        self, instance_ids: Sequence[str], *, force_delete: bool | None = None
    ) -> list[cloud.BatchActionResult]:
        """One batch delete call; one result per id the cloud reported on."""
        ...

    async def delete_all_failed(self, *, force_delete: bool | None = None) -> None:
        """Delete every instance of the project whose creation failed (``all_failure``)."""
        ...

    async def resize_instance(self, instance_id: str, request: cloud.ResizeRequest) -> cloud.ResizeResponse: ...

    async def restart_instance(self, instance_id: str) -> cloud.RestartResponse: ...

    async def create_tags(self, instance_id: str, tags: Sequence[cloud.Tag]) -> None: ...

    async def delete_tags(self, instance_id: str, tags: Sequence[cloud.Tag]) -> None: ...

    async def list_tags(self, instance_id: str) -> list[cloud.Tag]: ...

    async def list_recycle_bin(self) -> cloud.RecycleBinResponse: ...

    async def restore_from_recycle_bin(self, instance_ids: Sequence[str]) -> list[cloud.RestoreResult]: ...

    async def aclose(self) -> None: ...
