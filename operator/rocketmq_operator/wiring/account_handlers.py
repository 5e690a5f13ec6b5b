"""The kopf wiring of RocketMQAccount and ClusterRocketMQAccount, and which account a resource uses.

An account's handlers read its Secret (by name: the only Secrets of accounts the operator ever
reads), make or bring up to date its runtime in ``wiring.accounts``, verify the credentials with one
cheap read (a list of one instance) when they are new or were refused, and report how many instances
use the account. Its periodic pass (``wiring.periodic``, one loop per kind as for every other kind)
repeats that each poll interval, so a changed Secret takes effect within one. Deleting an account
that instances still use is held by its finalizer, naming them.

``route`` answers, for a RocketMQInstance, which account's runtime serves it, or why none may; no
cloud call is made for a resource that is refused.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf

from rocketmq_operator.core import accounts, cloud, conditions
from rocketmq_operator.core.account_resource import (
    ACCOUNT_PLURAL,
    CLUSTER_ACCOUNT_PLURAL,
    AccountStatus,
    AnyAccount,
    ClusterRocketMQAccount,
    RocketMQAccount,
)
from rocketmq_operator.core.accounts import AccountFacts, AccountKey, Refusal
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.resource import GROUP, PLURAL, VERSION, AccountKind, AccountRef
from rocketmq_operator.core.settings import OperatorSettings
from rocketmq_operator.core.status import Step
from rocketmq_operator.core.vocabulary import ConditionType, EventType
from rocketmq_operator.ports import errors
from rocketmq_operator.ports.secrets import AccountSecrets, SecretApiError
from rocketmq_operator.wiring import bodies, periodic
from rocketmq_operator.wiring.accounts import Accounts, AccountSource
from rocketmq_operator.wiring.runtime import Runtime

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

TRANSIENT_RETRY_SECONDS = 2.0
FactsIndex = kopf.Index[str, AccountFacts]
UsersIndex = kopf.Index[str, str]


def operator_namespace(settings: OperatorSettings, service_account: Path = SERVICE_ACCOUNT_NAMESPACE) -> str:
    """Where ClusterRocketMQAccounts' Secrets are: DMS_OPERATOR_NAMESPACE, else the pod's, else default."""
    if settings.operator_namespace:
        return settings.operator_namespace
    try:
        return service_account.read_text().strip() or "default"
    except OSError:
        return "default"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- which account a resource uses ------------------------------------------------------------------


@dataclass(frozen=True)
class Routed:
    key: AccountKey
    runtime: Runtime


def facts_of(kwargs: Mapping[str, Any], key: AccountKey) -> AccountFacts | None:
    index: FactsIndex = kwargs["cluster_account_facts" if key.kind is AccountKind.CLUSTER else "account_facts"]
    for facts in index.get(str(key), ()):
        return facts
    return None


def namespace_account(kwargs: Mapping[str, Any], namespace: str) -> str | None:
    index: kopf.Index[str, str] = kwargs["ns_account"]
    for value in index.get(namespace, ()):
        return value or None
    return None


def route(
    memo: kopf.Memo,
    kwargs: Mapping[str, Any],
    *,
    namespace: str,
    recorded: str | None,
    ref: AccountRef | None,
    footprint: bool,
) -> Routed | Refusal:
    found = accounts.choose(
        namespace=namespace,
        recorded=recorded,
        ref=ref,
        footprint=footprint,
        annotation=namespace_account(kwargs, namespace),
    )
    if isinstance(found, Refusal):
        return found
    return route_key(memo, kwargs, found, namespace)


def route_key(memo: kopf.Memo, kwargs: Mapping[str, Any], key: AccountKey, namespace: str) -> Routed | Refusal:
    refusal = accounts.permitted(key, facts_of(kwargs, key) if not key.is_default else None, namespace)
    if refusal is not None:
        return refusal
    registry: Accounts = memo["accounts"]
    runtime = registry.get(key)
    if runtime is None:
        return Refusal(
            "AccountNotReady",
            f"{key.kind.value if key.kind else 'account'} {key.name}: its credentials have not been read yet "
            "(its own status says why)",
            transient=True,
        )
    return Routed(key, runtime)


def refuse(
    refusal: Refusal,
    current: list[Any] | None,
    generation: int | None,
    patch: kopf.Patch,
    body: kopf.Body,
) -> None:
    """Stalled with the refusal's reason; one Warning when it is new.

    A transient refusal of a resource that is Ready writes nothing: it raises a retry a moment later
    instead (after a start, the instances' handlers can run before their accounts' first pass)."""
    ready = conditions.find(current, ConditionType.READY)
    if refusal.transient and ready is not None and ready.status == "True":
        raise kopf.TemporaryError(f"waiting for the account: {refusal.message}", delay=TRANSIENT_RETRY_SECONDS)
    written = accounts.refused(current, generation, refusal, now=_now())
    if written is None:
        return
    for key, value in written.items():
        patch.status[key] = value
    if conditions.ready_reason(current) != refusal.reason:
        kopf.event(body, type="Warning", reason=refusal.reason, message=refusal.message)


# --- the account kinds --------------------------------------------------------------------------------


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> list[periodic.Periodic]:
    """Both account kinds' handlers and indexes; their periodic passes, for the startup to start."""
    poll = settings.poll_interval_seconds

    def secret_of(spec: Mapping[str, Any], namespace: str) -> tuple[str, str]:
        credentials = spec.get("credentials")
        name = credentials.get("secretName") if isinstance(credentials, Mapping) else None
        return (namespace, str(name or ""))

    @kopf.index(GROUP, VERSION, ACCOUNT_PLURAL, id="account_facts", registry=registry)
    async def account_facts(
        namespace: str | None, name: str, spec: Mapping[str, Any], meta: Mapping[str, Any], **_: Any
    ) -> dict[str, AccountFacts]:
        key = accounts.namespaced(namespace or "", name)
        deleting = bool(meta.get("deletionTimestamp"))
        return {str(key): AccountFacts(key, None, deleting, secret_of(spec, namespace or ""))}

    @kopf.index(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, id="cluster_account_facts", registry=registry)
    async def cluster_account_facts(
        name: str, spec: Mapping[str, Any], meta: Mapping[str, Any], **_: Any
    ) -> dict[str, AccountFacts]:
        key = accounts.cluster(name)
        allowed = spec.get("allowedNamespaces")
        return {
            str(key): AccountFacts(
                key,
                tuple(str(n) for n in allowed) if isinstance(allowed, list) else None,
                bool(meta.get("deletionTimestamp")),
                secret_of(spec, operator_namespace(settings)),
            )
        }

    @kopf.index(GROUP, VERSION, PLURAL, id="account_users", registry=registry)
    async def account_users(
        namespace: str | None, name: str, spec: Mapping[str, Any], status: Mapping[str, Any], **_: Any
    ) -> dict[str, str]:
        key = accounts.instance_key(namespace or "", spec, status)
        return {str(key): f"{namespace}/{name}"} if key is not None and not key.is_default else {}

    @kopf.index("namespaces", id="ns_account", registry=registry)
    async def ns_account(name: str, annotations: Mapping[str, str], **_: Any) -> dict[str, str]:
        return {name: annotations.get(accounts.ACCOUNT_ANNOTATION, "")}

    def secret_namespace(account: AnyAccount) -> str:
        if account.kind is AccountKind.CLUSTER:
            return operator_namespace(settings)
        return account.metadata.namespace

    def key_of(account: AnyAccount) -> AccountKey:
        if account.kind is AccountKind.CLUSTER:
            return accounts.cluster(account.metadata.name)
        return accounts.namespaced(account.metadata.namespace, account.metadata.name)

    return [
        _register_kind(registry, settings, plural, parse, prefix, key_of, secret_namespace, poll)
        for plural, parse, prefix in (
            (ACCOUNT_PLURAL, RocketMQAccount.from_body, "account"),
            (CLUSTER_ACCOUNT_PLURAL, ClusterRocketMQAccount.from_body, "clusteraccount"),
        )
    ]


