"""Operator settings, read once from the environment and validated at start-up.

Why strict: a typo in a setting must stop the operator with a message naming the variable,
not surface an hour later as a retry storm or, worse, as a sweep that deletes too much.
Every variable is documented in ``docs/settings.md`` (generated check: a test compares them).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from rocketmq_operator.core.resource import DeletionPolicy


class SweepMode(enum.StrEnum):
    OWNED = "false"
    """Delete only failed instances this operator owns (owner tags or a CR's status)."""
    PROJECT_WIDE = "true"
    """Also delete every failed instance of the project with ``all_failure`` (no per-instance results)."""
    REPORT = "report"
    """Owned-only deletion, plus a report of what the project-wide form would delete."""


class ObserveStrategy(enum.StrEnum):
    LIST = "list"
    """One paged list walk per poll interval feeds every CR (the default)."""
    SHOW = "show"
    """One show call per CR per poll interval: the peers' pattern, kept as a measured baseline."""


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


Seconds = Annotated[float, Field(gt=0, le=86400)]


class OperatorSettings(BaseModel):
    """Every knob of the operator. Field names are the environment variables without ``DMS_``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str = Field(description="Base URL of the DMS API, e.g. https://dms.cn-north-4.myhuaweicloud.com")
    region: str = Field(default="", description="Region id, e.g. cn-north-4; informational unless ENDPOINT is unset")
    project_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    security_token: SecretStr | None = None
    auth_token: SecretStr | None = None
    ca_file: str | None = None
    insecure_skip_tls_verify: bool = False
    batch_max_size: int = Field(default=50, ge=1, le=1000)
    batch_window_seconds: Seconds = 1.0
    batch_max_wait_seconds: Seconds = 5.0
    poll_interval_seconds: Seconds = 30.0
    verify_interval_seconds: Seconds = Field(
        default=2.0, description="Min gap between two looks at a deleting instance, and between early list walks"
    )
    delete_confirm_wait_seconds: Annotated[float, Field(ge=0, le=600)] = 20.0
    delete_proof_wait_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=300.0,
        description="How long a pass of a CR whose deletion the cloud accepted waits for the proof",
    )
    observe_strategy: ObserveStrategy = ObserveStrategy.LIST
    sweep_interval_seconds: Seconds = 300.0
    sweep_project_wide: SweepMode = SweepMode.OWNED
    default_deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    cluster_id: str = Field(default="", max_length=200, description="Owner-tag cluster id; default: kube-system uid")
    rate_limit_rps: Annotated[float, Field(gt=0, le=10000)] = 10.0
    rate_limit_burst: Annotated[int, Field(ge=1, le=10000)] = 20
    request_timeout_seconds: Seconds = 30.0
    max_retries: Annotated[int, Field(ge=0, le=20)] = 4
    connection_secrets: bool = Field(
        default=True,
        description="Write the Secrets that spec.connectionSecret asks for (needs Secret permissions)",
    )
    operator_namespace: str = Field(
        default="",
        max_length=63,
        description="Where the Secrets of ClusterRocketMQAccounts are; default: the pod's namespace, else default",
    )
    namespaced_accounts: bool = Field(
        default=True,
        description="Serve RocketMQAccounts (their Secrets are read in the namespaces served; needs Secret get)",
    )

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/[^\s]*)?$", value):
            raise ValueError("must be an http(s) URL such as https://dms.cn-north-4.myhuaweicloud.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _credentials(self) -> OperatorSettings:
        aksk = (self.access_key is not None, self.secret_key is not None)
        if aksk == (True, False):
            raise ValueError("DMS_SECRET_KEY is required with DMS_ACCESS_KEY")
        if aksk == (False, True):
            raise ValueError("DMS_ACCESS_KEY is required with DMS_SECRET_KEY")
        if not any(aksk) and self.auth_token is None:
            raise ValueError("no credentials: set DMS_ACCESS_KEY and DMS_SECRET_KEY, or DMS_AUTH_TOKEN")
        if self.batch_max_wait_seconds < self.batch_window_seconds:
            raise ValueError("DMS_BATCH_MAX_WAIT_SECONDS must be at least DMS_BATCH_WINDOW_SECONDS")
        if self.ca_file and self.insecure_skip_tls_verify:
            raise ValueError("DMS_CA_FILE and DMS_INSECURE_SKIP_TLS_VERIFY contradict each other: set one")
        return self


ENV_PREFIX = "DMS_"
_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def from_env(environ: Mapping[str, str]) -> OperatorSettings:
    """Build settings from ``DMS_*`` variables; raise ``SettingsError`` naming the bad one."""
    known = {env_name(name): name for name in OperatorSettings.model_fields}
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        if key not in known:
            # DMS_-prefixed names that we do not know are most likely typos of ours.
            close = [k for k in known if _similar(k, key)]
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SettingsError(f"{key}: unknown setting{hint}")
        field = known[key]
        value: Any = raw.strip()
        if value == "":
            continue
        annotation = OperatorSettings.model_fields[field].annotation
        if annotation is bool:
            if value.lower() not in _BOOL:
                raise SettingsError(f"{key}: must be true or false, got {raw!r}")
            value = _BOOL[value.lower()]
        values[field] = value
    if "endpoint" not in values and "region" in values:
        values["endpoint"] = f"https://dms.{values['region']}.myhuaweicloud.com"
    try:
        return OperatorSettings(**values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        location = error.get("loc") or ()
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if not location:
            problems.append(message)
            continue
        where = env_name(str(location[0]))
        if error.get("type") == "missing":
            problems.append(f"{where}: is required")
            continue
        # Never echo a secret back: only non-secret inputs are shown.
        secret = where.endswith(("_KEY", "_TOKEN"))
        shown = "" if secret or "input" not in error else f" (got {error['input']!r})"
        problems.append(f"{where}: {message}{shown}")
    return "; ".join(problems)


def _similar(a: str, b: str) -> bool:
    a_parts, b_parts = set(a.split("_")), set(b.split("_"))
    return len(a_parts & b_parts) >= max(2, len(a_parts) - 1)
