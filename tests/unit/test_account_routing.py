"""A resource whose account cannot be used: Stalled with the reason, or, when it is Ready and the account
is only not read yet (an operator that just started), a quiet retry that writes nothing."""

from __future__ import annotations

import kopf
import pytest

from rocketmq_operator.core.accounts import Refusal
from rocketmq_operator.core.resource import Condition
from rocketmq_operator.wiring import account_handlers

NOT_READ_YET = Refusal(
    "AccountNotReady", "RocketMQAccount team-a: its credentials have not been read yet", transient=True
)
NOT_FOUND = Refusal("AccountNotFound", "RocketMQAccount team-a not found in namespace a")


def ready(status: str) -> list[Condition]:
    return [
        Condition(type=kind, status=value, reason="Available", message="", last_transition_time="2026-01-01T00:00:00Z")
        for kind, value in (("Ready", status), ("Reconciling", "False"), ("Stalled", "False"))
    ]


def body() -> kopf.Body:
    return kopf.Body({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x", "namespace": "a", "uid": "u"}})


class TestARefusal:
    def test_stalls_the_resource_naming_the_reason(self, monkeypatch: pytest.MonkeyPatch) -> None:
        posted: list[str] = []
        monkeypatch.setattr(kopf, "event", lambda *_a, **k: posted.append(k["reason"]))
        patch = kopf.Patch()
        account_handlers.refuse(NOT_FOUND, ready("True"), 3, patch, body())
        assert posted == ["AccountNotFound"]
        written = {c["type"]: c for c in patch["status"]["conditions"]}
        assert written["Stalled"]["status"] == "True" and written["Stalled"]["reason"] == "AccountNotFound"
        assert written["Ready"]["status"] == "False"
        assert patch["status"]["observedGeneration"] == 3

    def test_that_is_transient_is_a_quiet_retry_for_a_ready_resource(self) -> None:
        patch = kopf.Patch()
        with pytest.raises(kopf.TemporaryError) as raised:
            account_handlers.refuse(NOT_READ_YET, ready("True"), 3, patch, body())
        assert raised.value.delay == account_handlers.TRANSIENT_RETRY_SECONDS
        assert not patch, "nothing written: no flip to Stalled and back on a restart"

    def test_that_is_transient_still_says_so_on_a_resource_not_yet_ready(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(kopf, "event", lambda *_a, **_k: None)
        patch = kopf.Patch()
        account_handlers.refuse(NOT_READ_YET, None, 1, patch, body())
        written = {c["type"]: c for c in patch["status"]["conditions"]}
        assert written["Stalled"]["reason"] == "AccountNotReady"

    def test_already_said_writes_nothing_again(self, monkeypatch: pytest.MonkeyPatch) -> None:
        first = kopf.Patch()
        monkeypatch.setattr(kopf, "event", lambda *_a, **_k: None)
        account_handlers.refuse(NOT_FOUND, None, 1, first, body())
        current = [Condition.model_validate(c) for c in first["status"]["conditions"]]
        monkeypatch.setattr(kopf, "event", lambda *_a, **_k: pytest.fail("no second Event"))
        again = kopf.Patch()
        account_handlers.refuse(NOT_FOUND, current, 1, again, body())
        assert not again
