"""What an instance is inside the simulator, and how it looks on the wire.

The store keeps a small record per instance (what was asked for, what is pending, when); this module
turns that record into Huawei's shapes. The wire shapes follow the SDK models field for field,
including their quirks (reference section 6, row 12): ``created_at`` is a *string* of epoch
milliseconds, recycle-bin times are *integer* milliseconds, ``task_count`` is a string, a progress
step's status key is spelled ``statue``, and ``cross_vpc_info`` is JSON text inside a string.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from dms_simulator.child_models import Group, Topic, User
from dms_simulator.deletions import Deletion

# --- statuses (reference section 3: the union of every documented spelling) ---
CREATING: Final = "CREATING"
CREATEFAILED: Final = "CREATEFAILED"
RUNNING: Final = "RUNNING"
ERROR: Final = "ERROR"
RESTARTING: Final = "RESTARTING"
STARTING: Final = "STARTING"
EXTENDING: Final = "EXTENDING"
EXTENDEDFAILED: Final = "EXTENDEDFAILED"
FREEZING: Final = "FREEZING"
FROZEN: Final = "FROZEN"
UPGRADING: Final = "UPGRADING"
ROLLBACK: Final = "ROLLBACK"
ROLLINGBACK: Final = "ROLLINGBACK"
DELETING: Final = "DELETING"
RECYCLE: Final = "RECYCLE"
"""What show answers for an instance in the recycle bin (the list and every other operation: 404)."""

STATUSES: Final = frozenset(
    {
        CREATING,
        CREATEFAILED,
        RUNNING,
        ERROR,
        RESTARTING,
        STARTING,
        EXTENDING,
        EXTENDEDFAILED,
        FREEZING,
        FROZEN,
        UPGRADING,
        ROLLBACK,
        ROLLINGBACK,
        DELETING,
        RECYCLE,
    }
)
DELETABLE: Final = frozenset({RUNNING, ERROR, CREATEFAILED, EXTENDEDFAILED, FROZEN})
"""States from which a delete starts; DELETING itself is accepted again as a harmless no-op."""

ENGINE: Final = "reliability"
"""What the simulator reports as ``engine``, whichever alias the caller used."""
ENGINES: Final = frozenset({"reliability", "rocketmq"})

# Field order and membership copied from the SDK models (3.1.219).
LIST_FIELDS: Final = (
    "name", "engine", "status", "description", "type", "specification", "engine_version",
    "instance_id", "arch_type", "charging_mode", "vpc_id", "vpc_name", "created_at", "product_id",
    "security_group_id", "security_group_name", "subnet_id", "subnet_cidr", "available_zones",
    "available_zone_names", "user_id", "user_name", "maintain_begin", "maintain_end",
    "enable_log_collection", "storage_space", "used_storage_space", "enable_publicip", "publicip_id",
    "publicip_address", "ssl_enable", "cross_vpc_info", "storage_resource_id", "storage_spec_code",
    "service_type", "storage_type", "extend_times", "ipv6_enable", "support_features", "disk_encrypted",
    "disk_encrypted_key", "ces_version", "node_num", "new_spec_billing_enable", "enable_acl",
    "broker_num", "dns_enable", "namesrv_address", "namesrv_domain_name", "broker_address",
    "ipv6_broker_address", "public_namesrv_address", "ipv6_namesrv_address",
    "public_namesrv_domain_name", "public_broker_address", "grpc_address", "grpc_domain_name",
    "public_grpc_address", "public_grpc_domain_name", "enterprise_project_id", "tags",
    "total_storage_space", "resource_spec_code", "produce_portion", "consume_portion", "dr_enable",
    "quota_address", "max_msg_process_tps", "config_ssl_need_restart_process", "tls_mode",
    "enable_elastic_tps",
)  # fmt: skip
SHOW_FIELDS: Final = (
    "name", "engine", "status", "description", "type", "specification", "engine_version",
    "instance_id", "charging_mode", "vpc_id", "vpc_name", "created_at", "product_id",
    "security_group_id", "security_group_name", "subnet_id", "subnet_name", "subnet_cidr",
    "available_zones", "available_zone_names", "user_id", "user_name", "maintain_begin",
    "maintain_end", "enable_log_collection", "storage_space", "used_storage_space", "enable_publicip",
    "publicip_id", "publicip_address", "ssl_enable", "cross_vpc_info", "storage_resource_id",
    "storage_spec_code", "service_type", "storage_type", "extend_times", "ipv6_enable",
    "ipv6_broker_address", "ipv6_namesrv_address", "support_features", "disk_encrypted",
    "ces_version", "node_num", "new_spec_billing_enable", "enable_acl", "broker_num", "dns_enable",
    "namesrv_address", "namesrv_domain_name", "broker_address", "public_namesrv_address",
    "public_namesrv_domain_name", "public_broker_address", "grpc_address", "grpc_domain_name",
    "public_grpc_address", "public_grpc_domain_name", "enterprise_project_id", "tags",
    "total_storage_space", "resource_spec_code", "produce_portion", "consume_portion", "dr_enable",
    "quota_address", "max_msg_process_tps", "config_ssl_need_restart_process", "tls_mode",
    "arch_type", "enable_elastic_tps", "auto_volume_expand_enable",
)  # fmt: skip
ALL_DETAIL_FIELDS: Final = frozenset(LIST_FIELDS) | frozenset(SHOW_FIELDS) | {"order_id"}

# States in which the instance has no endpoints yet (or any more).
_NO_ENDPOINTS: Final = frozenset({CREATING, CREATEFAILED})

View = Literal["list", "show"]


@dataclass
class Resize:
    """A pending spec change, applied when EXTENDING ends."""

    storage_space: int | None = None
    broker_num: int | None = None
    product_id: str | None = None
    counts_as_extension: bool = True


@dataclass
class Transition:
    """The one thing an instance is waiting for: at ``due`` it becomes ``target``."""

    due: float
    target: str
    """A status, or ``GONE`` for the end of a deletion."""
    resize: Resize | None = None
    to_recycle_bin: bool = False
    previous_status: str | None = None
    """The status before the transition began (a binned instance reports the one it was deleted in)."""
    deletion: Deletion | None = None
    """The record to close when an accepted deletion ends (seeded DELETING states have none)."""


GONE: Final = "<gone>"


@dataclass
class Task:
    task_id: str
    name: str
    params: str
    started: float
    finishes: float
    failed: bool = False

    def status(self, now: float) -> str:
        if now < self.finishes:
            return "CREATED"
        return "FAILED" if self.failed else "SUCCESS"


@dataclass
class RecycleEntry:
    in_recycle_time: float
    auto_delete_time: float
    save_days: int
    status: str
    """The status the instance had when it was deleted, which the recycle list reports."""


@dataclass
class Instance:
    instance_id: str
    project_id: str
    user_id: str
    user_name: str
    name: str
    engine_version: str
    storage_space: int
    broker_num: int
    product_id: str
    storage_spec_code: str
    vpc_id: str
    subnet_id: str
    security_group_id: str
    available_zones: list[str]
    created: float
    status: str
    description: str = ""
    enterprise_project_id: str = "0"
    ssl_enable: bool = False
    enable_acl: bool = False
    ipv6_enable: bool = False
    proxy_enable: bool = False
    enable_publicip: bool = False
    publicip_id: str = ""
    disk_encrypted: bool = False
    disk_encrypted_key: str = ""
    arch_type: str = "X86"
    tls_mode: str = ""
    charging_mode: int = 1
    """1 = pay-per-use (``postPaid``), 0 = yearly/monthly (``prePaid``): reference section 6 row 16."""
    order_id: str | None = None
    extend_times: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    pending: Transition | None = None
    recycle: RecycleEntry | None = None
    tasks: list[Task] = field(default_factory=list)
    topics: dict[str, Topic] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    """Children, by name: they go wherever the instance goes (gone, binned, restored)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Seeded values for wire fields the simulator does not model (rendered verbatim)."""

    @property
    def in_recycle_bin(self) -> bool:
        return self.recycle is not None


def new_id() -> str:
    return str(uuid.uuid4())


def new_task_id() -> str:
    return uuid.uuid4().hex


def epoch_ms(moment: float) -> int:
    return int(moment * 1000)


def iso_ms(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms(moment) % 1000:03d}Z"


def is_v5(instance: Instance) -> bool:
    return instance.engine_version.startswith("5")


def instance_type(instance: Instance) -> str:
    if not is_v5(instance):
        return "single" if instance.broker_num == 1 and len(instance.available_zones) == 1 else "cluster"
    if ".b1." in instance.product_id:
        return "single.basic"
    if ".p" in instance.product_id:
        return "cluster.professional"
    return "cluster.basic"


def _ips(instance: Instance, count: int, third_octet: int) -> list[str]:
    # Deterministic per instance so two reads of one instance agree.
    digest = hashlib.sha256(instance.instance_id.encode()).digest()
    return [f"192.168.{third_octet}.{10 + (digest[i % len(digest)] + i) % 240}" for i in range(count)]


def _endpoints(instance: Instance, status: str) -> dict[str, Any]:
    empty = {
        "namesrv_address": "",
        "namesrv_domain_name": "",
        "broker_address": "",
        "public_namesrv_address": "",
        "public_namesrv_domain_name": "",
        "public_broker_address": "",
        "cross_vpc_info": "",
        "grpc_address": "",
        "grpc_domain_name": "",
        "public_grpc_address": "",
        "public_grpc_domain_name": "",
        "publicip_address": "",
        "ipv6_broker_address": "",
        "ipv6_namesrv_address": "",
    }
    if status in _NO_ENDPOINTS:
        return empty
    namesrv = _ips(instance, 3, 0)
    brokers = _ips(instance, max(1, instance.broker_num) * 3, 1)
    domain = f"{instance.instance_id}.rocketmq.sim.internal"
    result = dict(empty)
    result["namesrv_address"] = ",".join(f"{ip}:8100" for ip in namesrv)
    result["namesrv_domain_name"] = f"namesrv.{domain}:8100"
    result["broker_address"] = ",".join(f"{ip}:10100" for ip in brokers)
    # The API returns this as JSON text inside a string (TF parses it per IP).
    result["cross_vpc_info"] = json.dumps(
        {ip: {"advertised_ip": ip, "listener_ip": ip, "port": "10100", "port_id": ""} for ip in brokers},
        separators=(",", ":"),
    )
    if is_v5(instance):
        result["grpc_address"] = ",".join(f"{ip}:8081" for ip in namesrv)
        result["grpc_domain_name"] = f"grpc.{domain}:8081"
    if instance.enable_publicip:
        public = [f"100.64.{int(ip.split('.')[-1]) % 250}.{i + 1}" for i, ip in enumerate(namesrv)]
        result["publicip_address"] = ",".join(public)
        result["public_namesrv_address"] = ",".join(f"{ip}:8200" for ip in public)
        result["public_namesrv_domain_name"] = f"public-namesrv.{domain}:8200"
        result["public_broker_address"] = ",".join(f"{ip}:10101" for ip in public)
        if is_v5(instance):
            result["public_grpc_address"] = ",".join(f"{ip}:8082" for ip in public)
            result["public_grpc_domain_name"] = f"public-grpc.{domain}:8082"
    if instance.ipv6_enable:
        result["ipv6_namesrv_address"] = "fd00::1:8100"
        result["ipv6_broker_address"] = "fd00::2:10100"
    return result


def render_detail(instance: Instance, status: str, view: View) -> dict[str, Any]:
    """The InstanceDetail (list item) or ShowInstanceResponse (show) shape of one instance."""
    short = instance.instance_id[:8]
    values: dict[str, Any] = {
        "name": instance.name,
        "engine": ENGINE,
        "status": status,
        "description": instance.description,
        "type": instance_type(instance),
        "specification": f"{instance.product_id} * {instance.broker_num} broker(s)",
        "engine_version": instance.engine_version,
        "instance_id": instance.instance_id,
        "arch_type": instance.arch_type,
        "charging_mode": instance.charging_mode,
        "vpc_id": instance.vpc_id,
        "vpc_name": f"vpc-{instance.vpc_id[:8]}",
        "created_at": str(epoch_ms(instance.created)),
        "product_id": instance.product_id,
        "security_group_id": instance.security_group_id,
        "security_group_name": f"sg-{instance.security_group_id[:8]}",
        "subnet_id": instance.subnet_id,
        "subnet_name": f"subnet-{instance.subnet_id[:8]}",
        "subnet_cidr": "192.168.0.0/16",
        "available_zones": list(instance.available_zones),
        "available_zone_names": [f"AZ{i + 1}" for i in range(len(instance.available_zones))],
        "user_id": instance.user_id,
        "user_name": instance.user_name,
        "maintain_begin": "02:00:00",
        "maintain_end": "06:00:00",
        "enable_log_collection": False,
        "storage_space": instance.storage_space,
        "used_storage_space": 0,
        "enable_publicip": instance.enable_publicip,
        "publicip_id": instance.publicip_id,
        "ssl_enable": instance.ssl_enable,
        "storage_resource_id": f"storage-{short}",
        "storage_spec_code": instance.storage_spec_code,
        "service_type": "advanced",
        "storage_type": "hec",
        "extend_times": instance.extend_times,
        "ipv6_enable": instance.ipv6_enable,
        "support_features": "",
        "disk_encrypted": instance.disk_encrypted,
        "disk_encrypted_key": instance.disk_encrypted_key,
        "ces_version": "linux,v1,v2",
        "node_num": instance.broker_num * 3,
        "new_spec_billing_enable": True,
        "enable_acl": instance.enable_acl,
        "broker_num": instance.broker_num,
        "dns_enable": False,
        "enterprise_project_id": instance.enterprise_project_id,
        "tags": [{"key": key, "value": value} for key, value in instance.tags.items()],
        # Reference section 6 row 14: the configured size is what TF reads here.
        "total_storage_space": instance.storage_space,
        "resource_spec_code": "",
        "produce_portion": 1,
        "consume_portion": 1,
        "dr_enable": False,
        "quota_address": "",
        "max_msg_process_tps": 2000 * instance.broker_num,
        "config_ssl_need_restart_process": False,
        "tls_mode": instance.tls_mode or ("SSL" if instance.ssl_enable else "PLAINTEXT"),
        "enable_elastic_tps": False,
        "auto_volume_expand_enable": False,
    }
    values.update(_endpoints(instance, status))
    names = LIST_FIELDS if view == "list" else SHOW_FIELDS
    detail = {name: values[name] for name in names}
    # Version-specific fields: node_num is 4.8.0 only, grpc_* are 5.x only.
    if is_v5(instance):
        del detail["node_num"]
    else:
        for name in ("grpc_address", "grpc_domain_name", "public_grpc_address", "public_grpc_domain_name"):
            del detail[name]
    if view == "show" and instance.order_id is not None:
        # Reference section 6 row 13: TF polls show for order_id after a prePaid create.
        detail["order_id"] = instance.order_id
    for name, value in instance.overrides.items():
        if name in detail or name not in ALL_DETAIL_FIELDS:
            detail[name] = value
    return detail


def render_recycle_info(instance: Instance, cost_per_hour: float = 0.0) -> dict[str, Any]:
    entry = instance.recycle
    assert entry is not None, "only binned instances have recycle info"
    return {
        "instance_id": instance.instance_id,
        "status": entry.status,
        "name": instance.name,
        "engine": ENGINE,
        "in_recycle_time": epoch_ms(entry.in_recycle_time),
        "save_time": entry.save_days,
        "auto_delete_time": epoch_ms(entry.auto_delete_time),
        "cost_per_hour": cost_per_hour,
        "error_message": None,
        "product_id": instance.product_id,
    }


def render_task(instance: Instance, task: Task, now: float) -> dict[str, Any]:
    status = task.status(now)
    return {
        "id": task.task_id,
        "name": task.name,
        "user_name": instance.user_name,
        "user_id": instance.user_id,
        "params": task.params,
        "status": status,
        "created_at": iso_ms(task.started),
        "updated_at": iso_ms(min(now, task.finishes) if status == "CREATED" else task.finishes),
    }


def render_progress(task: Task, now: float) -> dict[str, Any]:
    duration = max(task.finishes - task.started, 1e-9)
    done = min(1.0, max(0.0, (now - task.started) / duration))
    status = task.status(now)
    step_status = {"CREATED": "IN_PROGRESS", "SUCCESS": "COMPLETED", "FAILED": "FAILED"}[status]
    return {
        "progress_percentage": int(done * 100),
        "remain_time": max(0, int(task.finishes - now)),
        # ``statue`` is the API's own spelling (SDK StepDetail), kept on purpose.
        "step_list": [
            {
                "name": task.name,
                "statue": step_status,
                "start_time": epoch_ms(task.started),
                "end_time": epoch_ms(task.finishes) if status != "CREATED" else 0,
            }
        ],
    }
