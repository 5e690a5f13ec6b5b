"""The kopf wiring of RocketMQTopic, RocketMQConsumerGroup and RocketMQUser: the same few handlers for each.

A child finds its parent in an index of the RocketMQInstance CRs (``instance_facts``), kept by kopf
from the watch it already has: no API call per child. The index also answers the child batcher's
question at flush time, "is this instance being deleted with its children?" (``withholds``), and the
sweeper's, "which instance ids do our CRs record?" (``known_ids``): one index of the instances serves
all three, so no second one keyed by instance id is kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import kopf

from rocketmq_operator.core import accounts, decisions
from rocketmq_operator.core.accounts import AccountKey, Refusal
from rocketmq_operator.core.child_mapping import GROUPS, TOPICS, KindRules, Parent
from rocketmq_operator.core.child_resource import CONSUMER_GROUP_PLURAL, TOPIC_PLURAL
from rocketmq_operator.core.connection import SpecDefaults
from rocketmq_operator.core.resource import GROUP, PLURAL, VERSION, DeletionPolicy
from rocketmq_operator.core.settings import OperatorSettings
from rocketmq_operator.core.user_resource import USER_PLURAL, RocketMQUser
from rocketmq_operator.services.child_lifecycle import AnyChildCR, ChildStep
from rocketmq_operator.wiring import account_handlers, bodies, periodic
from rocketmq_operator.wiring.accounts import Accounts
from rocketmq_operator.wiring.runtime import Runtime

FactsIndex = kopf.Index[tuple[str, str], "InstanceFacts"]
NamespaceIndex = kopf.Index[str, bool]
CR = TypeVar("CR", bound=AnyChildCR)


@dataclass(frozen=True)
class InstanceFacts:
    """What the children need of one RocketMQInstance CR, kept small: it is held for every instance."""

    namespace: str
    name: str
    instance_id: str | None
    cloud_status: str | None
    engine_version: str | None
    deleting: bool
    spec_policy: DeletionPolicy | None
    adopted: bool
    spec_defaults: SpecDefaults = field(default_factory=SpecDefaults)
    account: AccountKey | None = None
    """The instance's account, once recorded (its children's calls go through the same one)."""

    def parent(self, *, namespace_terminating: bool, namespace_policy: str | None, default: DeletionPolicy) -> Parent:
        policy = decisions.policy_of(
            self.spec_policy, adopted=self.adopted, namespace_value=namespace_policy, default=default
        ).policy
        return Parent(
            ref=f"{self.namespace}/{self.name}",
            instance_id=self.instance_id,
            cloud_status=self.cloud_status,
            engine_version=self.engine_version,
            # A namespace being deleted takes its instance CRs too, even if their deletion is not seen yet.
            deleting=self.deleting or namespace_terminating,
            deletes_instance=policy == DeletionPolicy.DELETE,
            spec_defaults=self.spec_defaults,
        )


def instance_facts(
    namespace: str | None, name: str, spec: Mapping[str, Any], status: Mapping[str, Any], meta: Mapping[str, Any]
) -> InstanceFacts:
    raw_policy = spec.get("deletionPolicy")
    try:
        spec_policy = DeletionPolicy(raw_policy) if raw_policy else None
    except ValueError:
        spec_policy = DeletionPolicy.ORPHAN  # the CRD forbids it; a typo must never delete data
    return InstanceFacts(
        namespace=namespace or "",
        name=name,
        instance_id=status.get("instanceId") or None,
        cloud_status=status.get("cloudStatus") or None,
        engine_version=spec.get("engineVersion") or None,
        deleting=bool(meta.get("deletionTimestamp")),
        spec_policy=spec_policy,
        adopted=bool(spec.get("instanceId") or status.get("adopted")),
        account=accounts.instance_key(namespace or "", spec, status),
        spec_defaults=SpecDefaults(
            enable_publicip=_flag(spec.get("enablePublicip")),
            tls_mode=spec.get("tlsMode") or None,
            enable_acl=_flag(spec.get("enableAcl")),
            engine_version=spec.get("engineVersion") or None,
        ),
    )


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


class Parents:
    """Answers from the indexes: a child's parent, whether an instance goes with its children, and which
    instance ids the RocketMQInstance CRs record (the sweeper's evidence that a failed instance is ours)."""

    def __init__(
        self,
        facts: FactsIndex,
        terminating: NamespaceIndex,
        ns_info: kopf.Index[str, tuple[str, str | None]],
        settings: OperatorSettings,
    ) -> None:
        self._facts = facts
        self._terminating = terminating
        self._ns_info = ns_info
        self._settings = settings

    def account_of(self, namespace: str, name: str) -> AccountKey:
        """The parent instance's account; the default while there is no parent or it names none yet."""
        for facts in self._facts.get((namespace, name), ()):
            return facts.account or accounts.DEFAULT
        return accounts.DEFAULT

    def of(self, namespace: str, name: str) -> Parent | None:
        for facts in self._facts.get((namespace, name), ()):
            return facts.parent(
                namespace_terminating=any(self._terminating.get(namespace, ())),
                namespace_policy=next((p for _uid, p in self._ns_info.get(namespace, ())), None),
                default=self._settings.default_deletion_policy,
            )
        return None

    def known_ids(self) -> Collection[str]:
        return {facts.instance_id for found in self._facts.values() for facts in found if facts.instance_id}

    def withholds(self, instance_id: str) -> bool:
        # A walk over the instance CRs rather than a lookup by id: it runs only when a batched deletion
        # call is due, so one index of the instances is enough.
        for (namespace, name), found in self._facts.items():
            if not any(facts.instance_id == instance_id for facts in found):
                continue
            parent = self.of(namespace, name)
            if parent is not None and parent.instance_id == instance_id and parent.deleting and parent.deletes_instance:
                return True
        return False


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> list[periodic.Periodic]:
    """The indexes the children need, and the handlers of the three child kinds; returns their
    periodic passes, for the startup to start."""

    # Every index is a coroutine: kopf runs a plain function in its thread pool, and every instance
    # event then queued there twice, its worker and body held meanwhile (at 6,000 CRs created at
    # once, every CR Ready in 137 and 146 s against 82 and 95 s; tests/unit/test_wiring_handlers.py).
    @kopf.index(GROUP, VERSION, PLURAL, id="instance_facts", registry=registry)
    async def facts_index(
        namespace: str | None,
        name: str,
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
        meta: Mapping[str, Any],
        **_: Any,
    ) -> dict[tuple[str, str], InstanceFacts]:
        return {(namespace or "", name): instance_facts(namespace, name, spec, status, meta)}

    @kopf.index("namespaces", id="ns_terminating", registry=registry)
    async def ns_terminating(name: str, meta: Mapping[str, Any], **_: Any) -> dict[str, bool]:
        return {name: bool(meta.get("deletionTimestamp"))}

    kinds = [
        _register_kind(registry, settings, _child_kind(rules, plural))
        for rules, plural in ((TOPICS, TOPIC_PLURAL), (GROUPS, CONSUMER_GROUP_PLURAL))
    ]
    # The users' periodic pass also carries the key rotation (a changed Secret is noticed within a poll interval).
    kinds.append(_register_kind(registry, settings, _USERS))
    return kinds


def parents_from(kwargs: Mapping[str, Any], settings: OperatorSettings) -> Parents:
    return Parents(kwargs["instance_facts"], kwargs["ns_terminating"], kwargs["ns_info"], settings)


@dataclass(frozen=True)
class _Handled(Generic[CR]):
    """One child kind as the handlers see it: where kopf finds it, the prefix of its handler ids (kopf
    stores each handler's progress under its id, so they never change), and its service's calls."""

    plural: str
    prefix: str
    noun: str
    parse: Callable[[Mapping[str, Any]], CR]
    reconcile: Callable[[Runtime, CR, Parent | None], Awaitable[ChildStep]]
    finalize: Callable[[Runtime, CR, Parent | None], Awaitable[ChildStep]]
    forget: Callable[[Runtime, str], None]
    released: Callable[[Runtime, str], bool]


def _child_kind(rules: KindRules[Any], plural: str) -> _Handled[Any]:
    """A topic or group kind, over ``services.children``."""
    return _Handled(
        plural=plural,
        prefix=rules.kind,
        noun=rules.noun,
        parse=lambda body: bodies.parse(rules.parse, body),
        reconcile=lambda runtime, cr, parent: runtime.children.reconcile(cr, rules, parent),
        finalize=lambda runtime, cr, parent: runtime.children.finalize(cr, rules, parent),
        forget=lambda runtime, uid: runtime.children.forget(uid),
        released=lambda runtime, uid: runtime.children.released(uid),
    )


_USERS: _Handled[RocketMQUser] = _Handled(
    plural=USER_PLURAL,
    prefix="user",
    noun="user",
    # The messages name fields and rules; a RocketMQUser's spec holds no key to leak.
    parse=lambda body: bodies.parse(RocketMQUser.from_body, body),
    reconcile=lambda runtime, cr, parent: runtime.users.reconcile(cr, parent),
    finalize=lambda runtime, cr, parent: runtime.users.finalize(cr, parent),
    forget=lambda runtime, uid: runtime.users.forget(uid),
    released=lambda runtime, uid: runtime.users.released(uid),
)


def _register_kind(
    registry: kopf.OperatorRegistry, settings: OperatorSettings, kind: _Handled[CR]
) -> periodic.Periodic:
    """The handlers of one child kind: reconcile on create, update and resume; finalize on deletion;
    and its periodic passes (observe each poll interval, forget when the CR is gone)."""
    crs: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": kind.plural, "registry": registry}
    poll = settings.poll_interval_seconds

    def runtime(
        memo: kopf.Memo, cr: CR, patch: kopf.Patch, body: kopf.Body, kwargs: Mapping[str, Any]
    ) -> Runtime | None:
        """The runtime of the parent instance's account; None (the child Stalled, saying why) when the
        instance's account cannot be used."""
        namespace = cr.metadata.namespace
        key = parents_from(kwargs, settings).account_of(namespace, cr.spec.instance_ref.name)
        found = account_handlers.route_key(memo, kwargs, key, namespace)
        if isinstance(found, Refusal):
            account_handlers.refuse(found, cr.status.conditions, cr.metadata.generation or None, patch, body)
            return None
        return found.runtime

    async def step(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, kwargs: Mapping[str, Any]) -> ChildStep | None:
        cr = kind.parse(body)
        parent = parents_from(kwargs, settings).of(cr.metadata.namespace, cr.spec.instance_ref.name)
        found = runtime(memo, cr, patch, body, kwargs)
        if found is None:
            return None
        return await kind.reconcile(found, cr, parent)

    @kopf.on.create(**crs, id=f"{kind.prefix}-reconcile")
    @kopf.on.update(**crs, id=f"{kind.prefix}-apply")
    @kopf.on.resume(**crs, id=f"{kind.prefix}-resume")
    async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
        result = await step(body, patch, memo, kwargs)
        if result is not None:
            bodies.apply(result, patch, body)
        if result is not None and result.requeue_after is not None and result.requeue_after < poll:
            raise kopf.TemporaryError("continuing with the next step", delay=result.requeue_after)

    def make_step(memo: kopf.Memo, kwargs: Mapping[str, Any]) -> periodic.StepOf:
        async def observe(body: kopf.Body, patch: kopf.Patch) -> ChildStep | None:
            return await step(body, patch, memo, kwargs)

        return observe

    def forget(memo: kopf.Memo, uid: str) -> None:
        registry_: Accounts | None = memo.get("accounts")
        if registry_ is not None:
            for _label, found in registry_.runtimes():
                kind.forget(found, uid)

    passes = periodic.Periodic(
        plural=kind.plural, prefix=kind.prefix, interval=poll, make_step=make_step, on_gone=forget
    )
    passes.register(registry)

    @kopf.on.delete(**crs, id=f"{kind.prefix}-finalize")
    async def finalize(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
        cr = kind.parse(body)
        parent = parents_from(kwargs, settings).of(cr.metadata.namespace, cr.spec.instance_ref.name)
        found = runtime(memo, cr, patch, body, kwargs)
        if found is None:
            raise kopf.TemporaryError("the instance's account cannot be used", delay=poll)
        if kind.released(found, cr.metadata.uid):
            return  # a body from before our release: the finalizer goes again, nothing else is written
        result = await kind.finalize(found, cr, parent)
        bodies.apply(result, patch, body)
        if result.released:
            kind.forget(found, cr.metadata.uid)
            return
        delay = result.requeue_after if result.requeue_after is not None else settings.verify_interval_seconds
        message = result.events[-1].message if result.events else f"waiting for the {kind.noun} to be deleted"
        raise kopf.TemporaryError(message, delay=delay)

    return passes
