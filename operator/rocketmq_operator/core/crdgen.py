"""Generates the CRDs (RocketMQInstance, its children, the two account kinds) from the pydantic models.

Why generate: the models are the one source of truth, and a hand-edited CRD drifts. A test
compares this output with ``crds/`` and fails on any difference.

pydantic's JSON schema is not a Kubernetes *structural* schema, so it is rewritten: ``$ref``s are
inlined, ``X | None`` becomes plain ``X`` (absent means unset; we never write nulls), titles and
null defaults go, ``const``/``Literal`` become enums, and our ``x-kubernetes-*`` extensions stay.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, JsonValue

from rocketmq_operator.core import account_resource, child_resource, resource, user_resource

_DROP_KEYS = {"title"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        # Keys beside the $ref (description, defaults, validations) refine the target.
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **siblings}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS or key == "$defs":
            continue
        if key == "properties":
            out[key] = {name: _resolve(prop, defs) for name, prop in value.items()}
        else:
            out[key] = _resolve(value, defs)
    return _structural(out)


def _structural(node: dict[str, Any]) -> dict[str, Any]:
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        non_null = [branch for branch in any_of if branch.get("type") != "null"]
        if len(non_null) == 1 and len(non_null) < len(any_of):
            merged = {**non_null[0], **{k: v for k, v in node.items() if k != "anyOf"}}
            node = merged
    if "default" in node and node["default"] is None:
        del node["default"]
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        # JSON Schema 2020 (pydantic's gt/lt) gives the bound itself; OpenAPI v3 (Kubernetes) a boolean
        # beside minimum/maximum, and refuses a CRD with the number.
        value = node.get(exclusive)
        if isinstance(value, int | float) and not isinstance(value, bool):
            node[bound] = value
            node[exclusive] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "enum" in node and "type" not in node:
        node["type"] = "string"
    if node.get("type") == "object" and "additionalProperties" in node:
        extra = node["additionalProperties"]
        if extra is False:
            del node["additionalProperties"]
    return node


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    resolved: dict[str, Any] = _resolve(raw, defs)
    return resolved


_READY = '.status.conditions[?(@.type=="Ready")]'


def _column(name: str, json_path: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "type": type_, "jsonPath": json_path}


def _ready_reason_age() -> list[dict[str, Any]]:
    """The columns every kind ends with: whether it is Ready, why (or why not), and its age."""
    return [
        _column("Ready", f"{_READY}.status"),
        _column("Reason", f"{_READY}.reason"),
        _column("Age", ".metadata.creationTimestamp", "date"),
    ]


def printer_columns() -> list[dict[str, Any]]:
    """The RocketMQInstance's columns."""
    return [
        _column("Instance-ID", ".status.instanceId"),
        _column("Cloud-Status", ".status.cloudStatus"),
        *_ready_reason_age(),
    ]


def child_printer_columns() -> list[dict[str, Any]]:
    """Topics' and groups' columns: the parent comes first, since names only mean something within it."""
    return [
        _column("Instance", ".spec.instanceRef.name"),
        _column("Cloud-Name", ".status.cloudName"),
        *_ready_reason_age(),
    ]


_STATUS_DESCRIPTION = "What the operator observed and did; written by the operator only."


