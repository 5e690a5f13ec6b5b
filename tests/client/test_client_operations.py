"""Each operation of the port: the SDK's method and path, the exact body, the signed bytes, and
responses read with the cloud's documented quirks (reference section 6)."""

from __future__ import annotations

import json
from typing import Any, Protocol

import httpx
import pytest
from client_kit import (
    AK,
    ENDPOINT,
    IID1,
    IID2,
    PID,
    SK,
    Cloud,
    FakeClock,
    Recorder,
    huawei_sdk_authorization,
    make_client,
    reply,
)

from rocketmq_operator.adapters import dms_client, signing
from rocketmq_operator.adapters.ratelimit import TokenBucket
from rocketmq_operator.core import cloud
from rocketmq_operator.ports import errors, protocol
from rocketmq_operator.ports.protocol import Account

CREATE_REQUEST = cloud.CreateInstanceRequest(
    name="rmq-a",
    engine_version="5.x",
    storage_space=300,
    vpc_id="vpc-1",
    subnet_id="subnet-1",
    security_group_id="sg-1",
    available_zones=["az1"],
    product_id="rocketmq.b2.large.4",
    storage_spec_code="dms.physical.storage.high.v2",
    description="测试",
)


async def _one_call(answer: httpx.Response, call: Any) -> tuple[Any, httpx.Request]:
    cloud_ = Cloud(answers=[answer])
    async with make_client(cloud_) as client:
        result = await call(client)
    assert cloud_.attempts == 1
    return result, cloud_.requests[0]


def _assert_signed_and_json(request: httpx.Request) -> None:
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Project-Id"] == PID
    assert request.headers["Authorization"].startswith(f"SDK-HMAC-SHA256 Access={AK}, ")
    assert request.headers["Authorization"] == huawei_sdk_authorization(request)


