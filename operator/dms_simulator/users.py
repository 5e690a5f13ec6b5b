"""ACL users of an instance: their requests, rules and wire shapes.

The API (SDK 3.1.219 ``CreateUser``, ``ListUser``, ``ShowUser``, ``UpdateUser``, ``DeleteUser``) keeps
them per instance, like topics: every operation first finds a live instance of the caller's project
(404 ``DMS.00404022``), every change needs it RUNNING (400 ``DMS.00400026``) and, as the user guide's
prerequisite says, ACL enabled. A user's secret key is write-mostly: only show answers it (the real
cloud does; config ``user_secret_in_show``), and nothing the simulator records (call log, admin views,
error messages, ``repr``) ever holds it. docs/simulator.md ("ACL users") gives the sources and the
choices made where they are silent.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dms_simulator import children, errors, payloads
from dms_simulator.child_models import Perm, User
from dms_simulator.children import Children
from dms_simulator.clock import Clock
from dms_simulator.config import SimulatorConfig
from dms_simulator.errors import DmsError, invalid_parameter
from dms_simulator.instances import Instance

ACCESS_KEY_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{6,63}$")
"""7-64 characters, starts with a letter; letters, digits, ``-``, ``_`` (SDK ``User``, TF docs)."""
SECRET_MIN, SECRET_MAX = 8, 32
SPECIALS: Final = frozenset("`~!@#$%^&*()-_=+\\|[{}];:'\",<.>/?")
"""The special characters the SDK and TF docs list for a secret key."""
TOPIC_PERMS: Final = ("PUB", "SUB", "PUB|SUB", "DENY")
GROUP_PERMS: Final = ("PUB", "SUB", "PUB|SUB", "DENY")
"""The SDK says SUB or DENY for groups; TF documents all four and its acceptance test creates a user
with ``default_group_perm = "PUB"``, so the cloud accepts them."""
LIST_LIMIT_MAX: Final = 50

USER_NOT_FOUND: Final = "DMS.00500972"
"""TF (RocketMQ and RabbitMQ user resources): the cloud answers an unknown user with 400 and this
code, which the provider turns into "deleted"."""
# --- simulator choices (no documented code) ---
ACL_DISABLED: Final = "DMS.00400970"


def not_found(name: str, status: int) -> DmsError:
    return DmsError(status, USER_NOT_FOUND, f"The user does not exist: {name}")


def check_access_key(name: str) -> None:
    if not ACCESS_KEY_RE.match(name):
        raise invalid_parameter(
            "access_key",
            f"{name!r}: 7 to 64 characters, starting with a letter; only letters, digits, hyphens (-) "
            "and underscores (_)",
        )


def check_secret_key(secret: str, access_key: str) -> None:
    """The SDK's rule. The messages never repeat the key."""
    if not SECRET_MIN <= len(secret) <= SECRET_MAX:
        raise invalid_parameter("secret_key", f"must be {SECRET_MIN} to {SECRET_MAX} characters")
    if any(not (c.isascii() and (c.isalnum() or c in SPECIALS)) for c in secret):
        raise invalid_parameter("secret_key", "only letters, digits and the documented special characters")
    classes = (
        any(c.islower() for c in secret),
        any(c.isupper() for c in secret),
        any(c.isdigit() for c in secret),
        any(c in SPECIALS for c in secret),
    )
    if sum(classes) < 3:
        raise invalid_parameter(
            "secret_key", "needs at least three of: lowercase letters, uppercase letters, digits, special characters"
        )
    if secret in (access_key, access_key[::-1]):
        raise invalid_parameter("secret_key", "must not be the access_key or the access_key spelled backwards")


