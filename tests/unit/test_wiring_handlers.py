"""The kopf wiring's own decisions, checked without an API server."""

from __future__ import annotations

from typing import Any

import pytest

from rocketmq_operator.wiring import handlers

from .builders import make_settings

KUBE_SYSTEM: dict[str, Any] = {"kube-system": [("uid-of-kube-system", None)], "team-a": [("uid-a", "Orphan")]}


class TestTheClusterIdOfTheOwnerTags:
    @pytest.mark.parametrize(
        ("env", "namespaces", "expected"),
        [
            pytest.param({"DMS_CLUSTER_ID": "prod-eu"}, KUBE_SYSTEM, "prod-eu", id="the setting wins"),
            pytest.param({}, KUBE_SYSTEM, "uid-of-kube-system", id="else the uid of kube-system"),
            pytest.param({}, {"team-a": [("uid-a", None)]}, None, id="unknown: kube-system not seen (yet)"),
            pytest.param({}, {}, None, id="unknown: no namespace seen (yet)"),
        ],
    )
    def test_is_the_setting_or_the_kube_system_uid_and_never_made_up(
        self, env: dict[str, str], namespaces: dict[str, Any], expected: str | None
    ) -> None:
        options = handlers.RunOptions(settings=make_settings(**env))
        assert handlers._cluster_id(options, namespaces) == expected