class TestPathsAndBodies:
    async def test_create_posts_the_compact_request_to_the_engine_path(self) -> None:
        instance_id, request = await _one_call(
            reply(200, {"instance_id": IID1}), lambda c: c.create_instance(CREATE_REQUEST)
        )

        assert instance_id == IID1
        assert (request.method, request.url.raw_path.decode()) == ("POST", f"/v2/reliability/{PID}/instances")
        assert (
            request.content == json.dumps(CREATE_REQUEST.to_wire(), separators=(",", ":"), ensure_ascii=False).encode()
        )
        assert b" " not in request.content.replace("测试".encode(), b"")
        _assert_signed_and_json(request)

    async def test_show_gets_one_instance(self) -> None:
        view, request = await _one_call(reply(200, {"instance_id": IID1}), lambda c: c.show_instance(IID1))

        assert view.instance_id == IID1
        assert (request.method, request.url.raw_path.decode()) == ("GET", f"/v2/{PID}/instances/{IID1}")
        assert request.content == b""
        _assert_signed_and_json(request)

    async def test_list_sends_every_query_parameter_sorted_as_signed(self) -> None:
        query = cloud.ListQuery(
            name="rmq a+b",
            instance_id=IID1,
            status="RUNNING",
            exact_match_name=True,
            enterprise_project_id="0",
            limit=10,
            offset=20,
        )
        page, request = await _one_call(
            reply(200, {"instances": [{"instance_id": IID1}], "instance_num": 31}),
            lambda c: c.list_instances(query),
        )

        assert page.instance_num == 31
        assert [i.instance_id for i in page.instances] == [IID1]
        assert request.url.raw_path.decode() == (
            f"/v2/{PID}/instances?engine=reliability&enterprise_project_id=0&exact_match_name=true"
            f"&include_failure=true&instance_id={IID1}&limit=10&name=rmq%20a%2Bb&offset=20&status=RUNNING"
        )
        _assert_signed_and_json(request)

    async def test_update_puts_only_the_given_fields(self) -> None:
        result, request = await _one_call(
            reply(204),
            lambda c: c.update_instance(IID1, cloud.UpdateInstanceRequest(description="d", enable_acl=True)),
        )

        assert result is None
        assert (request.method, request.url.raw_path.decode()) == ("PUT", f"/v2/{PID}/instances/{IID1}")
        assert request.content == b'{"description":"d","enable_acl":true}'
        _assert_signed_and_json(request)

    async def test_an_empty_update_is_not_sent(self) -> None:
        cloud_ = Cloud()
        async with make_client(cloud_) as client:
            await client.update_instance(IID1, cloud.UpdateInstanceRequest())

        assert cloud_.attempts == 0

    async def test_delete_one_sends_no_body(self) -> None:
        _, request = await _one_call(reply(204), lambda c: c.delete_instance(IID1))

        assert (request.method, request.url.raw_path.decode()) == ("DELETE", f"/v2/{PID}/instances/{IID1}")
        assert request.content == b""
        _assert_signed_and_json(request)

    async def test_batch_delete_sends_the_ids_and_force_only_when_asked(self) -> None:
        results = {"results": [{"instance": IID1, "result": "success"}, {"instance": IID2, "result": "failed"}]}
        got, request = await _one_call(reply(200, results), lambda c: c.delete_many([IID1, IID2]))
        _, forced = await _one_call(reply(200, results), lambda c: c.delete_many([IID1], force_delete=True))

        assert [(r.instance, r.accepted) for r in got] == [(IID1, True), (IID2, False)]
        assert (request.method, request.url.raw_path.decode()) == ("POST", f"/v2/{PID}/instances/action")
        assert request.content == f'{{"action":"delete","instances":["{IID1}","{IID2}"]}}'.encode()
        assert json.loads(forced.content) == {"action": "delete", "instances": [IID1], "force_delete": True}
        _assert_signed_and_json(request)

    async def test_delete_all_failed_names_the_engine_not_ids(self) -> None:
        _, request = await _one_call(reply(204), lambda c: c.delete_all_failed(force_delete=False))

        assert request.url.raw_path.decode() == f"/v2/{PID}/instances/action"
        assert json.loads(request.content) == {
            "action": "delete",
            "all_failure": "reliability",
            "force_delete": False,
        }
        _assert_signed_and_json(request)

    async def test_resize_posts_to_extend(self) -> None:
        job, request = await _one_call(
            reply(200, {"job_id": "job-1"}),
            lambda c: c.resize_instance(IID1, cloud.ResizeRequest(oper_type="horizontal", new_broker_num=4)),
        )

        assert job.job_id == "job-1"
        assert request.url.raw_path.decode() == f"/v2/reliability/{PID}/instances/{IID1}/extend"
        assert request.content == b'{"oper_type":"horizontal","new_broker_num":4}'
        _assert_signed_and_json(request)

    async def test_restart_has_the_engine_after_the_project_and_no_body(self) -> None:
        restarted, request = await _one_call(
            reply(200, {"instance_id": IID1, "nodes": ["broker-0"], "result": "success"}),
            lambda c: c.restart_instance(IID1),
        )

        assert restarted.nodes == ["broker-0"]
        assert (request.method, request.url.raw_path.decode()) == (
            "POST",
            f"/v2/{PID}/reliability/instances/{IID1}/restart",
        )
        assert request.content == b""
        _assert_signed_and_json(request)

    @pytest.mark.parametrize(("method", "action"), [("create_tags", "create"), ("delete_tags", "delete")])
    async def test_tag_actions(self, method: str, action: str) -> None:
        tags = [cloud.Tag(key="owner", value="ns/name"), cloud.Tag(key="empty")]
        _, request = await _one_call(reply(204), lambda c: getattr(c, method)(IID1, tags))

        assert request.url.raw_path.decode() == f"/v2/{PID}/rocketmq/{IID1}/tags/action"
        assert json.loads(request.content) == {
            "action": action,
            "tags": [{"key": "owner", "value": "ns/name"}, {"key": "empty", "value": ""}],
        }
        _assert_signed_and_json(request)

    async def test_tags_list(self) -> None:
        tags, request = await _one_call(reply(200, {"tags": [{"key": "a", "value": "1"}]}), lambda c: c.list_tags(IID1))

        assert tags == [cloud.Tag(key="a", value="1")]
        assert (request.method, request.url.raw_path.decode()) == ("GET", f"/v2/{PID}/rocketmq/{IID1}/tags")
        _assert_signed_and_json(request)

    async def test_recycle_bin_list_and_restore(self) -> None:
        binned, listing = await _one_call(
            reply(
                200,
                {
                    "retention_days": 3,
                    "default_use_recycle": True,
                    "recycle_instances": [
                        {"instance_id": IID1, "in_recycle_time": 1735787045000, "save_time": 3, "cost_per_hour": 0.5}
                    ],
                },
            ),
            lambda c: c.list_recycle_bin(),
        )
        restored, restore = await _one_call(
            reply(200, {"results": [{"instance_id": IID1, "job_id": "j-9"}]}),
            lambda c: c.restore_from_recycle_bin([IID1]),
        )

        assert binned.recycle_instances[0].in_recycle_time == 1735787045000
        assert (listing.method, listing.url.raw_path.decode()) == ("GET", f"/v2/{PID}/recycle")
        assert restored[0].job_id == "j-9"
        assert (restore.method, json.loads(restore.content)) == ("POST", {"instances": [IID1]})
        _assert_signed_and_json(listing)
        _assert_signed_and_json(restore)


