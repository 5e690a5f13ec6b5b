"""Which account a resource uses, whether it may, and what an account's Secret holds: pure rules.

Precedence (DESIGN.md section 8, as ASO's resource > namespace > global): the account recorded in the
instance's status, then ``spec.accountRef``, then the namespace annotation ``rocketmq-operator.io/account``
(a ClusterRocketMQAccount), then the operator's own ``DMS_*`` account. The record comes first because
an instance lives in the project it was created in: a namespace annotation edited later must not send
the operator looking for it in another project (where it would find nothing, and create a twin). An
instance with a cloud footprint and no record was made before accounts existed: the default's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from rocketmq_operator.core import conditions
from rocketmq_operator.core.account_resource import USED_BY_SHOWN, CredentialKeys
from rocketmq_operator.core.conditions import Verdict
from rocketmq_operator.core.resource import ANNOTATION_PREFIX, GROUP, AccountKind, AccountRef, Condition

ACCOUNT_ANNOTATION = f"{ANNOTATION_PREFIX}/account"
"""On a Namespace: the ClusterRocketMQAccount its instances use when they name none."""
CREDENTIALS_FINALIZER = f"{GROUP}/account-credentials"
"""On an account's credentials Secret while the account exists: the Secret stays readable through a
namespace teardown until the account's instances are deleted (``ports.secrets.AccountSecrets``)."""
DEFAULT_LABEL = "default"
"""The operator's own account (``DMS_*``), as ``status.account`` and the metrics' ``account`` label say it."""


@dataclass(frozen=True, order=True)
class AccountKey:
    """One account: the default (``kind`` None), a ClusterRocketMQAccount, or a namespace's RocketMQAccount."""

    kind: AccountKind | None = None
    name: str = ""
    namespace: str = ""

    @property
    def is_default(self) -> bool:
        return self.kind is None

    def __str__(self) -> str:
        if self.kind is None:
            return DEFAULT_LABEL
        if self.kind is AccountKind.NAMESPACED:
            return f"{self.kind.value}/{self.namespace}/{self.name}"
        return f"{self.kind.value}/{self.name}"

    def recorded(self) -> str:
        """What ``status.account`` holds: the namespace of a RocketMQAccount is the resource's own."""
        if self.kind is None:
            return DEFAULT_LABEL
        return f"{self.kind.value}/{self.name}"


DEFAULT = AccountKey()


def namespaced(namespace: str, name: str) -> AccountKey:
    return AccountKey(AccountKind.NAMESPACED, name, namespace)


def cluster(name: str) -> AccountKey:
    return AccountKey(AccountKind.CLUSTER, name)


def from_ref(namespace: str, ref: AccountRef) -> AccountKey:
    return namespaced(namespace, ref.name) if ref.kind is AccountKind.NAMESPACED else cluster(ref.name)


def from_recorded(namespace: str, value: str) -> AccountKey | None:
    """``status.account`` back into a key; None for a value this version cannot read."""
    if value == DEFAULT_LABEL:
        return DEFAULT
    kind, _, name = value.partition("/")
    if not name:
        return None
    try:
        parsed = AccountKind(kind)
    except ValueError:
        return None
    return namespaced(namespace, name) if parsed is AccountKind.NAMESPACED else cluster(name)


@dataclass(frozen=True)
class Refusal:
    """Why a resource cannot use its account now; no cloud call is made for it."""

    reason: str
    message: str
    transient: bool = False
    """Likely over in seconds (the account's first pass after a start has not run yet): a resource
    that is Ready waits quietly rather than flip to Stalled and back on every operator restart."""


def choose(
    *,
    namespace: str,
    recorded: str | None,
    ref: AccountRef | None,
    footprint: bool,
    annotation: str | None,
) -> AccountKey | Refusal:
    """The account of an instance CR, by the precedence above."""
    if recorded:
        key = from_recorded(namespace, recorded)
        if key is None:
            return Refusal("AccountUnreadable", f"status.account {recorded!r} names no account this operator knows")
        return key
    if ref is not None:
        return from_ref(namespace, ref)
    if footprint:
        return DEFAULT
    if annotation:
        return cluster(annotation)
    return DEFAULT


@dataclass(frozen=True)
class AccountFacts:
    """What resources need of an account CR, from kopf's index of them (no API call per resource)."""

    key: AccountKey
    allowed_namespaces: tuple[str, ...] | None = None
    deleting: bool = False
    secret: tuple[str, str] = ("", "")
    """The namespace and name of its credentials Secret."""


