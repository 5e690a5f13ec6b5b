"""The RocketMQUser custom resource (short ``rmqu``): an ACL user of a RocketMQInstance's cloud instance.

Like topics and groups it names a ``RocketMQInstance`` of its own namespace (``spec.instanceRef``) and
is created once that instance runs. Its secret key is never in the spec or the status: it comes from a
Secret, either one the user points at (``spec.secretKeyRef``) or one the operator generates and owns
(``spec.generateSecretKey``). ``status.secretKeyVersion`` records which version of that Secret
(``uid/resourceVersion``, never anything derived from the key) the cloud has last been given, so a
change of the Secret reaches the cloud as an update of the same user within a poll interval.

Also here, pure: the request a spec makes (``create_request``, ``update_request``), the key generator
and the cloud's key rule (``key_problem``), the body of the Secret the operator generates, and what the
user's connection Secret (``spec.connectionSecret``) holds and how it is hashed (``connection_data``,
``connection_digest``: the hash covers the key's Secret version, never the key).
"""

from __future__ import annotations

import base64
import secrets
import string
from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr

from rocketmq_operator.core import cloud, connection
from rocketmq_operator.core.child_resource import ChildStatus, InstanceRef, _Child
from rocketmq_operator.core.connection import MANAGED_BY, MANAGED_BY_LABEL, SecretOwner, label_value
from rocketmq_operator.core.resource import (
    GROUP,
    READ_BACK,
    VERSION,
    CamelModel,
    ConnectionSecretRef,
    ConnectionSecretStatus,
    DeletionPolicy,
    cel,
    immutable,
)

USER_KIND = "RocketMQUser"
USER_PLURAL = "rocketmqusers"
USER_SHORT_NAMES = ("rmqu",)

ACCESS_KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{6,63}$"
"""The cloud's access key rule: 7-64 characters, a letter first, then letters, digits, ``-``, ``_``."""
GENERATED_KEY = "secretKey"
"""The key of the Secret the operator generates (``spec.generateSecretKey``)."""
USER_LABEL = f"{GROUP}/user"
"""On a generated Secret: the name of the RocketMQUser it belongs to."""

SECRET_MIN, SECRET_MAX = 8, 32
SPECIALS = "`~!@#$%^&*()-_=+\\|[{}];:'\",<.>/?"
"""The special characters the SDK and Terraform docs allow in a secret key."""
GENERATED_LENGTH = 32
_GENERATED_SPECIALS = "-_=+.@#%"
"""The specials the generator uses: allowed by the cloud and harmless in a shell or a URL."""

Perm = Literal["PUB", "SUB", "PUB|SUB", "DENY"]


class SecretKeyRef(CamelModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=253, description="A Secret in the same namespace.")
    key: str = Field(default=GENERATED_KEY, min_length=1, max_length=253, description="Its key holding the secret key.")


class GenerateSecretKey(CamelModel):
    model_config = ConfigDict(frozen=True)

    secret_name: str = Field(
        min_length=1,
        max_length=253,
        description="The Secret (same namespace) the operator creates and owns, with the generated key under "
        "'secretKey' (32 characters, at least three character classes). An existing Secret of this name "
        "that is not this resource's is left alone (Stalled). Deleting the Secret generates a new key.",
    )


class PermEntry(CamelModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9%|_-]{3,64}$", description="A topic or consumer group name.")
    perm: Perm