class TestBatchResponses:
    async def test_200_with_results(self) -> None:
        got, _ = await _one_call(
            reply(200, {"results": [{"instance": IID1, "result": "success"}]}), lambda c: c.delete_many([IID1])
        )

        assert [r.instance for r in got] == [IID1]

    @pytest.mark.parametrize("answer", [reply(204), reply(200), reply(200, b"  \n")], ids=["204", "200 empty", "blank"])
    async def test_an_empty_success_means_no_per_instance_results(self, answer: httpx.Response) -> None:
        got, _ = await _one_call(answer, lambda c: c.delete_many([IID1]))

        assert got == []

    async def test_null_results_are_no_results(self) -> None:
        got, _ = await _one_call(reply(200, {"results": None}), lambda c: c.delete_many([IID1]))

        assert got == []

    async def test_delete_all_failed_accepts_200_with_a_body_too(self) -> None:
        result, _ = await _one_call(
            reply(200, {"results": [{"instance": IID1, "result": "success"}]}), lambda c: c.delete_all_failed()
        )

        assert result is None

    async def test_no_ids_means_no_call(self) -> None:
        cloud_ = Cloud()
        async with make_client(cloud_) as client:
            assert await client.delete_many([]) == []

        assert cloud_.attempts == 0


class TestQuirkyResponses:
    async def test_show_tolerates_unknown_fields_and_the_documented_type_quirks(self) -> None:
        body = {
            "instance_id": IID1,
            "name": "rmq-a",
            "status": "SOME_NEW_STATUS",
            "created_at": "1735787045000",  # a string of epoch milliseconds
            "charging_mode": 1,  # an int here, while bss_param spells it "postPaid"
            "storage_space": "300",  # a number as a string
            "total_storage_space": 600,
            "enable_acl": "true",  # a boolean as a string
            "ssl_enable": False,
            "tags": None,
            "available_zones": None,
            "cross_vpc_info": '{"192.168.0.1": {"advertised_ip": "x"}}',  # JSON text in a string
            "order_id": "CS123",  # read by Terraform, absent from the SDK model
            "a_field_from_the_future": {"nested": [1, 2]},
        }
        view, _ = await _one_call(reply(200, body), lambda c: c.show_instance(IID1))

        assert view.created_at == 1735787045000
        assert view.charging_mode == 1
        assert view.storage_space == 300
        assert view.total_storage_space == 600
        assert view.enable_acl is True
        assert view.status == "SOME_NEW_STATUS"
        assert view.tags == []
        assert view.available_zones == []

    async def test_created_at_that_is_not_a_number_is_dropped_not_fatal(self) -> None:
        view, _ = await _one_call(
            reply(200, {"instance_id": IID1, "created_at": "yesterday"}), lambda c: c.show_instance(IID1)
        )

        assert view.created_at is None

    async def test_list_tolerates_null_instances_and_a_string_count(self) -> None:
        page, _ = await _one_call(
            reply(200, {"instances": None, "instance_num": "0"}), lambda c: c.list_instances(cloud.ListQuery())
        )

        assert (page.instances, page.instance_num) == ([], 0)

    async def test_restart_nodes_may_be_names_or_objects(self) -> None:
        restarted, _ = await _one_call(
            reply(200, {"nodes": [{"name": "broker-0"}, "broker-1"], "result": "success"}),
            lambda c: c.restart_instance(IID1),
        )

        assert restarted.nodes == ["broker-0", "broker-1"]

    @pytest.mark.parametrize("method", ["restart_instance", "resize_instance", "restore"])
    async def test_an_empty_200_is_a_success_where_the_docs_never_showed_the_body(self, method: str) -> None:
        calls = {
            "restart_instance": lambda c: c.restart_instance(IID1),
            "resize_instance": lambda c: c.resize_instance(IID1, cloud.ResizeRequest(oper_type="storage")),
            "restore": lambda c: c.restore_from_recycle_bin([IID1]),
        }
        result, _ = await _one_call(reply(200), calls[method])

        assert result is not None


class TestGuards:
    @pytest.mark.parametrize(
        "call",
        [
            lambda c: c.show_instance(""),
            lambda c: c.delete_instance(""),
            lambda c: c.update_instance("", cloud.UpdateInstanceRequest(name="x")),
            lambda c: c.list_tags(""),
        ],
    )
    async def test_an_empty_instance_id_is_refused_before_anything_is_sent(self, call: Any) -> None:
        cloud_ = Cloud()
        async with make_client(cloud_) as client:
            with pytest.raises(errors.InvalidRequest, match="instance id must not be empty"):
                await call(client)

        assert cloud_.attempts == 0

    async def test_an_id_cannot_escape_its_path_segment(self) -> None:
        _, request = await _one_call(reply(200, {"instance_id": "x"}), lambda c: c.show_instance("../a/b?c"))

        assert request.url.raw_path.decode() == f"/v2/{PID}/instances/..%2Fa%2Fb%3Fc"
        _assert_signed_and_json(request)


