"""The real client against the real simulator over real HTTP: every operation, every error class.

Nothing is mocked here: requests are signed by our signer and verified by the simulator's, errors
come back in Huawei's shapes, and faults (5xx, dropped connections, held answers, malformed bodies,
throttling) are switched on through the simulator's admin API (``/_sim/``), whose call log then
shows what the cloud saw, e.g. that an ambiguous create was sent exactly once.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from client_kit import AK, PID, SK, Recorder

import dms_simulator
from rocketmq_operator.adapters import dms_client, signing
from rocketmq_operator.adapters.retrying import RetryPolicy
from rocketmq_operator.core import cloud
from rocketmq_operator.core.evidence import Look, Sighting
from rocketmq_operator.ports import errors
from rocketmq_operator.services.confirming import DeletionConfirmer

OTHER_PID = "ffffffffffffffffffffffffffffffff"
TOKEN = "MIIsimulated-iam-token-0001"
FAST = dms_simulator.SimulatorConfig(
    create_seconds=0.0, delete_seconds=0.0, extend_seconds=0.0, restart_seconds=0.0, seed=7
)
QUICK_RETRY = RetryPolicy(max_attempts=3, deadline=30.0, base_delay=0.01, max_delay=0.05)


def create_request(name: str = "rmq-a", **changes: Any) -> cloud.CreateInstanceRequest:
    fields: dict[str, Any] = {
        "name": name,
        "engine_version": "5.x",
        "storage_space": 300,
        "vpc_id": "vpc-1",
        "subnet_id": "subnet-1",
        "security_group_id": "sg-1",
        "available_zones": ["sim-az-1"],
        "product_id": "rocketmq.b2.large.4",
        "storage_spec_code": "dms.physical.storage.high.v2",
        "broker_num": 1,
    }
    return cloud.CreateInstanceRequest(**{**fields, **changes})


class Admin:
    """The simulator's admin API, spoken over HTTP as any test would."""

    def __init__(self, url: str, **tls: Any) -> None:
        self._http = httpx.AsyncClient(base_url=url, **tls)

    async def _send(self, method: str, path: str, body: Any = None) -> Any:
        response = await self._http.request(method, path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    async def config(self, **changes: Any) -> None:
        await self._send("PUT", "/_sim/config", changes)

    async def faults(self, **plan: Any) -> None:
        await self._send("PUT", "/_sim/faults", plan)

    async def seed(self, *specs: dict[str, Any], project_id: str = PID) -> list[str]:
        seeded = await self._send("POST", "/_sim/instances", {"project_id": project_id, "instances": list(specs)})
        return [instance["instance_id"] for instance in seeded["instances"]]

    async def instances(self) -> list[dict[str, Any]]:
        listing: list[dict[str, Any]] = (await self._send("GET", "/_sim/instances"))["instances"]
        return listing

    async def deletions(self) -> list[dict[str, Any]]:
        listing: list[dict[str, Any]] = (await self._send("GET", "/_sim/deletions"))["deletions"]
        return listing

    async def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = (await self._send("GET", "/_sim/calls"))["calls"]
        return [c for c in calls if operation is None or c["operation"] == operation]

    async def aclose(self) -> None:
        await self._http.aclose()


class Sim:
    def __init__(self, server: dms_simulator.SimulatorServer, admin: Admin) -> None:
        self.server = server
        self.admin = admin

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, **options: Any) -> dms_client.DmsClient:
        settings: dict[str, Any] = {
            "endpoint": self.url,
            "project_id": PID,
            "credentials": signing.AkSkCredentials(AK, SK),
            "retry": QUICK_RETRY,
            "rate": None,
        }
        return dms_client.build_client(**{**settings, **options})


def _accounts() -> list[dms_simulator.Account]:
    return [dms_simulator.Account(AK, SK, frozenset({PID}))]


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    server = dms_simulator.SimulatorServer(
        dms_simulator.SimulatorConfig(**FAST.to_json()),
        accounts=_accounts(),
        tokens=[dms_simulator.TokenGrant(TOKEN, frozenset({PID}))],
    )
    async with server:
        admin = Admin(server.url)
        try:
            yield Sim(server, admin)
        finally:
            await admin.aclose()