class RocketMQUserSpec(CamelModel):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.secretKeyRef) != has(self.generateSecretKey)",
                    "exactly one of spec.secretKeyRef and spec.generateSecretKey must be set",
                ),
                cel(
                    "!has(self.connectionSecret)"
                    " || ((!has(self.secretKeyRef) || self.connectionSecret.name != self.secretKeyRef.name)"
                    " && (!has(self.generateSecretKey)"
                    " || self.connectionSecret.name != self.generateSecretKey.secretName))",
                    "spec.connectionSecret.name must differ from the Secret holding the key "
                    "(spec.secretKeyRef.name or spec.generateSecretKey.secretName)",
                    field_path=".connectionSecret.name",
                ),
            ]
        },
    )

    instance_ref: InstanceRef = Field(
        description="The RocketMQInstance (same namespace) whose cloud instance holds the user (immutable). "
        "The instance needs ACL enabled (spec.enableAcl).",
        json_schema_extra={"x-kubernetes-validations": [cel("self == oldSelf", "spec.instanceRef is immutable")]},
    )
    access_key: str = Field(
        pattern=ACCESS_KEY_PATTERN,
        description="The user's name, its access key (immutable): 7-64 characters, a letter first, then "
        "letters, digits, - and _.",
        json_schema_extra=immutable("accessKey"),
    )
    secret_key_ref: SecretKeyRef | None = Field(
        default=None,
        description="Where the secret key is: a Secret of this namespace and its key. A change of the Secret's "
        "value rotates the key in the cloud within a poll interval (same user). The cloud's rule: 8-32 "
        "characters, at least three of lowercase, uppercase, digits and specials, not the access key "
        "forwards or backwards.",
    )
    generate_secret_key: GenerateSecretKey | None = Field(
        default=None, description="Let the operator generate the key into a Secret it owns."
    )
    connection_secret: ConnectionSecretRef | None = Field(
        default=None,
        description="A Secret the operator writes for apps (envFrom): the user's ROCKETMQ_ACCESS_KEY and "
        "ROCKETMQ_SECRET_KEY with the instance's endpoint keys (those of its own spec.connectionSecret). Written "
        "once the cloud holds the key, kept current when the key rotates or the endpoints change; owned by this "
        "resource (it goes with it); a Secret of the name that is not this resource's is never overwritten "
        "(Stalled, SecretConflict). Renaming or removing the field removes the old Secret.",
    )
    admin: bool = Field(default=False, description="An admin user may do anything on every topic and group.")
    default_topic_perm: Perm = Field(default="DENY", description="Permission on topics not in topicPerms.")
    default_group_perm: Perm = Field(default="DENY", description="Permission on groups not in groupPerms.")
    topic_perms: list[PermEntry] = Field(
        default_factory=list,
        max_length=500,
        description="Per-topic permissions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    group_perms: list[PermEntry] = Field(
        default_factory=list,
        max_length=500,
        description="Per-consumer-group permissions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    white_remote_address: str = Field(
        default="", max_length=1024, description="Allowed client addresses (the cloud's syntax); empty: any."
    )
    adopt: bool = Field(
        default=False,
        description="Take over an existing user of this access key (its key is then set from the Secret); "
        "without it, an existing one is refused (Stalled, reason AlreadyExists) and left alone.",
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE,
        description="Delete the user with the CR (Delete) or leave it (Orphan). Deleting the instance "
        "deletes its users whatever this says.",
    )

    @property
    def secret_name(self) -> str:
        if self.secret_key_ref is not None:
            return self.secret_key_ref.name
        assert self.generate_secret_key is not None  # the CRD requires one of the two
        return self.generate_secret_key.secret_name

    @property
    def secret_key_name(self) -> str:
        return self.secret_key_ref.key if self.secret_key_ref is not None else GENERATED_KEY


class RocketMQUserStatus(ChildStatus):
    secret_key_version: str | None = Field(
        default=None,
        description="uid/resourceVersion of the Secret whose key the cloud was last given (never the key).",
    )
    connection_secret: ConnectionSecretStatus | None = None
    admin: bool | None = None
    default_topic_perm: str | None = None
    default_group_perm: str | None = None


class RocketMQUser(_Child):
    spec: RocketMQUserSpec
    status: RocketMQUserStatus = Field(default_factory=RocketMQUserStatus)

    @classmethod
    def from_body(cls, body: Any) -> RocketMQUser:
        return cls.model_validate(body, context={READ_BACK: True})

    @property
    def cloud_name(self) -> str:
        return self.spec.access_key


# --- requests -------------------------------------------------------------------------------


def _perms(entries: list[PermEntry]) -> list[cloud.UserPermEntry]:
    return [cloud.UserPermEntry(name=e.name, perm=e.perm) for e in entries]


def create_request(spec: RocketMQUserSpec, key: SecretStr) -> cloud.CreateUserRequest:
    """Every field, so the cloud holds exactly the spec (its defaults are the spec's)."""
    return cloud.CreateUserRequest(
        access_key=spec.access_key,
        secret_key=key,
        admin=spec.admin,
        white_remote_address=spec.white_remote_address,
        default_topic_perm=spec.default_topic_perm,
        default_group_perm=spec.default_group_perm,
        topic_perms=_perms(spec.topic_perms),
        group_perms=_perms(spec.group_perms),
    )


def _perm_set(entries: list[cloud.UserPermView] | list[PermEntry]) -> set[tuple[str, str]]:
    return {(e.name, e.perm) for e in entries}


def update_request(
    spec: RocketMQUserSpec, view: cloud.UserView, key: SecretStr | None
) -> cloud.UpdateUserRequest | None:
    """What to send so the cloud matches the spec (and, with ``key``, holds that key), or None."""
    changes: dict[str, Any] = {}
    if bool(view.admin) != spec.admin:
        changes["admin"] = spec.admin
    if (view.white_remote_address or "") != spec.white_remote_address:
        changes["white_remote_address"] = spec.white_remote_address
    if view.default_topic_perm != spec.default_topic_perm:
        changes["default_topic_perm"] = spec.default_topic_perm
    if view.default_group_perm != spec.default_group_perm:
        changes["default_group_perm"] = spec.default_group_perm
    if _perm_set(view.topic_perms) != _perm_set(spec.topic_perms):
        changes["topic_perms"] = _perms(spec.topic_perms)
    if _perm_set(view.group_perms) != _perm_set(spec.group_perms):
        changes["group_perms"] = _perms(spec.group_perms)
    if key is not None:
        changes["secret_key"] = key
    return cloud.UpdateUserRequest(**changes) if changes else None


