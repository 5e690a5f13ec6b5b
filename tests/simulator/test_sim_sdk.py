"""Huawei's own Python SDK, signing with AK/SK over real HTTP, drives every instance operation, and
every answer parses into the SDK's own response models. If the official client cannot talk to the
simulator, the simulator is wrong."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sim_kit
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkrocketmq.v2 import model as m

from dms_simulator import ManualClock, ThreadedSimulator

CREATE, DELETE, EXTEND, RESTART = 10.0, 5.0, 20.0, 3.0


def timings() -> dict[str, Any]:
    return sim_kit.fast_config(
        create_seconds=CREATE, delete_seconds=DELETE, extend_seconds=EXTEND, restart_seconds=RESTART
    ).to_json()


@pytest.fixture
def clock(module_clock: ManualClock) -> ManualClock:
    """The state machine moves only when a test advances this clock: no sleeping, no races."""
    return module_clock


@pytest.fixture
def admin(simulator: ThreadedSimulator) -> Iterator[httpx.Client]:
    with sim_kit.admin_client(simulator.url, timings()) as client:
        yield client


@pytest.fixture
def make_client() -> Iterator[Callable[..., Any]]:
    """Build SDK clients and close them afterwards (an unclosed requests session leaks sockets)."""
    made: list[Any] = []

    def make(url: str, **kwargs: Any) -> Any:
        made.append(sim_kit.sdk_client(url, **kwargs))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(simulator: ThreadedSimulator, admin: httpx.Client, make_client: Callable[..., Any]) -> Any:
    return make_client(simulator.url)


def create(client: Any, name: str, **overrides: Any) -> str:
    body = m.CreateInstanceByEngineReq(**sim_kit.create_body(name, **overrides))
    response = client.create_instance_by_engine(m.CreateInstanceByEngineRequest(engine="reliability", body=body))
    assert isinstance(response, m.CreateInstanceByEngineResponse)
    assert response.status_code == 200
    instance_id: str = response.instance_id
    return instance_id


def status(client: Any, instance_id: str) -> str:
    try:
        return str(client.show_instance(m.ShowInstanceRequest(instance_id=instance_id)).status)
    except ClientRequestException as exc:
        if exc.status_code == 404:
            return "<404>"
        raise


def running(client: Any, clock: ManualClock, name: str, **overrides: Any) -> str:
    instance_id = create(client, name, **overrides)
    clock.advance(CREATE)
    assert status(client, instance_id) == "RUNNING"
    return instance_id


def test_create_through_every_create_path(client: Any, clock: ManualClock) -> None:
    by_engine = create(client, "sdk-by-engine")
    alias = client.create_post_paid_instance_for_rocket_mq(
        m.CreatePostPaidInstanceForRocketMqRequest(body=m.CreateInstanceByEngineReq(**sim_kit.create_body("sdk-alias")))
    )
    legacy = client.create_post_paid_instance(
        m.CreatePostPaidInstanceRequest(body=m.CreatePostPaidInstanceReq(**sim_kit.create_body("sdk-legacy")))
    )
    assert isinstance(alias, m.CreatePostPaidInstanceForRocketMqResponse)
    assert isinstance(legacy, m.CreatePostPaidInstanceResponse)
    ids = {by_engine, alias.instance_id, legacy.instance_id}
    assert len(ids) == 3
    assert all(status(client, instance_id) == "CREATING" for instance_id in ids)
    clock.advance(CREATE)
    assert all(status(client, instance_id) == "RUNNING" for instance_id in ids)


def test_show_parses_into_the_typed_model_with_the_documented_quirks(client: Any, clock: ManualClock) -> None:
    instance_id = running(client, clock, "sdk-show", enable_publicip=True, publicip_id="eip-1")
    shown = client.show_instance(m.ShowInstanceRequest(instance_id=instance_id))
    assert isinstance(shown, m.ShowInstanceResponse)
    assert shown.instance_id == instance_id
    assert shown.name == "sdk-show"
    assert shown.engine == "reliability"
    assert shown.status == "RUNNING"
    assert isinstance(shown.created_at, str) and shown.created_at.isdigit()  # epoch ms as a string
    assert shown.charging_mode == 1
    assert shown.storage_space == shown.total_storage_space == 300
    assert shown.available_zones == ["cn-north-4a"]
    assert shown.broker_num == 1
    assert shown.namesrv_address and shown.public_namesrv_address
    assert json.loads(shown.cross_vpc_info)  # JSON text inside a string
    assert shown.tags == []


def test_show_and_list_carry_exactly_the_sdk_field_sets(client: Any, clock: ManualClock) -> None:
    instance_id = running(client, clock, "sdk-fields")
    shown = client.show_instance(m.ShowInstanceRequest(instance_id=instance_id))
    listed = client.list_instances(m.ListInstancesRequest(engine="reliability"))
    show_keys = set(json.loads(shown.raw_content))
    item_keys = set(json.loads(listed.raw_content)["instances"][0])
    five_x_omits = {"node_num"}  # node_num is a 4.8.0 field
    assert show_keys == set(m.ShowInstanceResponse.attribute_map.values()) - five_x_omits
    assert item_keys == set(m.InstanceDetail.attribute_map.values()) - five_x_omits


def test_list_pages_and_counts_every_match(client: Any) -> None:
    for index in range(3):
        create(client, f"sdk-page-{index}")
    first = client.list_instances(m.ListInstancesRequest(engine="reliability", limit=2, offset=0))
    rest = client.list_instances(m.ListInstancesRequest(engine="reliability", limit=2, offset=2))
    assert isinstance(first, m.ListInstancesResponse)
    assert first.instance_num == rest.instance_num == 3
    assert len(first.instances) == 2 and len(rest.instances) == 1
    assert all(isinstance(item, m.InstanceDetail) for item in first.instances)
    names = {item.name for item in first.instances + rest.instances}
    assert names == {"sdk-page-0", "sdk-page-1", "sdk-page-2"}


def test_list_filters_by_status_and_hides_failed_creates_unless_asked(
    client: Any, admin: httpx.Client, clock: ManualClock
) -> None:
    admin.put("/config", json={"create_fail_names": ["sdk-doomed"]}).raise_for_status()
    ok = running(client, clock, "sdk-fine")
    doomed = create(client, "sdk-doomed")
    clock.advance(CREATE)
    assert status(client, doomed) == "CREATEFAILED"

    default = client.list_instances(m.ListInstancesRequest(engine="reliability"))
    with_failures = client.list_instances(m.ListInstancesRequest(engine="reliability", include_failure="true"))
    failed_only = client.list_instances(
        m.ListInstancesRequest(engine="reliability", include_failure="true", status="CREATEFAILED")
    )
    assert [item.instance_id for item in default.instances] == [ok]
    assert {item.instance_id for item in with_failures.instances} == {ok, doomed}
    assert [item.instance_id for item in failed_only.instances] == [doomed]


def test_update_answers_204_and_changes_the_instance(client: Any, clock: ManualClock) -> None:
    instance_id = running(client, clock, "sdk-update")
    response = client.update_instance(
        m.UpdateInstanceRequest(
            instance_id=instance_id, body=m.UpdateInstanceReq(name="sdk-renamed", description="now described")
        )
    )
    assert isinstance(response, m.UpdateInstanceResponse)
    assert response.status_code == 204
    shown = client.show_instance(m.ShowInstanceRequest(instance_id=instance_id))
    assert (shown.name, shown.description) == ("sdk-renamed", "now described")


def test_delete_answers_204_then_the_instance_is_deleting_then_404(client: Any, clock: ManualClock) -> None:
    instance_id = running(client, clock, "sdk-delete")
    response = client.delete_instance(m.DeleteInstanceRequest(instance_id=instance_id))
    assert response.status_code == 204
    assert status(client, instance_id) == "DELETING"
    clock.advance(DELETE)
    assert status(client, instance_id) == "<404>"
    with pytest.raises(ClientRequestException) as raised:
        client.show_instance(m.ShowInstanceRequest(instance_id=instance_id))
    assert raised.value.status_code == 404
    assert raised.value.error_code == "DMS.00404022"
    assert raised.value.request_id  # read from the X-Request-Id header


def test_list_instances_leaves_out_a_deleting_instance_that_show_instance_still_answers(
    client: Any, clock: ManualClock
) -> None:
    staying, going = running(client, clock, "sdk-staying"), running(client, clock, "sdk-going")
    response = client.batch_delete_instances(
        m.BatchDeleteInstancesRequest(body=m.BatchDeleteInstanceReq(action="delete", instances=[going]))
    )
    assert [item.result for item in response.results] == ["success"]
    listed = client.list_instances(m.ListInstancesRequest(engine="reliability"))
    assert ([item.instance_id for item in listed.instances], listed.instance_num) == ([staying], 1)
    deleting = client.list_instances(m.ListInstancesRequest(engine="reliability", status="DELETING"))
    assert (deleting.instances, deleting.instance_num) == ([], 0)
    shown = client.show_instance(m.ShowInstanceRequest(instance_id=going))
    assert (shown.status, shown.name) == ("DELETING", "sdk-going")
    clock.advance(DELETE)
    assert status(client, going) == "<404>"


def test_batch_delete_by_ids_reports_each_instance(client: Any, clock: ManualClock) -> None:
    first, second = running(client, clock, "sdk-batch-1"), running(client, clock, "sdk-batch-2")
    response = client.batch_delete_instances(
        m.BatchDeleteInstancesRequest(
            body=m.BatchDeleteInstanceReq(action="delete", instances=[first, second, "no-such-id"], force_delete=True)
        )
    )
    assert isinstance(response, m.BatchDeleteInstancesResponse)
    assert response.status_code == 200
    results = {item.instance: item.result for item in response.results}
    assert all(isinstance(item, m.BatchDeleteInstanceRespResults) for item in response.results)
    assert results == {first: "success", second: "success", "no-such-id": "failed"}
    clock.advance(DELETE)
    assert status(client, first) == status(client, second) == "<404>"


def test_batch_delete_all_failure_answers_204_without_results(
    client: Any, admin: httpx.Client, clock: ManualClock
) -> None:
    admin.put("/config", json={"create_fail_names": ["sdk-failed-1", "sdk-failed-2"]}).raise_for_status()
    keep = running(client, clock, "sdk-keeper")
    failed = [create(client, "sdk-failed-1"), create(client, "sdk-failed-2")]
    clock.advance(CREATE)
    assert all(status(client, i) == "CREATEFAILED" for i in failed)
    response = client.batch_delete_instances(
        m.BatchDeleteInstancesRequest(body=m.BatchDeleteInstanceReq(action="delete", all_failure="reliability"))
    )
    assert response.status_code == 204
    assert response.results is None
    clock.advance(DELETE)
    assert all(status(client, i) == "<404>" for i in failed)
    assert status(client, keep) == "RUNNING"


def test_resize_by_engine_path_and_alias_extends_then_applies(client: Any, clock: ManualClock) -> None:
    instance_id = running(client, clock, "sdk-resize", storage_space=300, broker_num=1)
    response = client.resize_instance(
        m.ResizeInstanceRequest(
            engine="reliability",
            instance_id=instance_id,
            body=m.ResizeEngineInstanceReq(oper_type="storage", new_storage_space=600),
        )
    )
    assert isinstance(response, m.ResizeInstanceResponse)
    assert response.job_id
    assert status(client, instance_id) == "EXTENDING"
    clock.advance(EXTEND)
    assert status(client, instance_id) == "RUNNING"
    shown = client.show_instance(m.ShowInstanceRequest(instance_id=instance_id))
    assert (shown.storage_space, shown.extend_times) == (600, 1)

    alias = client.resize_instance_for_rocket_mq(
        m.ResizeInstanceForRocketMqRequest(
            instance_id=instance_id,
            body=m.ResizeEngineInstanceReq(
                oper_type="horizontal", new_broker_num=2, new_product_id="rocketmq.b2.large.8"
            ),
        )
    )
    assert alias.job_id
    clock.advance(EXTEND)
    assert status(client, instance_id) == "RUNNING"
    shown = client.show_instance(m.ShowInstanceRequest(instance_id=instance_id))
    assert (shown.broker_num, shown.product_id, shown.storage_space) == (2, "rocketmq.b2.large.8", 1200)


def test_restart_answers_node_names_and_passes_through_restarting(client: Any, clock: ManualClock) -> None:
    instance_id = running(client, clock, "sdk-restart", broker_num=2)
    response = client.restart_instance(m.RestartInstanceRequest(engine="reliability", instance_id=instance_id))
    assert isinstance(response, m.RestartInstanceResponse)
    assert (response.instance_id, response.nodes, response.result) == (
        instance_id,
        ["broker-0", "broker-1"],
        "success",
    )
    assert status(client, instance_id) == "RESTARTING"
    clock.advance(RESTART)
    assert status(client, instance_id) == "RUNNING"


def test_tags_are_created_listed_and_deleted(client: Any) -> None:
    first = create(client, "sdk-tags-1")
    second = create(client, "sdk-tags-2")

    def tag(instance_id: str, action: str, **tags: str) -> Any:
        entities = [m.TagEntity(key=key, value=value) for key, value in tags.items()]
        return client.batch_create_or_delete_rocketmq_tag(
            m.BatchCreateOrDeleteRocketmqTagRequest(
                instance_id=instance_id, body=m.BatchCreateOrDeleteTagReq(action=action, tags=entities)
            )
        )

    # Tags can be set while the instance is still CREATING (the operator tags right after create).
    assert tag(first, "create", owner="cluster-a", team="mq").status_code == 204
    assert tag(second, "create", owner="cluster-b").status_code == 204
    listed = client.show_rocketmq_tags(m.ShowRocketmqTagsRequest(instance_id=first))
    assert isinstance(listed, m.ShowRocketmqTagsResponse)
    assert {(t.key, t.value) for t in listed.tags} == {("owner", "cluster-a"), ("team", "mq")}
    assert all(isinstance(t, m.TagEntity) for t in listed.tags)

    project = client.show_rocketmq_project_tags(m.ShowRocketmqProjectTagsRequest())
    assert isinstance(project, m.ShowRocketmqProjectTagsResponse)
    assert {t.key: t.values for t in project.tags} == {"owner": ["cluster-a", "cluster-b"], "team": ["mq"]}

    assert tag(first, "delete", team="mq").status_code == 204
    shown = client.show_instance(m.ShowInstanceRequest(instance_id=first))
    assert [(t.key, t.value) for t in shown.tags] == [("owner", "cluster-a")]


def test_recycle_bin_policy_list_and_restore(client: Any, clock: ManualClock) -> None:
    policy = client.modify_recycle_policy(
        m.ModifyRecyclePolicyRequest(body=m.ModifyRecyclePolicyReq(retention_days=3, default_use_recycle=True))
    )
    assert isinstance(policy, m.ModifyRecyclePolicyResponse)
    assert (policy.retention_days, policy.default_use_recycle, policy.recycle_instances) == (3, True, [])

    instance_id = running(client, clock, "sdk-recycled")
    client.delete_instance(m.DeleteInstanceRequest(instance_id=instance_id))
    clock.advance(DELETE)
    # How the real cloud answers a non-forced deletion with the bin on (docs/simulator.md).
    shown = client.show_instance(m.ShowInstanceRequest(instance_id=instance_id))
    assert isinstance(shown, m.ShowInstanceResponse)
    assert (shown.status, shown.instance_id, shown.name) == ("RECYCLE", instance_id, "sdk-recycled")
    assert client.list_instances(m.ListInstancesRequest(engine="reliability")).instances == []

    binned = client.show_recycle_instances(m.ShowRecycleInstancesRequest())
    assert isinstance(binned, m.ShowRecycleInstancesResponse)
    [entry] = binned.recycle_instances
    assert isinstance(entry, m.InstanceRecycleInfo)
    assert (entry.instance_id, entry.name, entry.save_time) == (instance_id, "sdk-recycled", 3)
    assert isinstance(entry.in_recycle_time, int)  # epoch ms as an integer, unlike created_at
    assert entry.auto_delete_time - entry.in_recycle_time == 3 * 86_400_000

    restored = client.restore_recycle_instance(
        m.RestoreRecycleInstanceRequest(body=m.BatchResumeInstanceReq(instances=[instance_id]))
    )
    assert isinstance(restored, m.RestoreRecycleInstanceResponse)
    [result] = restored.results
    assert isinstance(result, m.InstanceResumeResult)
    assert result.instance_id == instance_id and result.job_id and result.error_msg is None
    assert status(client, instance_id) == "RUNNING"
    assert client.show_recycle_instances(m.ShowRecycleInstancesRequest()).recycle_instances == []

    task = client.show_background_task(m.ShowBackgroundTaskRequest(instance_id=instance_id, task_id=result.job_id))
    assert task.task_count == "1" and task.tasks[0].status == "SUCCESS"


def test_background_tasks_and_quotas_parse(client: Any, clock: ManualClock) -> None:
    instance_id = running(client, clock, "sdk-tasks")
    tasks = client.list_background_tasks(m.ListBackgroundTasksRequest(instance_id=instance_id))
    assert isinstance(tasks, m.ListBackgroundTasksResponse)
    assert tasks.task_count == "1"  # a string, as the API types it
    [created] = tasks.tasks
    assert (created.name, created.status) == ("createInstance", "SUCCESS")
    progress = client.show_background_task_progress(
        m.ShowBackgroundTaskProgressRequest(instance_id=instance_id, task_id=created.id)
    )
    assert progress.progress_percentage == 100
    assert progress.step_list[0].statue == "COMPLETED"  # the API's own spelling
    quotas = client.show_quotas(m.ShowQuotasRequest())
    [resource] = quotas.quotas.resources
    assert (resource.type, resource.used) == ("rocketmqInstance", 1)


def test_errors_surface_as_sdk_exceptions_with_huawei_codes(
    client: Any, simulator: ThreadedSimulator, make_client: Callable[..., Any]
) -> None:
    create(client, "sdk-duplicate")
    with pytest.raises(ClientRequestException) as duplicate:
        create(client, "sdk-duplicate")
    assert (duplicate.value.status_code, duplicate.value.error_code) == (400, "DMS.00400060")

    wrong_key = make_client(simulator.url, sk="not-the-secret")
    with pytest.raises(ClientRequestException) as unsigned:
        wrong_key.list_instances(m.ListInstancesRequest(engine="reliability"))
    assert (unsigned.value.status_code, unsigned.value.error_code) == (401, "APIGW.0301")

    other_project = make_client(simulator.url, pid=sim_kit.PID2)
    with pytest.raises(ClientRequestException) as foreign:
        other_project.list_instances(m.ListInstancesRequest(engine="reliability"))
    assert (foreign.value.status_code, foreign.value.error_code) == (401, "DMS.10240104")


def test_throttling_reaches_the_sdk_as_429(client: Any, admin: httpx.Client) -> None:
    admin.put("/config", json={"rate_limit_rps": 1, "rate_limit_burst": 1}).raise_for_status()
    client.list_instances(m.ListInstancesRequest(engine="reliability"))
    # For a GET, urllib3's retry machinery (even with retry_times=0) turns the 429 into a RetryError:
    # the SDK reports code "429" and never reads the body.
    with pytest.raises(ClientRequestException) as on_get:
        client.list_instances(m.ListInstancesRequest(engine="reliability"))
    assert (on_get.value.status_code, on_get.value.error_code) == (429, "429")
    # A POST is not retried, so the SDK parses the gateway's body.
    with pytest.raises(ClientRequestException) as on_post:
        client.batch_delete_instances(
            m.BatchDeleteInstancesRequest(body=m.BatchDeleteInstanceReq(action="delete", instances=["x"]))
        )
    assert (on_post.value.status_code, on_post.value.error_code) == (429, "APIGW.0308")
    assert on_post.value.request_id


def test_the_sdk_trusts_the_tls_simulator_through_its_ca_file(tmp_path: Path, make_client: Callable[..., Any]) -> None:
    with ThreadedSimulator(sim_kit.fast_config(), accounts=sim_kit.ACCOUNTS, use_tls=True) as sim:
        assert sim.url.startswith("https://")
        ca_file = tmp_path / "ca.pem"
        sim.server.write_ca(ca_file)
        trusting = make_client(sim.url, ssl_ca_cert=str(ca_file))
        listed = trusting.list_instances(m.ListInstancesRequest(engine="reliability"))
        assert isinstance(listed, m.ListInstancesResponse)
        assert listed.instance_num == 0
        # Hang up before the server stops: a TLS server waits for the peer's close_notify.
        trusting.close()
        # Without the CA the certificate is refused. (Checked with httpx: urllib3 leaves the refused
        # socket for the garbage collector, which the warnings-as-errors suite would report.)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(sim.url + "/_sim/health")
