"""The two health readers GitOps tools use, run for real: the chart's Argo CD Lua check and kstatus."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Argo CD runs health checks in gopher-lua, a Lua 5.1; lupa ships no type hints.
import lupa.lua51 as lua51  # type: ignore[import-untyped]
import yaml

from .kit import CHART, ROOT

LUA_CHECK = CHART / "health" / "rocketmqinstance.lua"
DOC = ROOT / "docs" / "gitops-health.md"
KSTATUS_BUILD = ROOT / "tools" / "kstatus" / "build.sh"


def argo_health(obj: Mapping[str, Any], script: str | None = None) -> dict[str, str]:
    """Run the health check as Argo CD does: ``obj`` a global holding the live object, the script's return value
    a table with ``status`` and ``message``. A fresh interpreter per call, so no state leaks between objects."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True, register_eval=False)
    run = runtime.eval(
        "function(obj, source) local chunk = assert(loadstring(source)) "
        "setfenv(chunk, setmetatable({obj = obj}, {__index = _G})) return chunk() end"
    )

    def to_lua(value: Any) -> Any:
        if isinstance(value, Mapping):
            return runtime.table_from({k: to_lua(v) for k, v in value.items() if v is not None})
        if isinstance(value, list):
            return runtime.table_from([to_lua(v) for v in value])
        return value

    result = run(to_lua(obj), script if script is not None else LUA_CHECK.read_text())
    return {str(k): str(v) for k, v in dict(result).items()}


def build_kstatus() -> Path:
    result = subprocess.run(["bash", str(KSTATUS_BUILD)], capture_output=True, text=True, check=False, timeout=900)
    assert result.returncode == 0, f"tools/kstatus/build.sh failed:\n{result.stderr}"
    return Path(result.stdout.strip().splitlines()[-1])


def kstatus(
    binary: Path, objects: Iterable[Mapping[str, Any]], flux_exprs: Path | None = None
) -> dict[str, dict[str, str]]:
    """kstatus of each object (several JSON documents on stdin), by name; with ``flux_exprs`` (a JSON list of
    healthCheckExprs entries) also what Flux concludes from them (``flux``, or ``fluxError``)."""
    text = "\n".join(json.dumps(o) for o in objects)
    argv = [str(binary), "-o", "json", *(["-flux-exprs", str(flux_exprs)] if flux_exprs else [])]
    result = subprocess.run(argv, input=text, capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {row["name"]: row for row in rows}


def doc_blocks(language: str) -> list[str]:
    """The fenced code blocks of docs/gitops-health.md in ``language``."""
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), flags=re.M | re.S)


def flux_health_check_exprs() -> list[dict[str, Any]]:
    """The healthCheckExprs of the Flux Kustomization the docs show."""
    for block in doc_blocks("yaml"):
        doc = yaml.safe_load(block)
        if doc.get("kind") == "Kustomization":
            exprs: list[dict[str, Any]] = doc["spec"]["healthCheckExprs"]
            return exprs
    raise AssertionError("no Flux Kustomization in docs/gitops-health.md")


def doc_table() -> list[list[str]]:
    """Rows of the first table in docs/gitops-health.md (header and rule left out), cells stripped."""
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("|")]
    return [[cell.strip().strip("*") for cell in row.strip("|").split("|")] for row in rows[2:]]