def permitted(key: AccountKey, facts: AccountFacts | None, namespace: str) -> Refusal | None:
    """Whether a resource of ``namespace`` may use the account ``key`` (None: it may)."""
    if key.is_default:
        return None
    if facts is None:
        where = (
            f"in namespace {key.namespace}; a RocketMQInstance may use a RocketMQAccount of its own namespace "
            "or a ClusterRocketMQAccount"
            if key.kind is AccountKind.NAMESPACED
            else "in the cluster"
        )
        return Refusal("AccountNotFound", f"{key.kind.value if key.kind else 'account'} {key.name} not found {where}")
    allowed = facts.allowed_namespaces
    if key.kind is AccountKind.CLUSTER and allowed is not None and namespace not in allowed:
        return Refusal(
            "AccountNotPermitted",
            f"ClusterRocketMQAccount {key.name} does not allow namespace {namespace} (spec.allowedNamespaces)",
        )
    return None


# --- what an account's Secret holds ---------------------------------------------------------------


@dataclass(frozen=True)
class AkSk:
    access_key: SecretStr
    secret_key: SecretStr
    security_token: SecretStr | None = None

    @property
    def description(self) -> str:
        return "AK/SK with security token" if self.security_token is not None else "AK/SK"


@dataclass(frozen=True)
class Token:
    token: SecretStr

    @property
    def description(self) -> str:
        return "token"


CloudCredentials = AkSk | Token


def key_names(keys: CredentialKeys) -> tuple[str, ...]:
    """The Secret keys to read: no other key of the Secret is ever read."""
    return (keys.access_key, keys.secret_key, keys.security_token, keys.auth_token)


def credentials_from(secret: str, values: Mapping[str, SecretStr], keys: CredentialKeys) -> CloudCredentials | Refusal:
    """AK/SK when both keys are there (with the security token when that is too), else the token.

    The message names keys, never a value; one key of a pair alone is an error, not a fallback to the
    token, since it is almost always a typo in a key name."""
    present = {name for name, value in values.items() if value.get_secret_value()}
    ak, sk = keys.access_key in present, keys.secret_key in present
    if ak and sk:
        token = values.get(keys.security_token) if keys.security_token in present else None
        return AkSk(values[keys.access_key], values[keys.secret_key], token)
    if ak != sk:
        have, missing = (keys.access_key, keys.secret_key) if ak else (keys.secret_key, keys.access_key)
        return Refusal("CredentialsIncomplete", f"Secret {secret} has {have!r} but no {missing!r}")
    if keys.auth_token in present:
        return Token(values[keys.auth_token])
    return Refusal(
        "CredentialsMissing",
        f"Secret {secret} has none of the keys {keys.access_key!r} and {keys.secret_key!r}, or {keys.auth_token!r} "
        "(spec.credentials.keys names them)",
    )


def secret_version(uid: str, resource_version: str) -> str:
    return f"{uid}/{resource_version}"


@dataclass(frozen=True)
class Usage:
    in_use: int
    used_by: list[str]


def usage(users: Iterable[str]) -> Usage:
    names = sorted(set(users))
    return Usage(len(names), names[:USED_BY_SHOWN])


def in_use_message(kind: str, name: str, found: Usage) -> str:
    more = f" and {found.in_use - len(found.used_by)} more" if found.in_use > len(found.used_by) else ""
    return (
        f"{kind} {name} is in use by {found.in_use} RocketMQInstance(s): {', '.join(found.used_by)}{more}; "
        "it is deleted once they are gone"
    )


def refused(
    current: Sequence[Condition] | None, generation: int | None, refusal: Refusal, *, now: str
) -> dict[str, Any] | None:
    """The status patch of a resource that cannot use its account (Stalled, the refusal's reason), or
    None when its conditions already say so."""
    verdict = Verdict(ready=False, reason=refusal.reason, message=refusal.message, stalled=True)
    merged = conditions.merge(current, verdict.conditions(generation=generation, now=now))
    if conditions.same(current, merged):
        return None
    patch: dict[str, Any] = {"conditions": [c.to_wire() for c in merged]}
    if generation is not None:
        patch["observedGeneration"] = generation
    return patch


def instance_key(namespace: str, spec: Mapping[str, Any], status: Mapping[str, Any]) -> AccountKey | None:
    """An instance CR's account from its raw body, for the usage index: the record, else the ref
    (None: neither, so the namespace annotation or the default will be recorded on its first pass)."""
    recorded = status.get("account")
    if isinstance(recorded, str) and recorded:
        return from_recorded(namespace, recorded)
    ref = raw_ref(spec)
    return from_ref(namespace, ref) if ref is not None else None


def raw_ref(spec: Mapping[str, Any]) -> AccountRef | None:
    """``spec.accountRef`` read from a raw body; None when absent or not valid (the API server's
    schema refuses an invalid one, so only a body from an older CRD can have it)."""
    ref = spec.get("accountRef")
    if not isinstance(ref, Mapping):
        return None
    try:
        return AccountRef.model_validate(ref)
    except ValueError:
        return None