async def _status(client: dms_client.DmsClient, instance_id: str) -> str:
    return (await client.show_instance(instance_id)).status


class TestEveryOperation:
    async def test_an_instance_lifecycle_from_create_to_not_found(self, sim: Sim) -> None:
        async with sim.client() as client:
            instance_id = await client.create_instance(create_request("rmq-life", description="测试"))
            view = await client.show_instance(instance_id)
            assert (view.name, view.status, view.description) == ("rmq-life", cloud.RUNNING, "测试")
            assert view.created_at is not None  # sent as a string of epoch ms, read as an int

            page = await client.list_instances(cloud.ListQuery(name="rmq-life", exact_match_name=True))
            assert [i.instance_id for i in page.instances] == [instance_id]
            assert page.instance_num == 1

            await client.update_instance(instance_id, cloud.UpdateInstanceRequest(description="changed"))
            assert (await client.show_instance(instance_id)).description == "changed"

            job = await client.resize_instance(
                instance_id, cloud.ResizeRequest(oper_type="storage", new_storage_space=600)
            )
            assert job.job_id
            await asyncio.sleep(0.01)
            restarted = await client.restart_instance(instance_id)
            assert restarted.instance_id == instance_id
            assert restarted.result == "success"

            await client.delete_instance(instance_id)
            with pytest.raises(errors.NotFound) as gone:
                await client.show_instance(instance_id)

        assert gone.value.code == "DMS.00404022"
        assert gone.value.request_id  # the simulator sends X-Request-Id on every answer
        operations = [c["operation"] for c in await sim.admin.calls()]
        assert operations == [
            "create",
            "show",
            "list",
            "update",
            "show",
            "resize",
            "restart",
            "delete",
            "show",
        ]

    async def test_tags_create_list_delete(self, sim: Sim) -> None:
        [instance_id] = await sim.admin.seed({"name": "rmq-tags"})
        owner = [cloud.Tag(key="rocketmq-operator.io/owner", value="ns/name"), cloud.Tag(key="team", value="")]
        async with sim.client() as client:
            await client.create_tags(instance_id, owner)
            listed = await client.list_tags(instance_id)
            await client.delete_tags(instance_id, owner[1:])
            after = await client.list_tags(instance_id)

        assert sorted(t.key for t in listed) == ["rocketmq-operator.io/owner", "team"]
        assert [t.key for t in after] == ["rocketmq-operator.io/owner"]

    async def test_list_pages_with_the_total_count(self, sim: Sim) -> None:
        await sim.admin.seed(*({"name": f"rmq-page-{n}"} for n in range(5)))
        async with sim.client() as client:
            page = await client.list_instances(cloud.ListQuery(name="rmq-page", limit=2, offset=2))

        assert len(page.instances) == 2
        assert page.instance_num == 5

    async def test_list_hides_failed_creations_only_when_asked(self, sim: Sim) -> None:
        await sim.admin.seed({"name": "rmq-ok"}, {"name": "rmq-failed", "status": "CREATEFAILED"})
        async with sim.client() as client:
            everything = await client.list_instances(cloud.ListQuery())
            healthy = await client.list_instances(cloud.ListQuery(include_failure=False))

        assert sorted(i.name for i in everything.instances) == ["rmq-failed", "rmq-ok"]
        assert [i.name for i in healthy.instances] == ["rmq-ok"]

    async def test_batch_delete_is_one_call_with_a_result_per_id(self, sim: Sim) -> None:
        ids = await sim.admin.seed({"name": "rmq-b1"}, {"name": "rmq-b2"}, {"name": "rmq-b3"})
        await sim.admin.faults(failed_ids=[ids[2]])
        async with sim.client() as client:
            results = await client.delete_many([*ids, "no-such-id"], force_delete=True)

        assert {r.instance: r.accepted for r in results} == {
            ids[0]: True,
            ids[1]: True,
            ids[2]: False,
            "no-such-id": False,
        }
        [call] = await sim.admin.calls("batch_action")
        assert (call["instance_ids"], call["force_delete"], call["status"]) == ([*ids, "no-such-id"], True, 200)

    async def test_delete_all_failed_gets_204_and_removes_only_failed_ones(self, sim: Sim) -> None:
        await sim.admin.seed(
            {"name": "rmq-keep"},
            {"name": "rmq-f1", "status": "CREATEFAILED"},
            {"name": "rmq-f2", "status": "CREATEFAILED"},
        )
        async with sim.client() as client:
            await client.delete_all_failed()
            left = await client.list_instances(cloud.ListQuery())

        assert [i.name for i in left.instances] == ["rmq-keep"]
        [call] = await sim.admin.calls("batch_action")
        assert (call["all_failure"], call["status"]) == ("reliability", 204)

    async def test_recycle_bin_list_and_restore(self, sim: Sim) -> None:
        await sim.admin.config(recycle_bin_enabled=True)
        [instance_id] = await sim.admin.seed({"name": "rmq-bin"})
        async with sim.client() as client:
            [accepted] = await client.delete_many([instance_id], force_delete=False)
            assert accepted.accepted
            binned = await client.list_recycle_bin()
            restored = await client.restore_from_recycle_bin([instance_id])
            back = await client.list_instances(cloud.ListQuery(instance_id=instance_id))

        assert binned.default_use_recycle is True
        assert [i.instance_id for i in binned.recycle_instances] == [instance_id]
        assert isinstance(binned.recycle_instances[0].in_recycle_time, int)
        assert [r.instance_id for r in restored] == [instance_id]
        assert [i.instance_id for i in back.instances] == [instance_id]


