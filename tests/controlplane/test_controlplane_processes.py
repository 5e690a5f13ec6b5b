"""No run leaves a process behind, however it ends; a failed start explains itself; an existing cluster is
used as it is, with nothing built or started.

Processes are found the way a person would look for leftovers: every process on the machine whose
command line mentions the control plane's working directory (etcd's --data-dir, kube-apiserver's
--cert-dir, kube-controller-manager's --kubeconfig all live there).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kube_testenv import Binaries, ControlPlane, ControlPlaneError, use_existing_cluster
from kube_testenv.processes import DEFAULT_GRACE_SECONDS

pytestmark = pytest.mark.controlplane

local_only = pytest.mark.skipif(use_existing_cluster(), reason="USE_EXISTING_CLUSTER: starts local control planes")

COMPONENTS = {"etcd", "kube-apiserver", "kube-controller-manager"}
READY_TIMEOUT = 120.0
GONE_TIMEOUT = 20.0

# Runs in a separate Python process that the test then kills. The working directory comes through the
# environment so that this process's own command line never matches the leftover search.
CHILD = """
import os, time
from pathlib import Path
from kube_testenv import ControlPlane

cp = ControlPlane(workdir=Path(os.environ["KT_WORKDIR"]), use_existing=False).start()
Path(os.environ["KT_READY"]).write_text(cp.server_url)
time.sleep(3600)
"""


def processes_mentioning(text: str) -> dict[int, str]:
    """pid -> executable name of every live process whose argv contains ``text`` (zombies have none)."""
    found: dict[int, str] = {}
    needle = text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # exited while we looked
            continue
        if any(needle in arg for arg in argv):
            found[int(entry.name)] = Path(argv[0].decode(errors="replace")).name
    return found


def children_of(pid: int) -> dict[int, str]:
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        # Field 4 (after the parenthesised command name, which may contain spaces) is the parent pid.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and argv0:
            found[int(entry.name)] = Path(argv0.decode(errors="replace")).name
    return found


def wait_until(
    what: str, check: Callable[[], bool], timeout: float, child: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if child is not None and child.poll() is not None:
            pytest.fail(f"child exited with {child.returncode} before {what}")
        assert time.monotonic() < deadline, f"not within {timeout:.0f}s: {what}"
        time.sleep(0.1)


def alive(pids: dict[int, str]) -> dict[int, str]:
    """Those of ``pids`` still running the same program (pids can be reused)."""
    still: dict[int, str] = {}
    for pid, name in pids.items():
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if argv0 and Path(argv0.decode(errors="replace")).name == name:
            still[pid] = name
    return still


@local_only
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_no_process_survives_its_python_parent(
    control_plane_binaries: Binaries, tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGKILL runs no Python code at all: only PDEATHSIG can stop the children then."""
    workdir, ready, stderr = tmp_path / "cp", tmp_path / "ready", tmp_path / "child.stderr"
    env = dict(
        os.environ,
        KUBEBUILDER_ASSETS=str(control_plane_binaries.folder),
        KT_WORKDIR=str(workdir),
        KT_READY=str(ready),
    )
    env.pop("USE_EXISTING_CLUSTER", None)
    with open(stderr, "wb") as err:
        child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=err, stderr=err)
    try:
        wait_until("the child's control plane is ready", ready.exists, READY_TIMEOUT, child)
        started = processes_mentioning(str(workdir))
        assert set(started.values()) == COMPONENTS, "the leftover search must see the running control plane"

        child.send_signal(sig)
        code = child.wait(timeout=60)

        wait_until(f"no process mentions {workdir}", lambda: not processes_mentioning(str(workdir)), GONE_TIMEOUT)
        if sig == signal.SIGTERM:
            assert code == 128 + signal.SIGTERM, stderr.read_text()
        elif sig == signal.SIGINT:
            assert "KeyboardInterrupt" in stderr.read_text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# A child that takes its whole grace period to stop: it notes the SIGTERM and carries on.
STUBBORN_CHILD = """
import os, time
from pathlib import Path
from kube_testenv import ManagedProcess

script = 'trap "touch $KT_TERMED" TERM; touch "$KT_READY"; while :; do sleep 0.1; done'
ManagedProcess("stubborn", ["sh", "-c", script], log_path=Path(os.environ["KT_LOG"])).start()
time.sleep(3600)
"""


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_second_signal_while_stopping_kills_at_once_instead_of_hanging(
    tmp_path: Path, second: signal.Signals
) -> None:
    """A second Ctrl-C (or CI's SIGTERM during a teardown) arrives while the first stop waits out its grace
    period. It used to start a whole second stop from inside the first: another grace period per child,
    and a hang for good if the signal landed while the first held its Popen's waitpid lock."""
    ready, termed, stderr = tmp_path / "ready", tmp_path / "termed", tmp_path / "parent.stderr"
    env = dict(os.environ, KT_READY=str(ready), KT_TERMED=str(termed), KT_LOG=str(tmp_path / "stubborn.log"))
    with open(stderr, "wb") as err:
        parent = subprocess.Popen([sys.executable, "-c", STUBBORN_CHILD], env=env, stdout=err, stderr=err)
    try:
        wait_until("the stubborn child runs", ready.exists, 30.0, parent)
        stubborn = children_of(parent.pid)
        assert list(stubborn.values()) == ["sh"]

        parent.send_signal(signal.SIGTERM)
        wait_until("the first stop has sent SIGTERM and is waiting", termed.exists, 30.0, parent)
        parent.send_signal(second)
        asked = time.monotonic()
        code = parent.wait(timeout=30)
        assert time.monotonic() - asked < DEFAULT_GRACE_SECONDS, "the second signal must not wait out a grace"

        wait_until("the stubborn child is gone", lambda: alive(stubborn) == {}, GONE_TIMEOUT)
        if second == signal.SIGTERM:
            assert code == 128 + signal.SIGTERM, stderr.read_text()
        else:
            assert "KeyboardInterrupt" in stderr.read_text()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    for child in stubborn:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


