"""Runs ``rocketmq-operator run`` as a child process, as a user (or a Deployment) would."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from kube_testenv import ManagedProcess, ProcessError, free_ports

from .simulator_process import console_script


class OperatorProcess:
    """The operator with a kubeconfig and DMS_* settings; ready when its liveness probe answers."""

    def __init__(
        self,
        *,
        kubeconfig: Path,
        settings: Mapping[str, str],
        log_path: Path,
        namespaces: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        verbose: bool = True,
    ) -> None:
        self.liveness_port, self.metrics_port = free_ports(2)
        argv = [
            console_script("rocketmq-operator"),
            "run",
            "--liveness",
            f"http://127.0.0.1:{self.liveness_port}/healthz",
            "--metrics-port",
            str(self.metrics_port),
            "--metrics-host",
            "127.0.0.1",
        ]
        for namespace in namespaces:
            argv += ["--namespace", namespace]
        if verbose:
            argv.append("--verbose")
        argv += list(extra_args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DMS_")}
        env.update({"KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1", **settings})
        self.log_path = log_path
        self._argv = argv
        self._env = env
        self.process = ManagedProcess("rocketmq-operator", argv, log_path=log_path, env=env)
        self.restarts = 0

    def start(self, timeout: float = 60.0) -> None:
        if self.restarts == 0:
            self.log_path.unlink(missing_ok=True)
        self.process.start()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ProcessError(f"rocketmq-operator exited with {code}:\n{self.process.log_tail(60)}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ProcessError(f"rocketmq-operator not live within {timeout}s:\n{self.process.log_tail(60)}")

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5.0).text

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no cleanup runs."""
        pid = self.process.pid
        if pid is not None and self.process.is_running():
            os.killpg(pid, signal.SIGKILL)
        self.process.stop(grace=5.0)

    def restart(self, timeout: float = 60.0) -> None:
        """A fresh process with the same arguments (after ``kill`` or ``stop``)."""
        self.process.stop()
        self.process = ManagedProcess("rocketmq-operator", self._argv, log_path=self.log_path, env=self._env)
        self.restarts += 1
        self.start(timeout)

    def stop(self) -> int | None:
        return self.process.stop(grace=15.0)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
