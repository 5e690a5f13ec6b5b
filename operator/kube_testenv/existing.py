"""Using a cluster someone else runs, by envtest's convention.

``USE_EXISTING_CLUSTER=true`` means: build nothing, start nothing, talk to the cluster that ``KUBECONFIG``
(or ``~/.kube/config``) points at. That lets a developer run the same tests against kind, a real cluster,
or a control plane left running by ``python -m kube_testenv up``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .binaries import kubectl_path

USE_EXISTING_ENV = "USE_EXISTING_CLUSTER"


def use_existing_cluster(environ: Mapping[str, str] | None = None) -> bool:
    """Parsed as Go's strconv.ParseBool, as envtest does; anything unparsable means no."""
    value = (environ if environ is not None else os.environ).get(USE_EXISTING_ENV, "")
    return value in {"1", "t", "T", "true", "TRUE", "True"}


def existing_kubeconfig(workdir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """One kubeconfig file for the existing cluster.

    ``KUBECONFIG`` may list several files that kubectl merges; the rest of this package (and the Python
    client) wants one file, so a list is flattened, with kubectl's own merge rules, into ``workdir``.
    """
    env = environ if environ is not None else os.environ
    paths = [Path(p) for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if not paths:
        paths = [Path.home() / ".kube" / "config"]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{USE_EXISTING_ENV} is set but kubeconfig {', '.join(missing)} does not exist")
    if len(paths) == 1:
        return paths[0]
    # --kubeconfig takes one file; only the environment variable takes a list.
    merged = dict(env, KUBECONFIG=os.pathsep.join(str(p) for p in paths))
    argv = [str(kubectl_path()), "config", "view", "--flatten", "--minify", "--raw"]
    flat = subprocess.run(argv, env=merged, capture_output=True, text=True, check=True, timeout=60).stdout
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / "kubeconfig"
    target.write_text(flat)
    target.chmod(0o600)
    return target