# Every protocol of the ports but the one the client calls (metrics implement CallRecorder).
CLIENT_PORTS = [
    port
    for port in vars(protocol).values()
    if isinstance(port, type(Protocol)) and port not in (Protocol, protocol.CallRecorder)
]


class TestBuilding:
    @pytest.mark.parametrize("port", CLIENT_PORTS, ids=lambda port: port.__name__)
    async def test_the_client_satisfies_every_port(self, port: type) -> None:
        client = dms_client.build_client(endpoint=ENDPOINT, project_id=PID, credentials=signing.AkSkCredentials(AK, SK))
        assert isinstance(client, port)
        assert client.account == Account(endpoint=ENDPOINT, project_id=PID)
        await client.aclose()

    async def test_build_client_wires_auth_user_agent_and_rate_limit(self) -> None:
        cloud_ = Cloud(default=reply(200, {"instance_id": IID1}))
        recorder = Recorder()
        client = dms_client.build_client(
            endpoint=ENDPOINT + "/",
            project_id=PID,
            credentials=signing.AkSkCredentials(AK, SK),
            security_token="tmp",
            rate=3.0,
            burst=2,
            recorder=recorder,
            transport=httpx.MockTransport(cloud_),
        )
        async with client:
            await client.show_instance(IID1)

        request = cloud_.requests[0]
        assert str(request.url).startswith(f"{ENDPOINT}/v2/{PID}/instances/")
        assert request.headers["User-Agent"] == dms_client.USER_AGENT
        assert request.headers["X-Security-Token"] == "tmp"
        assert request.headers["Authorization"] == huawei_sdk_authorization(request)
        assert client.account.endpoint == ENDPOINT
        assert client.bucket is not None
        assert (client.bucket.rate, client.bucket.burst) == (3.0, 2)
        assert recorder.records == [("show", "ok")]

    async def test_an_iam_token_is_sent_instead_of_a_signature(self) -> None:
        cloud_ = Cloud(default=reply(200, {"instance_id": IID1}))
        async with dms_client.build_client(
            endpoint=ENDPOINT,
            project_id=PID,
            credentials=signing.TokenCredentials("iam-token"),
            transport=httpx.MockTransport(cloud_),
        ) as client:
            await client.show_instance(IID1)

        assert cloud_.requests[0].headers["X-Auth-Token"] == "iam-token"
        assert "Authorization" not in cloud_.requests[0].headers
        assert cloud_.requests[0].headers["Content-Type"] == "application/json"

    async def test_a_shared_bucket_is_used_as_is_and_none_disables_limiting(self) -> None:
        shared = TokenBucket(1.0, 1)
        creds = signing.AkSkCredentials(AK, SK)
        async with (
            dms_client.build_client(endpoint=ENDPOINT, project_id=PID, credentials=creds, bucket=shared) as a,
            dms_client.build_client(endpoint=ENDPOINT, project_id=PID, credentials=creds, rate=None) as b,
        ):
            assert a.bucket is shared
            assert b.bucket is None

    def test_timeouts_reach_httpx(self) -> None:
        timeouts = dms_client.Timeouts(connect=1.0, read=2.0, write=3.0, pool=4.0)

        assert timeouts.to_httpx() == httpx.Timeout(connect=1.0, read=2.0, write=3.0, pool=4.0)

    @pytest.mark.parametrize("endpoint", ["dms.example.com", "ftp://dms.example.com", "https://"])
    def test_an_endpoint_must_be_an_http_url(self, endpoint: str) -> None:
        with pytest.raises(ValueError, match="endpoint must be"):
            dms_client.build_client(endpoint=endpoint, project_id=PID, credentials=signing.AkSkCredentials(AK, SK))

    def test_a_project_id_is_required(self) -> None:
        with pytest.raises(ValueError, match="project id"):
            dms_client.build_client(endpoint=ENDPOINT, project_id="", credentials=signing.AkSkCredentials(AK, SK))

    async def test_aclose_closes_an_owned_http_client_only(self) -> None:
        owned = httpx.AsyncClient()
        borrowed = httpx.AsyncClient()
        account = Account(endpoint=ENDPOINT, project_id=PID)
        async with dms_client.DmsClient(owned, account=account):
            pass
        await dms_client.DmsClient(borrowed, account=account, owns_http=False).aclose()

        assert owned.is_closed
        assert not borrowed.is_closed
        await borrowed.aclose()

    async def test_the_recorded_duration_is_the_exchange_only(self) -> None:
        clock = FakeClock()
        recorder = Recorder()

        def slow(request: httpx.Request) -> httpx.Response:
            clock.now += 0.25
            return reply(200, {"instance_id": IID1})

        async with make_client(Cloud(default=slow), clock=clock, recorder=recorder) as client:
            await client.show_instance(IID1)

        assert recorder.seconds == [pytest.approx(0.25)]
