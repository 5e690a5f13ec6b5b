"""Runtime configuration of the fake cloud: timings, limits and the documented-ambiguity switches.

One dataclass is the single source of truth for every knob; the CLI flags, ``GET/PUT /_sim/config``
and the in-process constructor all go through it, and ``update`` validates a partial JSON object so
a typo in a test's config call fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

UNKNOWN_BATCH_ID_MODES: Final = ("failed", "success", "omit", "error")
UNDELETABLE_BATCH_ID_MODES: Final = ("failed", "error")


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a number, got {value!r}")
    return float(value)


def _non_negative(key: str, value: Any) -> float:
    number = _number(key, value)
    if number < 0:
        raise ValueError(f"{key} must be >= 0, got {value!r}")
    return number


def _positive(key: str, value: Any) -> float:
    number = _number(key, value)
    if number <= 0:
        raise ValueError(f"{key} must be > 0, got {value!r}")
    return number


def _share(key: str, value: Any) -> float:
    number = _number(key, value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{key} must be between 0 and 1, got {value!r}")
    return number


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    return value


def _optional(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    def optional(key: str, value: Any) -> Any:
        return None if value is None else check(key, value)

    return optional


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value


def _str_list(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key} must be a list of strings, got {value!r}")
    return list(value)


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def choice(key: str, value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{key} must be one of {', '.join(choices)}; got {value!r}")
        return str(value)

    return choice


def _int_choice(*choices: int) -> Callable[[str, Any], int]:
    def choice(key: str, value: Any) -> int:
        if isinstance(value, bool) or value not in choices:
            raise ValueError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
        return int(value)

    return choice


def _optional_int(key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer or null, got {value!r}")
    return value


_CHECKS: Final[dict[str, Callable[[str, Any], Any]]] = {
    "create_seconds": _non_negative,
    "delete_seconds": _non_negative,
    "extend_seconds": _non_negative,
    "restart_seconds": _non_negative,
    "create_fail_share": _share,
    "create_fail_names": _str_list,
    "batch_max_size": _optional(_positive_int),
    "rate_limit_rps": _optional(_positive),
    "rate_limit_burst": _optional(_positive_int),
    "recycle_bin_enabled": _bool,
    "recycle_retention_days": _positive,
    "quota": _positive_int,
    "strict": _bool,
    "unknown_batch_ids": _choice(*UNKNOWN_BATCH_ID_MODES),
    "undeletable_batch_ids": _choice(*UNDELETABLE_BATCH_ID_MODES),
    "restart_nodes_as_objects": _bool,
    "seed": _optional_int,
    "max_clock_skew_seconds": _positive,
    "list_shows_deleting": _bool,
    "topic_delete_seconds": _non_negative,
    "group_delete_seconds": _non_negative,
    "topic_quota": _positive_int,
    "group_quota": _positive_int,
    "user_quota": _positive_int,
    "users_require_acl": _bool,
    "user_secret_in_show": _bool,
    "user_not_found_status": _int_choice(400, 404),
}


@dataclass
class SimulatorConfig:
    """Every knob; the defaults suit a human poking at it with curl, tests pass sub-second timings."""

    create_seconds: float = 3.0
    delete_seconds: float = 2.0
    extend_seconds: float = 3.0
    restart_seconds: float = 2.0
    create_fail_share: float = 0.0
    create_fail_names: list[str] = field(default_factory=list)
    batch_max_size: int | None = None
    """Maximum ids in one batch action call; ``None`` = unlimited (the API documents no maximum)."""
    rate_limit_rps: float | None = None
    """Requests per second per access key (token bucket); ``None`` = no throttling."""
    rate_limit_burst: int | None = None
    """Bucket size; ``None`` = the rate rounded up (at least 1)."""
    recycle_bin_enabled: bool = False
    """Default recycle policy of every project until it PUTs its own (``/v2/{project_id}/recycle``)."""
    recycle_retention_days: float = 1.0
    quota: int = 100
    """Maximum instances per project (binned instances do not count)."""
    strict: bool = True
    """True: only the SDK's spellings are accepted (``all_failure``; list needs ``engine``).
    False (lenient): also the seed page's camelCase ``allFailure``, and list defaults ``engine``."""
    unknown_batch_ids: str = "failed"
    """Ids in a batch call that do not exist: ``failed`` item, ``success`` item, ``omit`` the item,
    or ``error`` (the whole call answers 404 DMS.00404022)."""
    undeletable_batch_ids: str = "failed"
    """Ids in a state that cannot be deleted (e.g. CREATING): ``failed`` item, or ``error`` (the whole
    call answers 400 DMS.00400026)."""
    restart_nodes_as_objects: bool = False
    """Restart answers ``nodes`` as ``[{"name": ...}]`` (one DOC example) instead of the SDK's strings."""
    seed: int | None = None
    """Seed for the random choices (create failures, fault rates); ``None`` = unpredictable."""
    max_clock_skew_seconds: float = 900.0
    """How far ``X-Sdk-Date`` may be from the simulator's real time (the gateway allows 15 minutes)."""
    list_shows_deleting: bool = False
    """For comparison only: list DELETING instances too. The real cloud's list drops an instance as
    soon as its deletion starts (docs/simulator.md, "How a deletion shows"); this restores the
    simulator's old, kinder view so a test can show what a client would have missed."""
    topic_delete_seconds: float = 1.0
    """How long after a topic batch delete is accepted the topics are gone (0 = at once)."""
    group_delete_seconds: float = 1.0
    """The same for a consumer group batch delete."""
    topic_quota: int = 4000
    """Topics per instance (the list's ``max``); the user guide's per-broker limit for 4.8.0."""
    group_quota: int = 4000
    """Consumer groups per instance (the list's ``max``)."""
    user_quota: int = 200
    """ACL users per instance (*simulator choice*: no limit is documented)."""
    users_require_acl: bool = True
    """Creating or updating a user needs ``enable_acl`` on the instance (the user guide's prerequisite);
    false lets users be managed on any instance."""
    user_secret_in_show: bool = True
    """Show answers the user's ``secret_key``, as the real cloud does (TF reads it back and its
    acceptance test checks it); false leaves it out, to prove a client never depends on reading it."""
    user_not_found_status: int = 400
    """HTTP status of an unknown user (code ``DMS.00500972`` either way): the real cloud answers 400
    (TF converts exactly that 400 into "deleted"); 404 for clients that expect one."""

    def __post_init__(self) -> None:
        # Validate constructor arguments the same way as admin updates.
        self.update(self.to_json())

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def update(self, partial: Mapping[str, Any]) -> None:
        """Apply a partial update atomically: nothing changes unless every key is valid."""
        unknown = sorted(set(partial) - set(self.keys()))
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}; known: {', '.join(self.keys())}")
        checked = {key: _CHECKS[key](key, value) for key, value in partial.items()}
        for key, value in checked.items():
            setattr(self, key, value)

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.keys()}

    @property
    def effective_burst(self) -> int:
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, math.ceil(self.rate_limit_rps or 1))
