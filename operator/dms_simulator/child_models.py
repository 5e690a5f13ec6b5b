"""What a topic, a consumer group and an ACL user are inside the simulator: small records kept on
their instance.

They live on the ``Instance`` record (not in a table of their own) so that they disappear with it: a
deleted instance takes its topics, groups and users along, a binned one hides them until it is
restored. This module has no logic and imports nothing of the simulator, so ``instances`` can hold
these types without an import cycle; the rules are in ``children`` and ``users``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PendingDeletion:
    """A batch deletion the cloud accepted for this child; it ends at ``due``."""

    due: float
    task_id: str
    fails: bool = False
    """Fault ``*_delete_fail_names``: when due, the child stays and the job reports FAILED."""


@dataclass
class BrokerQueues:
    read: int
    write: int


@dataclass
class Topic:
    name: str
    created: float
    permission: str = "all"
    brokers: dict[str, BrokerQueues] = field(default_factory=dict)
    """4.8.0: the brokers the topic lives on, with their queue counts (in creation order)."""
    read_queue_num: int = 0
    write_queue_num: int = 0
    """5.x: queue totals (a 5.x topic is not bound to brokers)."""
    message_type: str | None = None
    """5.x only: NORMAL, FIFO, DELAY or TRANSACTION."""
    description: str = ""
    deleting: PendingDeletion | None = None


@dataclass
class Group:
    name: str
    created: float
    enabled: bool = True
    broadcast: bool = False
    retry_max_time: int = 16
    brokers: list[str] = field(default_factory=list)
    consume_orderly: bool = False
    description: str = ""
    deleting: PendingDeletion | None = None


@dataclass(frozen=True)
class Perm:
    """A user's permission on one topic or consumer group (SDK ``UserTopicPerms`` / ``UserGroupPerms``)."""

    name: str
    perm: str


@dataclass
class User:
    """An ACL user of an instance; ``access_key`` is its name."""

    access_key: str
    created: float
    secret_key: str = field(repr=False)
    """Never rendered by ``repr`` (so never by a traceback or a debug log), the call log or an admin
    view; only show answers it (config ``user_secret_in_show``), as the real cloud does."""
    white_remote_address: str = ""
    admin: bool = False
    default_topic_perm: str = "DENY"
    default_group_perm: str = "DENY"
    topic_perms: list[Perm] = field(default_factory=list)
    group_perms: list[Perm] = field(default_factory=list)
    key_version: int = 1
    """1 at creation, +1 per update that sets a different secret key (what admin views show instead
    of the key)."""