@pytest.fixture
async def manual_sim() -> AsyncIterator[tuple[Sim, dms_simulator.ManualClock]]:
    """The simulator on a clock that moves only when the test says: a batch deletion's delay
    passes at once and exactly, with nothing really waiting (signatures still use real time)."""
    clock = dms_simulator.ManualClock()
    config = dms_simulator.SimulatorConfig(**FAST.to_json())
    async with dms_simulator.SimulatorServer(config, accounts=_accounts(), clock=clock) as server:
        admin = Admin(server.url)
        try:
            yield Sim(server, admin), clock
        finally:
            await admin.aclose()


class TestTopicsAndGroups:
    async def test_topics_are_created_paged_updated_and_batch_deleted(
        self, manual_sim: tuple[Sim, dms_simulator.ManualClock]
    ) -> None:
        sim, clock = manual_sim
        await sim.admin.config(topic_delete_seconds=5.0)
        [instance_id] = await sim.admin.seed({"name": "rmq-topics"})
        names = [f"t%{n:02d}|x" for n in range(55)]  # "%" and "|" are allowed in names
        async with sim.client() as client:
            for name in names:
                await client.create_topic(instance_id, cloud.CreateTopicRequest(name=name, queue_num=2))
                clock.advance(0.001)  # distinct created_at: the list is oldest first
            first = await client.list_topics(instance_id, cloud.ChildPage(limit=50, offset=0))
            second = await client.list_topics(instance_id, cloud.ChildPage(limit=50, offset=50))

            await client.update_topic(instance_id, names[0], cloud.UpdateTopicRequest(topic_desc="changed"))
            job_id = await client.delete_children(instance_id, "topic", names[:3])
            running = await client.show_task(instance_id, job_id)
            still = await client.list_topics(instance_id, cloud.ChildPage(limit=50))
            clock.advance(5.0)
            done = await client.show_task(instance_id, job_id)
            after = await client.list_topics(instance_id, cloud.ChildPage(limit=50))

        assert (first.total, second.total) == (55, 55)
        assert [t.name for t in [*first.topics, *second.topics]] == names
        assert isinstance(first.topics[0].created_at, int)
        assert job_id
        assert (running.id, running.status, running.finished) == (job_id, "CREATED", False)
        assert still.total == 55
        assert (done.status, done.finished) == ("SUCCESS", True)
        assert after.total == 52
        assert not set(names[:3]) & {t.name for t in after.topics}
        [call] = await sim.admin.calls("topic_batch_delete")
        assert (call["names"], call["status"]) == (names[:3], 200)

    async def test_groups_are_created_updated_and_batch_deleted(
        self, manual_sim: tuple[Sim, dms_simulator.ManualClock]
    ) -> None:
        sim, clock = manual_sim
        await sim.admin.config(group_delete_seconds=2.0)
        [instance_id] = await sim.admin.seed({"name": "rmq-groups"})
        async with sim.client() as client:
            for name in ("g-keep", "g-go"):
                await client.create_group(instance_id, cloud.CreateGroupRequest(name=name, retry_max_time=3))
            change = cloud.UpdateGroupRequest(enabled=False, broadcast=True, retry_max_time=5, group_desc="d")
            await client.update_group(instance_id, "g-keep", change)
            before = await client.list_groups(instance_id, cloud.ChildPage())

            job_id = await client.delete_children(instance_id, "group", ["g-go"])
            running = await client.show_task(instance_id, job_id)
            clock.advance(2.0)
            done = await client.show_task(instance_id, job_id)
            after = await client.list_groups(instance_id, cloud.ChildPage())

        kept = next(g for g in before.groups if g.name == "g-keep")
        assert (kept.enabled, kept.broadcast, kept.retry_max_time, kept.group_desc) == (False, True, 5, "d")
        assert kept.created_at is not None
        assert sorted(g.name for g in before.groups) == ["g-go", "g-keep"]
        assert (running.status, done.status) == ("CREATED", "SUCCESS")
        assert [g.name for g in after.groups] == ["g-keep"]

    async def test_errors_tell_a_missing_instance_from_a_missing_child(self, sim: Sim) -> None:
        [instance_id] = await sim.admin.seed({"name": "rmq-child-errors"})
        async with sim.client() as client:
            await client.create_topic(instance_id, cloud.CreateTopicRequest(name="t-1"))
            with pytest.raises(errors.NameConflict):
                await client.create_topic(instance_id, cloud.CreateTopicRequest(name="t-1"))
            with pytest.raises(errors.NotFound) as no_topic:
                await client.update_topic(instance_id, "t-none", cloud.UpdateTopicRequest(topic_desc="x"))
            with pytest.raises(errors.InstanceNotFound) as no_instance:
                await client.list_groups("00000000-0000-0000-0000-000000000000", cloud.ChildPage())
            with pytest.raises(errors.InstanceNotFound):
                await client.delete_children("00000000-0000-0000-0000-000000000000", "topic", ["t-1"])

        assert not isinstance(no_topic.value, errors.InstanceNotFound)
        assert no_topic.value.code == "DMS.00404023"
        assert no_instance.value.code == "DMS.00404022"