@local_only
def test_stop_leaves_no_process_and_removes_its_files(control_plane_binaries: Binaries) -> None:
    with ControlPlane(binaries=control_plane_binaries, use_existing=False) as cp:
        workdir = cp.workdir
        assert workdir is not None
        assert set(processes_mentioning(str(workdir)).values()) == COMPONENTS
        assert cp.kubeconfig_path.is_file()
    assert processes_mentioning(str(workdir)) == {}
    assert not workdir.exists()


@local_only
def test_control_plane_started_from_a_short_lived_thread_outlives_the_thread(
    control_plane_binaries: Binaries, tmp_path: Path
) -> None:
    """PDEATHSIG fires when the forking *thread* exits; the children must not die with it."""
    cp = ControlPlane(binaries=control_plane_binaries, workdir=tmp_path / "cp", use_existing=False)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            cp.start()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    try:
        assert errors == []
        time.sleep(1.0)  # PDEATHSIG would have been delivered at once
        assert [p.name for p in cp.processes if p.is_running()] == [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
        ]
        cp.kubectl("get", "namespaces")
    finally:
        cp.stop()
    assert processes_mentioning(str(tmp_path / "cp")) == {}


@local_only
def test_failed_start_shows_the_failing_process_log_and_cleans_up(
    control_plane_binaries: Binaries, tmp_path: Path
) -> None:
    workdir = tmp_path / "cp"
    cp = ControlPlane(
        binaries=control_plane_binaries,
        workdir=workdir,
        apiserver_args=["--no-such-flag=1"],
        use_existing=False,
    )
    with pytest.raises(ControlPlaneError) as failed:
        cp.start()
    message = str(failed.value)
    assert "kube-apiserver exited with code" in message
    assert "unknown flag: --no-such-flag" in message  # from the apiserver's own log
    assert str(workdir / "logs" / "kube-apiserver.log") in message
    # etcd, already running when the apiserver failed, was stopped too.
    assert processes_mentioning(str(workdir)) == {}


@local_only
def test_cli_up_serves_until_interrupted_then_removes_everything(
    control_plane_binaries: Binaries, tmp_path: Path
) -> None:
    kubeconfig, logs, out = tmp_path / "kubeconfig", tmp_path / "logs", tmp_path / "cli.out"
    env = dict(os.environ, KUBEBUILDER_ASSETS=str(control_plane_binaries.folder))
    with open(out, "wb") as output:
        cli = subprocess.Popen(
            [sys.executable, "-m", "kube_testenv", "up", f"--kubeconfig-out={kubeconfig}", f"--log-dir={logs}"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        wait_until("the CLI writes the kubeconfig", kubeconfig.exists, READY_TIMEOUT, cli)
        wait_until("the CLI prints how to connect", lambda: "kubectl get ns" in out.read_text(), 10.0, cli)
        assert f"export KUBECONFIG={kubeconfig}" in out.read_text()
        components = children_of(cli.pid)
        assert set(components.values()) == COMPONENTS

        ns = subprocess.run(
            [str(Path(sys.prefix) / "bin" / "kubectl"), "get", "ns", "default", "-o", "name"],
            env=dict(os.environ, KUBECONFIG=str(kubeconfig)),
            capture_output=True,
            text=True,
            check=True,
        )
        assert ns.stdout.strip() == "namespace/default"

        cli.send_signal(signal.SIGINT)  # what Ctrl-C in its terminal does
        assert cli.wait(timeout=60) == 0, out.read_text()
        assert alive(components) == {}
        assert not kubeconfig.exists()
        assert (logs / "kube-apiserver.log").stat().st_size > 0
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def test_existing_cluster_mode_builds_and_starts_nothing(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("USE_EXISTING_CLUSTER", "true")
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig_path))
    # Any attempt to find binaries would fail loudly on this.
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path / "no-binaries-here"))
    before = children_of(os.getpid())

    with ControlPlane() as existing:
        assert existing.use_existing
        assert existing.processes == []
        assert existing.kubeconfig_path == control_plane.kubeconfig_path
        assert existing.server_url == control_plane.server_url
        assert "namespace/default" in existing.kubectl("get", "namespaces", "-o", "name").stdout
        assert children_of(os.getpid()) == before

    # Stopping it touched nothing of the cluster it borrowed.
    assert control_plane.kubeconfig_path.is_file()
    assert all(p.is_running() for p in control_plane.processes)
    control_plane.kubectl("get", "namespaces")


def test_existing_cluster_kubeconfig_list_is_merged_like_kubectl_does(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = tmp_path / "other.kubeconfig"
    other.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: elsewhere\n"
        "clusters: [{name: elsewhere, cluster: {server: 'https://192.0.2.1:6443'}}]\n"
        "users: [{name: elsewhere, user: {token: nope}}]\n"
        "contexts: [{name: elsewhere, context: {cluster: elsewhere, user: elsewhere}}]\n"
    )
    monkeypatch.setenv("USE_EXISTING_CLUSTER", "1")
    # The first file that sets current-context wins, as with kubectl.
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(control_plane.kubeconfig_path), str(other)]))

    with ControlPlane() as existing:
        assert existing.processes == []
        assert existing.kubeconfig_path != control_plane.kubeconfig_path
        assert existing.server_url == control_plane.server_url
        existing.kubectl("get", "namespaces")
