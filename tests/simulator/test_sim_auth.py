"""Authentication as Huawei's gateway does it: AK/SK signatures recomputed from what arrived, IAM
tokens, a 15-minute clock window, and projects that never see each other's instances."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sim_kit
from sim_kit import AK, AK2, PID, PID2, SK, SK2, TOKEN, Api, error_of

from dms_simulator import signing


@pytest.fixture(autouse=True)
async def still_serving(api: Api) -> AsyncIterator[None]:
    """Whatever a test sent, the server answers the next request."""
    yield
    assert await api.healthy()


async def test_a_correctly_signed_request_is_served(api: Api) -> None:
    response = await api.list_instances()
    assert response.status_code == 200
    assert response.json() == {"instances": [], "instance_num": 0}


async def test_a_wrong_secret_key_is_rejected_with_apigw_0301(api: Api) -> None:
    response = await api.call(
        "GET", f"/v2/{PID}/instances", params={"engine": "reliability"}, account=(AK, "wrong-secret")
    )
    assert error_of(response) == (401, "APIGW.0301")
    assert "signature does not match" in response.json()["error_msg"]


async def test_an_unknown_access_key_is_rejected(api: Api) -> None:
    response = await api.call("GET", f"/v2/{PID}/instances", account=("NO-SUCH-AK", SK))
    assert error_of(response) == (401, "APIGW.0301")
    assert "NO-SUCH-AK" in response.json()["error_msg"]


def _sdk_date(offset: timedelta) -> str:
    return signing.format_sdk_date(datetime.now(UTC) + offset)


@pytest.mark.parametrize("offset", [timedelta(minutes=16), timedelta(minutes=-16)], ids=["ahead", "behind"])
async def test_a_date_more_than_15_minutes_off_is_rejected(api: Api, offset: timedelta) -> None:
    response = await api.call("GET", f"/v2/{PID}/instances?engine=reliability", sdk_date=_sdk_date(offset))
    assert error_of(response) == (401, "APIGW.0301")
    assert "away from the server time" in response.json()["error_msg"]


async def test_a_date_within_15_minutes_is_accepted(api: Api) -> None:
    response = await api.call(
        "GET", f"/v2/{PID}/instances?engine=reliability", sdk_date=_sdk_date(timedelta(minutes=-14))
    )
    assert response.status_code == 200


async def test_changing_a_signed_request_in_flight_is_detected(api: Api) -> None:
    url = f"{api.base_url}/v2/{PID}/instances/action"
    body = b'{"action":"delete","instances":["a"]}'
    headers = signing.sign_request(
        method="POST",
        url=url,
        headers={"Content-Type": "application/json", "X-Project-Id": PID},
        body=body,
        access_key=AK,
        secret_key=SK,
    )
    tampered_body = await api.http.post(url, content=b'{"action":"delete","instances":["b"]}', headers=headers)
    tampered_header = await api.http.post(url, content=body, headers={**headers, "X-Project-Id": PID + "0"})
    missing_header = await api.http.post(
        url, content=body, headers={k: v for k, v in headers.items() if k != "X-Project-Id"}
    )
    assert error_of(tampered_body) == (401, "APIGW.0301")
    assert error_of(tampered_header)[0] == 401
    assert error_of(missing_header) == (401, "APIGW.0301")
    assert "x-project-id" in missing_header.json()["error_msg"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature=00"},
    ],
    ids=["no-credentials", "wrong-scheme", "no-date"],
)
async def test_missing_or_malformed_credentials_are_rejected(api: Api, headers: dict[str, str]) -> None:
    response = await api.http.get(f"{api.base_url}/v2/{PID}/instances?engine=reliability", headers=headers)
    assert error_of(response) == (401, "APIGW.0301")


async def test_query_order_and_encoded_characters_do_not_matter_to_the_signature(api: Api) -> None:
    response = await api.call(
        "GET",
        f"/v2/{PID}/instances?status=RUNNING&name=my%20inst%2B1%2Fx~y&engine=reliability&exact_match_name=true",
    )
    assert response.status_code == 200


async def test_a_non_json_body_is_signed_as_unsigned_payload(api: Api) -> None:
    response = await api.call(
        "POST",
        f"/v2/{PID}/instances/action",
        content=b"action=delete",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    # Authenticated (X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD), then refused as not JSON.
    assert error_of(response) == (400, "DMS.00400005")


async def test_a_configured_token_authenticates_with_x_auth_token(api: Api) -> None:
    response = await api.call("GET", f"/v2/{PID}/instances?engine=reliability", token=TOKEN)
    assert response.status_code == 200


async def test_an_unknown_token_is_rejected_with_dms_10240101(api: Api) -> None:
    response = await api.call("GET", f"/v2/{PID}/instances?engine=reliability", token="not-a-token")
    assert error_of(response) == (401, "DMS.10240101")


async def test_a_key_cannot_reach_another_projects_path(api: Api) -> None:
    response = await api.call("GET", f"/v2/{PID2}/instances?engine=reliability", account=(AK, SK))
    assert error_of(response) == (401, "DMS.10240104")
    token_response = await api.call("GET", f"/v2/{PID2}/instances?engine=reliability", token=TOKEN)
    assert error_of(token_response) == (401, "DMS.10240104")


async def test_x_project_id_must_match_the_path(api: Api) -> None:
    response = await api.call(
        "GET", f"/v2/{PID}/instances?engine=reliability", headers={"X-Project-Id": PID2}, account=(AK, SK)
    )
    assert error_of(response) == (401, "DMS.10240104")


async def test_projects_never_see_each_others_instances(api: Api) -> None:
    mine = await api.create("rmq-project-one")
    response = await api.call(
        "POST",
        f"/v2/reliability/{PID2}/instances",
        json_body=sim_kit.create_body("rmq-project-two"),
        account=(AK2, SK2),
    )
    theirs = response.json()["instance_id"]

    own_list = (await api.list_instances()).json()["instances"]
    other_list = (await api.call("GET", f"/v2/{PID2}/instances?engine=reliability", account=(AK2, SK2))).json()
    assert [i["instance_id"] for i in own_list] == [mine]
    assert [i["instance_id"] for i in other_list["instances"]] == [theirs]

    # Addressing the other project's instance through one's own project finds nothing.
    assert error_of(await api.show(theirs)) == (404, "DMS.00404022")
    deleted = await api.batch({"action": "delete", "instances": [theirs]})
    assert deleted.json() == {"results": [{"result": "failed", "instance": theirs}]}
    # The same name is free in another project.
    again = await api.call(
        "POST",
        f"/v2/reliability/{PID2}/instances",
        json_body=sim_kit.create_body("rmq-project-one"),
        account=(AK2, SK2),
    )
    assert again.status_code == 200


async def test_every_answer_carries_a_request_id(api: Api, http: httpx.AsyncClient) -> None:
    answers = [
        await api.list_instances(),
        await api.call("GET", f"/v2/{PID}/instances", account=(AK, "wrong")),
        await http.get(api.base_url + "/nowhere"),
        await api.admin("GET", "/health"),
        await api.call("DELETE", f"/v2/{PID}/instances/{await api.create('rmq-req-id')}"),
    ]
    ids = [answer.headers.get("X-Request-Id") for answer in answers]
    assert all(ids) and len(set(ids)) == len(ids)
