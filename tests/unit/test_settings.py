"""Settings come from DMS_* variables; a bad one stops start-up with its name in the message."""

from __future__ import annotations

import pytest

from rocketmq_operator.core.resource import DeletionPolicy
from rocketmq_operator.core.settings import SettingsError, SweepMode, from_env

BASE = {
    "DMS_ENDPOINT": "https://dms.cn-north-4.myhuaweicloud.com",
    "DMS_PROJECT_ID": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "DMS_ACCESS_KEY": "AKEXAMPLE",
    "DMS_SECRET_KEY": "very-secret-value",
}


def test_defaults_are_the_documented_ones() -> None:
    settings = from_env(BASE)
    assert settings.batch_max_size == 50
    assert settings.sweep_project_wide is SweepMode.OWNED
    assert settings.default_deletion_policy is DeletionPolicy.DELETE
    assert settings.insecure_skip_tls_verify is False


def test_region_alone_gives_the_public_endpoint() -> None:
    env = {k: v for k, v in BASE.items() if k != "DMS_ENDPOINT"} | {"DMS_REGION": "ap-southeast-1"}
    assert from_env(env).endpoint == "https://dms.ap-southeast-1.myhuaweicloud.com"


def test_token_is_enough_without_aksk() -> None:
    env = {k: v for k, v in BASE.items() if k not in ("DMS_ACCESS_KEY", "DMS_SECRET_KEY")} | {"DMS_AUTH_TOKEN": "t"}
    assert from_env(env).auth_token is not None


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"DMS_BATCH_MAX_SIZE": "zero"}, "DMS_BATCH_MAX_SIZE"),
        ({"DMS_BATCH_MAX_SIZE": "0"}, "DMS_BATCH_MAX_SIZE"),
        ({"DMS_BATCH_WINDOW_SECONDS": "-1"}, "DMS_BATCH_WINDOW_SECONDS"),
        ({"DMS_POLL_INTERVAL_SECONDS": "soon"}, "DMS_POLL_INTERVAL_SECONDS"),
        ({"DMS_SWEEP_PROJECT_WIDE": "maybe"}, "DMS_SWEEP_PROJECT_WIDE"),
        ({"DMS_DEFAULT_DELETION_POLICY": "Retain"}, "DMS_DEFAULT_DELETION_POLICY"),
        ({"DMS_ENDPOINT": "dms.example"}, "DMS_ENDPOINT"),
        ({"DMS_PROJECT_ID": "a/b"}, "DMS_PROJECT_ID"),
        ({"DMS_INSECURE_SKIP_TLS_VERIFY": "perhaps"}, "DMS_INSECURE_SKIP_TLS_VERIFY"),
        ({"DMS_BATCH_SIZE": "10"}, "DMS_BATCH_SIZE"),
        ({"DMS_SECRET_KEY": ""}, "DMS_SECRET_KEY"),
    ],
)
def test_a_bad_setting_is_named(override: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        from_env(BASE | override)


def test_missing_credentials_are_explained() -> None:
    env = {k: v for k, v in BASE.items() if k not in ("DMS_ACCESS_KEY", "DMS_SECRET_KEY")}
    with pytest.raises(SettingsError, match="DMS_ACCESS_KEY and DMS_SECRET_KEY, or DMS_AUTH_TOKEN"):
        from_env(env)


def test_unknown_variable_gets_a_suggestion() -> None:
    with pytest.raises(SettingsError, match="did you mean DMS_BATCH_MAX_SIZE"):
        from_env(BASE | {"DMS_BATCH_SIZE": "10"})


def test_secrets_never_appear_in_errors_or_repr() -> None:
    settings = from_env(BASE)
    assert "very-secret-value" not in repr(settings)
    assert "very-secret-value" not in str(settings)
    with pytest.raises(SettingsError) as caught:
        from_env(BASE | {"DMS_SECRET_KEY": "very-secret-value", "DMS_BATCH_MAX_SIZE": "x"})
    assert "very-secret-value" not in str(caught.value)


def test_every_setting_is_documented() -> None:
    from pathlib import Path

    from rocketmq_operator.core.settings import OperatorSettings, env_name

    doc = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text()
    missing = [env_name(f) for f in OperatorSettings.model_fields if f"`{env_name(f)}`" not in doc]
    assert not missing, f"document these in docs/settings.md: {missing}"