class TestQuirkyAnswers:
    async def test_unknown_fields_and_odd_types_from_the_cloud_are_tolerated(self, sim: Sim) -> None:
        [instance_id] = await sim.admin.seed(
            {"name": "rmq-odd", "created_at": "1735787045000", "order_id": "CS1", "a_future_field": {"x": [1]}}
        )
        async with sim.client() as client:
            view = await client.show_instance(instance_id)

        assert view.created_at == 1735787045000
        assert view.charging_mode == 1

    async def test_restart_nodes_as_objects(self, sim: Sim) -> None:
        await sim.admin.config(restart_nodes_as_objects=True)
        [instance_id] = await sim.admin.seed({"name": "rmq-nodes"})
        async with sim.client() as client:
            restarted = await client.restart_instance(instance_id)

        assert restarted.nodes
        assert all(isinstance(node, str) and node for node in restarted.nodes)


class TestEveryErrorClass:
    async def test_not_found(self, sim: Sim) -> None:
        async with sim.client() as client:
            with pytest.raises(errors.NotFound):
                await client.show_instance("00000000-0000-0000-0000-000000000000")

    async def test_wrong_state(self, sim: Sim) -> None:
        [instance_id] = await sim.admin.seed({"name": "rmq-creating", "status": "CREATING"})
        async with sim.client() as client:
            with pytest.raises(errors.WrongState) as caught:
                await client.restart_instance(instance_id)

        assert caught.value.code == "DMS.00400026"
        assert len(await sim.admin.calls("restart")) == 1  # a 400 is never retried

    async def test_name_conflict(self, sim: Sim) -> None:
        async with sim.client() as client:
            await client.create_instance(create_request("rmq-twice"))
            with pytest.raises(errors.NameConflict):
                await client.create_instance(create_request("rmq-twice"))

    async def test_quota_exceeded(self, sim: Sim) -> None:
        await sim.admin.config(quota=1)
        async with sim.client() as client:
            await client.create_instance(create_request("rmq-q1"))
            with pytest.raises(errors.QuotaExceeded) as caught:
                await client.create_instance(create_request("rmq-q2"))

        assert caught.value.terminal

    async def test_invalid_request(self, sim: Sim) -> None:
        async with sim.client() as client:
            with pytest.raises(errors.InvalidRequest) as caught:
                await client.create_instance(create_request("9-starts-with-a-digit"))

        assert caught.value.code == "DMS.00400010"

    @pytest.mark.parametrize(
        "credentials",
        [
            signing.AkSkCredentials(AK, SK[:-1] + "x"),
            signing.AkSkCredentials("HPUANOSUCHKEY0000000", SK),
            signing.TokenCredentials("not-a-granted-token"),
        ],
        ids=["wrong secret key", "unknown access key", "unknown token"],
    )
    async def test_auth_failed(self, sim: Sim, credentials: signing.Credentials) -> None:
        async with sim.client(credentials=credentials) as client:
            with pytest.raises(errors.AuthFailed) as caught:
                await client.show_instance("i-1")

        assert caught.value.status == 401
        assert SK not in str(caught.value)

    async def test_auth_failed_for_a_project_the_key_is_not_bound_to(self, sim: Sim) -> None:
        async with sim.client(project_id=OTHER_PID) as client:
            with pytest.raises(errors.AuthFailed):
                await client.list_instances(cloud.ListQuery())

    async def test_throttled_carries_the_gateways_retry_after(self, sim: Sim) -> None:
        await sim.admin.config(rate_limit_rps=0.5, rate_limit_burst=1)
        async with sim.client(retry=RetryPolicy(max_attempts=1)) as client:
            await client.list_instances(cloud.ListQuery())
            with pytest.raises(errors.Throttled) as caught:
                await client.list_instances(cloud.ListQuery())

        assert caught.value.code == "APIGW.0308"
        assert caught.value.retry_after >= 1.0
        assert caught.value.request_id

    async def test_server_error_on_a_create_is_surfaced_not_retried(self, sim: Sim) -> None:
        await sim.admin.faults(error_next=1, error_status=503, error_operations=["create"])
        async with sim.client() as client:
            with pytest.raises(errors.ServerError) as caught:
                await client.create_instance(create_request("rmq-5xx"))

        assert caught.value.status == 503
        assert len(await sim.admin.calls("create")) == 1

    async def test_malformed_response(self, sim: Sim) -> None:
        [instance_id] = await sim.admin.seed({"name": "rmq-garbled"})
        await sim.admin.faults(malformed_next=1, malformed_operations=["show"])
        async with sim.client() as client:
            with pytest.raises(errors.MalformedResponse):
                await client.show_instance(instance_id)

    async def test_transport_error_when_nobody_listens(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        recorder = Recorder()
        client = dms_client.build_client(
            endpoint=f"http://127.0.0.1:{port}",
            project_id=PID,
            credentials=signing.AkSkCredentials(AK, SK),
            retry=QUICK_RETRY,
            recorder=recorder,
        )
        async with client:
            with pytest.raises(errors.TransportError, match="ConnectError"):
                await client.create_instance(create_request())

        # Nothing was sent, so even a create may be tried again.
        assert recorder.records == [("create", "CloudUnreachable")] * 3


class TestRetriesOverTheWire:
    async def test_a_read_survives_transient_server_errors(self, sim: Sim) -> None:
        await sim.admin.faults(error_next=2, error_status=502, error_operations=["list"])
        recorder = Recorder()
        async with sim.client(recorder=recorder) as client:
            await client.list_instances(cloud.ListQuery())

        assert [c["status"] for c in await sim.admin.calls("list")] == [502, 502, 200]
        assert recorder.records == [("list", "CloudServerError")] * 2 + [("list", "ok")]

    async def test_a_read_survives_a_dropped_connection(self, sim: Sim) -> None:
        [instance_id] = await sim.admin.seed({"name": "rmq-drop"})
        await sim.admin.faults(drop_next=1, drop_operations=["show"])
        async with sim.client() as client:
            view = await client.show_instance(instance_id)

        assert view.instance_id == instance_id
        assert [c["fault"] for c in await sim.admin.calls("show")] == ["drop", None]

    async def test_a_batch_delete_is_retried_after_a_5xx(self, sim: Sim) -> None:
        [instance_id] = await sim.admin.seed({"name": "rmq-retry-delete"})
        await sim.admin.faults(error_next=1, error_status=500, error_operations=["batch_action"])
        async with sim.client() as client:
            [result] = await client.delete_many([instance_id])

        assert result.accepted
        assert len(await sim.admin.calls("batch_action")) == 2

    async def test_a_create_whose_answer_is_lost_is_not_sent_twice(self, sim: Sim) -> None:
        # The cloud creates the instance, then the connection drops: the client cannot know.
        await sim.admin.faults(drop_next=1, drop_operations=["create"], drop_phase="after")
        async with sim.client() as client:
            with pytest.raises(errors.TransportError):
                await client.create_instance(create_request("rmq-ambiguous"))

        assert len(await sim.admin.calls("create")) == 1
        assert [i["name"] for i in await sim.admin.instances()] == ["rmq-ambiguous"]

    async def test_a_create_that_times_out_is_not_sent_twice(self, sim: Sim) -> None:
        await sim.admin.faults(hold_create_seconds=1.0)
        timeouts = dms_client.Timeouts(connect=2.0, read=0.2, write=2.0, pool=2.0)
        async with sim.client(timeouts=timeouts) as client:
            with pytest.raises(errors.TransportError, match="ReadTimeout"):
                await client.create_instance(create_request("rmq-slow"))

        assert len(await sim.admin.calls("create")) == 1
        assert [i["name"] for i in await sim.admin.instances()] == ["rmq-slow"]

    async def test_a_throttled_call_waits_retry_after_and_then_succeeds(self, sim: Sim) -> None:
        await sim.admin.config(rate_limit_rps=2.0, rate_limit_burst=1)
        loop = asyncio.get_running_loop()
        async with sim.client() as client:
            await client.list_instances(cloud.ListQuery())
            started = loop.time()
            await client.list_instances(cloud.ListQuery())
            waited = loop.time() - started

        assert [c["status"] for c in await sim.admin.calls("list")] == [200, 429, 200]
        assert waited >= 1.0  # the simulator says "Retry-After: 1" (whole seconds)

    async def test_the_client_bucket_keeps_under_the_gateway_limit(self, sim: Sim) -> None:
        await sim.admin.config(rate_limit_rps=20.0, rate_limit_burst=2)
        async with sim.client(rate=10.0, burst=2) as client:
            await asyncio.gather(*(client.list_instances(cloud.ListQuery()) for _ in range(6)))

        assert [c["status"] for c in await sim.admin.calls("list")] == [200] * 6


class TestConfirmingDeletionsOverTheWire:
    """The deletion confirmer with the real client (its token bucket) against the faithful simulator."""

    async def _confirm_all(
        self, sim: Sim, client: dms_client.DmsClient, count: int, *, force: bool
    ) -> dict[str, tuple[Look, float]]:
        """Delete ``count`` instances in one call and confirm each: its look, and when it was decided."""
        ids = await sim.admin.seed(*({"name": f"rmq-del-{n}"} for n in range(count)))
        confirmer = DeletionConfirmer(client, verify_interval=0.2, max_gap=1.0)
        await confirmer.start()

        async def decided(instance_id: str, accepted_at: float) -> tuple[Look, float]:
            look = await confirmer.confirm(instance_id, accepted_at=accepted_at, force=force, timeout=60)
            return look, time.time()

        try:
            results = await client.delete_many(ids, force_delete=force)
            assert {r.result for r in results} == {"success"}
            accepted_at = time.time()
            answers = await asyncio.gather(*(decided(i, accepted_at) for i in ids))
        finally:
            await confirmer.aclose()
        return dict(zip(ids, answers, strict=True))

    async def test_no_look_escapes_the_clients_bucket(self, sim: Sim) -> None:
        await sim.admin.config(delete_seconds=0.6)
        async with sim.client(rate=5.0, burst=2) as client:
            answers = await self._confirm_all(sim, client, 12, force=True)

        assert {look.sighting for look, _ in answers.values()} == {Sighting.GONE}
        shows = [c["time"] for c in await sim.admin.calls("show")]
        assert len(shows) >= 12
        span = shows[-1] - shows[0]
        # At most the burst at once, then the bucket's pace (5/s), whatever the confirmer wanted.
        assert (len(shows) - 2) / span <= 5.0 * 1.15, f"{len(shows)} shows in {span:.2f} s"

    async def test_a_429_storm_slows_confirmations_and_releases_nothing_early(self, sim: Sim) -> None:
        await sim.admin.config(delete_seconds=0.5, rate_limit_rps=3.0, rate_limit_burst=1)
        async with sim.client(rate=50.0, burst=50) as client:
            answers = await self._confirm_all(sim, client, 8, force=True)

        assert {look.sighting for look, _ in answers.values()} == {Sighting.GONE}
        calls = await sim.admin.calls("show")
        assert any(c["status"] == 429 for c in calls), "the storm never hit a confirmation"
        ended = {d["instance_id"]: d["ended_at"] for d in await sim.admin.deletions()}
        for instance_id, (_, decided_at) in answers.items():
            assert decided_at >= ended[instance_id], "proven gone before the cloud had finished"

    async def test_binned_deletions_are_proven_by_the_recycle_bin_list_without_a_show(self, sim: Sim) -> None:
        await sim.admin.config(delete_seconds=0.5, recycle_bin_enabled=True)
        async with sim.client() as client:
            answers = await self._confirm_all(sim, client, 10, force=False)

        assert {look.sighting for look, _ in answers.values()} == {Sighting.RECYCLED}
        assert await sim.admin.calls("show") == []
        assert 1 <= len(await sim.admin.calls("recycle")) <= 8


class TestAuthentication:
    async def test_an_iam_token_is_accepted(self, sim: Sim) -> None:
        async with sim.client(credentials=signing.TokenCredentials(TOKEN)) as client:
            page = await client.list_instances(cloud.ListQuery())

        assert page.instance_num == 0

    async def test_temporary_credentials_sign_the_security_token(self, sim: Sim) -> None:
        async with sim.client(security_token="temporary-session-token") as client:
            page = await client.list_instances(cloud.ListQuery())

        assert page.instances == []

    async def test_awkward_query_values_survive_signature_verification(self, sim: Sim) -> None:
        async with sim.client() as client:
            page = await client.list_instances(cloud.ListQuery(name="a b+c/d~e%f测"))

        assert page.instances == []
        [call] = await sim.admin.calls("list")
        assert "name=a%20b%2Bc%2Fd~e%25f%E6%B5%8B" in call["query"]


class TestTls:
    @pytest.fixture
    async def tls_sim(self, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
        server = dms_simulator.SimulatorServer(
            dms_simulator.SimulatorConfig(**FAST.to_json()), accounts=_accounts(), use_tls=True
        )
        async with server:
            ca_file = tmp_path / "sim-ca.pem"
            server.write_ca(ca_file)
            yield server.url, ca_file

    async def test_the_simulators_certificate_is_refused_without_its_ca(self, tls_sim: tuple[str, Path]) -> None:
        url, _ = tls_sim
        async with dms_client.build_client(
            endpoint=url, project_id=PID, credentials=signing.AkSkCredentials(AK, SK), retry=QUICK_RETRY
        ) as client:
            with pytest.raises(errors.TransportError, match="TLS certificate verification failed"):
                await client.list_instances(cloud.ListQuery())

    async def test_the_simulators_ca_file_is_trusted(self, tls_sim: tuple[str, Path]) -> None:
        url, ca_file = tls_sim
        async with dms_client.build_client(
            endpoint=url, project_id=PID, credentials=signing.AkSkCredentials(AK, SK), ca_file=ca_file
        ) as client:
            page = await client.list_instances(cloud.ListQuery())

        assert page.instance_num == 0