def _register_kind(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    plural: str,
    parse: Callable[[Any], AnyAccount],
    prefix: str,
    key_of: Callable[[AnyAccount], AccountKey],
    secret_namespace: Callable[[AnyAccount], str],
    poll: float,
) -> periodic.Periodic:
    crs: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": plural, "registry": registry}

    async def step(
        body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, kwargs: Mapping[str, Any]
    ) -> Step[AccountStatus]:
        account = bodies.parse(parse, body)
        return await sync_one(account, key_of(account), patch, memo, kwargs)

    async def sync_one(
        account: AnyAccount,
        key: AccountKey,
        patch: kopf.Patch,
        memo: kopf.Memo,
        kwargs: Mapping[str, Any],
    ) -> Step[AccountStatus]:
        """The pass, its status changes put in ``patch``; its Events returned, for after the write."""
        users: UsersIndex = kwargs["account_users"]
        sync = AccountSync(
            memo["accounts"], memo["account_secrets"], settings, shared=lambda secret: _shared(kwargs, key, secret)
        )
        status, events = await sync.run(account, key, secret_namespace(account), list(users.get(str(key), ())))
        for field, value in status.items():
            patch.status[field] = value
        result: Step[AccountStatus] = Step(AccountStatus())
        for type_, reason, message in events:
            result.event(EventType(type_), reason, message)
        return result

    @kopf.on.create(**crs, id=f"{prefix}-sync")
    @kopf.on.update(**crs, id=f"{prefix}-apply")
    @kopf.on.resume(**crs, id=f"{prefix}-resume")
    async def sync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
        bodies.post(await step(body, patch, memo, kwargs), body)

    def make_step(memo: kopf.Memo, indexes: Mapping[str, Any]) -> periodic.StepOf:
        async def pass_(body: kopf.Body, patch: kopf.Patch) -> Step[AccountStatus]:
            return await step(body, patch, memo, indexes)

        return pass_

    # Each poll interval, as a kopf timer per account did; a deleting account is left to its
    # finalizer's retries, which follow the Secret from then on (the loop holds no deleting body).
    passes = periodic.Periodic(plural=plural, prefix=prefix, interval=poll, make_step=make_step, on_gone=_nothing)
    passes.register(registry)

    @kopf.on.delete(**crs, id=f"{prefix}-finalize")
    async def finalize(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
        account = bodies.parse(parse, body)
        key = key_of(account)
        users: UsersIndex = kwargs["account_users"]
        usage = accounts.usage(users.get(str(key), ()))
        if usage.in_use:
            # Still serving its instances' deletions: a changed Secret must still reach the client (a
            # missing one takes nothing away, see wiring.accounts).
            bodies.post(await sync_one(account, key, patch, memo, kwargs), body)
            message = accounts.in_use_message(account.kind.value, account.metadata.name, usage)
            if account.status.deleting_blocked != message:
                patch.status["deletingBlocked"] = message
                kopf.event(body, type="Warning", reason="InUse", message=message)
            raise kopf.TemporaryError(message, delay=settings.verify_interval_seconds)
        secret = (secret_namespace(account), account.spec.credentials.secret_name)
        if not _shared(kwargs, key, secret):
            store: AccountSecrets = memo["account_secrets"]
            try:
                await store.release(*secret, accounts.CREDENTIALS_FINALIZER)
            except SecretApiError as exc:
                raise kopf.TemporaryError(f"Secret {secret[0]}/{secret[1]}: {exc}", delay=poll) from None
        registry_: Accounts = memo["accounts"]
        await registry_.remove(key)

    return passes


def _nothing(_memo: kopf.Memo, _uid: str) -> None:
    """What an account's loop forgets of one gone: nothing (its finalizer removed its runtime)."""


def _shared(kwargs: Mapping[str, Any], key: AccountKey, secret: tuple[str, str]) -> bool:
    """Whether another account, not being deleted, uses the same Secret (it keeps the hold)."""
    for index_id in ("account_facts", "cluster_account_facts"):
        index: FactsIndex = kwargs[index_id]
        for found in index.values():
            for facts in found:
                if facts.key != key and facts.secret == secret and not facts.deleting:
                    return True
    return False


class AccountSync:
    """One pass over one account: Secret → runtime → verification → status."""

    def __init__(
        self,
        registry: Accounts,
        secrets: AccountSecrets,
        settings: OperatorSettings,
        *,
        shared: Callable[[tuple[str, str]], bool] = lambda _secret: False,
    ) -> None:
        self._accounts = registry
        self._secrets = secrets
        self._settings = settings
        self._shared = shared
        """Whether another account, not being deleted, names that Secret (it keeps the hold)."""

    async def run(
        self, account: AnyAccount, key: AccountKey, namespace: str, users: list[str]
    ) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
        status = AccountStatus()
        usage = accounts.usage(users)
        status.in_use = usage.in_use
        status.used_by = usage.used_by
        status.endpoint = account.spec.url
        verdict = await self._verdict(account, key, namespace, status)
        await self._let_go_of_a_renamed_secret(account, key, status)
        generation = account.metadata.generation or None
        status.observed_generation = generation
        now = _now()
        merged = conditions.merge(account.status.conditions, verdict.conditions(generation=generation, now=now))
        events: list[tuple[str, str, str]] = []
        if not conditions.same(account.status.conditions, merged):
            status.conditions = merged
            if conditions.ready_reason(account.status.conditions) != verdict.reason:
                kind = "Normal" if verdict.ready else "Warning"
                events.append((kind, verdict.reason, verdict.message))
        else:
            status.conditions = account.status.conditions
        wire = status.to_patch()
        current = account.status.to_wire()
        return {field: value for field, value in wire.items() if current.get(field) != value}, events

    async def _let_go_of_a_renamed_secret(self, account: AnyAccount, key: AccountKey, status: AccountStatus) -> None:
        """The Secret held before spec.credentials.secretName changed: released, or it could never be deleted."""
        before = account.status.credentials_secret
        if not before or status.credentials_secret is None or before == status.credentials_secret:
            return
        namespace, _, name = before.partition("/")
        if self._shared((namespace, name)):
            return
        try:
            await self._secrets.release(namespace, name, accounts.CREDENTIALS_FINALIZER)
        except SecretApiError as exc:
            status.credentials_secret = before  # tried again next pass
            logger.warning("account %s: could not let go of Secret %s: %s", key, before, exc)

    async def _verdict(self, account: AnyAccount, key: AccountKey, namespace: str, status: AccountStatus) -> Verdict:
        spec = account.spec
        secret = f"{namespace}/{spec.credentials.secret_name}"
        if account.kind is AccountKind.NAMESPACED and not self._settings.namespaced_accounts:
            return Verdict(
                ready=False,
                reason="NamespacedAccountsDisabled",
                message="this operator serves no RocketMQAccount (DMS_NAMESPACED_ACCOUNTS=false; the chart's value "
                "accounts.namespaced); use a ClusterRocketMQAccount",
                stalled=True,
            )
        try:
            read = await self._secrets.read_keys(
                namespace, spec.credentials.secret_name, accounts.key_names(spec.credentials.keys)
            )
        except SecretApiError as exc:
            return Verdict(
                ready=False,
                reason="SecretUnreadable",
                message=f"Secret {secret} could not be read: {exc}",
                reconciling=not exc.forbidden,
                stalled=exc.forbidden,
            )
        if read is None:
            if self._accounts.get(key) is not None:
                return Verdict(
                    ready=False,
                    reason="SecretNotFound",
                    message=f"Secret {secret} not found; the credentials read before it went are still used, so "
                    "this account's instances can still be deleted",
                    reconciling=True,
                )
            return Verdict(ready=False, reason="SecretNotFound", message=f"Secret {secret} not found", stalled=True)
        credentials = accounts.credentials_from(secret, read.values, spec.credentials.keys)
        if isinstance(credentials, Refusal):
            return Verdict(ready=False, reason=credentials.reason, message=credentials.message, stalled=True)
        held = accounts.CREDENTIALS_FINALIZER in read.meta.finalizers
        if not held and not read.meta.deleting:
            try:
                await self._secrets.hold(namespace, spec.credentials.secret_name, accounts.CREDENTIALS_FINALIZER)
                held = True
            except SecretApiError as exc:
                # Not fatal now (the credentials are read); it matters only if the operator restarts
                # during a teardown. Said in the log, tried again next pass.
                logger.warning("account %s: could not hold Secret %s: %s", key, secret, exc)
        if held:
            status.credentials_secret = secret
        version = accounts.secret_version(read.meta.uid, read.meta.resource_version)
        status.credentials_version = version
        status.credentials_type = credentials.description
        rate = spec.rate_limit
        source = AccountSource(
            endpoint=spec.url,
            project_id=spec.project_id,
            credentials=credentials,
            credentials_version=version,
            ca_bundle=spec.ca_bundle,
            rate=rate.rps if rate else self._settings.rate_limit_rps,
            burst=rate.burst if rate else self._settings.rate_limit_burst,
            cluster_id=spec.cluster_id,
        )
        try:
            previous = self._accounts.source(key)
            runtime = await self._accounts.use(key, source)
        except ValueError as exc:  # an unreadable CA bundle
            return Verdict(ready=False, reason="InvalidCABundle", message=f"spec.caBundle: {exc}", stalled=True)
        known = self._accounts.verdict(key)
        if previous is not None and previous.same_account(source) and known is not None and known.ready:
            return known
        verdict = await self._verify(runtime, spec.project_id, spec.url, secret, credentials.description)
        self._accounts.remember(key, verdict)
        if verdict.ready:
            status.verified_at = _now()
        return verdict

    async def _verify(self, runtime: Runtime, project: str, endpoint: str, secret: str, kind: str) -> Verdict:
        try:
            await runtime.client.list_instances(cloud.ListQuery(limit=1))
        except errors.AuthFailed as exc:
            return Verdict(
                ready=False,
                reason=exc.reason,
                message=f"the cloud refused the credentials of Secret {secret} ({kind}): {exc.message}",
                stalled=True,
            )
        except errors.CloudError as exc:
            return Verdict(
                ready=False,
                reason=exc.reason,
                message=f"could not verify the credentials of Secret {secret}: {exc.message}",
                reconciling=not exc.terminal,
                stalled=exc.terminal,
            )
        return Verdict(
            ready=True,
            reason="Verified",
            message=f"credentials of Secret {secret} ({kind}) accepted by project {project} at {endpoint}",
        )