@dataclass(frozen=True)
class KindSpec:
    """What differs between the CRDs; everything else (group, version, labels, categories) is shared."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    description: str
    spec_description: str
    columns: Callable[[], list[dict[str, Any]]]
    root_validations: Callable[[], list[JsonValue]] = list
    metadata_fields: tuple[str, ...] = ()
    cluster_scoped: bool = False
    """metadata fields a root rule names in its ``fieldPath``: the API server accepts a fieldPath only if
    it is a path of the schema, and ``metadata`` has no properties unless they are listed (only name
    and generateName may be, as plain strings: Kubernetes' own rules for them stay in force)."""

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{resource.GROUP}"


INSTANCE = KindSpec(
    kind=resource.KIND,
    plural=resource.PLURAL,
    short_names=resource.SHORT_NAMES,
    spec_model=resource.RocketMQInstanceSpec,
    status_model=resource.RocketMQInstanceStatus,
    description="A Huawei Cloud DMS for RocketMQ instance managed by rocketmq-operator.",
    spec_description="The cloud instance to create (or adopt with instanceId) and how to delete it. "
    "Fields that the cloud cannot change are immutable.",
    columns=printer_columns,
)
TOPIC = KindSpec(
    kind=child_resource.TOPIC_KIND,
    plural=child_resource.TOPIC_PLURAL,
    short_names=child_resource.TOPIC_SHORT_NAMES,
    spec_model=child_resource.RocketMQTopicSpec,
    status_model=child_resource.RocketMQTopicStatus,
    description="A topic of a RocketMQInstance's cloud instance, managed by rocketmq-operator.",
    spec_description="The topic to create (or adopt) in the instance named by instanceRef, and how to delete "
    "it. Fields that the cloud cannot change are immutable.",
    columns=child_printer_columns,
    root_validations=lambda: [child_resource.metadata_name_rule()],
    metadata_fields=("name",),
)
CONSUMER_GROUP = KindSpec(
    kind=child_resource.CONSUMER_GROUP_KIND,
    plural=child_resource.CONSUMER_GROUP_PLURAL,
    short_names=child_resource.CONSUMER_GROUP_SHORT_NAMES,
    spec_model=child_resource.RocketMQConsumerGroupSpec,
    status_model=child_resource.RocketMQConsumerGroupStatus,
    description="A consumer group of a RocketMQInstance's cloud instance, managed by rocketmq-operator.",
    spec_description="The consumer group to create (or adopt) in the instance named by instanceRef, and how to "
    "delete it. Fields that the cloud cannot change are immutable.",
    columns=child_printer_columns,
    root_validations=lambda: [child_resource.metadata_name_rule()],
    metadata_fields=("name",),
)


def user_printer_columns() -> list[dict[str, Any]]:
    return [
        _column("Instance", ".spec.instanceRef.name"),
        _column("Access-Key", ".spec.accessKey"),
        *_ready_reason_age(),
    ]


USER = KindSpec(
    kind=user_resource.USER_KIND,
    plural=user_resource.USER_PLURAL,
    short_names=user_resource.USER_SHORT_NAMES,
    spec_model=user_resource.RocketMQUserSpec,
    status_model=user_resource.RocketMQUserStatus,
    description="An ACL user of a RocketMQInstance's cloud instance, managed by rocketmq-operator. Its secret "
    "key is only ever in a Secret.",
    spec_description="The user to create (or adopt) in the instance named by instanceRef, where its secret key "
    "comes from, its permissions, and how to delete it.",
    columns=user_printer_columns,
)


def account_printer_columns() -> list[dict[str, Any]]:
    return [
        _column("Project", ".spec.projectId"),
        _column("Endpoint", ".status.endpoint"),
        _column("In-Use", ".status.inUse", "integer"),
        *_ready_reason_age(),
    ]


_ACCOUNT_SPEC = (
    "Where the cloud is (endpoint or region, immutable), the project (immutable), and the Secret holding the "
    "credentials; optionally a CA bundle, the account's rate limit and the cluster id of owner tags."
)
ACCOUNT = KindSpec(
    kind=account_resource.ACCOUNT_KIND,
    plural=account_resource.ACCOUNT_PLURAL,
    short_names=account_resource.ACCOUNT_SHORT_NAMES,
    spec_model=account_resource.RocketMQAccountSpec,
    status_model=account_resource.AccountStatus,
    description="A Huawei Cloud account (endpoint, project, credentials in a Secret of this namespace) that "
    "RocketMQInstances of this namespace may use through spec.accountRef.",
    spec_description=_ACCOUNT_SPEC,
    columns=account_printer_columns,
)
CLUSTER_ACCOUNT = KindSpec(
    kind=account_resource.CLUSTER_ACCOUNT_KIND,
    plural=account_resource.CLUSTER_ACCOUNT_PLURAL,
    short_names=account_resource.CLUSTER_ACCOUNT_SHORT_NAMES,
    spec_model=account_resource.ClusterRocketMQAccountSpec,
    status_model=account_resource.AccountStatus,
    description="A Huawei Cloud account (endpoint, project, credentials in a Secret of the operator's "
    "namespace) that RocketMQInstances of the allowed namespaces may use (spec.accountRef, or the namespace "
    "annotation rocketmq-operator.io/account).",
    spec_description=_ACCOUNT_SPEC,
    columns=account_printer_columns,
    cluster_scoped=True,
)

KINDS: dict[str, KindSpec] = {
    "instance": INSTANCE,
    "topic": TOPIC,
    "group": CONSUMER_GROUP,
    "user": USER,
    "account": ACCOUNT,
    "clusteraccount": CLUSTER_ACCOUNT,
}
"""Every CRD the operator serves, by the short key ``rocketmq-operator crd --kind`` takes."""


FRAMEWORK_STATUS_FIELD = "kopf"
"""Where kopf keeps handler progress and the last handled spec, in the status (``wiring.handlers``):
written with our own status patches, it costs no write of its own."""


def _metadata_schema(fields: tuple[str, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if fields:
        schema["properties"] = {name: {"type": "string"} for name in fields}
    return schema


def crd(kind: KindSpec = INSTANCE) -> dict[str, Any]:
    """The CustomResourceDefinition of ``kind`` as a plain dict, ready for YAML."""
    spec_schema = schema_of(kind.spec_model)
    spec_schema["description"] = kind.spec_description
    status_schema = schema_of(kind.status_model)
    status_schema["description"] = _STATUS_DESCRIPTION
    status_schema.setdefault("properties", {})[FRAMEWORK_STATUS_FIELD] = {
        "type": "object",
        "description": "The framework's own records (handler progress, the last handled spec); not an API.",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    root: dict[str, Any] = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": _metadata_schema(kind.metadata_fields),
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    # Only CEL at the root may read metadata.name next to spec (the instance has no such rule, and its
    # CRD stays as it was).
    if validations := kind.root_validations():
        root["x-kubernetes-validations"] = validations
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/name": "rocketmq-operator"},
        },
        "spec": {
            "group": resource.GROUP,
            "scope": "Cluster" if kind.cluster_scoped else "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                **({"shortNames": list(kind.short_names)} if kind.short_names else {}),
                "categories": ["rocketmq", "dms"],
            },
            "versions": [
                {
                    "name": resource.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": kind.columns(),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }
