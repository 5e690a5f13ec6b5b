"""The kopf wiring: the only module that imports kopf.

Every handler is a few lines: validate the body into a model, call the reconciler, turn its
``StepResult`` into a status patch, Kubernetes Events and "run again in N seconds". Long-lived
objects are built in ``on.startup`` into ``memo`` and closed in ``on.cleanup``; the registry is
built by a function, so importing this module registers nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import socket
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf

from rocketmq_operator.core import decisions
from rocketmq_operator.core.accounts import AccountKey, Refusal, raw_ref
from rocketmq_operator.core.crdgen import FRAMEWORK_STATUS_FIELD
from rocketmq_operator.core.resource import (
    ANNOTATION_PREFIX,
    DELETION_POLICY_ANNOTATION,
    GROUP,
    PLURAL,
    VERSION,
    RocketMQInstance,
)
from rocketmq_operator.core.settings import OperatorSettings
from rocketmq_operator.core.status import StepResult
from rocketmq_operator.core.vocabulary import DeletionResult
from rocketmq_operator.ports.protocol import OperatorClient
from rocketmq_operator.services import deleting
from rocketmq_operator.services.metrics import Metrics, registry_by_account
from rocketmq_operator.wiring import (
    account_handlers,
    bodies,
    child_handlers,
    lean_watch,
    namespaces,
    peering,
    periodic,
    toggles,
)
from rocketmq_operator.wiring.accounts import Accounts, AccountSource
from rocketmq_operator.wiring.runtime import Runtime
from rocketmq_operator.wiring.secrets import KubeSecrets
from rocketmq_operator.wiring.status_patches import StatusPatchError, StatusPatches

logger = logging.getLogger(__name__)

FINALIZER = f"{GROUP}/finalizer"
EVENT_SOURCE = "rocketmq-operator"
"""Who our Events say posted them (kopf's default is "kopf")."""


@dataclass(frozen=True)
class RunOptions:
    settings: OperatorSettings
    namespaces: tuple[str, ...] = ()
    liveness_endpoint: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    peering: str | None = None
    priority: int = 0
    peering_lifetime: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _parse(body: Mapping[str, Any]) -> RocketMQInstance:
    return bodies.parse(RocketMQInstance.from_body, body)


_apply = bodies.apply


def _footprint(cr: RocketMQInstance) -> bool:
    """Whether the cloud may hold something of this CR: an instance id, or a create that may have been sent."""
    return bool(cr.status.instance_id or cr.status.creation or cr.spec.instance_id)


def _routed(
    memo: kopf.Memo, cr: RocketMQInstance, patch: kopf.Patch, body: kopf.Body, kwargs: Mapping[str, Any]
) -> Runtime | None:
    """The runtime of the CR's account, its choice recorded in the status; None (and the CR Stalled,
    saying why) when it may not use one."""
    found = account_handlers.route(
        memo,
        kwargs,
        namespace=cr.metadata.namespace,
        recorded=cr.status.account,
        ref=cr.spec.account_ref,
        footprint=_footprint(cr),
    )
    if isinstance(found, Refusal):
        account_handlers.refuse(found, cr.status.conditions, cr.metadata.generation or None, patch, body)
        return None
    if cr.status.account != found.key.recorded():
        patch.status["account"] = found.key.recorded()
    return found.runtime


async def _proof_first(body: kopf.Body, memo: kopf.Memo, namespace: str, kwargs: Mapping[str, Any]) -> bool:
    """For a CR whose acceptance is on record: wait for the proof before the CR is parsed
    (``DeletionFlow.await_proof`` says why), read from the raw body. Whether it waited."""
    status = body.get("status") or {}
    deletion = status.get("deletion") or {}
    instance_id = deletion.get("instanceId")
    if deletion.get("result") != DeletionResult.ACCEPTED.value or not isinstance(instance_id, str):
        return False
    recorded = status.get("account")
    found = account_handlers.route(  # the same choice as ``_routed`` makes, from the raw body
        memo,
        kwargs,
        namespace=namespace,
        recorded=recorded if isinstance(recorded, str) else None,
        ref=raw_ref(body.get("spec") or {}),
        footprint=True,  # an accepted deletion: the cloud holds its instance
    )
    if isinstance(found, Refusal) or found.runtime.deletions.released(body.metadata.uid):
        return False
    return await found.runtime.deletions.await_proof(instance_id)


def cluster_id_of(options: RunOptions, namespaces: kopf.Index[str, tuple[str, str | None]]) -> str | None:
    """DMS_CLUSTER_ID, else the uid of kube-system; ``None`` while neither is known.

    Never a made-up fallback: every cluster in the same state would share it, and each one's sweep
    would take the others' failed instances for its own. The services wait for a real id instead.
    """
    if options.settings.cluster_id:
        return options.settings.cluster_id
    for uid, _policy in namespaces.get("kube-system", ()):
        return uid
    return None


def _instance_step(memo: kopf.Memo, indexes: Mapping[str, Any]) -> periodic.StepOf:
    """The periodic pass of one instance CR (what a kopf timer per CR did): its step against the
    latest list snapshot."""

    async def step(body: kopf.Body, patch: kopf.Patch) -> StepResult | None:
        cr = _parse(body)
        runtime = _routed(memo, cr, patch, body, indexes)
        return await runtime.reconciler.reconcile(cr) if runtime is not None else None

    return step


def _forget(memo: kopf.Memo, uid: str) -> None:
    registry_: Accounts | None = memo.get("accounts")
    if registry_ is not None:
        registry_.forget(uid)


CREATES_AT_ONCE = 128
"""Soon passes of instance CRs at once: a new CR's create (``prepare``). Each holds its parsed CR and
a pass's coroutines (some 50 KiB) but a cloud connection (32 per account) only during its calls, not
while its status PATCH waits for the API server: at 32 at once, 10,000 CRs took 362 s to be Ready,
against 194 to 214 s when every create was in flight."""

LIST_PAGE_SIZE = 500
"""Objects per page of kopf's initial lists (client-go's informers page at 500 too)."""

API_CONNECTIONS = 32
"""Connections to the API server for requests (kopf's own default is no limit). With a thousand CRs
changing at once, kopf opened a fresh TLS connection per request and spent a third of its CPU in
handshakes; a bounded pool queues the requests and reuses connections."""

WATCHED_RESOURCES = 8
"""Watch streams kopf keeps per namespace it serves (or once, cluster-wide): our four kinds, plus
namespaces, CRDs and peering, with room to spare. Each holds a pooled connection for as long as it
runs, so they come on top of ``API_CONNECTIONS``."""


def api_connection_limit(namespaces: Collection[str]) -> int:
    """The pool's size: the requests' share plus one connection per watch stream; 0 (no limit) when a
    namespace pattern can match any number of namespaces, each with its watches.

    A pool no larger than the streams starves every request and every new watch: the operator then
    stalls without an error (10 namespaces of 3 kinds filled a pool of 32).
    """
    if not namespaces:
        return API_CONNECTIONS + WATCHED_RESOURCES
    if any(char in pattern for pattern in namespaces for char in "*?[!"):
        return 0
    return API_CONNECTIONS + WATCHED_RESOURCES * len(namespaces)


def _api_session(info: kopf.ConnectionInfo, limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )


def configure(settings: kopf.OperatorSettings) -> None:
    settings.persistence.finalizer = FINALIZER
    # No settings.queueing.worker_limit, though a worker per CR in flight is most of the memory of a
    # mass create or delete: at start-up every worker waits until every object is indexed (we have
    # index handlers), and a worker beyond the limit never starts to index its object. A restarted
    # operator with more CRs than the limit then handles none: measured, 200 CRs deleted after a
    # restart with a limit of 20, none released in 180 s (without the limit, all in 7 s).
    # Handler progress and the last handled spec in the status, next to ours: a pass that writes our
    # status then carries kopf's records in the same PATCH. In annotations they cost a PATCH of the
    # object on top, in almost every pass (at 1,000 CRs, 3 of a CR's 12 writes).
    settings.persistence.progress_storage = StatusFirstProgress()
    settings.persistence.diffbase_storage = StatusFirstDiffBase()
    # We post our own Events for every cloud-side transition; kopf's log-to-event mirroring would
    # add one API write per retry log line.
    settings.posting.level = logging.CRITICAL
    # Events are for people; a namespace being torn down refuses them, so don't retry for a minute.
    settings.posting.default_backoffs = (1, 3)
    # Events name this operator, not its framework: `kubectl describe` shows source.component as
    # "From", and event tooling filters on reportingComponent. The instance is the pod (its host
    # name), as client-go's event recorders report it.
    settings.posting.reporting_component = EVENT_SOURCE
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = f"{EVENT_SOURCE}-"
    # Reconnect quickly after an API server restart; re-list often enough to heal lost events.
    settings.watching.reconnect_backoff = 1.0
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # The initial list (at every start, and after a watch expires) in pages: unpaged, kopf read the
    # whole list as one response, managedFields and all, and decoded it at once before the first
    # object went to its worker.
    settings.watching.chunk_size = LIST_PAGE_SIZE
    # kopf's networking timeouts stay at their defaults: aiohttp counts the wait for a free pooled
    # connection as "connect", so a short connect timeout fails requests exactly when a thousand
    # CRs are patched at once, and the retries make it worse.


class StatusFirstProgress(kopf.MultiProgressStorage):
    """Progress kept in ``status.kopf``; still read from, and purged out of, the annotations an
    operator before 0.x wrote, so an upgrade resumes a handler where it was."""

    def __init__(self) -> None:
        self.status = kopf.StatusProgressStorage(name=FRAMEWORK_STATUS_FIELD)
        super().__init__([self.status, kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)])

    def store(self, *, key: Any, record: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        self.status.store(key=key, record=record, body=body, patch=patch)

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        self.status.touch(body=body, patch=patch, value=value)


class StatusFirstDiffBase(kopf.MultiDiffBaseStorage):
    """The last handled spec in ``status.kopf``; the annotation of earlier versions is still read."""

    def __init__(self) -> None:
        self.status = kopf.StatusDiffBaseStorage(name=FRAMEWORK_STATUS_FIELD)
        legacy = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATION_PREFIX, key="last-handled-configuration")
        super().__init__([self.status, legacy])

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        self.status.store(body=body, patch=patch, essence=essence)


