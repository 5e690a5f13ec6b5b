"""The RocketMQInstance custom resource: spec and status as pydantic models.

These models are the one source of truth for the resource's shape: the CRD in ``crds/`` is
generated from them (``core.crdgen``), handlers validate bodies into them, and the status the
operator writes is serialized from them. Validation the API server must enforce (name rules,
enums, ranges, immutability) is declared here as JSON-schema constraints and CEL rules, so an
invalid CR is refused by the API server with the field named, before the operator sees it.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel

GROUP = "dms.rocketmq-operator.io"
VERSION = "v1alpha1"
KIND = "RocketMQInstance"
PLURAL = "rocketmqinstances"
SINGULAR = "rocketmqinstance"
SHORT_NAMES = ("rmqi",)

ANNOTATION_PREFIX = "rocketmq-operator.io"
PAUSED_ANNOTATION = f"{ANNOTATION_PREFIX}/paused"
DELETION_POLICY_ANNOTATION = f"{ANNOTATION_PREFIX}/deletion-policy"
"""On a Namespace: the deletion policy of CRs in it that do not set ``spec.deletionPolicy``."""

OWNER_TAG_PREFIX = "rocketmq-operator."
"""Owner tags on cloud instances start with this; users may not set tags with it."""

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{3,63}$"
"""The cloud's instance name rule: 4-64 characters, a letter first, letters, digits, - and _."""

SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""Kubernetes' Secret name rule (a DNS-1123 subdomain, at most 253 characters)."""


def cel(rule: str, message: str, *, field_path: str | None = None, reason: str | None = None) -> dict[str, JsonValue]:
    """One ``x-kubernetes-validations`` entry."""
    entry: dict[str, JsonValue] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def immutable(field: str) -> dict[str, JsonValue]:
    """A CEL transition rule on the field itself: once set, it cannot change."""
    return {"x-kubernetes-validations": [cel("self == oldSelf", f"spec.{field} is immutable")]}


