"""The topic, consumer-group and user lists of each instance, walked once for all the CRs that ask.

Why: a hundred topic CRs of one instance, each showing its own topic every poll interval, would
cost a hundred calls per interval; one paged walk of the instance's topic list answers them all.
Unlike the instance observer there is no loop of its own: the CRs' own timers ask, and a walk
younger than what a caller accepts is shared (so is a walk in flight). An instance nobody asked
about for a while is forgotten.

Trust: a name missing from a walk counts as absent only if the walk was *consistent*: the list's
``total`` did not change while it was paged and the pages held exactly that many distinct names.
A deletion finishing mid-walk shifts the offsets and could hide a name that still exists; such a
walk is repeated, and if it never settles its absences are not trusted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from rocketmq_operator.core import cloud
from rocketmq_operator.ports import errors, protocol
from rocketmq_operator.ports.protocol import ListedKind

logger = logging.getLogger(__name__)

_WALK_ATTEMPTS = 3
_FORGET_AFTER_INTERVALS = 10.0

ChildView = cloud.TopicView | cloud.GroupView | cloud.UserView


class ListingClient(protocol.ChildOperations, protocol.UserOperations, Protocol):
    """The lists the observer walks: topics, groups and users."""


@dataclass(frozen=True)
class ChildList:
    """One walk of an instance's topics or groups."""

    started_at: float
    """Wall clock when the first page was asked for: nothing older than this can be in it."""
    items: Mapping[str, ChildView]
    consistent: bool
    calls: int

    def lookup(self, name: str) -> ChildView | None:
        return self.items.get(name)

    def absent(self, name: str) -> bool:
        """Proven not listed: only a consistent walk can say so."""
        return self.consistent and name not in self.items


class ChildObserver:
    """Shared, paged walks of the topic and group lists, per (instance, kind).

    Args:
        client: the cloud client of the account.
        interval: the poll interval; a walk older than ten of them with nobody asking is dropped.
        clock: wall clock (epoch seconds).
    """

    def __init__(
        self,
        client: ListingClient,
        *,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._interval = interval
        self._clock = clock
        self._lists: dict[tuple[str, ListedKind], ChildList] = {}
        self._asked: dict[tuple[str, ListedKind], float] = {}
        self._walks: dict[tuple[str, ListedKind], asyncio.Task[ChildList]] = {}
        self._changed_at: dict[tuple[str, ListedKind, str], float] = {}
        """When we last changed each object (create, update): a walk from before says nothing of it."""

    def cached(self, instance_id: str, kind: ListedKind) -> ChildList | None:
        return self._lists.get((instance_id, kind))

    async def view(
        self, instance_id: str, kind: ListedKind, *, newer_than: float, about: str | None = None
    ) -> ChildList:
        """A walk that started at or after ``newer_than`` (wall clock), made now if the last one is older.

        ``about``: the name the caller will judge; a walk from before our own last change of it
        (``changed``) does not answer. Raises ``CloudError`` when the walk fails;
        ``InstanceNotFound`` when the instance is gone.
        """
        key = (instance_id, kind)
        now = self._clock()
        self._asked[key] = now
        self._prune(now)
        if about is not None:
            newer_than = max(newer_than, self._changed_at.get((instance_id, kind, about), 0.0))
        latest = self._lists.get(key)
        if latest is not None and latest.started_at >= newer_than:
            return latest
        walk = self._walks.get(key)
        if walk is None or walk.done():
            walk = asyncio.get_running_loop().create_task(self._walk(instance_id, kind), name=f"{kind}-list")
            self._walks[key] = walk
            walk.add_done_callback(lambda done, key=key: self._walk_done(key, done))  # type: ignore[misc]
        # Shielded: a caller giving up must not cancel the walk the others are waiting for.
        result = await asyncio.shield(walk)
        if result.started_at < newer_than:
            # The walk in flight started before the caller's point in time: one more, just for it.
            return await self.view(instance_id, kind, newer_than=newer_than, about=about)
        return result

    def changed(self, instance_id: str, kind: ListedKind, name: str) -> None:
        """After a change of ours to ``name``: no walk that started before it answers about that name.

        Only about that name: the others' answers stand, so a burst of creates (a GitOps sync of a
        hundred topics) does not make every later look wait for a walk of its own.
        """
        self._changed_at[(instance_id, kind, name)] = self._clock()

    def forget_instance(self, instance_id: str) -> None:
        for kind in ("topic", "group", "user"):
            self._lists.pop((instance_id, kind), None)
            self._asked.pop((instance_id, kind), None)
        for changed in [c for c in self._changed_at if c[0] == instance_id]:
            del self._changed_at[changed]

    def _walk_done(self, key: tuple[str, ListedKind], task: asyncio.Task[ChildList]) -> None:
        if self._walks.get(key) is task:
            del self._walks[key]
        if not task.cancelled() and task.exception() is None:
            result = task.result()
            latest = self._lists.get(key)
            if latest is None or latest.started_at <= result.started_at:
                self._lists[key] = result

    def _prune(self, now: float) -> None:
        horizon = now - _FORGET_AFTER_INTERVALS * self._interval
        for key, asked in list(self._asked.items()):
            if asked < horizon:
                self._asked.pop(key, None)
                self._lists.pop(key, None)
        for changed, at in list(self._changed_at.items()):
            if at < horizon:
                del self._changed_at[changed]

    async def aclose(self) -> None:
        walks = list(self._walks.values())
        for walk in walks:
            walk.cancel()
        await asyncio.gather(*walks, return_exceptions=True)

    async def _walk(self, instance_id: str, kind: ListedKind) -> ChildList:
        calls = 0
        for attempt in range(1, _WALK_ATTEMPTS + 1):
            started_at = self._clock()
            items, totals, pages = await self._pages(instance_id, kind)
            calls += pages
            consistent = len(set(totals)) == 1 and totals[0] == len(items)
            if consistent or attempt == _WALK_ATTEMPTS:
                if not consistent:
                    logger.info(
                        "the %s list of instance %s kept changing while paged (totals %s, %d listed); "
                        "absences in it are not trusted",
                        kind,
                        instance_id,
                        totals,
                        len(items),
                    )
                return ChildList(started_at=started_at, items=items, consistent=consistent, calls=calls)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pages(self, instance_id: str, kind: ListedKind) -> tuple[dict[str, ChildView], list[int], int]:
        items: dict[str, ChildView] = {}
        totals: list[int] = []
        offset = 0
        pages = 0
        while True:
            page = cloud.ChildPage(offset=offset)
            listed: list[ChildView]
            if kind == "topic":
                topics = await self._client.list_topics(instance_id, page)
                listed, total = list(topics.topics), topics.total
            elif kind == "user":
                users = await self._client.list_users(instance_id, page)
                listed, total = list(users.users), users.total
            else:
                groups = await self._client.list_groups(instance_id, page)
                listed, total = list(groups.groups), groups.total
            pages += 1
            totals.append(total)
            for item in listed:
                items.setdefault(item.name, item)
            offset += len(listed)
            # The cloud refuses an offset at or past the total, so the walk stops there (TF pages so).
            if not listed or offset >= total:
                return items, totals, pages
            if pages > total // cloud.CHILD_LIST_LIMIT + 20:
                raise errors.MalformedResponse(
                    f"the {kind} list of instance {instance_id} did not end after {pages} pages",
                    operation=f"{kind}_list",
                )