def build_registry(options: RunOptions) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    crs: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": PLURAL, "registry": registry}
    opts = options.settings

    @kopf.on.login(registry=registry)
    async def login(memo: kopf.Memo, **kwargs: Any) -> kopf.AiohttpSession | None:
        # In a pod: the ServiceAccount token; elsewhere: KUBECONFIG. No client library needed.
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        if info is None:
            return None
        session = _api_session(info, api_connection_limit(options.namespaces))
        memo.setdefault("api_sessions", []).append(session)
        # Connection Secrets are written over the newest session (wiring.secrets).
        memo["api_endpoint"] = (info.server, session)
        return kopf.AiohttpSession(
            server=info.server,
            default_namespace=info.default_namespace,
            priority=info.priority,
            expiration=info.expiration,
            aiohttp_session=session,
        )

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
        configure(settings)
        if options.peering_lifetime is not None:
            settings.peering.lifetime = options.peering_lifetime
        follower: peering.Follower | None = memo.get("peering_follower")
        ns_info: kopf.Index[str, tuple[str, str | None]] = kwargs["ns_info"]
        parents = child_handlers.parents_from(kwargs, opts)

        kube_secrets = KubeSecrets(lambda: memo.get("api_endpoint"))
        memo["instance_status_writer"] = StatusPatches(
            lambda: memo.get("api_endpoint"), group=GROUP, version=VERSION, plural=PLURAL
        )
        secrets = kube_secrets if opts.connection_secrets else None
        default: Runtime = await Runtime.start(
            opts,
            cluster_id=lambda: cluster_id_of(options, ns_info),
            known_ids=parents.known_ids,
            # With peering, the loops wait until Kopf says this replica works (wiring.peering).
            active=follower is None,
            withhold=parents.withholds,
            secrets=secrets,
        )
        memo["runtime"] = default

        async def start_account(
            key: AccountKey, source: AccountSource, client: Callable[[Metrics], OperatorClient]
        ) -> Runtime:
            return await Runtime.start(
                source.settings(opts),
                # The registry's latest source, not this first one: a later spec.clusterId must reach
                # the running services (``source`` serves until the registry holds the account).
                cluster_id=lambda: (registry_.source(key) or source).cluster_id or cluster_id_of(options, ns_info),
                known_ids=parents.known_ids,
                withhold=parents.withholds,
                secrets=secrets,
                activity=default.activity,  # one peering state for every account's loops
                client=client,
            )

        memo["accounts"] = registry_ = Accounts(opts, default=default, start=start_account)
        for kind in kinds:
            # Each loop runs from its kind's first watch event.
            kind.start(memo, kwargs, default.activity, settings.persistence.diffbase_storage)
        # Account Secrets are read (by name) even with connection Secrets off: no account works without.
        memo["account_secrets"] = kube_secrets
        if options.metrics_port is not None:
            default.serve_metrics(
                options.metrics_port, options.metrics_host, registry=registry_by_account(registry_.metrics)
            )
        if follower is not None:
            follower.start(default.activity)
        logger.info(
            "operator started: endpoint %s, project %s, batch size %d, window %.2fs, poll %.1fs, sweep %s",
            opts.endpoint,
            opts.project_id,
            opts.batch_max_size,
            opts.batch_window_seconds,
            opts.poll_interval_seconds,
            opts.sweep_project_wide.name.lower(),
        )

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        follower: peering.Follower | None = memo.get("peering_follower")
        if follower is not None:
            await follower.aclose()
        for kind in kinds:
            await kind.aclose()
        registry_: Accounts | None = memo.get("accounts")
        if registry_ is not None:
            await registry_.aclose()  # the default's runtime too
        for session in memo.get("api_sessions", []):
            await session.close()

    @kopf.on.probe(id="cloud", registry=registry)
    async def cloud_probe(memo: kopf.Memo, **_: Any) -> str:
        runtime = memo.get("runtime")
        if runtime is None:
            return "starting"
        error = runtime.observer.last_error
        return f"last list failed: {error.reason}" if error is not None else "ok"

    # A probe that fails for good makes kopf answer the liveness endpoint with an error (500), so
    # Kubernetes restarts the pod; a plain exception would be retried after a backoff instead,
    # holding the probe's HTTP request open until the kubelet gives up on it.
    @kopf.on.probe(id="loops", errors=kopf.ErrorsMode.PERMANENT, registry=registry)
    async def loops_probe(memo: kopf.Memo, **_: Any) -> str:
        registry_: Accounts | None = memo.get("accounts")
        follower: peering.Follower | None = memo.get("peering_follower")
        failures = registry_.failures() if registry_ is not None else []
        failures.extend(failure for kind in kinds if (failure := kind.failure()))
        if follower is not None and (failure := follower.failure()):
            failures.append(failure)
        if failures:
            raise kopf.PermanentError("; ".join(failures))
        return "ok" if registry_ is not None else "starting"

    @kopf.index("namespaces", id="ns_info", registry=registry)
    async def ns_info(
        name: str, uid: str, annotations: Mapping[str, str], **_: Any
    ) -> dict[str, tuple[str, str | None]]:
        return {name: (uid, annotations.get(DELETION_POLICY_ANNOTATION))}

    # One loop per kind passes over every CR each poll interval (wiring.periodic), not a kopf timer per CR.
    instances = periodic.Periodic(
        plural=PLURAL,
        prefix="instance",
        interval=opts.poll_interval_seconds,
        make_step=_instance_step,
        on_gone=_forget,
        soon_concurrency=CREATES_AT_ONCE,
    )
    instances.register(registry)
    kinds = [instances, *child_handlers.register(registry, opts), *account_handlers.register(registry, opts)]

    @kopf.on.create(**crs, id="prepare")
    async def prepare(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
        """The create marker, written before anything is sent; the create itself is the CR's soon pass
        (``Periodic.soon``), which runs once this handler's write is back. In a handler of its own
        (it was, as "provision"), every CR of a mass create held a kopf worker while it queued for
        the cloud: 490 to 520 MiB at 10,000 CRs. The pass writes what the handler wrote."""
        cr = _parse(body)
        runtime = _routed(memo, cr, patch, body, kwargs)
        if runtime is None:
            return  # refused, and the patch says why; the rounds look again each poll interval
        _apply(await runtime.reconciler.prepare(cr), patch, body)
        instances.soon(cr.metadata.uid)

    @kopf.on.update(**crs, id="apply")
    async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
        await _reconcile(_parse(body), body, patch, memo, kwargs)

    @kopf.on.resume(**crs, id="resume")
    async def resume(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
        cr = _parse(body)
        if decisions.settled(cr):
            return  # nothing under way: the periodic pass observes it (decisions.settled says why)
        await _reconcile(cr, body, patch, memo, kwargs)

    async def _reconcile(
        cr: RocketMQInstance, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, kwargs: Mapping[str, Any]
    ) -> None:
        runtime = _routed(memo, cr, patch, body, kwargs)
        if runtime is None:
            return  # the periodic pass looks again each poll interval
        result = await runtime.reconciler.reconcile(cr)
        _apply(result, patch, body)
        if result.requeue_after is not None and result.requeue_after < opts.poll_interval_seconds:
            raise kopf.TemporaryError("continuing with the next step", delay=result.requeue_after)

    @kopf.on.delete(**crs, id="finalize")
    async def finalize(
        body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, namespace: str | None, **kwargs: Any
    ) -> None:
        waited = await _proof_first(body, memo, namespace or "", kwargs)
        cr = _parse(body)
        runtime = _routed(memo, cr, patch, body, kwargs)
        if runtime is None:
            if not _footprint(cr):
                return  # nothing was ever made in the cloud: nothing to delete, nothing to prove
            raise kopf.TemporaryError("the instance's account cannot be used", delay=opts.poll_interval_seconds)
        if runtime.deletions.released(cr.metadata.uid):
            return  # a body from before our release: the finalizer goes again, nothing else is written
        ns_index: kopf.Index[str, tuple[str, str | None]] = kwargs["ns_info"]
        policy = next((p for _uid, p in ns_index.get(namespace or "", ())), None)
        result = await runtime.deletions.finalize(
            cr, namespace_policy=policy, default_policy=opts.default_deletion_policy, waited=waited, settle=False
        )
        instance_id = deleting.awaiting_proof(result)
        if instance_id is not None:
            # The acceptance on record now, so kubectl shows it while the cloud deletes and the release
            # writes only the finalizer's removal; then the wait for the proof, holding no parsed CR
            # (``await_proof``). Not on record: it goes with the pass's result, after a shorter wait.
            recorded = await _record_acceptance(memo, body, result)
            del cr
            await runtime.deletions.await_proof(
                instance_id, timeout=None if recorded else opts.delete_confirm_wait_seconds
            )
            if runtime.deletions.released(body.metadata.uid or ""):
                return  # gone from the API server meanwhile (its finalizer removed by hand): nothing to write
            cr = _parse(body)
            then = await runtime.deletions.finalize(
                cr, namespace_policy=policy, default_policy=opts.default_deletion_policy, waited=True
            )
            result = deleting.settled(result, then, recorded=recorded)
        _apply(result, patch, body)
        if result.released:
            started = cr.metadata.deletion_timestamp
            if started:
                seconds = max(0.0, _now() - decisions.epoch(started))
                chosen = decisions.resolve_policy(cr, policy, opts.default_deletion_policy).policy
                runtime.metrics.release_seconds.labels(policy=chosen.value).observe(seconds)
            runtime.memory.forget(cr.metadata.uid)
            return
        delay = result.requeue_after if result.requeue_after is not None else opts.verify_interval_seconds
        message = result.events[-1].message if result.events else "waiting for the cloud to delete the instance"
        raise kopf.TemporaryError(message, delay=delay)

    return registry


async def _record_acceptance(memo: kopf.Memo, body: kopf.Body, result: StepResult) -> bool:
    """The status of an accepted deletion written at once, apart from kopf's patch: whether it was.

    kopf writes a handler's patch only when the handler returns, so an acceptance whose handler
    waited for the proof reached the CR together with the finalizer's removal, two writes when the
    API server is busiest, and nobody saw it while the cloud deleted. Not written (the API server
    failed it, or the CR is gone): kopf writes the result when the pass ends, as it did.
    """
    writer: StatusPatches | None = memo.get("instance_status_writer")
    if writer is None:
        return False
    namespace, name = body.metadata.namespace or "", body.metadata.name or ""
    try:
        written = await writer.merged(namespace, name, result.patch)
    except StatusPatchError as exc:
        logger.warning("%s/%s: the deletion's acceptance was not written at once: %s", namespace, name, exc)
        return False
    if written is None:
        return False
    _hold(body, written)
    return True


def _hold(body: kopf.Body, written: dict[str, Any]) -> None:
    """The CR as our write left it, as the body kopf handles: kopf removes the finalizer by a JSON
    patch that tests the resourceVersion of that body, which our write made stale (a 422 for every
    CR, then a second PATCH once the write's watch event came round). kopf's bodies are views whose
    source can be replaced (its daemons' live bodies are kept so); without that, the cost is the
    second PATCH, not a fault."""
    replace = getattr(body, "_replace_with", None)
    if callable(replace) and isinstance(written.get("metadata"), dict):
        written["metadata"].pop("managedFields", None)  # as every body kopf keeps (wiring.lean_watch)
        replace(written)


def _now() -> float:
    return datetime.datetime.now(datetime.UTC).timestamp()


async def run(options: RunOptions, *, stop_flag: asyncio.Event | None = None) -> None:
    """Run the operator until stopped (SIGINT/SIGTERM, or ``stop_flag``)."""
    registry = build_registry(options)
    toggles.install()  # kopf's index pre-population, linear in the CRs listed at start
    lean_watch.install()  # no managedFields in the bodies kopf keeps and copies
    if options.namespaces:
        namespaces.install()  # serve terminating namespaces after a restart, too
    memo = kopf.Memo()
    follower = None
    if options.peering is not None:
        peering.install()  # refuses a kopf it was not written for, before anything starts
        memo["peering_follower"] = follower = peering.Follower()
    with follower.bound() if follower is not None else contextlib.nullcontext():
        await kopf.operator(
            registry=registry,
            clusterwide=not options.namespaces,
            namespaces=list(options.namespaces),
            liveness_endpoint=options.liveness_endpoint,
            standalone=options.peering is None,
            peering_name=options.peering,
            priority=options.priority,
            stop_flag=stop_flag,
            memo=memo,
        )
