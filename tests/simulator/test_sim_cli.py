"""``dms-simulator`` as a process: one ``listening on`` line when ready, real HTTP(S), a clean exit 0
on SIGTERM or SIGINT, and flags that land in the config."""

from __future__ import annotations

import select
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sim_kit import AK, PID, SK, TOKEN, create_body

from dms_simulator.cli import build_parser, config_from
from dms_simulator.signing import sign_request

SCRIPT = Path(sys.executable).parent / "dms-simulator"
STARTUP_SECONDS = 60.0  # a loaded CI box can take a while to import aiohttp and cryptography


class Running:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the simulator printed nothing in time"
    return process.stdout.readline()


@pytest.fixture
def start() -> Iterator[Callable[..., Running]]:
    started: list[subprocess.Popen[str]] = []

    def run(*args: str) -> Running:
        process = subprocess.Popen([str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(process)
        line = read_line(process, STARTUP_SECONDS)
        assert line.startswith("listening on "), line
        return Running(process, line.removeprefix("listening on ").strip())

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def test_the_script_prints_one_line_serves_and_exits_0_on_sigterm(start: Callable[..., Running]) -> None:
    sim = start("--port", "0", "--account", f"{AK}:{SK}:{PID}", "--token", TOKEN, "--create-seconds", "0.1")
    assert sim.url.startswith("http://127.0.0.1:")
    assert httpx.get(sim.url + "/_sim/health").json() == {"ok": True}
    listed = httpx.get(f"{sim.url}/v2/{PID}/instances?engine=reliability", headers={"X-Auth-Token": TOKEN})
    assert listed.json() == {"instances": [], "instance_num": 0}
    assert sim.stop(signal.SIGTERM) == 0
    assert sim.process.stdout is not None and sim.process.stdout.read() == ""  # exactly one line


def test_sigint_also_exits_0(start: Callable[..., Running]) -> None:
    sim = start("--account", f"{AK}:{SK}:{PID}")
    assert sim.stop(signal.SIGINT) == 0


def test_the_access_key_flags_form_an_account_that_signs(start: Callable[..., Running]) -> None:
    sim = start("--access-key", AK, "--secret-key", SK, "--project-id", PID)
    url = f"{sim.url}/v2/reliability/{PID}/instances"
    body = httpx.Request("POST", url, json=create_body("rmq-cli")).read()
    headers = sign_request(
        method="POST",
        url=url,
        headers={"Content-Type": "application/json"},
        body=body,
        access_key=AK,
        secret_key=SK,
    )
    response = httpx.post(url, content=body, headers=headers)
    assert response.status_code == 200 and response.json()["instance_id"]
    assert sim.stop() == 0


def test_behaviour_flags_land_in_the_config(start: Callable[..., Running]) -> None:
    sim = start(
        "--account",
        f"{AK}:{SK}:{PID}",
        "--create-seconds",
        "0.5",
        "--delete-seconds",
        "0.25",
        "--batch-max-size",
        "50",
        "--rate-limit-rps",
        "20",
        "--recycle-bin",
        "--create-fail-share",
        "0.1",
        "--create-fail-name",
        "rmq-doomed",
        "--quota",
        "7",
        "--lenient",
        "--unknown-batch-ids",
        "success",
        "--seed",
        "3",
        "--list-shows-deleting",
    )
    config = httpx.get(sim.url + "/_sim/config").json()
    assert config == {
        **config,
        "create_seconds": 0.5,
        "delete_seconds": 0.25,
        "batch_max_size": 50,
        "rate_limit_rps": 20.0,
        "recycle_bin_enabled": True,
        "create_fail_share": 0.1,
        "create_fail_names": ["rmq-doomed"],
        "quota": 7,
        "strict": False,
        "unknown_batch_ids": "success",
        "seed": 3,
        "list_shows_deleting": True,
    }
    assert sim.stop() == 0


def test_the_list_hides_deleting_instances_unless_the_comparison_flag_is_given() -> None:
    account = ["--account", f"{AK}:{SK}:{PID}"]
    assert config_from(build_parser().parse_args(account)).list_shows_deleting is False
    flagged = build_parser().parse_args([*account, "--list-shows-deleting"])
    assert config_from(flagged).list_shows_deleting is True


def test_child_flags_set_batch_delete_times_and_quotas_and_default_to_the_config() -> None:
    account = ["--account", f"{AK}:{SK}:{PID}"]
    defaults = config_from(build_parser().parse_args(account))
    assert (defaults.topic_delete_seconds, defaults.group_delete_seconds) == (1.0, 1.0)
    flags = ["--topic-delete-seconds", "0", "--group-delete-seconds", "2.5", "--topic-quota", "3", "--group-quota", "4"]
    config = config_from(build_parser().parse_args([*account, *flags]))
    assert (config.topic_delete_seconds, config.group_delete_seconds) == (0.0, 2.5)
    assert (config.topic_quota, config.group_quota) == (3, 4)


def test_tls_serves_https_that_only_a_client_trusting_the_ca_accepts(
    start: Callable[..., Running], tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    sim = start("--tls", "--ca-file", str(ca_file), "--token", f"{TOKEN}:{PID}")
    assert sim.url.startswith("https://127.0.0.1:")
    trusting = ssl.create_default_context(cafile=str(ca_file))
    assert httpx.get(sim.url + "/_sim/health", verify=trusting).json() == {"ok": True}
    by_name = sim.url.replace("127.0.0.1", "localhost")
    assert httpx.get(by_name + "/_sim/health", verify=trusting).status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(sim.url + "/_sim/health")
    assert sim.stop() == 0


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--account", "only-two:parts"],
        ["--access-key", AK, "--project-id", PID],
        ["--token", "lonely"],
        ["--account", f"{AK}:{SK}:{PID}", "--ca-file", "ca.pem"],
        ["--account", f"{AK}:{SK}:{PID}", "--create-fail-share", "3"],
    ],
)
def test_bad_arguments_exit_2_with_a_message(args: list[str]) -> None:
    finished = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=STARTUP_SECONDS)
    assert finished.returncode == 2
    assert "dms-simulator: error:" in finished.stderr
    assert finished.stdout == ""