def _choice(body: Mapping[str, Any], key: str, choices: Sequence[str]) -> str | None:
    value = payloads.opt_str(body, key)
    if value is not None and value not in choices:
        raise invalid_parameter(key, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _perms(body: Mapping[str, Any], key: str, choices: Sequence[str]) -> list[Perm] | None:
    raw = body.get(key)
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise invalid_parameter(key, "must be a list of {name, perm} objects")
    perms: list[Perm] = []
    for item in raw:
        entry = payloads.require_object(item, f"{key}[]")
        name = payloads.opt_str(entry, "name")
        if name is None:
            raise invalid_parameter(f"{key}[].name", "is required")
        children.check_name(name, f"{key}[].name")
        perm = entry.get("perm")
        if perm is None:
            raise invalid_parameter(f"{key}[].perm", "is required")
        if perm not in choices:
            raise invalid_parameter(f"{key}[].perm", f"must be one of {', '.join(choices)}, got {perm!r}")
        perms.append(Perm(name, perm))
    names = [p.name for p in perms]
    if len(set(names)) != len(names):
        raise invalid_parameter(key, "names a topic or group more than once")
    return perms


# --- requests ---


@dataclass(frozen=True)
class UserFields:
    """The settable fields of a user; ``None`` = not sent (an update keeps the current value)."""

    secret_key: str | None = None
    white_remote_address: str | None = None
    admin: bool | None = None
    default_topic_perm: str | None = None
    default_group_perm: str | None = None
    topic_perms: list[Perm] | None = None
    group_perms: list[Perm] | None = None

    def __repr__(self) -> str:  # never show the secret key
        shown = {k: v for k, v in vars(self).items() if k != "secret_key" and v is not None}
        return f"UserFields({shown}, secret_key={'<set>' if self.secret_key else None})"


def _fields(data: Mapping[str, Any], access_key: str, secret: str | None) -> UserFields:
    if secret:
        check_secret_key(secret, access_key)
    return UserFields(
        secret_key=secret or None,
        white_remote_address=payloads.opt_str(data, "white_remote_address"),
        admin=payloads.opt_bool(data, "admin"),
        default_topic_perm=_choice(data, "default_topic_perm", TOPIC_PERMS),
        default_group_perm=_choice(data, "default_group_perm", GROUP_PERMS),
        topic_perms=_perms(data, "topic_perms", TOPIC_PERMS),
        group_perms=_perms(data, "group_perms", GROUP_PERMS),
    )


def claimed_name(body: Any) -> str | None:
    """The ``access_key`` a create asked for, if it is a string (for the call log, even if refused)."""
    if isinstance(body, dict) and isinstance(body.get("access_key"), str):
        return str(body["access_key"])
    return None


def parse_create(body: Any) -> tuple[str, UserFields]:
    """CreateUser: ``access_key`` and ``secret_key`` are required (TF: both Required)."""
    data = payloads.require_object(body)
    access_key = payloads.req_str(data, "access_key")
    check_access_key(access_key)
    secret = payloads.req_str(data, "secret_key")
    return access_key, _fields(data, access_key, secret)


def parse_update(body: Any, name: str) -> UserFields:
    """UpdateUser: every field optional; an empty or absent ``secret_key`` keeps the key (SDK)."""
    data = payloads.require_object(body)
    access_key = payloads.opt_str(data, "access_key")
    if access_key and access_key != name:
        raise invalid_parameter("access_key", f"a user's name cannot be changed ({name!r} in the path)")
    return _fields(data, name, payloads.opt_str(data, "secret_key"))


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int


def parse_page(query: Mapping[str, str]) -> Page:
    return Page(
        offset=payloads.query_int(query, "offset", 0, 0),
        limit=payloads.query_int(query, "limit", 10, 1, LIST_LIMIT_MAX),
    )


# --- wire shapes ---


def render_perms(perms: Sequence[Perm]) -> list[dict[str, str]]:
    return [{"name": p.name, "perm": p.perm} for p in perms]


def render_user(user: User, *, with_secret: bool = False) -> dict[str, Any]:
    """SDK ``UserResp`` / ``ShowUserResponse``; ``secret_key`` only when ``with_secret`` (show)."""
    shape: dict[str, Any] = {"access_key": user.access_key}
    if with_secret:
        shape["secret_key"] = user.secret_key
    shape.update(
        {
            "white_remote_address": user.white_remote_address,
            "admin": user.admin,
            "default_topic_perm": user.default_topic_perm,
            "default_group_perm": user.default_group_perm,
            "topic_perms": render_perms(user.topic_perms),
            "group_perms": render_perms(user.group_perms),
        }
    )
    return shape


def render_admin(user: User) -> dict[str, Any]:
    """What an admin view shows: the list shape (never the key) plus ``key_version`` and ``created``."""
    return render_user(user) | {"key_version": user.key_version, "created": user.created}


# --- the rules ---


class Users:
    """User operations on the instances the ``Store`` keeps (found through ``Children``)."""

    def __init__(self, children_: Children, config: SimulatorConfig, clock: Clock) -> None:
        self._children = children_
        self._config = config
        self._clock = clock

    def _changeable(self, project_id: str, instance_id: str, change: str) -> Instance:
        instance = self._children.instance(project_id, instance_id, change=change)
        if self._config.users_require_acl and not instance.enable_acl:
            raise DmsError(
                400,
                ACL_DISABLED,
                f"ACL is not enabled for instance {instance_id}; enable it before managing users ({change}).",
            )
        return instance

    def _user(self, instance: Instance, name: str) -> User:
        user = instance.users.get(name)
        if user is None:
            raise not_found(name, self._config.user_not_found_status)
        return user

    def listing(self, project_id: str, instance_id: str, page: Page) -> dict[str, Any]:
        """ListUser: ``{users, total}``, oldest first; an offset past the end is an empty page (TF's
        users data source pages until it gets one)."""
        instance = self._children.instance(project_id, instance_id)
        users = sorted(instance.users.values(), key=lambda u: u.created)
        chunk = users[page.offset : page.offset + page.limit]
        return {"users": [render_user(u) for u in chunk], "total": len(users)}

    def show(self, project_id: str, instance_id: str, name: str) -> dict[str, Any]:
        instance = self._children.instance(project_id, instance_id)
        return render_user(self._user(instance, name), with_secret=self._config.user_secret_in_show)

    def create(self, project_id: str, instance_id: str, access_key: str, fields: UserFields) -> User:
        instance = self._changeable(project_id, instance_id, "create user")
        if access_key in instance.users:
            raise DmsError(400, errors.NAME_EXISTS, f"The user name already exists: {access_key}")
        if len(instance.users) >= self._config.user_quota:
            raise DmsError(
                400, errors.QUOTA_EXCEEDED, f"The user quota of this instance ({self._config.user_quota}) is used up."
            )
        assert fields.secret_key is not None  # parse_create requires it
        user = User(access_key=access_key, created=self._clock.now(), secret_key=fields.secret_key)
        _apply(user, fields)
        instance.users[access_key] = user
        return user

    def update(self, project_id: str, instance_id: str, name: str, fields: UserFields) -> User:
        instance = self._changeable(project_id, instance_id, "update user")
        user = self._user(instance, name)
        if fields.secret_key is not None and fields.secret_key != user.secret_key:
            user.secret_key = fields.secret_key
            user.key_version += 1
        _apply(user, fields)
        return user

    def delete(self, project_id: str, instance_id: str, name: str) -> None:
        """DeleteUser: gone at once. ACL need not be on (a user left from before ACL was turned off
        can still be removed)."""
        instance = self._children.instance(project_id, instance_id, change="delete user")
        self._user(instance, name)
        del instance.users[name]


def _apply(user: User, fields: UserFields) -> None:
    if fields.white_remote_address is not None:
        user.white_remote_address = fields.white_remote_address
    if fields.admin is not None:
        user.admin = fields.admin
    if fields.default_topic_perm is not None:
        user.default_topic_perm = fields.default_topic_perm
    if fields.default_group_perm is not None:
        user.default_group_perm = fields.default_group_perm
    if fields.topic_perms is not None:
        user.topic_perms = list(fields.topic_perms)
    if fields.group_perms is not None:
        user.group_perms = list(fields.group_perms)


def key_matches(user: User, secret: str) -> bool:
    """For the admin ``check-key`` call: compared in constant time, answered as a bool only."""
    return hmac.compare_digest(user.secret_key.encode(), secret.encode())
