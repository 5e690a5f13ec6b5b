"""The ports through which everything above the adapters talks to the cloud.

Why several small protocols and not one: each service is typed against only what it calls, so a
fake need implement only what the services it stands in for use, and an operation no service needs
burdens no fake. ``ExternalClient`` is the core that the reconciler, observer, batcher and
confirmer share; each other port is used by one service, or by none (``ManualOperations``). The
composites at the end name what one consumer needs, as Python has no intersection types. The DMS
client implements every one of them.

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
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class ExternalClient(Protocol):
    """The core port of one account: read (show, list), create, update, and delete in batches.

    The observer and the confirmer read, the batcher deletes, the reconciler creates and updates.
    """

    @property
    def account(self) -> Account: ...

    def throttling(self) -> str | None:
        """A sentence while the cloud is throttling this account (calls are being slowed), else None."""
        ...

    async def show_instance(self, instance_id: str) -> cloud.InstanceView: ...

    async def list_instances(self, query: cloud.ListQuery) -> cloud.ListInstancesResponse:
        """One page of the instance list."""
        ...

    async def create_instance(self, request: cloud.CreateInstanceRequest) -> str:
        """Create an instance; return its id. Raises NameConflict if the name is taken."""
        ...

    async def update_instance(self, instance_id: str, request: cloud.UpdateInstanceRequest) -> None: ...

    async def resize_instance(self, instance_id: str, request: cloud.ResizeRequest) -> cloud.ResizeResponse:
        """The other half of an update: storage, broker count and product change by resize (``extend``)."""
        ...

    async def delete_many(
        self, instance_ids: Sequence[str], *, force_delete: bool | None = None
    ) -> list[cloud.BatchActionResult]:
        """One batch delete call; one result per id the cloud reported on."""
        ...


@runtime_checkable
class Tagging(Protocol):
    """Tags of an instance: the reconciler writes owner tags after a create and the spec's tags on a change."""

    async def create_tags(self, instance_id: str, tags: Sequence[cloud.Tag]) -> None: ...

    async def delete_tags(self, instance_id: str, tags: Sequence[cloud.Tag]) -> None: ...


@runtime_checkable
class RecycleBin(Protocol):
    """The recycle-bin list: the confirmer's proof, in one call, that any number of deletions ended binned."""

    async def list_recycle_bin(self) -> cloud.RecycleBinResponse: ...


@runtime_checkable
class ProjectWideDeletion(Protocol):
    """The sweeper's project-wide mode only; it deletes instances nobody here owns (see ``sweeping``)."""

    async def delete_all_failed(self, *, force_delete: bool | None = None) -> None:
        """Delete every instance of the project whose creation failed (``all_failure``)."""
        ...


@runtime_checkable
class ManualOperations(Protocol):
    """Operations no service calls: a person's or a tool's. Every deletion goes through the batch,
    and nothing restarts, restores or reads tags on its own; kept apart so that no fake must have them."""

    async def delete_instance(self, instance_id: str) -> None: ...

    async def restart_instance(self, instance_id: str) -> cloud.RestartResponse: ...

    async def list_tags(self, instance_id: str) -> list[cloud.Tag]: ...

    async def restore_from_recycle_bin(self, instance_ids: Sequence[str]) -> list[cloud.RestoreResult]: ...


@runtime_checkable
class ReconcilingClient(ExternalClient, Tagging, Protocol):
    """What the reconciler calls."""


@runtime_checkable
class ConfirmingClient(ExternalClient, RecycleBin, Protocol):
    """What the deletion confirmer calls."""


ChildKind = cloud.ChildKind
ListedKind = cloud.ListedKind


@runtime_checkable
class ChildOperations(Protocol):
    """Topics and consumer groups of one instance (reference section 9).

    A call on an instance that does not exist (any more) raises ``errors.InstanceNotFound``; on a
    topic or group that does not exist, ``errors.NotFound``. ``delete_children`` sends exactly one
    batch call (``POST I/topics?action=delete`` or ``I/groups?action=delete``) and returns its job
    id: the cloud answers nothing per name, so proof of each deletion comes from the list.
    """

    async def list_topics(self, instance_id: str, page: cloud.ChildPage) -> cloud.ListTopicsResponse: ...

    async def create_topic(self, instance_id: str, request: cloud.CreateTopicRequest) -> None: ...

    async def update_topic(self, instance_id: str, name: str, request: cloud.UpdateTopicRequest) -> None: ...

    async def list_groups(self, instance_id: str, page: cloud.ChildPage) -> cloud.ListGroupsResponse: ...

    async def create_group(self, instance_id: str, request: cloud.CreateGroupRequest) -> None: ...

    async def update_group(self, instance_id: str, name: str, request: cloud.UpdateGroupRequest) -> None: ...

    async def delete_children(self, instance_id: str, kind: ChildKind, names: Sequence[str]) -> str:
        """One batch delete of exactly these names of one kind; the job id (empty if the cloud gave none)."""
        ...

    async def show_task(self, instance_id: str, task_id: str) -> cloud.TaskView:
        """A background job of the instance, e.g. the one a batch delete answered."""
        ...


@runtime_checkable
class UserOperations(Protocol):
    """ACL users of one instance (docs/simulator.md "ACL users"); a user's name is its access key.

    A call on an instance that does not exist raises ``errors.InstanceNotFound``; on a user that does
    not exist, ``errors.NotFound`` (the cloud's 400 ``DMS.00500972``). There is no show: it answers
    the secret key in clear, and the operator never reads a key back. There is no batch delete.
    """

    async def list_users(self, instance_id: str, page: cloud.ChildPage) -> cloud.ListUsersResponse: ...

    async def create_user(self, instance_id: str, request: cloud.CreateUserRequest) -> None: ...

    async def update_user(self, instance_id: str, name: str, request: cloud.UpdateUserRequest) -> None: ...

    async def delete_user(self, instance_id: str, name: str) -> None: ...


@runtime_checkable
class OperatorClient(
    ExternalClient, Tagging, RecycleBin, ProjectWideDeletion, ChildOperations, UserOperations, Protocol
):
    """What the runtime builds every service over, and closes when the operator stops."""

    async def aclose(self) -> None: ...
