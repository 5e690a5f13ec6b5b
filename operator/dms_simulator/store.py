"""The cloud's state and rules: instances per project, the state machine, the recycle bin.

Everything a real DMS enforces lives here, free of HTTP: unique names per project, the instance quota,
operations refused in the wrong state, the per-instance outcome of a batch delete. Status is computed
lazily: each public method first *settles* every transition whose time has come, so the state is a
pure function of the injected clock (no background tasks, no flaky timing in tests).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from dms_simulator import errors, instances, payloads
from dms_simulator.clock import Clock
from dms_simulator.config import SimulatorConfig
from dms_simulator.deletions import Deletion, DeletionLog, Outcome
from dms_simulator.errors import DmsError, invalid_parameter
from dms_simulator.instances import (
    CREATEFAILED,
    CREATING,
    DELETABLE,
    DELETING,
    EXTENDING,
    GONE,
    RECYCLE,
    RESTARTING,
    RUNNING,
    Instance,
    RecycleEntry,
    Resize,
    Task,
    Transition,
)

DAY: Final = 86_400.0
MAX_STORAGE_EXTENSIONS: Final = 20
MIN_GROWTH_PER_BROKER_GB: Final = 100

# What a seeded transitional state becomes when the seed asks for ``"transition": true``:
# (status, name of the config timing, target).
_SEED_TRANSITIONS: Final[dict[str, tuple[str, str]]] = {
    instances.CREATING: ("create_seconds", RUNNING),
    instances.EXTENDING: ("extend_seconds", RUNNING),
    instances.RESTARTING: ("restart_seconds", RUNNING),
    instances.STARTING: ("restart_seconds", RUNNING),
    instances.UPGRADING: ("extend_seconds", RUNNING),
    instances.ROLLBACK: ("extend_seconds", RUNNING),
    instances.ROLLINGBACK: ("extend_seconds", RUNNING),
    instances.FREEZING: ("restart_seconds", instances.FROZEN),
    instances.DELETING: ("delete_seconds", GONE),
}


@dataclass
class RecyclePolicy:
    retention_days: float
    default_use_recycle: bool


@dataclass(frozen=True)
class BatchItem:
    instance_id: str
    result: str  # "success" | "failed"


DeletionFailure = Callable[[str], str | None]
"""Asked once per deletion being accepted: the status it will fail into, or ``None`` (it succeeds)."""


def user_of(identity: str) -> tuple[str, str]:
    """A stable (user_id, user_name) for the caller, as the cloud would report the creating user."""
    return hashlib.md5(identity.encode(), usedforsecurity=False).hexdigest(), f"sim-{identity}"


class Store:
    def __init__(self, config: SimulatorConfig, clock: Clock, rng: random.Random) -> None:
        self._config = config
        self._clock = clock
        self._rng = rng
        self._instances: dict[str, Instance] = {}
        self._policies: dict[str, RecyclePolicy] = {}
        self._deletions = DeletionLog()
        # What falls due, soonest first, so that a call settles in time with what is due, not with how
        # many instances there are (every call settles; at 10,000 instances a scan of them all made the
        # simulator the bottleneck of the bench). Entries are checked when popped: one whose instance
        # has gone, or has since been given another transition or bin entry, is dropped.
        self._transitions: list[tuple[float, str, int, Transition]] = []
        self._expiries: list[tuple[float, str, int, RecycleEntry]] = []
        self._order = itertools.count()
        # Every instance in the list's order (newest first), kept between calls: a list walk of 10,000
        # instances asks for 200 pages, and sorting them all for each page made each page cost 80 ms.
        # Dropped whenever an instance comes or goes (``_add``, ``_drop``) or its creation time changes.
        self._listing: list[Instance] | None = None

    def reset(self) -> None:
        self._instances.clear()
        self._listing = None
        self._policies.clear()
        self._deletions.clear()
        self._transitions.clear()
        self._expiries.clear()

    # ------------------------------------------------------------------ time

    def settle(self) -> None:
        """Apply every transition and recycle-bin expiry that is due by now."""
        now = self._clock.now()
        due: list[tuple[Instance, Transition]] = []
        while self._transitions and self._transitions[0][0] <= now:
            _due, instance_id, _order, transition = heapq.heappop(self._transitions)
            instance = self._instances.get(instance_id)
            if instance is not None and instance.pending is transition:
                due.append((instance, transition))
        # Collected first, then applied (in order of due time, then instance id): a transition that
        # one of these begins waits for the next settle.
        for instance, transition in due:
            if instance.pending is transition:
                instance.pending = None
                self._apply(instance, transition)
        while self._expiries and self._expiries[0][0] <= now:
            _due, instance_id, _order, entry = heapq.heappop(self._expiries)
            instance = self._instances.get(instance_id)
            if instance is not None and instance.recycle is entry:
                self._drop(instance_id)

    def _add(self, instance: Instance) -> None:
        self._instances[instance.instance_id] = instance
        self._listing = None

    def _drop(self, instance_id: str) -> bool:
        self._listing = None
        return self._instances.pop(instance_id, None) is not None

    def _schedule(self, instance: Instance, transition: Transition) -> None:
        instance.pending = transition
        heapq.heappush(self._transitions, (transition.due, instance.instance_id, next(self._order), transition))

    def _apply(self, instance: Instance, transition: Transition) -> None:
        if transition.target == GONE:
            if transition.to_recycle_bin:
                self._bin(instance, transition.due, transition.previous_status or RUNNING)
            else:
                self._drop(instance.instance_id)
        else:
            resize = transition.resize
            if resize is not None:
                instance.storage_space = resize.storage_space or instance.storage_space
                instance.broker_num = resize.broker_num or instance.broker_num
                instance.product_id = resize.product_id or instance.product_id
                if resize.counts_as_extension:
                    instance.extend_times += 1
            instance.status = transition.target
        if transition.deletion is not None:
            # A deletion whose target is a status is one the cloud gave up on (a fault).
            outcome: Outcome = (
                "failed" if transition.target != GONE else "binned" if instance.in_recycle_bin else "gone"
            )
            # Closed at the time it was due, not at this (lazy) settle: that is when the cloud finished.
            transition.deletion.end(transition.due, outcome, None if outcome == "gone" else instance.status)

    def _bin(self, instance: Instance, at: float, listed_status: str) -> None:
        """Into the recycle bin: show answers RECYCLE, the recycle list reports ``listed_status``."""
        policy = self.policy(instance.project_id)
        instance.pending = None
        entry = RecycleEntry(
            in_recycle_time=at,
            auto_delete_time=at + policy.retention_days * DAY,
            save_days=max(1, round(policy.retention_days)),
            status=listed_status,
        )
        instance.recycle = entry
        heapq.heappush(self._expiries, (entry.auto_delete_time, instance.instance_id, next(self._order), entry))
        instance.status = RECYCLE

    def _begin(self, instance: Instance, status: str, seconds: float, target: str, **extra: Any) -> None:
        previous = instance.status
        instance.status = status
        self._schedule(
            instance, Transition(due=self._clock.now() + seconds, target=target, previous_status=previous, **extra)
        )

    def _task(
        self, instance: Instance, name: str, seconds: float, params: Mapping[str, Any], *, failed: bool = False
    ) -> Task:
        now = self._clock.now()
        task = Task(
            task_id=instances.new_task_id(),
            name=name,
            params=json.dumps(dict(params), separators=(",", ":")),
            started=now,
            finishes=now + seconds,
            failed=failed,
        )
        instance.tasks.append(task)
        return task

    def add_task(
        self, instance: Instance, name: str, seconds: float, params: Mapping[str, Any], *, failed: bool = False
    ) -> Task:
        """A background task on ``instance`` (the job id a topic or group batch answers with)."""
        return self._task(instance, name, seconds, params, failed=failed)

    # ------------------------------------------------------------------ lookups

    def _visible(self, project_id: str) -> Iterator[Instance]:
        """Every instance of the project outside the bin, DELETING ones included (they hold their
        name and count toward the quota until they are gone)."""
        return (i for i in self._instances.values() if i.project_id == project_id and not i.in_recycle_bin)

    def _lookup(self, project_id: str, instance_id: str, *, binned_too: bool = False) -> Instance | None:
        # Another project's instance is as absent as a missing one.
        instance = self._instances.get(instance_id)
        if instance is None or instance.project_id != project_id:
            return None
        if instance.in_recycle_bin and not binned_too:
            return None
        return instance

    def get(self, project_id: str, instance_id: str) -> Instance:
        """A live instance of this project, for every operation but show."""
        self.settle()
        instance = self._lookup(project_id, instance_id)
        if instance is None:
            raise errors.instance_not_found(instance_id)
        return instance

    def show(self, project_id: str, instance_id: str) -> Instance:
        """What show answers: a live instance, or a binned one (status RECYCLE, as the real cloud
        answers a non-forced deletion with the bin on)."""
        self.settle()
        instance = self._lookup(project_id, instance_id, binned_too=True)
        if instance is None:
            raise errors.instance_not_found(instance_id)
        return instance

    def _name_taken(self, project_id: str, name: str, *, excluding: str | None = None) -> bool:
        return any(i.name == name and i.instance_id != excluding for i in self._visible(project_id))

    def policy(self, project_id: str) -> RecyclePolicy:
        policy = self._policies.get(project_id)
        if policy is not None:
            return policy
        return RecyclePolicy(self._config.recycle_retention_days, self._config.recycle_bin_enabled)

    # ------------------------------------------------------------------ DMS operations

    def create(self, project_id: str, identity: str, request: payloads.CreateRequest) -> Instance:
        self.settle()
        if self._name_taken(project_id, request.name):
            raise DmsError(400, errors.NAME_EXISTS, f"The instance name already exists: {request.name}")
        live = sum(1 for _ in self._visible(project_id))
        if live >= self._config.quota:
            raise DmsError(
                400,
                errors.QUOTA_EXCEEDED,
                f"The instance quota of this project is used up ({live} of {self._config.quota}).",
            )
        fails = request.name in self._config.create_fail_names or (
            self._config.create_fail_share > 0 and self._rng.random() < self._config.create_fail_share
        )
        user_id, user_name = user_of(identity)
        instance = Instance(
            instance_id=instances.new_id(),
            project_id=project_id,
            user_id=user_id,
            user_name=user_name,
            name=request.name,
            engine_version=request.engine_version,
            storage_space=request.storage_space,
            broker_num=request.broker_num,
            product_id=request.product_id,
            storage_spec_code=request.storage_spec_code,
            vpc_id=request.vpc_id,
            subnet_id=request.subnet_id,
            security_group_id=request.security_group_id,
            available_zones=list(request.available_zones),
            created=self._clock.now(),
            status=CREATING,
            description=request.description,
            enterprise_project_id=request.enterprise_project_id,
            ssl_enable=request.ssl_enable,
            enable_acl=request.enable_acl,
            ipv6_enable=request.ipv6_enable,
            proxy_enable=request.proxy_enable,
            enable_publicip=request.enable_publicip,
            publicip_id=request.publicip_id,
            disk_encrypted=request.disk_encrypted,
            disk_encrypted_key=request.disk_encrypted_key,
            arch_type=request.arch_type,
            tls_mode=request.tls_mode,
            charging_mode=0 if request.prepaid else 1,
            order_id=f"CS{instances.new_task_id()[:20].upper()}" if request.prepaid else None,
        )
        self._add(instance)
        seconds = self._config.create_seconds
        self._begin(instance, CREATING, seconds, CREATEFAILED if fails else RUNNING)
        self._task(instance, "createInstance", seconds, {"name": request.name}, failed=fails)
        return instance

    def search(self, project_id: str, query: payloads.ListQuery) -> tuple[list[Instance], int]:
        """One page of matching instances (newest first) and the total number that match."""
        self.settle()
        # The real list drops an instance the moment its deletion starts (docs/simulator.md).
        hidden = {
            status
            for status, shown in ((DELETING, self._config.list_shows_deleting), (CREATEFAILED, query.include_failure))
            if not shown
        }
        narrowed = (query.instance_id, query.status, query.name, query.enterprise_project_id) != (None,) * 4
        matches = []
        for instance in self._in_list_order():  # kept lean: it runs for every instance, on every page
            if instance.project_id != project_id or instance.recycle is not None or instance.status in hidden:
                continue
            if narrowed and not _narrowed_to(instance, query):
                continue
            matches.append(instance)
        return matches[query.offset : query.offset + query.limit], len(matches)

    def _in_list_order(self) -> list[Instance]:
        if self._listing is None:
            self._listing = sorted(self._instances.values(), key=lambda i: (-i.created, i.instance_id))
        return self._listing

    def update(self, project_id: str, instance_id: str, request: payloads.UpdateRequest) -> None:
        instance = self.get(project_id, instance_id)
        if instance.status != RUNNING:
            raise errors.wrong_state(instance_id, instance.status, "update")
        if request.name is not None and self._name_taken(project_id, request.name, excluding=instance_id):
            raise DmsError(400, errors.NAME_EXISTS, f"The instance name already exists: {request.name}")
        for name in ("name", "description", "security_group_id", "enable_acl", "enterprise_project_id"):
            value = getattr(request, name)
            if value is not None:
                setattr(instance, name, value)
        if request.enable_publicip is not None and request.enable_publicip != instance.enable_publicip:
            task = "bindInstancePublicIp" if request.enable_publicip else "unbindInstancePublicIp"
            self._task(instance, task, self._config.restart_seconds, {"publicip_id": request.publicip_id or ""})
            instance.enable_publicip = request.enable_publicip
            instance.publicip_id = (request.publicip_id or "") if request.enable_publicip else ""

    def delete(self, project_id: str, instance_id: str, delete_failure: DeletionFailure) -> None:
        instance = self.get(project_id, instance_id)
        if instance.status == DELETING:
            return  # a repeated delete is harmless
        if instance.status not in DELETABLE:
            raise errors.wrong_state(instance_id, instance.status, "delete")
        self._start_delete(instance, force=False, delete_failure=delete_failure)

    def _start_delete(self, instance: Instance, *, force: bool, delete_failure: DeletionFailure) -> None:
        record = self._deletions.accept(
            instance_id=instance.instance_id,
            project_id=instance.project_id,
            name=instance.name,
            forced=force,
            at=self._clock.now(),
        )
        seconds = self._config.delete_seconds
        fails_into = delete_failure(instance.instance_id)
        if fails_into is not None:
            self._begin(instance, DELETING, seconds, fails_into, deletion=record)
            return
        to_bin = (
            not force
            and self.policy(instance.project_id).default_use_recycle
            # Nothing worth restoring in an instance that never came up.
            and instance.status != CREATEFAILED
        )
        self._begin(instance, DELETING, seconds, GONE, to_recycle_bin=to_bin, deletion=record)

    def batch_delete(
        self,
        project_id: str,
        request: payloads.BatchRequest,
        is_failed_id: Callable[[str], bool],
        delete_failure: DeletionFailure,
    ) -> list[BatchItem] | None:
        """Start deleting; per-instance results for an id list, ``None`` for the all_failure form."""
        self.settle()
        if request.all_failure is not None:
            for instance in list(self._visible(project_id)):
                if instance.status == CREATEFAILED and not is_failed_id(instance.instance_id):
                    self._start_delete(instance, force=request.force_delete, delete_failure=delete_failure)
            return None
        assert request.instances is not None
        # A binned id is as unknown here as a missing one.
        targets = [(iid, self._lookup(project_id, iid)) for iid in request.instances]
        # Whole-call refusals first, so a refused call changes nothing.
        for iid, found in targets:
            if found is None and self._config.unknown_batch_ids == "error":
                raise errors.instance_not_found(iid)
            if (
                found is not None
                and found.status not in DELETABLE
                and found.status != DELETING
                and self._config.undeletable_batch_ids == "error"
            ):
                raise errors.wrong_state(iid, found.status, "delete")
        results: list[BatchItem] = []
        for iid, found in targets:
            if is_failed_id(iid):
                results.append(BatchItem(iid, "failed"))
            elif found is None:
                if self._config.unknown_batch_ids != "omit":
                    mode = self._config.unknown_batch_ids
                    results.append(BatchItem(iid, "success" if mode == "success" else "failed"))
            elif found.status == DELETING:
                results.append(BatchItem(iid, "success"))
            elif found.status in DELETABLE:
                self._start_delete(found, force=request.force_delete, delete_failure=delete_failure)
                results.append(BatchItem(iid, "success"))
            else:
                results.append(BatchItem(iid, "failed"))
        return results

    def resize(self, project_id: str, instance_id: str, request: payloads.ResizeRequest) -> Task:
        instance = self.get(project_id, instance_id)
        if instance.status != RUNNING:
            raise errors.wrong_state(instance_id, instance.status, "resize")
        resize = self._plan_resize(instance, request)
        seconds = self._config.extend_seconds
        self._begin(instance, EXTENDING, seconds, RUNNING, resize=resize)
        params = {k: v for k, v in vars(request).items() if v is not None}
        return self._task(instance, "resizeInstance", seconds, params)

    @staticmethod
    def _plan_resize(instance: Instance, request: payloads.ResizeRequest) -> Resize:
        v5 = instances.is_v5(instance)
        if request.oper_type == "storage":
            new = request.new_storage_space
            assert new is not None
            if instance.extend_times >= MAX_STORAGE_EXTENSIONS:
                raise invalid_parameter(
                    "new_storage_space", f"storage can be expanded at most {MAX_STORAGE_EXTENSIONS} times"
                )
            minimum = instance.storage_space + MIN_GROWTH_PER_BROKER_GB * instance.broker_num
            if new < minimum:
                raise invalid_parameter(
                    "new_storage_space",
                    f"each broker must grow by at least {MIN_GROWTH_PER_BROKER_GB} GB: at least {minimum} "
                    f"(now {instance.storage_space} for {instance.broker_num} broker(s)), got {new}",
                )
            return Resize(storage_space=new)
        if request.oper_type == "horizontal":
            brokers = request.new_broker_num
            assert brokers is not None
            if brokers < instance.broker_num:
                raise invalid_parameter("new_broker_num", f"cannot scale down from {instance.broker_num}")
            product = request.new_product_id
            if v5:
                if not product:
                    raise invalid_parameter("new_product_id", "is required for a 5.x horizontal resize")
                _check_product(instance, product)
            elif brokers == instance.broker_num:
                raise invalid_parameter("new_broker_num", f"must exceed the current {instance.broker_num}")
            per_broker = instance.storage_space // max(1, instance.broker_num)
            return Resize(
                storage_space=per_broker * brokers,
                broker_num=brokers,
                product_id=product if v5 else None,
                counts_as_extension=False,
            )
        # vertical: 4.8.0 only, a broker flavour change
        if v5:
            raise invalid_parameter("oper_type", "vertical resize is only for engine_version 4.8.0")
        product = request.new_product_id
        assert product is not None
        _check_product(instance, product)
        return Resize(product_id=product, counts_as_extension=False)

    def restart(self, project_id: str, instance_id: str, nodes: list[str] | None) -> list[str]:
        instance = self.get(project_id, instance_id)
        if instance.status != RUNNING:
            raise errors.wrong_state(instance_id, instance.status, "restart")
        all_nodes = [f"broker-{i}" for i in range(instance.broker_num)]
        unknown = sorted(set(nodes or ()) - set(all_nodes))
        if unknown:
            raise invalid_parameter("nodes", f"unknown node(s) {', '.join(unknown)}; this instance has {all_nodes}")
        chosen = nodes or all_nodes
        seconds = self._config.restart_seconds
        self._begin(instance, RESTARTING, seconds, RUNNING)
        self._task(instance, "restartInstance", seconds, {"nodes": chosen})
        return chosen

    def change_tags(self, project_id: str, instance_id: str, action: payloads.TagsAction) -> None:
        instance = self.get(project_id, instance_id)
        if action.action == "delete":
            for key, _ in action.tags:
                instance.tags.pop(key, None)
            return
        merged = dict(instance.tags)
        merged.update(action.tags)
        if len(merged) > payloads.MAX_TAGS:
            raise invalid_parameter("tags", f"an instance can have at most {payloads.MAX_TAGS} tags")
        instance.tags = merged

    def project_tags(self, project_id: str) -> dict[str, list[str]]:
        self.settle()
        collected: dict[str, set[str]] = {}
        for instance in self._visible(project_id):
            for key, value in instance.tags.items():
                collected.setdefault(key, set()).add(value)
        return {key: sorted(values) for key, values in sorted(collected.items())}

    def task(self, project_id: str, instance_id: str, task_id: str) -> tuple[Instance, Task]:
        instance = self.get(project_id, instance_id)
        for task in instance.tasks:
            if task.task_id == task_id:
                return instance, task
        raise DmsError(404, errors.TASK_NOT_FOUND, f"The task does not exist: {task_id}")

    def count_live(self, project_id: str) -> int:
        self.settle()
        return sum(1 for _ in self._visible(project_id))

    # ------------------------------------------------------------------ recycle bin

    def binned(self, project_id: str) -> list[Instance]:
        self.settle()
        found = [i for i in self._instances.values() if i.project_id == project_id and i.in_recycle_bin]
        return sorted(found, key=lambda i: (i.recycle.in_recycle_time if i.recycle else 0.0, i.instance_id))

    def set_policy(self, project_id: str, update: payloads.RecyclePolicyUpdate) -> RecyclePolicy:
        current = self.policy(project_id)
        policy = RecyclePolicy(
            retention_days=float(update.retention_days)
            if update.retention_days is not None
            else current.retention_days,
            default_use_recycle=(
                update.default_use_recycle if update.default_use_recycle is not None else current.default_use_recycle
            ),
        )
        self._policies[project_id] = policy
        return policy

    def restore(self, project_id: str, instance_ids: list[str]) -> list[dict[str, Any]]:
        self.settle()
        results: list[dict[str, Any]] = []
        for iid in instance_ids:
            instance = self._instances.get(iid)
            error: str | None = None
            if instance is None or instance.project_id != project_id or not instance.in_recycle_bin:
                error = f"The instance is not in the recycle bin: {iid}"
            elif self._name_taken(project_id, instance.name):
                error = f"The instance name already exists: {instance.name}"
            elif self.count_live(project_id) >= self._config.quota:
                error = "The instance quota of this project is used up."
            if error is not None or instance is None:
                results.append({"instance_id": iid, "job_id": None, "error_msg": error})
                continue
            instance.recycle = None
            instance.status = RUNNING
            task = self._task(instance, "restoreInstance", 0.0, {"instance_id": iid})
            results.append({"instance_id": iid, "job_id": task.task_id, "error_msg": None})
        return results

    # ------------------------------------------------------------------ admin (no rules apply)

    def all(self, project_id: str | None = None) -> list[Instance]:
        self.settle()
        found = [i for i in self._instances.values() if project_id is None or i.project_id == project_id]
        return sorted(found, key=lambda i: (i.created, i.instance_id))

    def find(self, instance_id: str) -> Instance | None:
        self.settle()
        return self._instances.get(instance_id)

    def remove(self, instance_id: str) -> bool:
        return self._drop(instance_id)

    def deletions(self) -> list[Deletion]:
        """Every accepted deletion, oldest first, with those whose time is up closed."""
        self.settle()
        return self._deletions.entries()

    def last_deletion(self, instance_id: str) -> Deletion | None:
        self.settle()
        return self._deletions.latest(instance_id)

    def seed(self, project_id: str, spec: Mapping[str, Any]) -> Instance:
        """Put an instance in place as-is: any state, any owner (no tags), no name or quota checks."""
        self.settle()
        instance_id = payloads.opt_str(spec, "instance_id") or instances.new_id()
        if instance_id in self._instances:
            raise invalid_parameter("instance_id", f"an instance with id {instance_id} already exists")
        version = payloads.opt_str(spec, "engine_version") or "5.x"
        user_id, user_name = user_of(project_id)
        instance = Instance(
            instance_id=instance_id,
            project_id=project_id,
            user_id=user_id,
            user_name=user_name,
            name=f"seeded-{instance_id[:8]}",
            engine_version=version,
            storage_space=300,
            broker_num=1,
            product_id="rocketmq.b2.large.4" if version.startswith("5") else "c6.4u8g.cluster",
            storage_spec_code="dms.physical.storage.high.v2",
            vpc_id=instances.new_id(),
            subnet_id=instances.new_id(),
            security_group_id=instances.new_id(),
            available_zones=["sim-az-1"],
            created=self._clock.now(),
            status=RUNNING,
        )
        self.apply_admin_fields(instance, spec)
        self._add(instance)
        return instance

    def apply_admin_fields(self, instance: Instance, spec: Mapping[str, Any]) -> None:
        """Set seeded/patched fields; unknown wire fields are rendered verbatim (``overrides``)."""
        simple: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
            "name": payloads.opt_str,
            "description": payloads.opt_str,
            "engine_version": payloads.opt_str,
            "storage_space": payloads.opt_int,
            "broker_num": payloads.opt_int,
            "product_id": payloads.opt_str,
            "storage_spec_code": payloads.opt_str,
            "vpc_id": payloads.opt_str,
            "subnet_id": payloads.opt_str,
            "security_group_id": payloads.opt_str,
            "available_zones": payloads.opt_str_list,
            "enterprise_project_id": payloads.opt_str,
            "ssl_enable": payloads.opt_bool,
            "enable_acl": payloads.opt_bool,
            "ipv6_enable": payloads.opt_bool,
            "enable_publicip": payloads.opt_bool,
            "publicip_id": payloads.opt_str,
            "disk_encrypted": payloads.opt_bool,
            "disk_encrypted_key": payloads.opt_str,
            "arch_type": payloads.opt_str,
            "tls_mode": payloads.opt_str,
            "charging_mode": payloads.opt_int,
            "order_id": payloads.opt_str,
            "extend_times": payloads.opt_int,
            "user_id": payloads.opt_str,
            "user_name": payloads.opt_str,
        }
        control = {"instance_id", "status", "transition", "tags", "created_at", "recycled", "project_id"}
        for key, value in spec.items():
            if key in simple:
                parsed = simple[key](spec, key)
                if parsed is not None:
                    setattr(instance, key, parsed)
            elif key not in control:
                instance.overrides[key] = value
        if "created_at" in spec:
            raw = spec["created_at"]
            try:
                instance.created = int(raw) / 1000.0
                self._listing = None
            except (TypeError, ValueError):
                raise invalid_parameter("created_at", "must be epoch milliseconds (number or string)") from None
        if "tags" in spec:
            tags = spec["tags"]
            if not isinstance(tags, list) or not all(
                isinstance(t, dict) and isinstance(t.get("key"), str) and isinstance(t.get("value", ""), str)
                for t in tags
            ):
                raise invalid_parameter("tags", "must be a list of {key, value} objects")
            instance.tags = {t["key"]: t.get("value", "") for t in tags}
        status = spec.get("status")
        if status is not None:
            if status not in instances.STATUSES:
                raise invalid_parameter("status", f"must be one of {', '.join(sorted(instances.STATUSES))}")
            instance.status = status
            instance.pending = None
            instance.recycle = None
        transition = spec.get("transition", False)
        if not isinstance(transition, bool):
            raise invalid_parameter("transition", "must be true or false")
        if transition:
            self._seed_transition(instance)
        recycled = spec.get("recycled", False)
        if not isinstance(recycled, bool):
            raise invalid_parameter("recycled", "must be true or false")
        # A status of RECYCLE only exists in the bin, so seeding it means binning the instance.
        if recycled or status == RECYCLE:
            listed = instance.recycle.status if instance.recycle is not None else instance.status
            self._bin(instance, self._clock.now(), RUNNING if listed == RECYCLE else listed)

    def _seed_transition(self, instance: Instance) -> None:
        entry = _SEED_TRANSITIONS.get(instance.status)
        if entry is None:
            raise invalid_parameter(
                "transition", f"{instance.status} is not a transitional state; nothing to transition to"
            )
        timing, target = entry
        seconds = float(getattr(self._config, timing))
        if instance.status == CREATING and instance.name in self._config.create_fail_names:
            target = CREATEFAILED
        extra: dict[str, Any] = {}
        if target == GONE:
            extra["to_recycle_bin"] = self.policy(instance.project_id).default_use_recycle
        previous_status = RUNNING if instance.status == DELETING else instance.status
        transition = Transition(
            due=self._clock.now() + seconds, target=target, previous_status=previous_status, **extra
        )
        self._schedule(instance, transition)


def _narrowed_to(instance: Instance, query: payloads.ListQuery) -> bool:
    """Whether ``instance`` passes the list query's optional filters (id, status, name, enterprise project)."""
    if query.instance_id is not None and instance.instance_id != query.instance_id:
        return False
    if query.status is not None and instance.status != query.status:
        return False
    if query.name is not None:
        if query.exact_match_name:
            if instance.name != query.name:
                return False
        elif query.name.lower() not in instance.name.lower():
            return False
    return query.enterprise_project_id is None or instance.enterprise_project_id == query.enterprise_project_id


def _check_product(instance: Instance, product: str) -> None:
    family = "5.x" if instances.is_v5(instance) else "4.8.0"
    if not payloads.PRODUCT_RE[family].match(product):
        raise DmsError(400, errors.INVALID_PRODUCT, f"Invalid product_id {product!r} for engine_version {family}.")