def observed(view: cloud.UserView) -> RocketMQUserStatus:
    return RocketMQUserStatus(
        admin=view.admin, default_topic_perm=view.default_topic_perm, default_group_perm=view.default_group_perm
    )


# --- the key ----------------------------------------------------------------------------------


def key_problem(key: str, access_key: str) -> str | None:
    """Why the cloud would refuse ``key`` (a sentence that never repeats it), or None."""
    if not SECRET_MIN <= len(key) <= SECRET_MAX:
        return f"must be {SECRET_MIN} to {SECRET_MAX} characters"
    if any(not (c.isascii() and (c.isalnum() or c in SPECIALS)) for c in key):
        return "only letters, digits and the documented special characters"
    classes = (
        any(c.islower() for c in key),
        any(c.isupper() for c in key),
        any(c.isdigit() for c in key),
        any(c in SPECIALS for c in key),
    )
    if sum(classes) < 3:
        return "needs at least three of: lowercase letters, uppercase letters, digits, special characters"
    if key in (access_key, access_key[::-1]):
        return "must not be the access key or the access key spelled backwards"
    return None


def generate_key(access_key: str) -> SecretStr:
    """32 characters from ``secrets``: all four classes present, so it always meets the cloud's rule."""
    pools = (string.ascii_lowercase, string.ascii_uppercase, string.digits, _GENERATED_SPECIALS)
    alphabet = "".join(pools)
    while True:
        chars = [secrets.choice(pool) for pool in pools]
        chars += [secrets.choice(alphabet) for _ in range(GENERATED_LENGTH - len(chars))]
        # Shuffle with the same source, so the class positions are not predictable.
        for i in range(len(chars) - 1, 0, -1):
            j = secrets.randbelow(i + 1)
            chars[i], chars[j] = chars[j], chars[i]
        key = "".join(chars)
        if key_problem(key, access_key) is None:
            return SecretStr(key)


def secret_version(uid: str, resource_version: str) -> str:
    return f"{uid}/{resource_version}"


def generated_secret_body(cr: RocketMQUser, key: SecretStr) -> dict[str, Any]:
    """The Secret the operator generates for ``spec.generateSecretKey``, owned by the CR (the garbage
    collector removes it with the CR). Labelled like connection Secrets, plus the user's name."""
    assert cr.spec.generate_secret_key is not None
    owner = secret_owner(cr)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": cr.spec.generate_secret_key.secret_name,
            "namespace": cr.metadata.namespace,
            "labels": dict(owner.labels),
            "ownerReferences": [connection.owner_reference(owner)],
        },
        "data": {GENERATED_KEY: base64.b64encode(key.get_secret_value().encode()).decode()},
    }


def secret_owner(cr: RocketMQUser, *, instance: str | None = None) -> SecretOwner:
    """The user as the owner of its Secrets: labelled like connection Secrets, plus the user's name (and,
    on its connection Secret, the name of its RocketMQInstance)."""
    labels = {MANAGED_BY_LABEL: MANAGED_BY}
    if instance is not None:
        labels[connection.INSTANCE_LABEL] = label_value(instance)
    labels[USER_LABEL] = label_value(cr.metadata.name)
    return SecretOwner(
        api_version=f"{GROUP}/{VERSION}",
        kind=USER_KIND,
        name=cr.metadata.name,
        namespace=cr.metadata.namespace,
        uid=cr.metadata.uid,
        labels=labels,
    )


# --- the connection Secret ------------------------------------------------------------------------

KEY_VERSION_FIELD = "secretKeyVersion"
"""Stands for the secret key in ``connection_digest``: the version of the Secret the key came from."""


def connection_digest(endpoints: dict[str, str], access_key: str, key_version: str) -> str:
    """The data hash of a user's connection Secret: its endpoints and access key, and for the secret key
    the version of the Secret it came from (``status.secretKeyVersion``), never the key, so telling
    whether the Secret is current needs no read of the key."""
    return connection.data_hash({**endpoints, connection.ACCESS_KEY: access_key, KEY_VERSION_FIELD: key_version})


def connection_data(endpoints: dict[str, str], access_key: str, key: SecretStr) -> dict[str, str | SecretStr]:
    """The keys of a user's connection Secret: the instance's (``core.connection.secret_data``), the
    access key and the secret key (a ``SecretStr`` until the Secret's body is built)."""
    return {**endpoints, connection.ACCESS_KEY: access_key, connection.SECRET_KEY: key}
