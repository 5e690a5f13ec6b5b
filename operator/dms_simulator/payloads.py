"""Request bodies and query strings, checked the way the cloud checks them, into typed values.

Every handler starts from untrusted JSON. Doing the checks here, field by field, means each bad
input gets a Huawei-shaped 400 that names the field (or a documented code where one exists, such as
DMS.00400010 for a bad name), and the store below only ever sees well-formed requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from dms_simulator import errors
from dms_simulator.errors import DmsError, invalid_parameter
from dms_simulator.instances import ENGINES

NAME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{3,63}$")
"""4-64 chars, starts with a letter; letters, digits, ``-``, ``_`` (the create rule, used for update too:
reference section 6 row 10)."""
DESCRIPTION_MAX: Final = 1024
ENGINE_VERSIONS: Final = ("4.8.0", "5.x")
PRODUCT_RE: Final = {
    "4.8.0": re.compile(r"^c6\.\d+u\d+g\.cluster(\.small)?$"),
    "5.x": re.compile(r"^rocketmq\.[bp][12]\.large\.\d+$"),
}
STORAGE_SPEC_CODES: Final = (
    "dms.physical.storage.high.v2",
    "dms.physical.storage.ultra.v2",
    "dms.physical.storage.general",
    "dms.physical.storage.extreme",
)
MAX_TAGS: Final = 20


# --- primitive field readers ---


def require_object(body: Any, what: str = "request body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid_parameter(what, f"must be a JSON object, got {type(body).__name__}")
    return body


def _get(body: Mapping[str, Any], key: str, required: bool) -> Any:
    value = body.get(key)
    if value is None and required:
        raise invalid_parameter(key, "is required")
    return value


def opt_str(body: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = _get(body, key, required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_parameter(key, f"must be a string, got {type(value).__name__}")
    if required and not value:
        raise invalid_parameter(key, "must not be empty")
    return value


def req_str(body: Mapping[str, Any], key: str) -> str:
    value = opt_str(body, key, required=True)
    assert value is not None
    return value


def opt_int(body: Mapping[str, Any], key: str, *, required: bool = False, minimum: int | None = None) -> int | None:
    value = _get(body, key, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_parameter(key, f"must be an integer, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise invalid_parameter(key, f"must be >= {minimum}, got {value}")
    return value


def req_int(body: Mapping[str, Any], key: str, *, minimum: int | None = None) -> int:
    value = opt_int(body, key, required=True, minimum=minimum)
    assert value is not None
    return value


def opt_bool(body: Mapping[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid_parameter(key, f"must be a boolean, got {type(value).__name__}")
    return value


def opt_str_list(body: Mapping[str, Any], key: str, *, required: bool = False) -> list[str] | None:
    value = _get(body, key, required)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_parameter(key, "must be a list of strings")
    return list(value)


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise DmsError(
            400,
            errors.INVALID_NAME,
            f"Invalid instance name {name!r}: 4 to 64 characters, starting with a letter; only letters, "
            "digits, hyphens (-) and underscores (_) are allowed.",
        )


def check_description(description: str) -> None:
    if len(description) > DESCRIPTION_MAX:
        raise DmsError(
            400,
            errors.DESCRIPTION_TOO_LONG,
            f"The description is {len(description)} characters long; at most {DESCRIPTION_MAX} are allowed.",
        )


def check_engine(engine: str, field_name: str = "engine") -> str:
    if engine not in ENGINES:
        raise DmsError(
            400,
            errors.UNSUPPORTED_ENGINE,
            f"Unsupported {field_name} {engine!r}: use 'reliability' or 'rocketmq'.",
        )
    return engine


# --- create ---


@dataclass(frozen=True)
class CreateRequest:
    name: str
    engine_version: str
    storage_space: int
    vpc_id: str
    subnet_id: str
    security_group_id: str
    available_zones: list[str]
    product_id: str
    storage_spec_code: str
    broker_num: int
    description: str = ""
    ssl_enable: bool = False
    enterprise_project_id: str = "0"
    enable_acl: bool = False
    ipv6_enable: bool = False
    proxy_enable: bool = False
    enable_publicip: bool = False
    publicip_id: str = ""
    disk_encrypted: bool = False
    disk_encrypted_key: str = ""
    arch_type: str = "X86"
    tls_mode: str = ""
    prepaid: bool = False


def parse_create(body: Any, *, legacy: bool) -> CreateRequest:
    """CreateInstanceByEngineReq (or, on the legacy route, CreatePostPaidInstanceReq: no bss_param)."""
    data = require_object(body)
    name = req_str(data, "name")
    check_name(name)
    description = opt_str(data, "description") or ""
    check_description(description)
    check_engine(req_str(data, "engine"))
    engine_version = req_str(data, "engine_version")
    if engine_version not in ENGINE_VERSIONS:
        raise DmsError(
            400,
            errors.UNSUPPORTED_VERSION,
            f"Unsupported engine_version {engine_version!r}: use one of {', '.join(ENGINE_VERSIONS)}.",
        )
    storage_space = req_int(data, "storage_space", minimum=1)
    if data.get("vpc_id") is None:
        raise DmsError(400, errors.VPC_MISSING, "Invalid parameter 'vpc_id': is required")
    vpc_id = req_str(data, "vpc_id")
    subnet_id = req_str(data, "subnet_id")
    security_group_id = req_str(data, "security_group_id")
    zones = opt_str_list(data, "available_zones", required=True) or []
    if not zones or any(not zone for zone in zones):
        raise DmsError(400, errors.AZ_NOT_FOUND, "Invalid parameter 'available_zones': must list at least one AZ id")
    if len(zones) == 2:
        raise invalid_parameter("available_zones", "deploy in 1 AZ or in 3 or more AZs, not 2")
    product_id = req_str(data, "product_id")
    if not PRODUCT_RE[engine_version].match(product_id):
        raise DmsError(
            400,
            errors.INVALID_PRODUCT,
            f"Invalid product_id {product_id!r} for engine_version {engine_version}.",
        )
    storage_spec_code = req_str(data, "storage_spec_code")
    if storage_spec_code not in STORAGE_SPEC_CODES:
        raise invalid_parameter("storage_spec_code", f"must be one of {', '.join(STORAGE_SPEC_CODES)}")
    broker_num = req_int(data, "broker_num", minimum=1)
    enable_publicip = bool(opt_bool(data, "enable_publicip"))
    publicip_id = opt_str(data, "publicip_id") or ""
    if enable_publicip and not publicip_id:
        raise invalid_parameter("publicip_id", "is required when enable_publicip is true")
    arch_type = opt_str(data, "arch_type") or "X86"
    if arch_type not in ("X86", "ARM"):
        raise invalid_parameter("arch_type", "must be X86 or ARM")
    for flag in ("ssl_enable", "enable_acl", "ipv6_enable", "proxy_enable", "disk_encrypted_enable"):
        opt_bool(data, flag)
    for text in ("enterprise_project_id", "disk_encrypted_key", "tls_mode"):
        opt_str(data, text)
    if not legacy:
        for text in ("ipv6_broker_address", "ipv6_namesrv_address"):
            opt_str(data, text)
    prepaid = False if legacy else _parse_bss_param(data.get("bss_param"))
    return CreateRequest(
        name=name,
        engine_version=engine_version,
        storage_space=storage_space,
        vpc_id=vpc_id,
        subnet_id=subnet_id,
        security_group_id=security_group_id,
        available_zones=zones,
        product_id=product_id,
        storage_spec_code=storage_spec_code,
        broker_num=broker_num,
        description=description,
        ssl_enable=bool(data.get("ssl_enable")),
        enterprise_project_id=opt_str(data, "enterprise_project_id") or "0",
        enable_acl=bool(data.get("enable_acl")),
        ipv6_enable=bool(data.get("ipv6_enable")),
        proxy_enable=bool(data.get("proxy_enable")),
        enable_publicip=enable_publicip,
        publicip_id=publicip_id,
        disk_encrypted=bool(data.get("disk_encrypted_enable")),
        disk_encrypted_key=opt_str(data, "disk_encrypted_key") or "",
        arch_type=arch_type,
        tls_mode=opt_str(data, "tls_mode") or "",
        prepaid=prepaid,
    )


def _parse_bss_param(value: Any) -> bool:
    """Validate ``bss_param``; True when it asks for prePaid (yearly/monthly) billing."""
    if value is None:
        return False
    bss = require_object(value, "bss_param")
    mode = opt_str(bss, "charging_mode") or "postPaid"
    if mode not in ("prePaid", "postPaid"):
        raise invalid_parameter("bss_param.charging_mode", "must be prePaid or postPaid")
    opt_bool(bss, "is_auto_renew")
    opt_bool(bss, "is_auto_pay")
    if mode == "postPaid":
        return False
    period_type = opt_str(bss, "period_type")
    period_num = opt_int(bss, "period_num")
    if period_type not in ("month", "year"):
        raise invalid_parameter("bss_param.period_type", "is required for prePaid: month or year")
    limit = 9 if period_type == "month" else 3
    if period_num is None or not 1 <= period_num <= limit:
        raise invalid_parameter("bss_param.period_num", f"is required for prePaid: 1 to {limit}")
    return True


# --- update ---


@dataclass(frozen=True)
class UpdateRequest:
    name: str | None = None
    description: str | None = None
    security_group_id: str | None = None
    enable_acl: bool | None = None
    enable_publicip: bool | None = None
    publicip_id: str | None = None
    enterprise_project_id: str | None = None


def parse_update(body: Any) -> UpdateRequest:
    data = require_object(body)
    name = opt_str(data, "name")
    if name is not None:
        check_name(name)
    description = opt_str(data, "description")
    if description is not None:
        check_description(description)
    request = UpdateRequest(
        name=name,
        description=description,
        security_group_id=opt_str(data, "security_group_id"),
        enable_acl=opt_bool(data, "enable_acl"),
        enable_publicip=opt_bool(data, "enable_publicip"),
        publicip_id=opt_str(data, "publicip_id"),
        enterprise_project_id=opt_str(data, "enterprise_project_id"),
    )
    if request.enable_publicip and not request.publicip_id:
        raise invalid_parameter("publicip_id", "is required when enable_publicip is true")
    return request


# --- batch action ---


@dataclass(frozen=True)
class BatchRequest:
    instances: list[str] | None
    all_failure: str | None
    """The value as sent (any case), or None."""
    force_delete: bool


def parse_batch(body: Any, *, strict: bool, max_size: int | None) -> BatchRequest:
    data = require_object(body)
    action = req_str(data, "action")
    if action != "delete":
        raise invalid_parameter("action", f"only 'delete' is supported, got {action!r}")
    instances = opt_str_list(data, "instances")
    all_failure = opt_str(data, "all_failure")
    if all_failure is None and "allFailure" in data:
        # The seed page's camelCase spelling (reference section 6 row 1).
        if strict:
            raise invalid_parameter("allFailure", "is not accepted (strict mode); send all_failure='reliability'")
        all_failure = opt_str(data, "allFailure")
    if all_failure is not None and all_failure.lower() not in ENGINES:
        raise invalid_parameter("all_failure", f"must be 'reliability' (or 'rocketmq'), got {all_failure!r}")
    force_delete = opt_bool(data, "force_delete")
    if all_failure is None:
        if instances is None:
            raise invalid_parameter("instances", "send either instances (a list of ids) or all_failure")
        if not instances:
            raise invalid_parameter("instances", "must not be empty")
        if max_size is not None and len(instances) > max_size:
            raise invalid_parameter(
                "instances",
                f"{len(instances)} instance ids exceed the limit of {max_size} per batch request",
            )
    return BatchRequest(instances=instances, all_failure=all_failure, force_delete=bool(force_delete))


# --- resize ---

OperType = Literal["storage", "horizontal", "vertical"]
_OPER_TYPES: Final[dict[str, OperType]] = {"storage": "storage", "horizontal": "horizontal", "vertical": "vertical"}


@dataclass(frozen=True)
class ResizeRequest:
    oper_type: OperType
    new_storage_space: int | None = None
    new_product_id: str | None = None
    new_broker_num: int | None = None
    publicip_id: str | None = None


def parse_resize(body: Any) -> ResizeRequest:
    data = require_object(body)
    raw_type = req_str(data, "oper_type")
    oper_type = _OPER_TYPES.get(raw_type)
    if oper_type is None:
        raise invalid_parameter("oper_type", f"must be storage, horizontal or vertical, got {raw_type!r}")
    request = ResizeRequest(
        oper_type=oper_type,
        new_storage_space=opt_int(data, "new_storage_space", minimum=1),
        new_product_id=opt_str(data, "new_product_id"),
        new_broker_num=opt_int(data, "new_broker_num", minimum=1),
        publicip_id=opt_str(data, "publicip_id"),
    )
    if oper_type == "storage" and request.new_storage_space is None:
        raise invalid_parameter("new_storage_space", "is required when oper_type is storage")
    if oper_type == "vertical" and not request.new_product_id:
        raise invalid_parameter("new_product_id", "is required when oper_type is vertical")
    if oper_type == "horizontal" and request.new_broker_num is None:
        raise invalid_parameter("new_broker_num", "is required when oper_type is horizontal")
    return request


# --- restart ---


def parse_restart(body: Any) -> list[str] | None:
    """The optional ``{"nodes": [...]}`` body (TF and one DOC page send it; the SDK sends nothing)."""
    if body is None:
        return None
    data = require_object(body)
    nodes = data.get("nodes")
    if nodes is None:
        return None
    if not isinstance(nodes, list):
        raise invalid_parameter("nodes", "must be a list of node names")
    names: list[str] = []
    for node in nodes:
        if isinstance(node, str) and node:
            names.append(node)
        elif isinstance(node, dict) and isinstance(node.get("name"), str):
            names.append(node["name"])
        else:
            raise invalid_parameter("nodes", 'items must be node names or {"name": ...} objects')
    return names


# --- tags ---


TagAction = Literal["create", "delete"]
_TAG_ACTIONS: Final[dict[str, TagAction]] = {"create": "create", "delete": "delete"}


@dataclass(frozen=True)
class TagsAction:
    action: TagAction
    tags: list[tuple[str, str]] = field(default_factory=list)


def parse_tags_action(body: Any) -> TagsAction:
    data = require_object(body)
    raw_action = req_str(data, "action")
    action = _TAG_ACTIONS.get(raw_action)
    if action is None:
        raise invalid_parameter("action", f"must be create or delete, got {raw_action!r}")
    raw = data.get("tags")
    if not isinstance(raw, list) or not raw:
        raise invalid_parameter("tags", "must be a non-empty list of {key, value} objects")
    tags: list[tuple[str, str]] = []
    for item in raw:
        entry = require_object(item, "tags[]")
        key = opt_str(entry, "key")
        value = opt_str(entry, "value") or ""
        if not key or len(key) > 128 or key != key.strip():
            raise invalid_parameter("tags[].key", "must be 1 to 128 characters without leading/trailing spaces")
        if len(value) > 255 or value != value.strip():
            raise invalid_parameter("tags[].value", "must be 0 to 255 characters without leading/trailing spaces")
        tags.append((key, value))
    return TagsAction(action=action, tags=tags)


# --- recycle bin ---


def parse_restore(body: Any) -> list[str]:
    data = require_object(body)
    instances = opt_str_list(data, "instances", required=True) or []
    if not instances:
        raise invalid_parameter("instances", "must not be empty")
    return instances


@dataclass(frozen=True)
class RecyclePolicyUpdate:
    retention_days: int | None
    default_use_recycle: bool | None


def parse_recycle_policy(body: Any) -> RecyclePolicyUpdate:
    data = require_object(body)
    days = opt_int(data, "retention_days")
    if days is not None and not 1 <= days <= 7:
        raise invalid_parameter("retention_days", f"must be 1 to 7, got {days}")
    use = opt_bool(data, "default_use_recycle")
    if days is None and use is None:
        raise invalid_parameter("retention_days", "send retention_days and/or default_use_recycle")
    return RecyclePolicyUpdate(retention_days=days, default_use_recycle=use)


# --- query strings ---


@dataclass(frozen=True)
class ListQuery:
    engine: str
    name: str | None
    instance_id: str | None
    status: str | None
    include_failure: bool
    exact_match_name: bool
    enterprise_project_id: str | None
    limit: int
    offset: int


def query_int(query: Mapping[str, str], key: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_parameter(key, f"must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise invalid_parameter(key, f"must be {bound}, got {value}")
    return value


def query_flag(query: Mapping[str, str], key: str) -> bool:
    raw = query.get(key)
    if raw is None or raw == "":
        return False
    if raw not in ("true", "false"):
        raise invalid_parameter(key, f"must be 'true' or 'false', got {raw!r}")
    return raw == "true"


def parse_list_query(query: Mapping[str, str], *, strict: bool) -> ListQuery:
    engine = query.get("engine")
    if not engine:
        if strict:
            raise invalid_parameter("engine", "is required (strict mode): engine=reliability")
        engine = "reliability"
    check_engine(engine)
    return ListQuery(
        engine=engine,
        name=query.get("name") or None,
        instance_id=query.get("instance_id") or None,
        status=query.get("status") or None,
        include_failure=query_flag(query, "include_failure"),
        exact_match_name=query_flag(query, "exact_match_name"),
        enterprise_project_id=query.get("enterprise_project_id") or None,
        limit=query_int(query, "limit", 10, 1, 50),
        offset=query_int(query, "offset", 0, 0),
    )
