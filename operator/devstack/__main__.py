"""``python -m devstack`` (``make run``): the operator on the local default.

Brings up a real control plane (etcd, kube-apiserver, kube-controller-manager), the simulated
DMS cloud and the operator, each as its own process; installs the CRDs; applies ``examples/``;
waits for the instances, then their topics, groups and users, to become Ready; then tells you how to
look around. Ctrl-C stops all.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kube_testenv import ControlPlane, ControlPlaneError, ProcessError, kubectl_path

from . import EXAMPLES
from .operator_process import OperatorProcess
from .simulator_process import SimulatorProcess, console_script

LOCAL = Path(".local")


def _say(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)


CRDS = (
    "rocketmqinstances.dms.rocketmq-operator.io",
    "rocketmqtopics.dms.rocketmq-operator.io",
    "rocketmqconsumergroups.dms.rocketmq-operator.io",
    "rocketmqusers.dms.rocketmq-operator.io",
    "rocketmqaccounts.dms.rocketmq-operator.io",
    "clusterrocketmqaccounts.dms.rocketmq-operator.io",
)


def install_crd(control_plane: ControlPlane) -> None:
    """Every CRD the operator serves, as ``rocketmq-operator crd --kind all`` prints them."""
    crd = subprocess.run(
        [console_script("rocketmq-operator"), "crd", "--kind", "all"], check=True, capture_output=True, text=True
    )
    control_plane.kubectl("apply", "-f", "-", input=crd.stdout)
    control_plane.kubectl("wait", "--for=condition=Established", *(f"crd/{name}" for name in CRDS), "--timeout=60s")


def operator_settings(simulator: SimulatorProcess, **overrides: str) -> dict[str, str]:
    """Settings for a local run: short intervals so that a person sees things happen."""
    return {
        **simulator.operator_env(),
        "DMS_POLL_INTERVAL_SECONDS": "2",
        "DMS_VERIFY_INTERVAL_SECONDS": "1",
        "DMS_BATCH_WINDOW_SECONDS": "1",
        "DMS_SWEEP_INTERVAL_SECONDS": "20",
        "DMS_CLUSTER_ID": "local-devstack",
        **overrides,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument(
        "--examples",
        type=Path,
        nargs="*",
        default=[Path(path) for path in EXAMPLES],
        help="manifests to apply in the default namespace (instances, then their topics, groups and users)",
    )
    parser.add_argument("--create-seconds", default="8", help="simulated time to create an instance")
    parser.add_argument("--delete-seconds", default="4", help="simulated time to delete an instance")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the examples to become Ready")
    args = parser.parse_args(argv)

    LOCAL.mkdir(exist_ok=True)
    (LOCAL / ".gitignore").write_text("*\n")
    logs = (LOCAL / "logs").absolute()
    shutil.rmtree(logs, ignore_errors=True)
    kubeconfig = (LOCAL / "kubeconfig").absolute()

    _say("starting etcd, kube-apiserver, kube-controller-manager (the first run builds them: ~11 min)")
    control_plane = ControlPlane(kubeconfig_out=kubeconfig, log_dir=logs / "controlplane", use_existing=False)
    simulator = SimulatorProcess(
        log_path=logs / "dms-simulator.log",
        extra_args=["--create-seconds", args.create_seconds, "--delete-seconds", args.delete_seconds],
    )
    operator: OperatorProcess | None = None
    try:
        with control_plane:
            _say(f"control plane ready at {control_plane.server_url} ({control_plane.startup_seconds or 0:.1f}s)")
            simulator.start()
            _say(f"simulated DMS cloud at {simulator.url}")
            install_crd(control_plane)
            operator = OperatorProcess(
                kubeconfig=control_plane.kubeconfig_path,
                settings=operator_settings(simulator),
                log_path=logs / "rocketmq-operator.log",
            )
            operator.start()
            _say(f"operator running (log: {operator.log_path})")
            examples = [path for path in args.examples if path.exists()]
            for path in examples:
                control_plane.kubectl("apply", "-n", "default", "-f", str(path))
                _say(f"applied {path}")
            if examples:
                if not args.no_wait:
                    _say("waiting for the instances, then their topics, groups and users, to become Ready ...")
                    for kind in ("rmqi", "rmqt", "rmqg", "rmqu"):
                        control_plane.kubectl(
                            "wait",
                            "-n",
                            "default",
                            "--for=condition=Ready",
                            kind,
                            "--all",
                            "--timeout=180s",
                            timeout=200,
                        )
                print(control_plane.kubectl("get", "rmqi,rmqt,rmqg,rmqu", "-n", "default").stdout, flush=True)
            _print_help(kubeconfig, simulator.url, logs)
            while True:
                control_plane.check_alive()
                for process in (simulator.process, operator.process):
                    code = process.poll()
                    if code is not None:
                        raise ProcessError(f"{process.name} exited with {code}:\n{process.log_tail()}")
                time.sleep(1.0)
    except KeyboardInterrupt:
        _say("stopping")
        return 0
    except (ControlPlaneError, ProcessError) as exc:
        _say(str(exc))
        return 1
    finally:
        if operator is not None:
            operator.stop()
        simulator.stop()


def _print_help(kubeconfig: Path, simulator_url: str, logs: Path) -> None:
    kubectl = kubectl_path()
    print(
        "\nEverything is up. In another terminal:\n\n"
        f"  export KUBECONFIG={shlex.quote(str(kubeconfig))}\n"
        f"  export PATH={shlex.quote(str(kubectl.parent))}:$PATH\n"
        "  kubectl get rmqi                        # instance id, cloud status, Ready, reason\n"
        "  kubectl get rocketmq                    # instances, topics, consumer groups and users\n"
        "  kubectl describe rmqi orders            # conditions and events\n"
        "  kubectl get rmqu                        # ACL users of orders (examples/users.yaml)\n"
        "  kubectl get secret order-service-rocketmq -o yaml  # a user's keys and endpoints, for envFrom\n"
        "  kubectl delete rmqt --all --wait=false  # the topics of each instance go in ONE call\n"
        "  kubectl delete rmqi --all --wait=false  # both go in ONE batch delete call\n"
        "  kubectl get rmqi -o yaml                # status.deletion: batch id, size, result\n"
        f"  curl -s {simulator_url}/_sim/calls      # every call the cloud served\n\n"
        f"Logs: {logs}\nCtrl-C stops everything.\n",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