class CamelModel(BaseModel):
    """snake_case in Python, camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class AccountKind(enum.StrEnum):
    NAMESPACED = "RocketMQAccount"
    CLUSTER = "ClusterRocketMQAccount"


class AccountRef(CamelModel):
    """``spec.accountRef``: which account the instance lives in (immutable; ``core.accounts``)."""

    model_config = ConfigDict(frozen=True)

    kind: AccountKind = Field(
        description="RocketMQAccount (of the instance's own namespace) or ClusterRocketMQAccount."
    )
    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)


class DeletionPolicy(enum.StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


ShortStr = Annotated[str, Field(min_length=1, max_length=64)]
Identifier = Annotated[str, Field(min_length=1, max_length=128)]

# Fields the cloud cannot change after creation. They are immutable in the CRD, and the spec-level
# rules below also refuse adding or removing them (a transition rule on a field alone only runs
# when the field is present before and after the update).
IMMUTABLE_FIELDS = (
    "accountRef",
    "engineVersion",
    "storageSpecCode",
    "vpcId",
    "subnetId",
    "availableZones",
    "sslEnable",
    "ipv6Enable",
    "proxyEnable",
    "diskEncryptedEnable",
    "diskEncryptedKey",
    "archType",
    "tlsMode",
    "instanceId",
)

# Needed to create an instance; not needed to adopt one (spec.instanceId).
CREATE_REQUIRED_FIELDS = (
    "engineVersion",
    "productId",
    "storageSpecCode",
    "storageSpace",
    "vpcId",
    "subnetId",
    "securityGroupId",
    "availableZones",
)

PRODUCTS_BY_ENGINE_VERSION = {
    "4.8.0": (
        "c6.4u8g.cluster.small",
        "c6.4u8g.cluster",
        "c6.8u16g.cluster",
        "c6.12u24g.cluster",
        "c6.16u32g.cluster",
    ),
    "5.x": (
        "rocketmq.b1.large.1",
        "rocketmq.b2.large.4",
        "rocketmq.b2.large.8",
        "rocketmq.b2.large.12",
        "rocketmq.p1.large.1",
        *(
            f"rocketmq.p2.large.{n}"
            for n in (8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 128, 160, 192, 256, 300)
        ),
    ),
}


def _spec_rules() -> list[JsonValue]:
    rules: list[JsonValue] = [
        cel(
            f"has(self.instanceId) || has(self.{field})",
            f"spec.{field} is required unless spec.instanceId adopts an existing instance",
            field_path=f".{field}",
            reason="FieldValueRequired",
        )
        for field in CREATE_REQUIRED_FIELDS
    ]
    rules += [
        cel(
            f"has(self.{field}) == has(oldSelf.{field})",
            f"spec.{field} is immutable: it cannot be added or removed after creation",
            field_path=f".{field}",
        )
        for field in IMMUTABLE_FIELDS
    ]
    rules += [
        cel(
            "!has(self.storageSpace) || !has(oldSelf.storageSpace) || self.storageSpace >= oldSelf.storageSpace",
            "spec.storageSpace cannot shrink: the cloud only expands storage",
            field_path=".storageSpace",
        ),
        cel(
            "!has(self.brokerNum) || !has(oldSelf.brokerNum) || self.brokerNum >= oldSelf.brokerNum",
            "spec.brokerNum cannot decrease: the cloud only adds brokers",
            field_path=".brokerNum",
        ),
        cel(
            "!has(self.enablePublicip) || !self.enablePublicip || has(self.publicipId)",
            "spec.publicipId is required when spec.enablePublicip is true",
            field_path=".publicipId",
        ),
        cel(
            "!has(self.diskEncryptedEnable) || !self.diskEncryptedEnable || has(self.diskEncryptedKey)",
            "spec.diskEncryptedKey is required when spec.diskEncryptedEnable is true",
            field_path=".diskEncryptedKey",
        ),
        cel(
            "!has(self.availableZones) || size(self.availableZones) == 1 || size(self.availableZones) >= 3",
            "spec.availableZones must list 1 availability zone, or 3 or more",
            field_path=".availableZones",
        ),
    ]
    for version, products in PRODUCTS_BY_ENGINE_VERSION.items():
        listed = ", ".join(f"'{p}'" for p in products)
        rules.append(
            cel(
                f"!has(self.engineVersion) || self.engineVersion != '{version}' || !has(self.productId)"
                f" || self.productId in [{listed}]",
                f"spec.productId is not a product of engine version {version}",
                field_path=".productId",
            )
        )
    return rules


class RocketMQInstanceSpec(CamelModel):
    """What the user asks for: the cloud's create parameters in camelCase, plus policies."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"x-kubernetes-validations": _spec_rules()})

    name: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        max_length=64,
        description="Cloud instance name. Default: derived from the CR's namespace, name and uid, so a "
        "repeated create after a crash finds the same instance instead of making a second one.",
    )
    description: str | None = Field(default=None, max_length=1024)
    engine_version: Literal["4.8.0", "5.x"] | None = Field(
        default=None,
        description="RocketMQ engine version (immutable).",
        json_schema_extra=immutable("engineVersion"),
    )
    product_id: str | None = Field(
        default=None,
        max_length=64,
        description="Broker flavor, e.g. c6.4u8g.cluster (4.8.0) or rocketmq.b2.large.4 (5.x). "
        "Changing it resizes the instance.",
    )
    storage_spec_code: (
        Literal[
            "dms.physical.storage.high.v2",
            "dms.physical.storage.ultra.v2",
            "dms.physical.storage.general",
            "dms.physical.storage.extreme",
        ]
        | None
    ) = Field(default=None, description="Disk type (immutable).", json_schema_extra=immutable("storageSpecCode"))
    storage_space: int | None = Field(
        default=None, ge=100, le=60000, description="Storage in GB; it can grow (resize), never shrink."
    )
    broker_num: int | None = Field(
        default=None, ge=1, le=10, description="Number of brokers; it can grow (resize), never shrink."
    )
    vpc_id: Identifier | None = Field(default=None, json_schema_extra=immutable("vpcId"))
    subnet_id: Identifier | None = Field(default=None, json_schema_extra=immutable("subnetId"))
    security_group_id: Identifier | None = None
    available_zones: list[Identifier] | None = Field(
        default=None,
        min_length=1,
        max_length=5,
        description="Availability zone IDs: 1, or 3 or more (immutable).",
        json_schema_extra=immutable("availableZones"),
    )
    enterprise_project_id: Identifier | None = None
    ssl_enable: bool | None = Field(default=None, json_schema_extra=immutable("sslEnable"))
    enable_acl: bool | None = None
    ipv6_enable: bool | None = Field(default=None, json_schema_extra=immutable("ipv6Enable"))
    proxy_enable: bool | None = Field(default=None, json_schema_extra=immutable("proxyEnable"))
    enable_publicip: bool | None = None
    publicip_id: str | None = Field(default=None, max_length=512, description="Comma-separated EIP IDs.")
    disk_encrypted_enable: bool | None = Field(default=None, json_schema_extra=immutable("diskEncryptedEnable"))
    disk_encrypted_key: Identifier | None = Field(default=None, json_schema_extra=immutable("diskEncryptedKey"))
    arch_type: Literal["X86", "ARM"] | None = Field(default=None, json_schema_extra=immutable("archType"))
    tls_mode: Literal["SSL", "PLAINTEXT", "PERMISSIVE"] | None = Field(
        default=None, json_schema_extra=immutable("tlsMode")
    )
    tags: dict[str, str] | None = Field(
        default=None,
        max_length=20,
        description="Tags put on the cloud instance (besides the operator's owner tags).",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.all(k, !k.startsWith('{OWNER_TAG_PREFIX}'))",
                    f"spec.tags keys starting with '{OWNER_TAG_PREFIX}' are reserved for owner tags",
                ),
                cel("self.all(k, size(k) >= 1 && size(k) <= 128)", "spec.tags keys must be 1-128 characters"),
                cel("self.all(k, size(self[k]) <= 255)", "spec.tags values must be at most 255 characters"),
            ]
        },
    )
    deletion_policy: DeletionPolicy | None = Field(
        default=None,
        description="Delete the cloud instance with the CR (Delete) or leave it (Orphan). Default: the "
        "namespace's rocketmq-operator.io/deletion-policy annotation, then the operator's default; "
        "adopted instances default to Orphan.",
    )
    force_delete: bool = Field(
        default=False, description="Skip the cloud's recycle bin when deleting (the data cannot be restored)."
    )
    instance_id: Identifier | None = Field(
        default=None,
        description="Adopt this existing cloud instance instead of creating one (immutable).",
        json_schema_extra=immutable("instanceId"),
    )
    recreate_on_failure: bool = Field(
        default=False,
        description="When the cloud fails to create the instance, delete the failed one and create a new one.",
    )
    account_ref: AccountRef | None = Field(
        default=None,
        description="The account the instance lives in (immutable): a RocketMQAccount of this namespace or a "
        "ClusterRocketMQAccount. Default: the namespace's rocketmq-operator.io/account annotation (a "
        "ClusterRocketMQAccount), then the operator's own account.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self == oldSelf",
                    "spec.accountRef is immutable: the instance lives in the account it was created in",
                )
            ]
        },
    )
    connection_secret: ConnectionSecretRef | None = Field(
        default=None,
        description="Write the instance's connection details (name server, broker and gRPC addresses, TLS "
        "mode, ACL, engine version, instance id) into this Secret, for apps to read with envFrom.",
    )


