"""Running the virtualenv's kubectl against a given kubeconfig.

Tests, the CLI and the local dev stack all shell out to kubectl the same way: the venv's binary (never the
one on PATH), an explicit ``--kubeconfig`` (never the user's ``~/.kube/config`` by accident), text I/O,
and an error that shows kubectl's stderr, since a bare "exit status 1" explains nothing.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .binaries import kubectl_path


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {self.stderr}".rstrip()


def run_kubectl(
    kubeconfig: Path,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 120.0,
    cache_dir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``kubectl --kubeconfig=<kubeconfig> <args>``; raises :class:`KubectlError` if ``check`` and it fails.

    ``input`` is named as in :func:`subprocess.run`. ``cache_dir`` keeps kubectl's discovery cache out of
    ``~/.kube/cache``, which would otherwise collect one folder per throwaway control plane.
    """
    cache = [f"--cache-dir={cache_dir}"] if cache_dir is not None else []
    argv = [str(kubectl_path()), f"--kubeconfig={kubeconfig}", *cache, *args]
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if check and result.returncode != 0:
        raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
    return result
