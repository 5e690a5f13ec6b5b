"""``python -m kube_testenv``: a local control plane for humans.

``up`` starts etcd, kube-apiserver and kube-controller-manager, writes an admin kubeconfig to a stable
path (so that a second terminal, an IDE or the operator can use it), prints how to reach it, and keeps
running until Ctrl-C or SIGTERM, then removes everything it started, kubeconfig included.
``binaries`` prints (building if needed) the folder with the binaries, e.g. for ``KUBEBUILDER_ASSETS``.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .binaries import kubectl_path, locate_binaries
from .controlplane import DEFAULT_START_TIMEOUT_SECONDS, ControlPlane, ControlPlaneError

LOCAL_DIR = Path(".local")


def _ensure_local_dir() -> None:
    """Create ./.local, ignored by git from the inside, so no repository needs to list it."""
    LOCAL_DIR.mkdir(exist_ok=True)
    ignore = LOCAL_DIR / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by python -m kube_testenv: local, throwaway state\n*\n")


def _up(args: argparse.Namespace) -> int:
    kubeconfig_out: Path | None = args.kubeconfig_out
    log_dir: Path | None = args.log_dir
    if kubeconfig_out is None or log_dir is None:
        _ensure_local_dir()
    if kubeconfig_out is None:
        kubeconfig_out = LOCAL_DIR / "kubeconfig"
    if log_dir is None:
        log_dir = LOCAL_DIR / "controlplane-logs"
        # Logs are appended to; a previous run's would only confuse.
        shutil.rmtree(log_dir, ignore_errors=True)
    kubeconfig_out = kubeconfig_out.absolute()
    log_dir = log_dir.absolute()

    print(
        "kube_testenv: starting etcd, kube-apiserver, kube-controller-manager ...",
        file=sys.stderr,
        flush=True,
    )
    control_plane = ControlPlane(
        kubeconfig_out=kubeconfig_out, log_dir=log_dir, start_timeout=args.timeout, use_existing=False
    )
    try:
        with control_plane:
            kubectl = kubectl_path()
            seconds = control_plane.startup_seconds or 0.0
            print(
                f"Control plane ready at {control_plane.server_url} in {seconds:.1f}s.\n"
                f"\n"
                f"  export KUBECONFIG={shlex.quote(str(kubeconfig_out))}\n"
                # The venv's kubectl first: machines carry old ones that mis-handle a 1.36 server.
                f"  export PATH={shlex.quote(str(kubectl.parent))}:$PATH\n"
                f"  kubectl get ns\n"
                f"\n"
                f"Logs: {log_dir}\n"
                f"Ctrl-C stops it and removes {kubeconfig_out}.",
                flush=True,
            )
            while True:
                control_plane.check_alive()
                time.sleep(1.0)
    except KeyboardInterrupt:
        print("\nkube_testenv: stopped.", file=sys.stderr)
        return 0
    except ControlPlaneError as error:
        print(f"kube_testenv: {error}", file=sys.stderr)
        return 1


def _binaries(_: argparse.Namespace) -> int:
    print(locate_binaries().folder)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kube_testenv", description="A local Kubernetes control plane.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run a local control plane until Ctrl-C")
    up.add_argument(
        "--kubeconfig-out",
        type=Path,
        help="where to write the admin kubeconfig (default ./.local/kubeconfig)",
    )
    up.add_argument("--log-dir", type=Path, help="process logs (default ./.local/controlplane-logs)")
    up.add_argument("--timeout", type=float, default=DEFAULT_START_TIMEOUT_SECONDS, help="start timeout, s")
    up.set_defaults(run=_up)
    binaries = commands.add_parser("binaries", help="print the folder with the binaries (building them)")
    binaries.set_defaults(run=_binaries)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
