"""The two health readers GitOps tools use, run for real: the chart's Argo CD Lua check and kstatus."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Argo CD runs health checks in gopher-lua, a Lua 5.1; lupa ships no type hints.
import lupa.lua51 as lua51  # type: ignore[import-untyped]

from .kit import CHART, ROOT

LUA_CHECK = CHART / "health" / "rocketmqinstance.lua"
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


def kstatus(binary: Path, objects: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """kstatus of each object (several JSON documents on stdin), by name."""
    text = "\n".join(json.dumps(o) for o in objects)
    result = subprocess.run([str(binary), "-o", "json"], input=text, capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {row["name"]: row for row in rows}
