"""From kopf's bodies to our models: what a handler's model is given."""

from __future__ import annotations

from typing import Any

import kopf
import pydantic
import pytest

from rocketmq_operator.wiring import bodies


def seen_by_the_model(body: dict[str, Any]) -> dict[str, Any]:
    def keep(data: dict[str, Any]) -> dict[str, Any]:
        return data

    return bodies.parse(keep, kopf.Body(body))  # type: ignore[arg-type]


class TestWhatAModelIsGiven:
    def test_is_the_body_as_plain_data_without_managed_fields(self) -> None:
        body = {
            "metadata": {"name": "a", "labels": {"x": "1"}, "managedFields": [{"manager": "kubectl"}] * 50},
            "spec": {"list": [1, {"k": "v"}]},
            "status": {"conditions": [{"type": "Ready"}]},
        }
        data = seen_by_the_model(body)
        assert data == {
            "metadata": {"name": "a", "labels": {"x": "1"}},
            "spec": {"list": [1, {"k": "v"}]},
            "status": {"conditions": [{"type": "Ready"}]},
        }
        assert type(data["metadata"]["labels"]) is dict and type(data["spec"]["list"]) is list

    def test_a_body_the_model_refuses_fails_the_handler_for_good_naming_the_field(self) -> None:
        class Spec(pydantic.BaseModel):
            size: int

        class Cr(pydantic.BaseModel):
            spec: Spec

        with pytest.raises(kopf.PermanentError, match=r"spec\.size"):
            bodies.parse(Cr.model_validate, kopf.Body({"metadata": {"name": "a"}, "spec": {"size": "big"}}))