class ConnectionSecretRef(CamelModel):
    """A Secret the operator writes for apps: the instance's endpoints, for ``envFrom``."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_NAME_PATTERN,
        description="Name of the Secret, in the CR's namespace. The operator creates it, owns it (it goes "
        "with the CR) and never overwrites a Secret it does not own. Renaming removes the old one.",
    )


ConditionStatus = Literal["True", "False", "Unknown"]


READ_BACK = "read_back"
"""Validation context key: the data was read back from the API server (see ``StatusModel``)."""


class StatusModel(CamelModel):
    """Strict where the operator builds it, lenient where it reads it back.

    Built in code (a status patch, a deletion record), an unknown or misspelled field is an error,
    not a key that silently vanishes: ``extra='forbid'`` and validated assignment. Read back from
    the API server (``RocketMQInstance.from_body``), fields this version does not know (written by
    a newer operator, kept by a newer CRD) are dropped instead of refusing the whole CR.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _ignore_unknown_when_read_back(cls, data: Any, info: ValidationInfo) -> Any:
        if not (isinstance(data, dict) and info.context and info.context.get(READ_BACK)):
            return data
        known = {*cls.model_fields, *(f.alias for f in cls.model_fields.values() if f.alias)}
        return {key: value for key, value in data.items() if key in known}

    def to_patch(self) -> dict[str, Any]:
        """The fields set on this model, by their wire names, as a JSON merge patch.

        A field set to ``None`` is in it (``null`` clears the stored value); a field never set is
        not. Nested models are written whole: their non-empty fields, plus any set to ``None``.
        """
        return {_wire_name(type(self), name): _patch_value(getattr(self, name)) for name in self.model_fields_set}

    def to_nested_patch(self) -> dict[str, Any]:
        explicit_nulls = {
            _wire_name(type(self), name): None for name in self.model_fields_set if getattr(self, name) is None
        }
        return {**self.to_wire(), **explicit_nulls}


