"""The periodic sweep of instances whose creation failed.

Why a sweep: a CREATEFAILED instance still counts against the project's quota and clutters the
console, and nobody deletes it unless asked. The sweep feeds the failed instances this operator
owns (owner tags, or a CR's recorded id) to the same deletion batcher as CR deletions, so they
share batch calls, and keeps each outcome for the owning CR to record.

The project-wide form (``all_failure``) deletes *every* failed instance in the project, including
ones nobody here owns, and returns no per-instance results: it runs only when the settings turn it
on explicitly; ``report`` mode only says what it would delete.

No sweep at all while the cluster id is unknown: ownership by tag needs it, and a stand-in shared
by every cluster in that state would make each sweep the others' instances. The project-wide call
waits too: which of the failed instances are ours (to be sent through the batcher, so their CRs
learn the outcome) cannot be told. The skip is logged once per change, not every sweep, and
counted in ``rocketmq_operator_sweeps_skipped``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace

from rocketmq_operator.core import cloud
from rocketmq_operator.core.mapping import owned_by_cluster
from rocketmq_operator.core.settings import SweepMode
from rocketmq_operator.core.vocabulary import DeletionTrigger
from rocketmq_operator.ports import errors
from rocketmq_operator.ports.protocol import ProjectWideDeletion
from rocketmq_operator.services import batching, observing
from rocketmq_operator.services.activity import Activity
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.supervision import SupervisedService

logger = logging.getLogger(__name__)

_OUTCOMES_KEPT = 10_000

CLUSTER_ID_UNKNOWN = (
    "the cluster id of the owner tags is not known (DMS_CLUSTER_ID is unset and the kube-system "
    "namespace has not been read), so no failed instance can be proven this cluster's"
)


@dataclass(frozen=True)
class SweepReport:
    """One sweep: which failed instances are ours (and were submitted) and which are foreign."""

    at: float
    mode: str
    owned: tuple[str, ...] = ()
    foreign: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    project_wide_call: bool = False
    outcomes: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    skipped: str | None = None
    """Why nothing was selected nor deleted, when the sweep did not run."""


def select_failed(
    failed: Iterable[cloud.InstanceView], *, cluster_id: str, known_ids: Collection[str]
) -> tuple[list[cloud.InstanceView], list[cloud.InstanceView]]:
    """Split CREATEFAILED instances into (owned, foreign). Ownership is positive evidence only."""
    owned, foreign = [], []
    for view in failed:
        if view.status != cloud.CREATEFAILED:
            continue
        if owned_by_cluster(view, cluster_id) or view.instance_id in known_ids:
            owned.append(view)
        else:
            foreign.append(view)
    return owned, foreign


class Sweeper(SupervisedService):
    def __init__(
        self,
        *,
        client: ProjectWideDeletion,
        observer: observing.Observer,
        batcher: batching.DeletionBatcher,
        interval: float,
        mode: SweepMode,
        cluster_id: Callable[[], str | None],
        known_ids: Callable[[], Collection[str]],
        metrics: Metrics,
        min_failed_age: float = 0.0,
        clock: Callable[[], float] = time.time,
        activity: Activity | None = None,
    ) -> None:
        super().__init__("failed-instance-sweep")
        self._client = client
        self._observer = observer
        self._batcher = batcher
        self._interval = interval
        self._mode = mode
        self._cluster_id = cluster_id
        self._known_ids = known_ids
        self._metrics = metrics
        self._min_failed_age = min_failed_age
        self._clock = clock
        self._activity = activity if activity is not None else Activity()
        self._first_seen_failed: dict[str, float] = {}
        self._outcomes: dict[str, batching.DeleteOutcome] = {}
        self._cluster_id_known: bool | None = None  # as of the last sweep; None before the first
        self.last_report: SweepReport | None = None

    def outcome_for(self, instance_id: str) -> batching.DeleteOutcome | None:
        return self._outcomes.get(instance_id)

    def forget(self, _uid: str, instance_ids: Iterable[str]) -> None:
        """Drop the outcomes kept for a CR that is gone (``tracking.CrMemory`` calls it)."""
        for instance_id in instance_ids:
            self._outcomes.pop(instance_id, None)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._activity.wait_active()
            try:
                await self.sweep_once()
            except Exception:  # the sweep must never die; the next interval tries again
                logger.exception("sweep failed")

    async def sweep_once(self) -> SweepReport:
        now = self._clock()
        failed = self._observer.failed_instances()
        current = {view.instance_id for view in failed}
        for gone in set(self._first_seen_failed) - current:
            del self._first_seen_failed[gone]
        for instance_id in current:
            self._first_seen_failed.setdefault(instance_id, now)
        cluster_id = self._cluster_id()
        self._note_cluster_id(cluster_id)
        if cluster_id is None:
            self._metrics.sweeps_skipped.labels(reason="cluster_id_unknown").inc()
            self.last_report = SweepReport(at=now, mode=self._mode.value, skipped=CLUSTER_ID_UNKNOWN)
            return self.last_report
        owned, foreign = select_failed(failed, cluster_id=cluster_id, known_ids=self._known_ids())
        # Give the owning CR a pass to record CREATEFAILED before the instance disappears.
        due = [v for v in owned if now - self._first_seen_failed[v.instance_id] >= self._min_failed_age]
        waiting = tuple(sorted(v.instance_id for v in owned if v not in due))
        self._metrics.sweeps.labels(mode=self._mode.name.lower()).inc()
        outcomes = await asyncio.gather(
            *(
                self._batcher.submit(v.instance_id, force_delete=True, trigger=DeletionTrigger.SWEEP_CREATE_FAILED)
                for v in due
            )
        )
        for outcome in outcomes:
            self._remember(outcome)
        self._metrics.swept_instances.labels(mode="owned").inc(len(due))
        report = SweepReport(
            at=now,
            mode=self._mode.value,
            owned=tuple(sorted(v.instance_id for v in due)),
            foreign=tuple(sorted(v.instance_id for v in foreign)),
            waiting=waiting,
            outcomes={o.instance_id: o.result for o in outcomes},
        )
        if foreign and self._mode == SweepMode.REPORT:
            logger.info(
                "sweep report: the project-wide sweep would delete %d failed instances not owned here: %s",
                len(foreign),
                ", ".join(report.foreign),
            )
            self._metrics.swept_instances.labels(mode="report").inc(len(foreign))
        elif foreign and self._mode == SweepMode.PROJECT_WIDE:
            try:
                await self._client.delete_all_failed(force_delete=True)
            except errors.CloudError as exc:
                logger.warning("project-wide sweep failed: %s", exc)
                report = replace(report, error=str(exc))
            else:
                logger.info(
                    "project-wide sweep: asked the cloud to delete every failed instance (%d not owned here)",
                    len(foreign),
                )
                self._metrics.swept_instances.labels(mode="project_wide").inc(len(foreign))
                report = replace(report, project_wide_call=True)
        if due:
            logger.info("sweep: submitted %d owned failed instances: %s", len(due), ", ".join(report.owned))
        self.last_report = report
        return report

    def _note_cluster_id(self, cluster_id: str | None) -> None:
        known = cluster_id is not None
        if known == self._cluster_id_known:
            return
        if not known:
            logger.warning("the sweep of failed instances is off until the cluster id is known: %s", CLUSTER_ID_UNKNOWN)
        elif self._cluster_id_known is False:
            logger.info("cluster id %s is known now: the sweep of failed instances resumes", cluster_id)
        self._cluster_id_known = known

    def _remember(self, outcome: batching.DeleteOutcome) -> None:
        self._outcomes[outcome.instance_id] = outcome
        while len(self._outcomes) > _OUTCOMES_KEPT:
            self._outcomes.pop(next(iter(self._outcomes)))
