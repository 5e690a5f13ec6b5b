"""Which calls are sent again after which failures, how often, and how long the client waits.

The rule (retrying.py): reads and the idempotent deletes retry any transient failure; creates,
updates, resizes, restarts, tag writes and restores retry only what the cloud surely did not
process (429/.0308, connect-phase failures). Time is a fake clock: nothing really sleeps.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from client_kit import Cloud, FakeClock, Recorder, error, make_client, reply
from pydantic import SecretStr

from rocketmq_operator.adapters import dms_client, retrying
from rocketmq_operator.adapters.ratelimit import TokenBucket
from rocketmq_operator.adapters.retrying import RetryPolicy, Safety, retryable
from rocketmq_operator.core import cloud
from rocketmq_operator.ports import errors

CREATE_REQUEST = cloud.CreateInstanceRequest(
    name="rmq-a",
    engine_version="5.x",
    storage_space=300,
    vpc_id="vpc",
    subnet_id="subnet",
    security_group_id="sg",
    available_zones=["az1"],
    product_id="rocketmq.b2.large.4",
    storage_spec_code="dms.physical.storage.high.v2",
)

Call = Callable[[dms_client.DmsClient], Awaitable[Any]]

# operation name -> (how to call it, a successful answer)
OPERATIONS: dict[str, tuple[Call, httpx.Response]] = {
    "create": (lambda c: c.create_instance(CREATE_REQUEST), reply(200, {"instance_id": "i-1"})),
    "show": (lambda c: c.show_instance("i-1"), reply(200, {"instance_id": "i-1"})),
    "list": (lambda c: c.list_instances(cloud.ListQuery()), reply(200, {"instances": [], "instance_num": 0})),
    "update": (lambda c: c.update_instance("i-1", cloud.UpdateInstanceRequest(name="b")), reply(204)),
    "delete": (lambda c: c.delete_instance("i-1"), reply(204)),
    "batch_delete": (
        lambda c: c.delete_many(["i-1"]),
        reply(200, {"results": [{"instance": "i-1", "result": "success"}]}),
    ),
    "delete_all_failed": (lambda c: c.delete_all_failed(), reply(204)),
    "resize": (
        lambda c: c.resize_instance("i-1", cloud.ResizeRequest(oper_type="storage", new_storage_space=600)),
        reply(200, {"job_id": "j-1"}),
    ),
    "restart": (lambda c: c.restart_instance("i-1"), reply(200, {"instance_id": "i-1", "result": "success"})),
    "tags_create": (lambda c: c.create_tags("i-1", [cloud.Tag(key="k", value="v")]), reply(204)),
    "tags_delete": (lambda c: c.delete_tags("i-1", [cloud.Tag(key="k", value="v")]), reply(204)),
    "tags_list": (lambda c: c.list_tags("i-1"), reply(200, {"tags": []})),
    "recycle_list": (lambda c: c.list_recycle_bin(), reply(200, {"recycle_instances": []})),
    "recycle_restore": (lambda c: c.restore_from_recycle_bin(["i-1"]), reply(200, {"results": []})),
    "topic_create": (lambda c: c.create_topic("i-1", cloud.CreateTopicRequest(name="t-1")), reply(200, {"id": "t-1"})),
    "topic_list": (lambda c: c.list_topics("i-1", cloud.ChildPage()), reply(200, {"total": 0, "topics": []})),
    "topic_update": (lambda c: c.update_topic("i-1", "t-1", cloud.UpdateTopicRequest(permission="sub")), reply(204)),
    "topic_batch_delete": (lambda c: c.delete_children("i-1", "topic", ["t-1"]), reply(200, {"job_id": "j-1"})),
    "group_create": (
        lambda c: c.create_group("i-1", cloud.CreateGroupRequest(name="g-1")),
        reply(200, {"name": "g-1"}),
    ),
    "group_list": (lambda c: c.list_groups("i-1", cloud.ChildPage()), reply(200, {"total": 0, "groups": []})),
    "group_update": (
        lambda c: c.update_group(
            "i-1", "g-1", cloud.UpdateGroupRequest(enabled=True, broadcast=False, retry_max_time=3)
        ),
        reply(204),
    ),
    "group_batch_delete": (lambda c: c.delete_children("i-1", "group", ["g-1"]), reply(200, {"job_id": "j-1"})),
    "task_show": (
        lambda c: c.show_task("i-1", "j-1"),
        reply(200, {"task_count": "1", "tasks": [{"id": "j-1", "status": "SUCCESS"}]}),
    ),
    "user_create": (
        lambda c: c.create_user("i-1", cloud.CreateUserRequest(access_key="app-user", secret_key=SecretStr("Ab1-x"))),
        reply(200, {"access_key": "app-user"}),
    ),
    "user_list": (lambda c: c.list_users("i-1", cloud.ChildPage()), reply(200, {"total": 0, "users": []})),
    "user_update": (
        lambda c: c.update_user("i-1", "app-user", cloud.UpdateUserRequest(admin=True)),
        reply(200, {"access_key": "app-user"}),
    ),
    "user_delete": (lambda c: c.delete_user("i-1", "app-user"), reply(200, {"message": "success"})),
}

READS = {"show", "list", "tags_list", "recycle_list", "topic_list", "group_list", "task_show", "user_list"}
IDEMPOTENT = {
    "delete",
    "batch_delete",
    "delete_all_failed",
    "topic_batch_delete",
    "group_batch_delete",
    "user_update",
    "user_delete",
}
UNSAFE = {
    "create",
    "update",
    "resize",
    "restart",
    "tags_create",
    "tags_delete",
    "recycle_restore",
    "topic_create",
    "topic_update",
    "group_create",
    "group_update",
    "user_create",
}


def _certificate_failure() -> httpx.ConnectError:
    try:
        try:
            raise ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
        except ssl.SSLCertVerificationError as exc:
            raise httpx.ConnectError(str(exc)) from exc
    except httpx.ConnectError as wrapped:
        return wrapped


FAILURES: dict[str, Callable[[], httpx.Response | Exception]] = {
    "5xx": lambda: error(500, "DMS.00500000"),
    "read timeout": lambda: httpx.ReadTimeout("timed out"),
    "hung up": lambda: httpx.RemoteProtocolError("Server disconnected without sending a response."),
    "connect refused": lambda: httpx.ConnectError("refused"),
    "connect timeout": lambda: httpx.ConnectTimeout("timed out"),
    "no pooled connection": lambda: httpx.PoolTimeout("timed out"),
    "429": lambda: error(429, "APIGW.0308", Retry_After="1"),
    "wrong state": lambda: error(400, "DMS.00400026"),
    "not found": lambda: error(404, "DMS.00404022"),
    "auth": lambda: error(401, "APIGW.0301"),
    "invalid": lambda: error(400, "DMS.00400010"),
    "quota": lambda: error(400, "DMS.00400039"),
    "malformed": lambda: reply(200, b"not json"),
    "bad certificate": _certificate_failure,
}

ALWAYS = {"429", "connect refused", "connect timeout", "no pooled connection"}
AMBIGUOUS = {"5xx", "read timeout", "hung up"}


# Operations whose success body is not read: an unreadable one is no failure for them.
BODY_UNREAD = {
    "update",
    "delete",
    "delete_all_failed",
    "tags_create",
    "tags_delete",
    "topic_create",
    "topic_update",
    "group_create",
    "group_update",
    "user_create",
    "user_update",
    "user_delete",
}


def _expected_retry(operation: str, failure: str) -> bool:
    if failure in ALWAYS:
        return True
    return failure in AMBIGUOUS and operation not in UNSAFE


def test_every_operation_is_classified() -> None:
    assert READS | IDEMPOTENT | UNSAFE == set(OPERATIONS) == {op.name for op in dms_client.OPERATIONS}
    for op in dms_client.OPERATIONS:
        expected = Safety.READ if op.name in READS else Safety.IDEMPOTENT if op.name in IDEMPOTENT else Safety.UNSAFE
        assert op.safety is expected, op.name


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_retry_table(operation: str, failure: str) -> None:
    call, success = OPERATIONS[operation]
    cloud_ = Cloud(answers=[FAILURES[failure](), success])
    retried = _expected_retry(operation, failure)

    async with make_client(cloud_) as client:
        if retried or (failure == "malformed" and operation in BODY_UNREAD):
            await call(client)
        else:
            with pytest.raises(errors.CloudError):
                await call(client)

    assert cloud_.attempts == (2 if retried else 1)


async def test_attempts_stop_at_max_attempts_and_the_last_error_surfaces() -> None:
    cloud_ = Cloud(default=error(503, "DMS.00503000", "busy"))
    recorder = Recorder()

    async with make_client(cloud_, recorder=recorder, retry=RetryPolicy(max_attempts=3)) as client:
        with pytest.raises(errors.ServerError, match="busy"):
            await client.show_instance("i-1")

    assert cloud_.attempts == 3
    assert recorder.records == [("show", "CloudServerError")] * 3


async def test_backoff_is_exponential_with_equal_jitter_and_capped() -> None:
    clock = FakeClock()
    cloud_ = Cloud(default=error(500, "DMS.00500000"))
    policy = RetryPolicy(max_attempts=6, deadline=1000.0, base_delay=1.0, max_delay=5.0)

    async with make_client(cloud_, clock=clock, retry=policy, jitter=0.5) as client:
        with pytest.raises(errors.ServerError):
            await client.list_instances(cloud.ListQuery())

    # ceiling 1, 2, 4, 5 (capped), 5; half fixed + half * jitter(0.5) = 0.75 * ceiling
    assert clock.sleeps == pytest.approx([0.75, 1.5, 3.0, 3.75, 3.75])


@pytest.mark.parametrize(("jitter", "delay"), [(0.0, 2.0), (0.999, 3.998)])
def test_jitter_spreads_between_half_and_the_whole_ceiling(jitter: float, delay: float) -> None:
    assert RetryPolicy(base_delay=1.0, max_delay=8.0).backoff(3, jitter) == pytest.approx(delay)


async def test_no_attempt_starts_after_the_deadline() -> None:
    clock = FakeClock()
    cloud_ = Cloud(default=error(500, "DMS.00500000"))
    policy = RetryPolicy(max_attempts=10, deadline=2.0, base_delay=1.0, max_delay=1.0)

    async with make_client(cloud_, clock=clock, retry=policy, jitter=0.0) as client:
        with pytest.raises(errors.ServerError):
            await client.show_instance("i-1")

    # waits of 0.5 s each: attempts at 0, 0.5, 1.0, 1.5, 2.0; a sixth would start after 2.0
    assert cloud_.attempts == 5
    assert sum(clock.sleeps) <= 2.0


async def test_retry_after_is_honoured_without_a_bucket() -> None:
    clock = FakeClock()
    cloud_ = Cloud(answers=[error(429, "APIGW.0308", Retry_After="7"), reply(200, {"instance_id": "i-1"})])

    async with make_client(cloud_, clock=clock) as client:
        await client.show_instance("i-1")

    assert clock.sleeps == [7.0]


async def test_retry_after_without_a_header_waits_the_default_two_seconds() -> None:
    clock = FakeClock()
    cloud_ = Cloud(answers=[error(429, "APIGW.0308"), reply(200, {"instance_id": "i-1"})])

    async with make_client(cloud_, clock=clock) as client:
        await client.show_instance("i-1")

    assert clock.sleeps == [2.0]


async def test_a_retry_after_beyond_the_deadline_surfaces_at_once() -> None:
    clock = FakeClock()
    cloud_ = Cloud(answers=[error(429, "APIGW.0308", Retry_After="600")])

    async with make_client(cloud_, clock=clock, retry=RetryPolicy(deadline=60.0)) as client:
        with pytest.raises(errors.Throttled) as caught:
            await client.create_instance(CREATE_REQUEST)

    assert caught.value.retry_after == 600.0
    assert clock.sleeps == []


async def test_a_429_pauses_every_caller_of_the_account_not_just_the_one_that_got_it() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, 10, clock=clock, sleep=clock.sleep)
    throttled = asyncio.Event()
    sent_at: dict[str, list[float]] = {}

    def cloud_answer(request: httpx.Request) -> httpx.Response:
        instance = request.url.path.rsplit("/", 1)[1]
        sent_at.setdefault(instance, []).append(clock.now)
        if instance == "a" and len(sent_at["a"]) == 1:
            throttled.set()
            return error(429, "APIGW.0308", Retry_After="5")
        return reply(200, {"instance_id": instance})

    async with make_client(Cloud(default=cloud_answer), clock=clock, bucket=bucket) as client:

        async def other_caller() -> None:
            await throttled.wait()
            await client.show_instance("b")

        await asyncio.gather(client.show_instance("a"), other_caller())

    assert sent_at["a"][1] == pytest.approx(1005.0)
    assert sent_at["b"][0] >= 1005.0  # b never asked during a's pause
    assert clock.sleeps[0] == pytest.approx(5.0)  # waited once, inside the bucket


async def test_a_throttled_call_that_gives_up_still_pauses_the_account() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, 10, clock=clock, sleep=clock.sleep)
    cloud_ = Cloud(answers=[error(429, "APIGW.0308", Retry_After="30")])

    async with make_client(cloud_, clock=clock, bucket=bucket, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(errors.Throttled):
            await client.show_instance("i-1")

    assert bucket.paused_until == pytest.approx(1030.0)


async def test_every_call_waits_for_a_token_from_the_accounts_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 1, clock=clock, sleep=clock.sleep)
    cloud_ = Cloud(default=reply(200, {"instance_id": "i-1"}))

    async with make_client(cloud_, clock=clock, bucket=bucket) as client:
        for _ in range(3):
            await client.show_instance("i-1")

    assert clock.sleeps == pytest.approx([0.5, 0.5])


async def test_every_attempt_is_recorded_with_its_outcome_and_duration() -> None:
    clock = FakeClock()
    recorder = Recorder()
    cloud_ = Cloud(
        answers=[
            httpx.ConnectError("refused"),
            error(429, "APIGW.0308", Retry_After="1"),
            reply(200, {"instance_id": "i-1"}),
        ]
    )

    async with make_client(cloud_, clock=clock, recorder=recorder) as client:
        await client.create_instance(CREATE_REQUEST)

    assert recorder.records == [("create", "CloudUnreachable"), ("create", "Throttled"), ("create", "ok")]
    assert recorder.seconds == [0.0, 0.0, 0.0]  # the fake clock does not move during a mock exchange


def test_a_certificate_failure_is_never_worth_retrying() -> None:
    err = errors.TransportError("tls")
    err.__cause__ = _certificate_failure()

    assert not retryable(Safety.READ, err)
    assert not retryable(Safety.UNSAFE, err)


@pytest.mark.parametrize(
    "policy",
    [
        {"max_attempts": 0},
        {"deadline": 0.0},
        {"base_delay": -1.0},
        {"base_delay": 5.0, "max_delay": 1.0},
    ],
)
def test_nonsense_policies_are_refused(policy: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        RetryPolicy(**policy)


# ---- no retry storms: one wait per 429, and refused credentials are not sent again -------------


async def test_a_second_429_surfaces_instead_of_waiting_again() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, 10, clock=clock, sleep=clock.sleep)
    cloud_ = Cloud(default=error(429, "APIGW.0308", Retry_After="2"))

    async with make_client(cloud_, clock=clock, bucket=bucket) as client:
        with pytest.raises(errors.Throttled):
            await client.show_instance("i-1")

    assert cloud_.attempts == 2  # not max_attempts: the caller above reschedules and says Throttled


async def test_a_429_slows_the_account_down_for_every_caller() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, 10, clock=clock, sleep=clock.sleep)
    cloud_ = Cloud(answers=[error(429, "APIGW.0308", Retry_After="1")], default=reply(200, {"instance_id": "i-1"}))

    async with make_client(cloud_, clock=clock, bucket=bucket) as client:
        await client.show_instance("i-1")

    assert bucket.current_rate() < 10.0


AUTH_REFUSED = error(401, "APIGW.0301", "Incorrect IAM authentication information: the signature does not match")


async def test_refused_credentials_fail_the_next_calls_without_sending_them() -> None:
    clock = FakeClock()
    cloud_ = Cloud(default=AUTH_REFUSED)

    messages = set()
    async with make_client(cloud_, clock=clock) as client:
        with pytest.raises(errors.AuthFailed):
            await client.list_instances(cloud.ListQuery())
        for call, _ in OPERATIONS.values():
            with pytest.raises(errors.AuthFailed, match="not sent: the cloud refused these credentials") as caught:
                await call(client)
            assert caught.value.terminal
            assert caught.value.code == "APIGW.0301"
            messages.add(caught.value.message)
            clock.now += 1.0

    assert cloud_.attempts == 1
    assert len(messages) == 1, "one text while it lasts: CR conditions are not rewritten every pass"


async def test_after_the_pause_one_probe_goes_and_each_refusal_doubles_the_pause_up_to_the_cap() -> None:
    clock = FakeClock()
    cloud_ = Cloud(default=AUTH_REFUSED)
    sent_at: list[float] = []

    gate = retrying.CredentialGate(base=30.0, cap=100.0, clock=clock)
    async with make_client(cloud_, clock=clock, gate=gate) as client:
        for _ in range(200):  # a caller trying once a second for 200 s
            attempts = cloud_.attempts
            with pytest.raises(errors.AuthFailed):
                await client.show_instance("i-1")
            if cloud_.attempts > attempts:
                sent_at.append(clock.now - 1000.0)
            clock.now += 1.0

    # refused at 0; closed 30 s, then 60 s, then capped at 100 s
    assert sent_at == [0.0, 30.0, 90.0, 190.0]


async def test_one_accepted_call_opens_the_gate_again() -> None:
    clock = FakeClock()
    cloud_ = Cloud(answers=[AUTH_REFUSED], default=reply(200, {"instance_id": "i-1"}))

    async with make_client(cloud_, clock=clock) as client:
        with pytest.raises(errors.AuthFailed):
            await client.show_instance("i-1")
        clock.now += 30.0
        await client.show_instance("i-1")  # the probe is accepted (say, the key was re-enabled)
        await client.show_instance("i-1")
        await client.show_instance("i-1")

    assert cloud_.attempts == 4


def test_nonsense_gates_are_refused() -> None:
    with pytest.raises(ValueError, match="base"):
        retrying.CredentialGate(base=10.0, cap=5.0, clock=lambda: 0.0)


async def test_the_client_says_when_the_cloud_throttles_the_account_in_words_that_do_not_move() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, 10, clock=clock, sleep=clock.sleep)
    cloud_ = Cloud(answers=[error(429, "APIGW.0308", Retry_After="1")], default=reply(200, {"instance_id": "i-1"}))

    async with make_client(cloud_, clock=clock, bucket=bucket) as client:
        assert client.throttling() is None
        await client.show_instance("i-1")
        first = client.throttling()
        clock.now += 3.0
        later = client.throttling()
        clock.now += 600.0
        recovered = client.throttling()

    assert first is not None and "429" in first and "10/s" in first
    assert later == first  # the same text while it lasts: conditions are not rewritten every pass
    assert recovered is None
