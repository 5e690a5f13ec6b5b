"""Generates the RocketMQInstance CRD from the pydantic models.

Why generate: the models are the one source of truth, and a hand-edited CRD drifts. A test
compares this output with ``crds/`` and fails on any difference.

pydantic's JSON schema is not a Kubernetes *structural* schema, so it is rewritten: ``$ref``s are
inlined, ``X | None`` becomes plain ``X`` (absent means unset; we never write nulls), titles and
null defaults go, ``const``/``Literal`` become enums, and our ``x-kubernetes-*`` extensions stay.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from rocketmq_operator.core import resource

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


def printer_columns() -> list[dict[str, Any]]:
    ready = '.status.conditions[?(@.type=="Ready")]'
    return [
        {"name": "Instance-ID", "type": "string", "jsonPath": ".status.instanceId"},
        {"name": "Cloud-Status", "type": "string", "jsonPath": ".status.cloudStatus"},
        {"name": "Ready", "type": "string", "jsonPath": f"{ready}.status"},
        {"name": "Reason", "type": "string", "jsonPath": f"{ready}.reason"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a plain dict, ready for YAML."""
    spec_schema = schema_of(resource.RocketMQInstanceSpec)
    spec_schema["description"] = (
        "The cloud instance to create (or adopt with instanceId) and how to delete it. "
        "Fields that the cloud cannot change are immutable."
    )
    status_schema = schema_of(resource.RocketMQInstanceStatus)
    status_schema["description"] = "What the operator observed and did; written by the operator only."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{resource.PLURAL}.{resource.GROUP}",
            "labels": {"app.kubernetes.io/name": "rocketmq-operator"},
        },
        "spec": {
            "group": resource.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": resource.KIND,
                "listKind": f"{resource.KIND}List",
                "plural": resource.PLURAL,
                "singular": resource.SINGULAR,
                "shortNames": list(resource.SHORT_NAMES),
                "categories": ["rocketmq", "dms"],
            },
            "versions": [
                {
                    "name": resource.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns(),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A Huawei Cloud DMS for RocketMQ instance managed by rocketmq-operator.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }
