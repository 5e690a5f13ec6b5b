"""The account kinds: ``RocketMQAccount`` (namespaced, ``rmqa``) and ``ClusterRocketMQAccount`` (cluster-wide).

An account is what the operator speaks to the cloud as: an endpoint (or region), a project, and the
credentials in a Secret. Tenants bring their own, so one operator serves many teams billed to many
projects (Crossplane's ProviderConfig/ClusterProviderConfig, ASO's credential scopes). Where the
Secret may be is fixed by the kind, not by a field: a ``RocketMQAccount`` reads a Secret of its own
namespace, a ``ClusterRocketMQAccount`` one of the operator's namespace, so no tenant can point an
account at a Secret it could not read itself.

The identity of an account (endpoint, region, project) is immutable: instances live in one project,
and an account that moved would leave them behind unmanaged. Credentials, rate limit, CA bundle and
cluster id may change; a change of the Secret is picked up within a poll interval.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field

from rocketmq_operator.core.resource import (
    READ_BACK,
    SECRET_NAME_PATTERN,
    AccountKind,
    CamelModel,
    Condition,
    Metadata,
    StatusModel,
    cel,
)

ACCOUNT_KIND = AccountKind.NAMESPACED.value
ACCOUNT_PLURAL = "rocketmqaccounts"
ACCOUNT_SHORT_NAMES = ("rmqa",)
CLUSTER_ACCOUNT_KIND = AccountKind.CLUSTER.value
CLUSTER_ACCOUNT_PLURAL = "clusterrocketmqaccounts"
CLUSTER_ACCOUNT_SHORT_NAMES: tuple[str, ...] = ()

PROJECT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
REGION_PATTERN = r"^[a-z]{2}(-[a-z0-9]+)+$"
ENDPOINT_PATTERN = r"^https?://[^/\s]+(/[^\s]*)?$"
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""Kubernetes' namespace name rule (a DNS-1123 label)."""
NamespaceName = Annotated[str, Field(min_length=1, max_length=63, pattern=NAMESPACE_PATTERN)]
USED_BY_SHOWN = 10
"""How many of the CRs using an account its status names (the count is always whole)."""


class CredentialKeys(CamelModel):
    """Which keys of the Secret hold what. AK/SK when both keys are present, else the IAM token."""

    model_config = ConfigDict(frozen=True)

    access_key: str = Field(default="accessKey", min_length=1, max_length=253)
    secret_key: str = Field(default="secretKey", min_length=1, max_length=253)
    security_token: str = Field(
        default="securityToken",
        min_length=1,
        max_length=253,
        description="Optional: with AK/SK, makes them temporary credentials (sent as X-Security-Token).",
    )
    auth_token: str = Field(
        default="authToken", min_length=1, max_length=253, description="An IAM token, used when there is no AK/SK."
    )


class Credentials(CamelModel):
    model_config = ConfigDict(frozen=True)

    secret_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_NAME_PATTERN,
        description="The Secret holding the credentials: in the account's own namespace (RocketMQAccount) or "
        "in the operator's namespace (ClusterRocketMQAccount). A change of it takes effect within a poll "
        "interval, without a restart.",
    )
    keys: CredentialKeys = Field(default_factory=CredentialKeys, description="Key names inside the Secret.")


class RateLimit(CamelModel):
    model_config = ConfigDict(frozen=True)

    rps: float = Field(gt=0, le=10000, description="Requests per second this operator sends for the account.")
    burst: int = Field(ge=1, le=10000, description="Requests it may send at once after a quiet spell.")


def _spec_rules() -> list[Any]:
    return [
        cel(
            "has(self.endpoint) != has(self.region)",
            "exactly one of spec.endpoint and spec.region must be set",
        ),
        cel(
            "has(self.endpoint) == has(oldSelf.endpoint) && has(self.region) == has(oldSelf.region)",
            "spec.endpoint and spec.region are immutable: the account's instances live there",
        ),
    ]


def _immutable(field: str, why: str) -> dict[str, Any]:
    return {"x-kubernetes-validations": [cel("self == oldSelf", f"spec.{field} is immutable: {why}")]}


class AccountSpec(CamelModel):
    """Shared by both kinds."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"x-kubernetes-validations": _spec_rules()})

    endpoint: str | None = Field(
        default=None,
        pattern=ENDPOINT_PATTERN,
        max_length=512,
        description="Base URL of the DMS API (immutable). Either this or region.",
        json_schema_extra=_immutable("endpoint", "the account's instances live there"),
    )
    region: str | None = Field(
        default=None,
        pattern=REGION_PATTERN,
        max_length=64,
        description="Region id such as cn-north-4, for https://dms.<region>.myhuaweicloud.com (immutable).",
        json_schema_extra=_immutable("region", "the account's instances live there"),
    )
    project_id: str = Field(
        pattern=PROJECT_ID_PATTERN,
        description="The project every call is scoped to (immutable).",
        json_schema_extra=_immutable("projectId", "the account's instances live there"),
    )
    credentials: Credentials
    ca_bundle: str | None = Field(
        default=None,
        min_length=1,
        max_length=65536,
        description="PEM certificates to trust instead of the public roots (a private endpoint's CA).",
    )
    rate_limit: RateLimit | None = Field(
        default=None, description="This account's token bucket. Default: the operator's DMS_RATE_LIMIT_*."
    )
    cluster_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The cluster id in owner tags of instances made through this account. Default: the "
        "operator's (DMS_CLUSTER_ID, else kube-system's uid).",
    )

    @property
    def url(self) -> str:
        if self.endpoint:
            return self.endpoint.rstrip("/")
        return f"https://dms.{self.region}.myhuaweicloud.com"


class RocketMQAccountSpec(AccountSpec):
    pass


class ClusterRocketMQAccountSpec(AccountSpec):
    allowed_namespaces: list[NamespaceName] | None = Field(
        default=None,
        max_length=1000,
        description="The namespaces whose resources may use this account (by spec.accountRef or the namespace "
        "annotation rocketmq-operator.io/account). Unset: every namespace. A resource of another namespace "
        "is refused (Stalled, AccountNotPermitted) with no cloud call.",
    )


class AccountStatus(StatusModel):
    observed_generation: int | None = None
    endpoint: str | None = Field(default=None, description="The endpoint the account's calls go to.")
    credentials_version: str | None = Field(
        default=None,
        description="uid/resourceVersion of the Secret whose credentials were last tried (never the credentials).",
    )
    credentials_type: str | None = Field(default=None, description="AK/SK, AK/SK with security token, or token.")
    credentials_secret: str | None = Field(
        default=None,
        description="namespace/name of the Secret the operator holds (its finalizer) for this account; a "
        "Secret the account no longer names is let go.",
    )
    verified_at: str | None = None
    in_use: int | None = Field(default=None, description="How many RocketMQInstances use this account.")
    used_by: list[str] | None = Field(
        default=None, description=f"The first {USED_BY_SHOWN} of them (namespace/name), sorted."
    )
    deleting_blocked: str | None = Field(
        default=None, description="Why the account's deletion waits: the RocketMQInstances still using it."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class _Account(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    metadata: Metadata
    status: AccountStatus = Field(default_factory=AccountStatus)

    @classmethod
    def from_body(cls, body: Any) -> Self:
        """As the API server returned it: status fields this version does not know are dropped."""
        return cls.model_validate(body, context={READ_BACK: True})


class RocketMQAccount(_Account):
    spec: RocketMQAccountSpec

    @property
    def kind(self) -> AccountKind:
        return AccountKind.NAMESPACED


class ClusterRocketMQAccount(_Account):
    spec: ClusterRocketMQAccountSpec

    @property
    def kind(self) -> AccountKind:
        return AccountKind.CLUSTER


AnyAccount = RocketMQAccount | ClusterRocketMQAccount