def _wire_name(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].alias or name


def _patch_value(value: Any) -> Any:
    if isinstance(value, StatusModel):
        return value.to_nested_patch()
    if isinstance(value, list):
        return [_patch_value(item) for item in value]
    if isinstance(value, BaseModel):  # pragma: no cover - every status part is a StatusModel
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value


class Condition(StatusModel):
    """A KEP-1623 condition."""

    type: str
    status: ConditionStatus
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: str
    observed_generation: int | None = None


class Endpoints(StatusModel):
    namesrv_address: str | None = None
    namesrv_domain_name: str | None = None
    broker_address: str | None = None
    grpc_address: str | None = None
    grpc_domain_name: str | None = None
    public_namesrv_address: str | None = None
    public_namesrv_domain_name: str | None = None
    public_broker_address: str | None = None
    public_grpc_address: str | None = None
    public_grpc_domain_name: str | None = None


class CreationStatus(StatusModel):
    """The create-pending marker: written before the create call, so a crash cannot lose it."""

    name: str
    pending_since: str
    attempts: int = 0


class DeletionStatus(StatusModel):
    """The last deletion request for this CR's instance and what the cloud said about it."""

    instance_id: str | None = None
    batch_id: str | None = None
    batch_size: int | None = None
    submitted_at: str | None = None
    result: str | None = Field(
        default=None, description="Accepted, Failed, NotFound, Error, HeldBack (instance still creating)"
    )
    attempts: int = 0
    last_error: str | None = None
    force_delete: bool | None = None
    trigger: str | None = Field(default=None, description="CRDeleted or SweepCreateFailed")


class ConnectionSecretStatus(StatusModel):
    """The Secret the operator last wrote for this CR: which one (so a rename removes it) and what."""

    name: str
    data_hash: str = Field(description="sha256 of the keys and values written (not secret: endpoints)")


class RocketMQInstanceStatus(StatusModel):
    observed_generation: int | None = None
    instance_id: str | None = None
    instance_name: str | None = None
    cloud_status: str | None = None
    adopted: bool | None = None
    storage_space: int | None = None
    broker_num: int | None = None
    product_id: str | None = None
    endpoints: Endpoints | None = None
    creation: CreationStatus | None = None
    deletion: DeletionStatus | None = None
    failed_instance_ids: list[str] | None = Field(
        default=None, description="Instances the cloud failed to create for this CR (swept)."
    )
    connection_secret: ConnectionSecretStatus | None = None
    account: str | None = Field(
        default=None,
        description="The account the instance lives in, recorded on the first pass: default (the operator's), "
        "RocketMQAccount/<name> or ClusterRocketMQAccount/<name>.",
    )
    last_synced: str | None = None
    conditions: list[Condition] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class Metadata(BaseModel):
    """The parts of ``metadata`` the operator reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    deletion_timestamp: str | None = Field(default=None, alias="deletionTimestamp")
    creation_timestamp: str | None = Field(default=None, alias="creationTimestamp")
    finalizers: list[str] = Field(default_factory=list)


class RocketMQInstance(BaseModel):
    """A whole CR as read from the API server."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    metadata: Metadata
    spec: RocketMQInstanceSpec
    status: RocketMQInstanceStatus = Field(default_factory=RocketMQInstanceStatus)

    @classmethod
    def from_body(cls, body: Any) -> RocketMQInstance:
        """The CR as the API server returned it: status fields this version does not know are dropped."""
        return cls.model_validate(body, context={READ_BACK: True})

    @property
    def paused(self) -> bool:
        return self.metadata.annotations.get(PAUSED_ANNOTATION, "").lower() == "true"

    @property
    def ref(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"
