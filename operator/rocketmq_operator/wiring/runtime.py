"""Builds and closes the operator's long-lived objects for one account.

Why apart from the handlers: what the operator is made of (client, observer, batcher, sweeper,
reconciler, metrics endpoint) is plain construction, testable and reusable without kopf; the
handlers only keep the result in kopf's ``memo`` (no import-time globals).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from rocketmq_operator.adapters import dms_client, signing
from rocketmq_operator.adapters.retrying import RetryPolicy
from rocketmq_operator.core.settings import OperatorSettings
from rocketmq_operator.ports.protocol import OperatorClient
from rocketmq_operator.ports.secrets import SecretStore
from rocketmq_operator.services.activity import Activity
from rocketmq_operator.services.batching import ChildBatcher, DeletionBatcher
from rocketmq_operator.services.child_lifecycle import Timing
from rocketmq_operator.services.child_observing import ChildObserver
from rocketmq_operator.services.children import ChildReconciler
from rocketmq_operator.services.confirming import DeletionConfirmer
from rocketmq_operator.services.connection_secrets import ConnectionSecrets
from rocketmq_operator.services.deleting import DeletionFlow
from rocketmq_operator.services.metrics import Metrics
from rocketmq_operator.services.observing import Observer
from rocketmq_operator.services.reconciling import Reconciler
from rocketmq_operator.services.sweeping import Sweeper
from rocketmq_operator.services.tracking import CrMemory
from rocketmq_operator.services.users import UserReconciler

logger = logging.getLogger(__name__)


def credentials_from(settings: OperatorSettings) -> signing.Credentials:
    if settings.access_key is not None and settings.secret_key is not None:
        return signing.AkSkCredentials(
            settings.access_key.get_secret_value(),
            settings.secret_key.get_secret_value(),
            security_token=settings.security_token.get_secret_value() if settings.security_token else None,
        )
    assert settings.auth_token is not None  # guaranteed by OperatorSettings' validator
    return signing.TokenCredentials(settings.auth_token.get_secret_value())


def build_client(
    settings: OperatorSettings,
    metrics: Metrics,
    *,
    credentials: signing.Credentials | None = None,
    ca_data: str | None = None,
) -> dms_client.DmsClient:
    """The client of ``settings``' account; an account CR's passes its own credentials and CA bundle."""
    timeout = settings.request_timeout_seconds
    return dms_client.build_client(
        endpoint=settings.endpoint,
        project_id=settings.project_id,
        credentials=credentials if credentials is not None else credentials_from(settings),
        ca_file=settings.ca_file,
        ca_data=ca_data,
        verify=not settings.insecure_skip_tls_verify,
        # No pool timeout: the token bucket paces requests, and a burst (a thousand deletions at
        # batch size 1) must queue for a connection, not fail with PoolTimeout and be retried.
        timeouts=dms_client.Timeouts(connect=min(10.0, timeout), read=timeout, write=timeout, pool=None),
        rate=settings.rate_limit_rps,
        burst=settings.rate_limit_burst,
        retry=RetryPolicy(max_attempts=settings.max_retries + 1),
        recorder=metrics,
    )


@dataclass
class Runtime:
    settings: OperatorSettings
    metrics: Metrics
    client: OperatorClient
    observer: Observer
    batcher: DeletionBatcher
    confirmer: DeletionConfirmer
    sweeper: Sweeper
    reconciler: Reconciler
    deletions: DeletionFlow
    memory: CrMemory
    activity: Activity
    children: ChildReconciler
    child_observer: ChildObserver
    child_batcher: ChildBatcher
    users: UserReconciler
    metrics_server: WSGIServer | None = None
    _gauge: Callable[[bool], None] | None = None

    @classmethod
    async def start(
        cls,
        settings: OperatorSettings,
        *,
        cluster_id: Callable[[], str | None],
        known_ids: Callable[[], Collection[str]],
        metrics_port: int | None = None,
        metrics_host: str = "0.0.0.0",
        active: bool = True,
        withhold: Callable[[str], bool] = lambda _instance_id: False,
        secrets: SecretStore | None = None,
        activity: Activity | None = None,
        client: Callable[[Metrics], OperatorClient] | None = None,
    ) -> Runtime:
        """Assembled and started; ``client`` builds the cloud client (default: from ``settings``'
        credentials), ``activity`` is shared by every account's loops (one peering state)."""
        metrics = Metrics()
        runtime = cls.assemble(
            settings,
            client=client(metrics) if client is not None else build_client(settings, metrics),
            metrics=metrics,
            cluster_id=cluster_id,
            known_ids=known_ids,
            active=active,
            withhold=withhold,
            secrets=secrets,
            activity=activity,
        )
        if metrics_port is not None:
            runtime.serve_metrics(metrics_port, metrics_host)
        await runtime.start_loops()
        return runtime

    @classmethod
    def assemble(
        cls,
        settings: OperatorSettings,
        *,
        client: OperatorClient,
        metrics: Metrics,
        cluster_id: Callable[[], str | None],
        known_ids: Callable[[], Collection[str]],
        active: bool = True,
        withhold: Callable[[str], bool] = lambda _instance_id: False,
        secrets: SecretStore | None = None,
        activity: Activity | None = None,
    ) -> Runtime:
        """The services over ``client``, wired to each other; nothing started, no I/O.

        ``active=False`` builds a standby: its loops make no cloud call until ``activity`` is set.
        The batchers are not gated: they send only what handlers give them, and Kopf runs none on a
        standby. ``withhold(instance_id)``: that instance is being deleted with its topics and groups,
        so their own deletions make no call (the wiring answers it from its index of instances).
        ``secrets``: where connection Secrets are written (``None``: nowhere; CRs asking say so).
        """

        def gauge(on: bool) -> None:
            metrics.active.set(1 if on else 0)

        if activity is None:
            activity = Activity(active=active, on_change=gauge)
        else:
            activity.watch(gauge)
        observer = Observer(
            client,
            interval=settings.poll_interval_seconds,
            min_gap=settings.verify_interval_seconds,
            metrics=metrics,
            activity=activity,
        )
        batcher = DeletionBatcher(
            client,
            window=settings.batch_window_seconds,
            max_wait=settings.batch_max_wait_seconds,
            max_size=settings.batch_max_size,
            metrics=metrics,
        )
        confirmer = DeletionConfirmer(
            client,
            verify_interval=settings.verify_interval_seconds,
            max_gap=max(settings.poll_interval_seconds, settings.verify_interval_seconds),
            listed=observer.lookup,
            metrics=metrics,
            activity=activity,
        )
        sweeper = Sweeper(
            client=client,
            observer=observer,
            batcher=batcher,
            interval=settings.sweep_interval_seconds,
            mode=settings.sweep_project_wide,
            cluster_id=cluster_id,
            known_ids=known_ids,
            metrics=metrics,
            min_failed_age=2 * settings.poll_interval_seconds,
            activity=activity,
        )
        memory = CrMemory(metrics)
        memory.on_forget(sweeper.forget)
        reconciler = Reconciler(
            client=client,
            observer=observer,
            settings=settings,
            cluster_id=cluster_id,
            metrics=metrics,
            memory=memory,
            sweep_outcomes=sweeper.outcome_for,
            secrets=ConnectionSecrets(secrets, enabled=settings.connection_secrets, memory=memory),
        )
        deletions = DeletionFlow(
            client=client,
            observer=observer,
            batcher=batcher,
            confirmer=confirmer,
            settings=settings,
            memory=memory,
        )
        child_observer = ChildObserver(client, interval=settings.poll_interval_seconds)
        child_batcher = ChildBatcher(
            client,
            window=settings.batch_window_seconds,
            max_wait=settings.batch_max_wait_seconds,
            max_size=settings.batch_max_size,
            metrics=metrics,
            withhold=withhold,
        )
        children = ChildReconciler(
            client=client,
            observer=child_observer,
            batcher=child_batcher,
            instances=observer.lookup,
            timing=Timing(settings.poll_interval_seconds, settings.verify_interval_seconds),
        )
        users = UserReconciler(
            client=client,
            observer=child_observer,
            # Users read their key from a Secret: behind the same switch as connection Secrets.
            secrets=secrets if settings.connection_secrets else None,
            instances=observer.lookup,
            timing=Timing(settings.poll_interval_seconds, settings.verify_interval_seconds),
        )
        runtime = cls(
            settings,
            metrics,
            client,
            observer,
            batcher,
            confirmer,
            sweeper,
            reconciler,
            deletions,
            memory,
            activity,
            children,
            child_observer,
            child_batcher,
            users,
        )
        runtime._gauge = gauge
        return runtime

    def serve_metrics(self, port: int, host: str, *, registry: CollectorRegistry | None = None) -> None:
        """Prometheus' /metrics, served by prometheus_client on a thread of its own (it is not asyncio):
        this runtime's, or ``registry`` (every account's, ``services.metrics.registry_by_account``)."""
        self.metrics_server, _thread = start_http_server(
            port, addr=host, registry=registry if registry is not None else self.metrics.registry
        )
        logger.info("metrics on http://%s:%d/metrics", host, port)

    async def start_loops(self) -> None:
        await self.observer.start()
        await self.confirmer.start()
        await self.sweeper.start()

    def failures(self) -> list[str]:
        """Why the operator cannot go on as it is: the background loops that died (empty: none did)."""
        return [f for f in (self.observer.failure(), self.confirmer.failure(), self.sweeper.failure()) if f]

    async def aclose(self) -> None:
        if self._gauge is not None:
            self.activity.unwatch(self._gauge)  # a shared activity outlives this account
        await self.sweeper.aclose()
        await self.child_batcher.aclose()
        await self.child_observer.aclose()
        await self.batcher.aclose()
        await self.confirmer.aclose()
        await self.observer.aclose()
        await self.client.aclose()
        if self.metrics_server is not None:
            server, self.metrics_server = self.metrics_server, None
            # shutdown() waits for the serving thread to notice (its poll is half a second): off the loop,
            # or every other task of the operator stalls while it waits.
            await asyncio.to_thread(server.shutdown)
            server.server_close()  # shutdown() only stops serving; this frees the port
