"""The words the operator writes and compares: enums, each defined once.

Why one module: these strings end up in ``status``, in conditions, in Events and in metrics labels,
and several layers compare them (the batcher hands out a deletion result, the core decides on it,
the status records it). Spelled by hand in each place, a typo is a silent mismatch; as members of
an enum it is an error that mypy and the first test catch. They are ``StrEnum``s, so on the wire
they are the plain strings they always were.
"""

from __future__ import annotations

import enum


class Presence(enum.StrEnum):
    """Whether an observation saw an instance."""

    PRESENT = "Present"
    ABSENT = "Absent"
    """Not listed by a consistent walk, or show answered 404."""
    UNKNOWN = "Unknown"
    """Nothing trustworthy to say: no snapshot yet, a failed or stale one, an inconsistent walk."""


class DeletionResult(enum.StrEnum):
    """What became of one deletion request: ``status.deletion.result`` and the batcher's outcome."""

    ACCEPTED = "Accepted"
    """The cloud answered ``success`` for this id: the deletion was accepted, the instance is not gone yet."""
    FAILED = "Failed"
    """The cloud answered ``failed`` for this id (or accepted, then undid the deletion)."""
    NOT_FOUND = "NotFound"
    """The cloud says the instance does not exist: the deletion counts as done."""
    WRONG_STATE = "WrongState"
    """The cloud refused this id in its current status (DMS.00400026), e.g. it is still CREATING."""
    ERROR = "Error"
    """The whole call failed (throttled, transport, 5xx, malformed ...); the outcome's error says why."""
    NO_RESULT = "NoResult"
    """The call succeeded but its response had no entry for this id."""
    HELD_BACK = "HeldBack"
    """Not sent: the instance is still being created, and the cloud refuses to delete it until it settles."""
    WITH_INSTANCE = "WithInstance"
    """Not sent (a topic or consumer group): its instance is being deleted and takes it along."""


class DeletionTrigger(enum.StrEnum):
    """Why a deletion was asked for: ``status.deletion.trigger``."""

    CR_DELETED = "CRDeleted"
    SWEEP_CREATE_FAILED = "SweepCreateFailed"


class EventType(enum.StrEnum):
    """The two types of Kubernetes Event."""

    NORMAL = "Normal"
    WARNING = "Warning"


class ConditionType(enum.StrEnum):
    """The three condition types that kstatus, Flux and Argo CD read without custom code."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class Reason(enum.StrEnum):
    """Reasons of conditions and Events that the operator names itself.

    Errors bring their own (``CloudError.reason``: ``QuotaExceeded``, ``AuthFailed`` ...), and a
    transitional cloud status its CamelCase form, so a reason on the wire is a ``str``; every fixed
    one is a member here.
    """

    # A live CR, as ``decide`` concludes.
    AVAILABLE = "Available"
    PAUSED = "Paused"
    ADOPTING = "Adopting"
    CREATING = "Creating"
    OBSERVING = "Observing"
    RECREATING = "Recreating"
    CREATE_FAILED = "CreateFailed"
    INSTANCE_MISSING = "InstanceMissing"
    """The cloud proved the instance gone, though neither the operator nor a sweep deleted it."""
    UPDATING = "Updating"
    RESIZING = "Resizing"
    DELETING_FAILED_INSTANCE = "DeletingFailedInstance"
    INSTANCE_RECYCLED = "InstanceRecycled"
    DELETING_OUT_OF_BAND = "DeletingOutOfBand"
    RESIZE_FAILED = "ResizeFailed"
    FROZEN = "Frozen"
    INSTANCE_ERROR = "InstanceError"
    UNKNOWN_STATUS = "UnknownStatus"
    # A live CR, as the reconciler finds while acting.
    THROTTLED = "Throttled"
    CLUSTER_ID_UNKNOWN = "ClusterIdUnknown"
    NAME_CONFLICT = "NameConflict"
    NAME_HELD_BY_DELETING_INSTANCE = "NameHeldByDeletingInstance"
    CREATED = "Created"
    ADOPTED = "Adopted"
    UPDATED = "Updated"
    UPDATE_DEFERRED = "UpdateDeferred"
    TAGGING_FAILED = "TaggingFailed"
    OWNER_TAGS_RESTORED = "OwnerTagsRestored"
    SWEPT_CREATE_FAILED = "SweptCreateFailed"
    # The connection Secret (spec.connectionSecret).
    SECRET_CONFLICT = "SecretConflict"
    """A Secret of that name exists and is not this CR's: it is never overwritten."""
    CONNECTION_SECRETS_DISABLED = "ConnectionSecretsDisabled"
    """The CR asks for a connection Secret, but the operator runs without DMS_CONNECTION_SECRETS."""
    CONNECTION_SECRET_WRITTEN = "ConnectionSecretWritten"
    CONNECTION_SECRET_DELETED = "ConnectionSecretDeleted"
    CONNECTION_SECRET_FAILED = "ConnectionSecretFailed"
    # A CR being deleted.
    DELETING = "Deleting"
    DELETE_ACCEPTED = "DeleteAccepted"
    DELETE_FAILED = "DeleteFailed"
    DELETE_HELD_BACK = "DeleteHeldBack"
    DELETE_NOT_FOUND = "DeleteNotFound"
    WAITING_FOR_CREATE = "WaitingForCreate"
    UNKNOWN_DELETION_POLICY = "UnknownDeletionPolicy"
    # Topics and consumer groups.
    INSTANCE_NOT_READY = "InstanceNotReady"
    """The parent RocketMQInstance does not exist yet, or its instance is not RUNNING."""
    INSTANCE_DELETING = "InstanceDeleting"
    FIELD_NOT_SUPPORTED = "FieldNotSupported"
    """A spec field the parent instance's engine version does not have."""
    ALREADY_EXISTS = "AlreadyExists"
    """The cloud has an object of this name that is not this resource's (and ``spec.adopt`` is off)."""
    RECREATED_AFTER_DRIFT = "RecreatedAfterDrift"
    DELETING_WITH_INSTANCE = "DeletingWithInstance"
    """No call of its own: its instance is being deleted and takes it along."""
    DELETED_WITH_INSTANCE = "DeletedWithInstance"
    # ACL users.
    SECRET_KEY_UNAVAILABLE = "SecretKeyUnavailable"
    """The Secret that holds a user's key is missing, lacks the key, or cannot be read or written."""
    SECRET_KEY_ROTATED = "SecretKeyRotated"
    SECRET_KEY_GENERATED = "SecretKeyGenerated"
    # Why the finalizer came off.
    DELETED = "Deleted"
    RECYCLED = "Recycled"
    ORPHANED = "Orphaned"
    NOTHING_TO_DELETE = "NothingToDelete"
